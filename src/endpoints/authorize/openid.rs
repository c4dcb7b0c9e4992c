//! The OpenID Connect parameters of an authorization request (Core
//! §3.1.2.1, §6): parsed and bounded here, acted on by `show`.

use crate::http::Params;
use crate::oidc::reauth::PROOF_PARAM;

/// Parameters that may appear at most once (RFC 6749 §3.1), beside the
/// OAuth ones.
pub(super) const SINGLE: &[&str] = &[
    "max_age",
    "login_hint",
    "id_token_hint",
    "ui_locales",
    "claims_locales",
    "acr_values",
    "display",
    "request",
    "request_uri",
    "claims",
    PROOF_PARAM,
];

/// Longest values accepted (bytes). `login_hint` is usually an email
/// address (at most 320); an ID token of ours is well under 4 KiB.
const MAX_LOGIN_HINT: usize = 320;
const MAX_ID_TOKEN_HINT: usize = 4096;
const MAX_LOCALES: usize = 256;
const MAX_ACR_VALUES: usize = 512;
/// A proof is `<unix time>.<64 hex>`.
const MAX_PROOF: usize = 96;

/// `prompt` (Core §3.1.2.1), a space-separated set.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Prompt {
    pub none: bool,
    /// `login`, or `select_account`: choosing an account is signing in on
    /// our form (there is no account chooser), so it is a fresh sign-in.
    pub login: bool,
    pub consent: bool,
    /// As sent, carried through sign-in and consent.
    pub raw: Option<String>,
}

#[derive(Debug, Default, Clone)]
pub struct OidcParams {
    pub prompt: Prompt,
    pub max_age: Option<i64>,
    pub login_hint: Option<String>,
    pub id_token_hint: Option<String>,
    pub ui_locales: Option<String>,
    pub acr_values: Option<String>,
    /// A completed sign-in's proof (`crate::oidc::reauth`), set by us only.
    pub login_proof: Option<String>,
}

