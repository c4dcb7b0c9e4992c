-- Enterprise-managed authorization (ID-JAG, issue 20 item 2).
--
-- `trusted_issuers`: an org's enterprise identity providers, pushed through
-- the provisioning API (`/admin/v1/orgs/{org}/trusted-issuers/{name}`). An
-- issuer belongs to one org (UNIQUE), so an ID-JAG's `iss` picks the org.
-- Lists are JSON arrays. Their JWK sets are cached in `client_jwks` (0022),
-- keyed by URL like a private_key_jwt client's.
--
-- `id_jag_jtis`: each accepted ID-JAG's `jti` (SHA-256 hex) per issuer,
-- single-use until the ID-JAG's `exp` (at most ID_JAG_MAX_AGE_SECONDS after
-- its `iat`); written only in the batch that issues the token (`grant_id`:
-- the grant it issued, which the batch's later statements require), and swept once expired.
CREATE TABLE trusted_issuers (
  org_id TEXT NOT NULL REFERENCES orgs(id),
  name TEXT NOT NULL,
  issuer TEXT NOT NULL UNIQUE,
  jwks_uri TEXT NOT NULL,
  allowed_clients TEXT NOT NULL DEFAULT '[]',
  subject_claim TEXT NOT NULL DEFAULT 'sub' CHECK (subject_claim IN ('sub', 'email')),
  default_role TEXT,
  resources TEXT NOT NULL DEFAULT '[]',
  scopes TEXT NOT NULL DEFAULT '[]',
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (org_id, name)
);

CREATE TABLE id_jag_jtis (
  issuer TEXT NOT NULL,
  jti_hash TEXT NOT NULL,
  expires_at INTEGER NOT NULL,
  grant_id TEXT NOT NULL,
  PRIMARY KEY (issuer, jti_hash)
);
CREATE INDEX id_jag_jtis_expiry ON id_jag_jtis (expires_at);
