-- The provisioning API (issue 9): roles as rows of their own, so a role can
-- exist without permissions and "unknown role" has a meaning; a guard table
-- for write batches; an index for the platform's own audit trail.

CREATE TABLE roles (
  name         TEXT PRIMARY KEY,
  description  TEXT NOT NULL DEFAULT '',
  created_at   INTEGER NOT NULL DEFAULT 0
);

-- Roles that exist today only as rows of other tables.
INSERT OR IGNORE INTO roles (name) SELECT role FROM role_permissions;
INSERT OR IGNORE INTO roles (name) SELECT role FROM memberships;
INSERT OR IGNORE INTO roles (name) SELECT role FROM api_keys;

-- Whoever writes role_permissions (an operator with SQL, older fixtures), the
-- role becomes known.
CREATE TRIGGER role_from_permission AFTER INSERT ON role_permissions
BEGIN
  INSERT OR IGNORE INTO roles (name, created_at) VALUES (NEW.role, unixepoch());
END;

-- A provisioning write is one D1 batch whose first statement inserts a row
-- here only if every precondition holds (the email is free, the org keeps an
-- owner, ...); each later statement runs only if that row exists, and the last
-- one deletes it. So the checks and the change are one transaction, and a
-- concurrent change that breaks a precondition makes the whole act a no-op
-- instead of half of it. Rows never outlive their batch.
CREATE TABLE batch_guards (
  id  TEXT PRIMARY KEY
);

CREATE INDEX audit_actor ON audit_events(actor_type, id);
