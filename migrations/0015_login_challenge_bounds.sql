-- Delegated sign-in's bounds (issue 15 §3, §9). The landing's session insert
-- finds the challenge its own UPDATE just spent by `used_by`; without an
-- index that is a scan of every live challenge, on a path any browser can
-- call. The platform's sign-out ends a user's decided-but-unlanded
-- challenges by `user_id`, in the same batch as their sessions.
CREATE INDEX login_challenges_used_by ON login_challenges(used_by) WHERE used_by IS NOT NULL;
CREATE INDEX login_challenges_user ON login_challenges(user_id) WHERE user_id IS NOT NULL;
