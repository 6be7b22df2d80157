-- Merkle anchoring of the evidence log (issue 6). The log itself is evidence_log (002).
-- The tree and its anchors are global: one log over every tenant, so tenant_id is '*'.

-- Perfect subtrees of the log, stored as they complete (levels >= 4 only: a subtree of
-- <= 8 leaves is cheaper to hash from evidence_log than to look up), so an inclusion or
-- consistency proof needs O(log N) lookups. Written only by the anchor activity, in the same
-- transaction as the frontier below.
CREATE TABLE merkle_nodes (
  level smallint NOT NULL CHECK (level >= 1 AND level <= 52),
  idx bigint NOT NULL CHECK (idx >= 0),
  hash bytea NOT NULL CHECK (length(hash) = 32),
  tenant_id text NOT NULL DEFAULT '*',
  PRIMARY KEY (level, idx)
);

-- The right edge of the tree at `size` leaves (MerkleFrontier JSON). Anchoring reads only
-- the leaves after `size`: O(k + log N) for k new leaves. Its row lock serialises anchoring.
CREATE TABLE merkle_frontier (
  id boolean PRIMARY KEY DEFAULT true CHECK (id),
  tenant_id text NOT NULL DEFAULT '*',
  size bigint NOT NULL CHECK (size >= 0),
  frontier jsonb NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO merkle_frontier (id, size, frontier) VALUES (true, 0, '{"v":1,"size":0,"nodes":[]}');

-- Chain segments. The id commits to (prev_chain_id, prev_chain_head_hash, reason,
-- started_at) and is signed into every anchor of the chain (payload chainId), so the hand-over
-- from an archived chain is itself signed. archived_verify keeps what verification found in
-- the old chain when it was archived: a break recorded there is acknowledged, not re-alerted.
CREATE TABLE anchor_chains (
  id text PRIMARY KEY,
  tenant_id text NOT NULL DEFAULT '*',
  started_at timestamptz NOT NULL,
  reason text NOT NULL,
  status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'archived')),
  archived_at timestamptz,
  archived_verify jsonb,
  prev_chain_id text REFERENCES anchor_chains (id),
  prev_chain_head_hash text
);
CREATE UNIQUE INDEX anchor_chains_one_active ON anchor_chains ((status)) WHERE status = 'active';

-- Signed anchors. id = SHA-256 hex of the compact JWS (what the next anchor links to). The
-- columns mirror the signed payload for querying; verification trusts only the JWS and
-- reports any column that disagrees with it.
CREATE TABLE anchors (
  id text PRIMARY KEY,
  tenant_id text NOT NULL DEFAULT '*',
  chain_id text NOT NULL REFERENCES anchor_chains (id),
  seq bigint NOT NULL CHECK (seq >= 0),
  log_size bigint NOT NULL CHECK (log_size >= 0),
  root_hash text NOT NULL,
  prev_anchor_hash text,
  jws text NOT NULL,
  kid text NOT NULL,
  created_at timestamptz NOT NULL,
  status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'archived')),
  reason text,
  -- Workflow run that created it: a retried activity finds its anchor instead of adding one.
  request_id text UNIQUE,
  UNIQUE (chain_id, seq)
);
CREATE INDEX anchors_created ON anchors (created_at DESC);
CREATE FUNCTION anchors_no_delete() RETURNS trigger AS $$
BEGIN RAISE EXCEPTION 'anchors are append-only (use anchor recover to restore a damaged row)'; END $$ LANGUAGE plpgsql;
CREATE TRIGGER anchors_no_delete BEFORE DELETE ON anchors FOR EACH ROW EXECUTE FUNCTION anchors_no_delete();

-- Outcome of every `anchor verify`; stella_merkle_anchor_chain_ok reports the latest.
CREATE TABLE anchor_verifications (
  id bigserial PRIMARY KEY,
  tenant_id text NOT NULL DEFAULT '*',
  scope text NOT NULL CHECK (scope IN ('latest', 'all')),
  ok boolean NOT NULL,
  checked int NOT NULL,
  first_break jsonb,
  result jsonb NOT NULL,
  verified_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX anchor_verifications_latest ON anchor_verifications (verified_at DESC);
