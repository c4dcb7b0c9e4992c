-- DPoP (RFC 9449, issue 19): what binds a token to a client's key.
-- tokens.jkt: the RFC 7638 thumbprint of the key an access token (and a
-- public client's refresh token) is bound to; NULL: a bearer token.
-- codes.dpop_jkt: the `dpop_jkt` of the authorization request (§10): only a
-- proof by that key redeems the code.
-- dpop_jtis: proofs already used at the token endpoint (SHA-256 of jkt and
-- jti), written in the batch that issued tokens for them, each kept until
-- the proof's `iat` is outside the accepted window (then it is refused
-- anyway); the sweep deletes the rest.
ALTER TABLE tokens ADD COLUMN jkt TEXT;
ALTER TABLE codes ADD COLUMN dpop_jkt TEXT;
CREATE TABLE dpop_jtis (
  hash TEXT PRIMARY KEY,
  expires_at INTEGER NOT NULL
);
CREATE INDEX dpop_jtis_expires ON dpop_jtis (expires_at);