/// An error for the client: its code (Core §3.1.2.6, §6.3) and why.
pub(super) type Refusal = (&'static str, String);

fn bounded(p: &Params, name: &str, max: usize) -> Result<Option<String>, Refusal> {
    match p.get(name) {
        Some(v) if v.len() > max || v.chars().any(char::is_control) => Err((
            "invalid_request",
            format!("{name} must be at most {max} characters, none of them control characters"),
        )),
        v => Ok(v.map(str::to_string)),
    }
}

fn prompt(p: &Params) -> Result<Prompt, Refusal> {
    let Some(raw) = p.get("prompt") else {
        return Ok(Prompt::default());
    };
    let mut out = Prompt {
        raw: Some(raw.to_string()),
        ..Prompt::default()
    };
    for v in raw.split(' ').filter(|v| !v.is_empty()) {
        match v {
            "none" => out.none = true,
            "login" | "select_account" => out.login = true,
            "consent" => out.consent = true,
            _ => {
                return Err((
                    "invalid_request",
                    "prompt values are none, login, consent and select_account".into(),
                ))
            }
        }
    }
    if out.none && (out.login || out.consent) {
        return Err((
            "invalid_request",
            "prompt=none cannot be combined with another prompt value".into(),
        ));
    }
    Ok(out)
}

pub(super) fn parse(p: &Params) -> Result<OidcParams, Refusal> {
    // Core §6: request objects are not supported (discovery says so).
    if p.get("request").is_some() {
        return Err(("request_not_supported", "the request parameter is not supported".into()));
    }
    if p.get("request_uri").is_some() {
        return Err((
            "request_uri_not_supported",
            "the request_uri parameter is not supported".into(),
        ));
    }
    let max_age = match p.get("max_age") {
        None => None,
        Some(m) => match m.parse::<u32>() {
            Ok(v) if m.bytes().all(|b| b.is_ascii_digit()) => Some(i64::from(v)),
            _ => {
                return Err((
                    "invalid_request",
                    "max_age must be a whole number of seconds (0 to 4294967295)".into(),
                ))
            }
        },
    };
    // `display` only names how our pages look; ours fit every device.
    if p.get("display")
        .is_some_and(|d| !matches!(d, "page" | "popup" | "touch" | "wap"))
    {
        return Err(("invalid_request", "display must be page, popup, touch or wap".into()));
    }
    // `claims_locales` and `claims` (Core §5.5, claims_parameter_supported
    // false) are accepted and ignored: released claims follow the scopes.
    bounded(p, "claims_locales", MAX_LOCALES)?;
    Ok(OidcParams {
        prompt: prompt(p)?,
        max_age,
        login_hint: bounded(p, "login_hint", MAX_LOGIN_HINT)?,
        id_token_hint: bounded(p, "id_token_hint", MAX_ID_TOKEN_HINT)?,
        ui_locales: bounded(p, "ui_locales", MAX_LOCALES)?,
        acr_values: bounded(p, "acr_values", MAX_ACR_VALUES)?,
        login_proof: bounded(p, PROOF_PARAM, MAX_PROOF)?,
    })
}

/// What a fresh sign-in on the platform's page should know (delegated
/// mode): forwarded to `LOGIN_URL` as query parameters.
pub fn forwarded(o: &OidcParams, fresh: bool) -> Vec<(&'static str, String)> {
    let mut v = Vec::new();
    if fresh || o.prompt.login {
        v.push(("prompt", "login".to_string()));
    }
    if let Some(m) = o.max_age {
        v.push(("max_age", m.to_string()));
    }
    for (k, val) in [
        ("login_hint", &o.login_hint),
        ("ui_locales", &o.ui_locales),
        ("acr_values", &o.acr_values),
    ] {
        if let Some(val) = val {
            v.push((k, val.clone()));
        }
    }
    v
}

/// What the consent page says the OpenID scopes share, in plain words
/// (they are not in the platform's scope catalogue; the claims themselves
/// are `crate::oidc`'s).
pub(super) fn shared_identity(scopes: &[String], email: &str) -> Vec<String> {
    let asked = |s: &str| scopes.iter().any(|x| x == s);
    let mut v = Vec::new();
    if asked("openid") {
        v.push(
            "Who you are: an identifier for your account, the same each time you sign in to this app, \
             and which organization you choose below"
                .to_string(),
        );
    }
    if asked("profile") {
        v.push("Your name and username, and the name of the organization you choose".to_string());
    }
    if asked("email") {
        v.push(format!("Your email address ({email}) and whether it is verified"));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(q: &str) -> Result<OidcParams, Refusal> {
        parse(&Params::parse(q.as_bytes()))
    }

    #[test]
    fn prompt_values() {
        let p = parsed("prompt=login%20consent").unwrap().prompt;
        assert!(p.login && p.consent && !p.none);
        assert!(parsed("prompt=select_account").unwrap().prompt.login);
        assert_eq!(parsed("prompt=none%20login").unwrap_err().0, "invalid_request");
        assert_eq!(parsed("prompt=create").unwrap_err().0, "invalid_request");
        assert_eq!(parsed("prompt=").unwrap().prompt, Prompt::default());
    }

    #[test]
    fn max_age_and_bounds() {
        assert_eq!(parsed("max_age=0").unwrap().max_age, Some(0));
        for bad in [
            "max_age=-1",
            "max_age=%2B5",
            "max_age=1.5",
            "max_age=99999999999",
            "max_age=x",
        ] {
            assert_eq!(parsed(bad).unwrap_err().0, "invalid_request", "{bad}");
        }
        assert!(parsed(&format!("login_hint={}", "a".repeat(321))).is_err());
        assert!(parsed("login_hint=a%0Ab").is_err());
        assert_eq!(parsed("request=x").unwrap_err().0, "request_not_supported");
        assert_eq!(parsed("request_uri=x").unwrap_err().0, "request_uri_not_supported");
        assert!(parsed("display=page&ui_locales=fr-CA%20fr&claims_locales=fr&acr_values=1&claims=%7B%7D").is_ok());
        assert!(parsed("display=desktop").is_err());
    }
}
