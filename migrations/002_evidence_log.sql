-- Append-only Merkle log over every ingested evidence item (RFC 6962 leaves).
-- seq is dense (0..size-1): assigned under the log_state row lock in the ingest transaction,
-- never from a sequence, because a rolled-back sequence value would leave a gap in the tree.
CREATE TABLE evidence_log (
  seq bigint PRIMARY KEY,
  tenant_id text NOT NULL,
  item_id text NOT NULL,
  leaf bytea NOT NULL,
  leaf_hash bytea NOT NULL,
  appended_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (tenant_id, item_id)
);
CREATE TABLE log_state (
  id boolean PRIMARY KEY DEFAULT true CHECK (id),
  size bigint NOT NULL DEFAULT 0
);
INSERT INTO log_state (id, size) VALUES (true, 0);
CREATE FUNCTION evidence_log_immutable() RETURNS trigger AS $$
BEGIN RAISE EXCEPTION 'evidence_log is append-only'; END $$ LANGUAGE plpgsql;
CREATE TRIGGER evidence_log_no_delete BEFORE DELETE ON evidence_log FOR EACH ROW EXECUTE FUNCTION evidence_log_immutable();
