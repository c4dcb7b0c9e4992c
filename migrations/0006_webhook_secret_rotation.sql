-- Webhook signing secret rotation: the secret before the last rotation and
-- until when deliveries are also signed with it, so receivers can switch over
-- without dropping deliveries (apps.webhook_secret holds the current one).
CREATE TABLE webhook_secret_previous (
  app_id      TEXT PRIMARY KEY,
  secret      TEXT NOT NULL,
  expires_at  INTEGER NOT NULL
);
