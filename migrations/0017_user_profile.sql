-- OpenID Connect claims (issue 17): what UserInfo and the `profile`/`email`
-- scopes release about a user. Columns only; rows written before this
-- migration read as "no username, email not verified, updated when created".
--
-- `email_verified` is what the platform says (provisioning API, delegated
-- accept); nothing else sets it, so a user this server created itself (seed
-- data) is never claimed verified. `updated_at` moves when a released claim
-- changes (email, name, preferred_username, email_verified); NULL reads as
-- `created_at`.
ALTER TABLE users ADD COLUMN preferred_username TEXT;
ALTER TABLE users ADD COLUMN email_verified INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN updated_at INTEGER;
