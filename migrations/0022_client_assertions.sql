-- private_key_jwt client authentication (RFC 7523 §2.2, issue 19).
--
-- `client_assertion_jtis`: each accepted client assertion's `jti` (SHA-256
-- hex), single-use per client until the assertion's `exp` (at most 60 s
-- after its `iat`); only an assertion whose signature verified writes a row,
-- and the sweep deletes expired ones.
--
-- `client_jwks`: the JWK sets fetched from clients' `jwks_uri`, one row per
-- URL a registered private_key_jwt client names: the set (NULL when the last
-- fetch brought back nothing usable), when it was fetched, and until when it
-- is used without fetching again.
CREATE TABLE client_assertion_jtis (
  app_id TEXT NOT NULL,
  jti_hash TEXT NOT NULL,
  expires_at INTEGER NOT NULL,
  PRIMARY KEY (app_id, jti_hash)
);
CREATE INDEX client_assertion_jtis_expiry ON client_assertion_jtis (expires_at);

CREATE TABLE client_jwks (
  uri TEXT PRIMARY KEY,
  jwks TEXT,
  fetched_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
);
CREATE INDEX client_jwks_expiry ON client_jwks (expires_at);
