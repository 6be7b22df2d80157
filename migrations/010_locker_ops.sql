-- Evidence Locker maintenance operations (index refresh/rebuild/optimize, retry-store):
-- what ran, when, by whom and what it found. `stella evidence index status` reads the latest.
CREATE TABLE locker_ops (
  id text PRIMARY KEY,
  tenant_id text NOT NULL DEFAULT 'default',
  op text NOT NULL CHECK (op IN ('index.refresh','index.rebuild','index.optimize','retry-store')),
  status text NOT NULL DEFAULT 'running' CHECK (status IN ('running','succeeded','failed')),
  actor text NOT NULL,
  workflow_id text,
  -- Rebuild cursor: the last blob digest handled, so a resumed run skips what is done.
  cursor text,
  result jsonb NOT NULL DEFAULT '{}'::jsonb,
  started_at timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz
);
CREATE INDEX locker_ops_latest ON locker_ops (tenant_id, op, started_at DESC);
