-- Token hygiene (issue 17): revoked access tokens (by jti) and revoked token-signing keys (by kid).
-- A jti entry is kept until no token it names can still be valid (expires_at); a key entry forever.
CREATE TABLE IF NOT EXISTS token_revocations (
  kind        text NOT NULL CHECK (kind IN ('jti', 'kid')),
  value       text NOT NULL,
  actor       text NOT NULL,
  reason      text,
  revoked_at  timestamptz NOT NULL DEFAULT now(),
  expires_at  timestamptz,
  PRIMARY KEY (kind, value)
);
