-- Issue 15: Merkle log leaves of committed items waiting for their dense seq. An ingest commits its
-- index rows and these leaves without touching log_state, then a short transaction takes the
-- log_state lock and numbers every waiting leaf at once (src/core/evidence/ingest.ts), so parallel
-- ingests never hold the log lock across their own blob or index I/O. A leaf left here by a crash
-- between the two commits is numbered by the next ingest.
CREATE TABLE evidence_log_pending (
  n bigserial PRIMARY KEY,
  tenant_id text NOT NULL,
  item_id text NOT NULL,
  leaf bytea NOT NULL,
  leaf_hash bytea NOT NULL,
  UNIQUE (tenant_id, item_id)
);
