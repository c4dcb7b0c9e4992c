-- OpenID Connect (issue 17). Columns only; every one is NULL or has a default,
-- so rows written before this migration still read.
--
-- A session's `sid` (OIDC Front/Back-Channel Logout §2.1: the session id an
-- ID token and a logout token carry) is random, never derived from the
-- cookie, and `auth_time`/`acr`/`amr` say how and when the user signed in
-- (delegated sign-in: as the platform's accept said).
ALTER TABLE sessions ADD COLUMN sid TEXT;
ALTER TABLE sessions ADD COLUMN auth_time INTEGER;
ALTER TABLE sessions ADD COLUMN acr TEXT;
ALTER TABLE sessions ADD COLUMN amr TEXT;               -- JSON array
UPDATE sessions SET sid = lower(hex(randomblob(16))), auth_time = created_at WHERE sid IS NULL;
CREATE INDEX sessions_user ON sessions(user_id);
CREATE UNIQUE INDEX sessions_sid ON sessions(sid) WHERE sid IS NOT NULL;

-- A code carries the request's `nonce` (OIDC Core §3.1.2.1) and the
-- session's authentication facts to the ID token of its exchange.
ALTER TABLE codes ADD COLUMN nonce TEXT;
ALTER TABLE codes ADD COLUMN auth_time INTEGER;
ALTER TABLE codes ADD COLUMN acr TEXT;
ALTER TABLE codes ADD COLUMN amr TEXT;
ALTER TABLE codes ADD COLUMN sid TEXT;

-- A grant keeps them for the ID token of every refresh (OIDC Core §12.2:
-- same `sub`, same `auth_time`), and `sid` names the session that consented
-- (back-channel logout finds the grants of an ended session by it).
ALTER TABLE grants ADD COLUMN auth_time INTEGER;
ALTER TABLE grants ADD COLUMN acr TEXT;
ALTER TABLE grants ADD COLUMN amr TEXT;
ALTER TABLE grants ADD COLUMN sid TEXT;
CREATE INDEX grants_sid ON grants(sid) WHERE sid IS NOT NULL;

-- OpenID client metadata (OIDC Registration §2, RP-Initiated Logout §3.1,
-- Back-Channel Logout §2.2), for every kind of client.
ALTER TABLE apps ADD COLUMN id_token_signed_response_alg TEXT;   -- NULL: RS256
ALTER TABLE apps ADD COLUMN sector_identifier_uri TEXT;
ALTER TABLE apps ADD COLUMN post_logout_redirect_uris TEXT NOT NULL DEFAULT '[]';
ALTER TABLE apps ADD COLUMN backchannel_logout_uri TEXT;
ALTER TABLE apps ADD COLUMN backchannel_logout_session_required INTEGER NOT NULL DEFAULT 0;
