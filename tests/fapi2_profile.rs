//! Issue 19 item 4: profiles/fapi2.toml starts, and the worker refuses to
//! start with any setting that contradicts the FAPI 2.0 Security Profile.

use std::collections::HashMap;

use edge_oauth::config::Config;

const RSA: &str = include_str!("keys/rsa.json");

/// The `[vars]` of profiles/fapi2.toml, with an RSA key (OPENID=on needs one).
fn profile() -> HashMap<String, String> {
    let text = std::fs::read_to_string("profiles/fapi2.toml").expect("profiles/fapi2.toml");
    let mut vars: HashMap<String, String> = text
        .lines()
        .filter_map(|l| l.split_once('='))
        .filter(|(k, _)| !k.trim().starts_with('#') && !k.contains('['))
        .map(|(k, v)| (k.trim().to_string(), v.trim().trim_matches('"').to_string()))
        .collect();
    vars.insert("JWT_SIGNING_KEYS".into(), RSA.into());
    vars
}

fn load(vars: &HashMap<String, String>) -> Result<Config, String> {
    Config::from_lookup(|k| vars.get(k).cloned())
}

#[test]
fn the_profile_starts_and_says_what_it_holds() {
    let c = load(&profile()).expect("profiles/fapi2.toml is a valid configuration");
    assert!(c.fapi2 && c.par_required);
    assert!(c.code_ttl <= 60, "FAPI 2.0 §5.3.2.2: codes live at most 60 s");
    assert!((5..=600).contains(&c.par_ttl));
}

#[test]
fn every_contradiction_is_refused_naming_the_setting() {
    let cases: &[(&str, &str, &str)] = &[
        ("PAR_REQUIRED", "off", "PAR_REQUIRED"),
        ("PKCE_REQUIRED", "public", "PKCE_REQUIRED"),
        ("DPOP_REQUIRED", "public", "DPOP_REQUIRED"),
        ("DPOP_REQUIRED", "off", "DPOP_REQUIRED"),
        ("CODE_TTL_SECONDS", "61", "CODE_TTL_SECONDS"),
        ("CODE_TTL_SECONDS", "900", "CODE_TTL_SECONDS"),
        ("DCR", "open", "DCR"),
        ("CIMD", "on", "CIMD"),
    ];
    for (key, value, named) in cases {
        let mut vars = profile();
        vars.insert(key.to_string(), value.to_string());
        let err = load(&vars).expect_err(&format!("FAPI2=on with {key}={value} must not start"));
        assert!(err.contains(named) && err.contains("FAPI2"), "{key}={value}: {err}");
    }
    // Unset is the default, which contradicts it too (PAR off, DPoP off).
    for key in ["PAR_REQUIRED", "DPOP_REQUIRED"] {
        let mut vars = profile();
        vars.remove(key);
        let err = load(&vars).expect_err(key);
        assert!(err.contains(key), "{key} unset: {err}");
    }
    // The Azure DevOps wire format: bearer "jwt" tokens, codes without PKCE.
    let mut vars = profile();
    vars.insert("AZURE_DEVOPS_COMPAT".into(), "true".into());
    let err = load(&vars).expect_err("FAPI2 with the Azure DevOps compat");
    assert!(
        err.contains("AZURE_DEVOPS_COMPAT") || err.contains("PKCE_REQUIRED"),
        "{err}"
    );
}

#[test]
fn fapi2_is_off_by_default_and_takes_on_or_off() {
    let none: HashMap<String, String> = [("JWT_SIGNING_KEYS".to_string(), RSA.to_string())].into();
    assert!(!load(&none).unwrap().fapi2);
    let mut bad = none.clone();
    bad.insert("FAPI2".into(), "yes".into());
    assert!(load(&bad).unwrap_err().contains("FAPI2"));
}
