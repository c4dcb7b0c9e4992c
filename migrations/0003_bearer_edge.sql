-- BEARER_MODE=edge copies access-token records into KV so resource calls can
-- skip D1. D1 stays the record. These triggers queue the KV key of every
-- copied token whose validity or permissions a change may affect, whoever
-- makes the change (this worker, the platform's own jobs, an operator), so no
-- code path can forget to invalidate. The worker deletes the queued keys from
-- KV right after the request that queued them, and the cron drains the rest.
-- In strict mode nothing is copied (mirrored stays NULL) and the triggers
-- insert nothing.

ALTER TABLE tokens ADD COLUMN mirrored INTEGER;    -- 1: an access token copied to KV

CREATE TABLE bearer_evictions (
  hash       TEXT PRIMARY KEY,                     -- the KV key (token hash)
  queued_at  INTEGER NOT NULL
);

CREATE TRIGGER evict_revoked_token AFTER UPDATE OF revoked_at ON tokens
  WHEN NEW.mirrored = 1 AND NEW.revoked_at IS NOT NULL
BEGIN
  INSERT OR IGNORE INTO bearer_evictions VALUES (NEW.hash, unixepoch());
END;

CREATE TRIGGER evict_deleted_token AFTER DELETE ON tokens
  WHEN OLD.mirrored = 1 AND OLD.expires_at > unixepoch()
BEGIN
  INSERT OR IGNORE INTO bearer_evictions VALUES (OLD.hash, unixepoch());
END;

CREATE TRIGGER evict_revoked_grant AFTER UPDATE OF revoked_at ON grants
  WHEN NEW.revoked_at IS NOT NULL
BEGIN
  INSERT OR IGNORE INTO bearer_evictions
    SELECT hash, unixepoch() FROM tokens WHERE grant_id = NEW.id AND mirrored = 1;
END;

-- Suspension, deletion or narrowed scopes of an app.
CREATE TRIGGER evict_changed_app AFTER UPDATE OF status, scopes ON apps
  WHEN OLD.status IS NOT NEW.status OR OLD.scopes IS NOT NEW.scopes
BEGIN
  INSERT OR IGNORE INTO bearer_evictions
    SELECT t.hash, unixepoch() FROM grants g JOIN tokens t ON t.grant_id = g.id
    WHERE g.app_id = NEW.id AND t.mirrored = 1;
END;

-- A user's role in an org changed, or they left it.
CREATE TRIGGER evict_changed_membership AFTER UPDATE OF role ON memberships
  WHEN OLD.role IS NOT NEW.role
BEGIN
  INSERT OR IGNORE INTO bearer_evictions
    SELECT t.hash, unixepoch() FROM grants g JOIN tokens t ON t.grant_id = g.id
    WHERE g.org_id = OLD.org_id AND g.user_id = OLD.user_id AND t.mirrored = 1;
END;

CREATE TRIGGER evict_removed_membership AFTER DELETE ON memberships
BEGIN
  INSERT OR IGNORE INTO bearer_evictions
    SELECT t.hash, unixepoch() FROM grants g JOIN tokens t ON t.grant_id = g.id
    WHERE g.org_id = OLD.org_id AND g.user_id = OLD.user_id AND t.mirrored = 1;
END;

-- A role gained or lost a permission.
CREATE TRIGGER evict_role_grant AFTER INSERT ON role_permissions
BEGIN
  INSERT OR IGNORE INTO bearer_evictions
    SELECT t.hash, unixepoch() FROM memberships m
    JOIN grants g ON g.org_id = m.org_id AND g.user_id = m.user_id
    JOIN tokens t ON t.grant_id = g.id
    WHERE m.role = NEW.role AND t.mirrored = 1;
END;

CREATE TRIGGER evict_role_revoke AFTER DELETE ON role_permissions
BEGIN
  INSERT OR IGNORE INTO bearer_evictions
    SELECT t.hash, unixepoch() FROM memberships m
    JOIN grants g ON g.org_id = m.org_id AND g.user_id = m.user_id
    JOIN tokens t ON t.grant_id = g.id
    WHERE m.role = OLD.role AND t.mirrored = 1;
END;
