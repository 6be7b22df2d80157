-- Corruption lifecycle (issue 18): a verification failure an operator has acknowledged (with a
-- reason and who) no longer fails later runs or keeps the integrity alert firing, but stays listed.
-- item_id is what verify-report names: an evidence id, an unindexed blob or a replay copy (replay/<digest>).
CREATE TABLE IF NOT EXISTS integrity_acks (
  tenant_id       text NOT NULL,
  item_id         text NOT NULL,
  reason          text NOT NULL,
  actor           text NOT NULL,
  acknowledged_at timestamptz NOT NULL DEFAULT now(),
  -- repaired | tombstoned once settled; an open acknowledgement has resolved_at NULL.
  resolution      text,
  resolved_at     timestamptz,
  PRIMARY KEY (tenant_id, item_id)
);

ALTER TABLE verify_results ADD COLUMN IF NOT EXISTS acknowledged boolean NOT NULL DEFAULT false;
ALTER TABLE verify_batches ADD COLUMN IF NOT EXISTS acknowledged int NOT NULL DEFAULT 0;
ALTER TABLE verify_runs ADD COLUMN IF NOT EXISTS acknowledged int NOT NULL DEFAULT 0;
