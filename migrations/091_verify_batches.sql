-- Integrity verification counts per batch (issue 17): a retried or resumed batch replaces its own
-- counts instead of adding them again, and the run's counters are the sums, so checked = ok + failed.
CREATE TABLE IF NOT EXISTS verify_batches (
  run_id   text NOT NULL REFERENCES verify_runs (id),
  batch    text NOT NULL,
  checked  int NOT NULL,
  ok       int NOT NULL,
  failed   int NOT NULL,
  PRIMARY KEY (run_id, batch)
);
