-- Sender-constrained tokens and asymmetric client authentication (issue 19):
-- the client metadata of DPoP (RFC 9449 §5.2), PAR (RFC 9126 §6) and
-- private_key_jwt (RFC 7523 §2.2, OIDC Registration §2). Columns only; every
-- one is NULL or has a default, so rows written before still read.
--
-- `client_auth_method`: NULL means as before (a secret for a confidential
-- client, none for a public one); 'private_key_jwt' means a signed client
-- assertion checked against `jwks` (a JSON JWK set) or the set at
-- `jwks_uri`, with `token_endpoint_auth_signing_alg` when the client fixed one.
-- (Named apart from client_registrations.token_endpoint_auth_method, which
-- RFC 7592 reads join beside `apps.*`.)
ALTER TABLE apps ADD COLUMN dpop_bound_access_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE apps ADD COLUMN require_pushed_authorization_requests INTEGER NOT NULL DEFAULT 0;
ALTER TABLE apps ADD COLUMN client_auth_method TEXT;
ALTER TABLE apps ADD COLUMN jwks TEXT;
ALTER TABLE apps ADD COLUMN jwks_uri TEXT;
ALTER TABLE apps ADD COLUMN token_endpoint_auth_signing_alg TEXT;
