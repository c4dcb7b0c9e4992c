//! Settings of the ID-JAG grant (enterprise-managed authorization): `ID_JAG`, `ID_JAG_MAX_AGE_SECONDS`.

use super::choice;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdJag {
    /// `ID_JAG=on`: the jwt-bearer grant accepts ID-JAGs from the orgs' trusted issuers.
    pub on: bool,
    /// The longest `exp - iat` accepted: what bounds how long a spent `jti` is kept.
    pub max_age: i64,
}

impl Default for IdJag {
    fn default() -> Self {
        Self {
            on: false,
            max_age: 300,
        }
    }
}

pub(super) fn parse(get: &impl Fn(&str) -> Option<String>) -> Result<IdJag, String> {
    let d = IdJag::default();
    let max_age = match get("ID_JAG_MAX_AGE_SECONDS").as_deref().map(str::trim) {
        None | Some("") => d.max_age,
        Some(v) => match v.parse::<i64>() {
            Ok(n) if (30..=3600).contains(&n) => n,
            _ => return Err(format!("ID_JAG_MAX_AGE_SECONDS must be 30 to 3600, got {v:?}")),
        },
    };
    Ok(IdJag {
        on: choice(get, "ID_JAG", &[("off", false), ("on", true)])?,
        max_age,
    })
}

#[cfg(test)]
mod tests {
    use super::super::Config;

    fn with(pairs: &[(&str, &str)]) -> Result<Config, String> {
        // OPENID off: no signing key needed for these settings.
        let mut pairs: Vec<(String, String)> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        pairs.push(("OPENID".into(), "off".into()));
        Config::from_lookup(move |k| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))
    }

    #[test]
    fn id_jag_is_off_by_default_and_its_age_bounded() {
        let c = with(&[]).unwrap();
        assert_eq!((c.id_jag.on, c.id_jag.max_age), (false, 300));
        let on = with(&[("ID_JAG", "on"), ("ID_JAG_MAX_AGE_SECONDS", "60")]).unwrap();
        assert_eq!((on.id_jag.on, on.id_jag.max_age), (true, 60));
        for bad in [
            ("ID_JAG", "true"),
            ("ID_JAG_MAX_AGE_SECONDS", "5"),
            ("ID_JAG_MAX_AGE_SECONDS", "86400"),
        ] {
            let e = with(&[bad]).unwrap_err();
            assert!(e.contains(bad.0), "{bad:?}: {e}");
        }
    }
}
