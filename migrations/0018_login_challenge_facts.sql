-- OpenID Connect (issue 17): what the platform's accept says about the
-- sign-in it made (OIDC Core §2: `acr`, `amr` as a JSON array, and
-- `auth_time`), kept on the challenge until the landing copies it to the
-- session it starts. NULL: the platform said nothing (a challenge accepted
-- before this migration); the session's auth_time is then the landing's.
ALTER TABLE login_challenges ADD COLUMN acr TEXT;
ALTER TABLE login_challenges ADD COLUMN amr TEXT;
ALTER TABLE login_challenges ADD COLUMN auth_time INTEGER;
