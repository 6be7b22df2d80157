-- Per-ecosystem state of the advisory feed, written by `stella feeds sync`: which records an
-- ecosystem had at its last import (count, sha256 of their canonical JSON array), the feed
-- version that import produced, when the content last changed (imported_at) and when a sync
-- last confirmed it against the mirror (synced_at; the freshness gauge and FeedStale alert read it).
CREATE TABLE advisory_feed_ecosystems (
  tenant_id text NOT NULL,
  ecosystem text NOT NULL,
  record_count int NOT NULL,
  digest text NOT NULL CHECK (digest ~ '^sha256:[0-9a-f]{64}$'),
  feed_version int NOT NULL,
  source text,
  imported_at timestamptz NOT NULL DEFAULT now(),
  synced_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, ecosystem)
);
