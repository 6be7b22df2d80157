-- Anchors anyone can verify (issue 18 item 5). Each new anchor is also a C2SP tlog-checkpoint:
-- a signed note (origin, tree size, base64 root) under an Ed25519 key of purpose "checkpoint".
-- NULL on anchors made before this migration: their JWS stays authoritative and verifiable.
ALTER TABLE anchors ADD COLUMN IF NOT EXISTS checkpoint text;
ALTER TABLE anchors ADD COLUMN IF NOT EXISTS checkpoint_kid text;

-- RFC 3161 timestamp tokens over an anchor's checkpoint text, from the configured TSA. Written
-- after the anchor commits (a TSA outage never blocks anchoring); verified by `anchor verify`.
CREATE TABLE IF NOT EXISTS anchor_timestamps (
  anchor_id text PRIMARY KEY REFERENCES anchors (id) ON UPDATE CASCADE,
  tenant_id text NOT NULL DEFAULT '*',
  tsa_url text NOT NULL,
  -- The DER TimeStampToken (a CMS ContentInfo), what `openssl ts -verify -token_in` reads.
  token bytea NOT NULL,
  gen_time timestamptz NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);

-- C2SP tlog-cosignature/v1 witness cosignatures on an anchor's checkpoint, from configured
-- witness keys only (each verified before it is stored).
CREATE TABLE IF NOT EXISTS anchor_cosignatures (
  anchor_id text NOT NULL REFERENCES anchors (id) ON UPDATE CASCADE,
  tenant_id text NOT NULL DEFAULT '*',
  witness text NOT NULL,
  key_id text NOT NULL,
  signed_at timestamptz NOT NULL,
  -- The whole signature line ("— <name> <base64>"), appended to the checkpoint when served.
  line text NOT NULL,
  added_by text NOT NULL,
  added_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (anchor_id, witness, key_id)
);
