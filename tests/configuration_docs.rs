//! Docs that cannot drift (issue 16): docs/configuration.md has a row for every
//! setting the code reads and for every `[vars]` key of wrangler.toml, and no
//! row for anything else; wrangler.toml and every profiles/*.toml set only
//! settings the code reads; each row's default is what wrangler.toml ships and
//! its profiles column is what profiles/*.toml set.
//!
//! The list of settings comes from the code itself: a source file that takes
//! the settings lookup (its non-test code names the lookup's type,
//! `Fn(&str) -> Option<String>`, as `Config::from_lookup` and its helpers do)
//! reads a setting with every string literal in it that is a whole
//! UPPER_SNAKE_CASE name; anywhere in src/, `.var("X")` / `.secret("X")` on the
//! Worker's env is a setting too.

use crate::source_scan;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use source_scan::Source;

const DOC: &str = "docs/configuration.md";
const LOOKUP_TYPE: &str = "Fn(&str) -> Option<String>";

fn is_setting_name(s: &str) -> bool {
    s.len() >= 3
        && s.starts_with(|c: char| c.is_ascii_uppercase())
        && s.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// Setting name → where the code reads it first (`file:line`).
fn settings_in_code(sources: &[Source]) -> BTreeMap<String, String> {
    let mut found = BTreeMap::new();
    for src in sources.iter().filter(|s| !s.test_only) {
        let takes_lookup = src.code_text().contains(LOOKUP_TYPE);
        for lit in &src.strings {
            if !is_setting_name(&lit.text) {
                continue;
            }
            let before: String = src.code[..lit.pos.saturating_sub(1)].iter().collect();
            let before = before.trim_end();
            let env_call = [".var(", ".secret(", ".object_var("]
                .iter()
                .any(|c| before.ends_with(c));
            if takes_lookup || env_call {
                found
                    .entry(lit.text.clone())
                    .or_insert_with(|| format!("{}:{}", src.path, lit.line));
            }
        }
    }
    found
}

/// `[vars]` entries of a TOML file: (line, key, value without quotes).
fn vars(text: &str) -> Vec<(usize, String, String)> {
    let mut out = Vec::new();
    let mut in_vars = false;
    for (n, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.starts_with('[') {
            in_vars = t == "[vars]";
            continue;
        }
        if !in_vars || t.is_empty() || t.starts_with('#') {
            continue;
        }
        if let Some((k, v)) = t.split_once('=') {
            out.push((n + 1, k.trim().to_string(), v.trim().trim_matches('"').to_string()));
        }
    }
    out
}

/// A row of the settings tables in docs/configuration.md.
struct Row {
    line: usize,
    name: String,
    default: String,
    /// `profile` → value, from the fourth cell (`` `featureos=300`, `fluxer=300` ``).
    profiles: BTreeMap<String, String>,
}

/// The rows of every table under `## Settings` whose first cell opens with a
/// backticked UPPER_SNAKE_CASE name.
fn doc_rows(text: &str) -> Vec<Row> {
    let mut rows = Vec::new();
    let mut in_settings = false;
    for (n, line) in text.lines().enumerate() {
        if let Some(h) = line.strip_prefix("## ") {
            in_settings = h.trim() == "Settings";
            continue;
        }
        if !in_settings || !line.starts_with("| `") {
            continue;
        }
        let cells: Vec<&str> = line.trim().trim_matches('|').split(" | ").map(str::trim).collect();
        let name = cells[0]
            .trim_start_matches('`')
            .split('`')
            .next()
            .unwrap_or("")
            .to_string();
        if !is_setting_name(&name) {
            continue;
        }
        let profiles = cells
            .get(3)
            .map(|c| {
                c.split(',')
                    .filter_map(|p| p.trim().trim_matches('`').split_once('='))
                    .map(|(p, v)| (p.to_string(), v.to_string()))
                    .collect()
            })
            .unwrap_or_default();
        rows.push(Row {
            line: n + 1,
            name,
            default: cells.get(1).copied().unwrap_or("").to_string(),
            profiles,
        });
    }
    rows
}

struct Inputs {
    /// Setting → where the code reads it.
    code: BTreeMap<String, String>,
    wrangler: String,
    doc: String,
    /// (profile name, file text)
    profiles: Vec<(String, String)>,
}

/// Every disagreement between the code, wrangler.toml, profiles/ and the doc,
/// one line each, with the place to fix.
fn problems(i: &Inputs) -> Vec<String> {
    let mut out = Vec::new();
    let rows = doc_rows(&i.doc);
    let mut documented: BTreeMap<&str, &Row> = BTreeMap::new();
    for r in &rows {
        if let Some(first) = documented.insert(&r.name, r) {
            out.push(format!(
                "{DOC}:{}: `{}` has a second row (the first is line {}); keep one",
                r.line, r.name, first.line
            ));
        }
    }
    let wrangler = vars(&i.wrangler);
    let wrangler_keys: BTreeSet<&str> = wrangler.iter().map(|(_, k, _)| k.as_str()).collect();
    for (name, at) in &i.code {
        if !documented.contains_key(name.as_str()) {
            out.push(format!("{at}: the code reads `{name}`, which has no row in {DOC}"));
        }
    }
    for (line, key, value) in &wrangler {
        if !documented.contains_key(key.as_str()) {
            out.push(format!(
                "wrangler.toml:{line}: `[vars]` sets `{key}`, which has no row in {DOC}"
            ));
        }
        if !i.code.contains_key(key) {
            out.push(format!(
                "wrangler.toml:{line}: `[vars]` sets `{key}`, which the code never reads (a typo, or a setting that was removed)"
            ));
        }
        if let Some(r) = documented.get(key.as_str()) {
            let shipped = if value.is_empty() {
                "empty".to_string()
            } else {
                format!("`{value}`")
            };
            if !r.default.starts_with(&shipped) {
                out.push(format!(
                    "{DOC}:{}: `{key}`'s default reads {:?}, but wrangler.toml:{line} ships {shipped}",
                    r.line, r.default
                ));
            }
        }
    }
    for r in &rows {
        if !i.code.contains_key(&r.name) {
            let also = if wrangler_keys.contains(r.name.as_str()) {
                " (wrangler.toml still sets it)"
            } else {
                ""
            };
            out.push(format!(
                "{DOC}:{}: documents `{}`, which the code never reads{also}: a stale row",
                r.line, r.name
            ));
        }
    }
    for (profile, text) in &i.profiles {
        let file = format!("profiles/{profile}.toml");
        let set = vars(text);
        for (line, key, value) in &set {
            if !i.code.contains_key(key) {
                out.push(format!(
                    "{file}:{line}: sets `{key}`, which is not a setting the code reads"
                ));
                continue;
            }
            match documented.get(key.as_str()).map(|r| (r.line, r.profiles.get(profile))) {
                Some((_, Some(v))) if v == value => {}
                Some((row, shown)) => out.push(format!(
                    "{DOC}:{row}: the profiles column of `{key}` should say `{profile}={value}` ({file}:{line}), it says {}",
                    shown.map_or("nothing for it".to_string(), |v| format!("`{profile}={v}`"))
                )),
                None => {}
            }
        }
        for r in &rows {
            if r.profiles.contains_key(profile) && !set.iter().any(|(_, k, _)| *k == r.name) {
                out.push(format!(
                    "{DOC}:{}: the profiles column of `{}` names `{profile}`, but {file} does not set it",
                    r.line, r.name
                ));
            }
        }
    }
    for r in &rows {
        for p in r.profiles.keys() {
            if !i.profiles.iter().any(|(name, _)| name == p) {
                out.push(format!(
                    "{DOC}:{}: `{}` names profile `{p}`, which profiles/ does not have",
                    r.line, r.name
                ));
            }
        }
    }
    out
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(source_scan::root().join(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
}

fn repository_inputs() -> Inputs {
    let root = source_scan::root();
    let mut profiles: Vec<(String, String)> = std::fs::read_dir(root.join("profiles"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .map(|p| {
            let name = p.file_stem().unwrap().to_string_lossy().to_string();
            (name, std::fs::read_to_string(&p).unwrap())
        })
        .collect();
    profiles.sort();
    Inputs {
        code: settings_in_code(&source_scan::crate_sources()),
        wrangler: read("wrangler.toml"),
        doc: read(DOC),
        profiles,
    }
}

#[test]
fn configuration_doc_matches_the_code_wrangler_toml_and_profiles() {
    let inputs = repository_inputs();
    // The scan must find the settings at all, or every check above is vacuous.
    for known in [
        "ISSUER",
        "ACCESS_TTL_SECONDS",
        "PLATFORM_ADMIN_TOKEN",
        "JWT_SIGNING_KEYS",
        "DCR_SCOPES",
    ] {
        assert!(
            inputs.code.contains_key(known),
            "the settings scan no longer finds {known}: how settings are read changed; teach settings_in_code ({})",
            Path::new(file!()).display()
        );
    }
    let found = problems(&inputs);
    assert!(
        found.is_empty(),
        "\n{} and the code disagree ({} problem{}):\n  {}\n\nThe settings the code reads: {}\n",
        DOC,
        found.len(),
        if found.len() == 1 { "" } else { "s" },
        found.join("\n  "),
        inputs.code.keys().cloned().collect::<Vec<_>>().join(", ")
    );
}

/// The checks fail on each kind of drift (no test that cannot fail).
#[test]
fn each_kind_of_drift_is_reported() {
    let good = Inputs {
        code: [
            ("ISSUER", "src/config/mod.rs:1"),
            ("CODE_TTL_SECONDS", "src/config/mod.rs:2"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
        wrangler: "[vars]\nISSUER = \"\"\nCODE_TTL_SECONDS = \"300\"\n[triggers]\nX = 1\n".into(),
        doc: "## Settings\n\n| setting | default | meaning | profiles |\n|---|---|---|---|\n\
              | `ISSUER` | empty | the issuer |  |\n\
              | `CODE_TTL_SECONDS` | `300` | code lifetime | `slow=900` |\n\n## Configuration profiles\n"
            .into(),
        profiles: vec![("slow".into(), "[vars]\nCODE_TTL_SECONDS = \"900\"\n".into())],
    };
    assert_eq!(problems(&good), Vec::<String>::new());

    let with = |f: &dyn Fn(&mut Inputs)| {
        let mut i = Inputs {
            code: good.code.clone(),
            wrangler: good.wrangler.clone(),
            doc: good.doc.clone(),
            profiles: good.profiles.clone(),
        };
        f(&mut i);
        problems(&i).join("\n")
    };
    let read_not_documented = with(&|i| {
        i.code.insert("NEW_SETTING".into(), "src/config/mod.rs:9".into());
    });
    assert!(read_not_documented.contains("src/config/mod.rs:9: the code reads `NEW_SETTING`, which has no row"));
    let stale = with(&|i| {
        i.doc = i
            .doc
            .replace("| `ISSUER`", "| `OLD_SETTING` | empty | gone |  |\n| `ISSUER`");
    });
    assert!(
        stale.contains("documents `OLD_SETTING`, which the code never reads"),
        "{stale}"
    );
    let bogus_var = with(&|i| i.wrangler = i.wrangler.replace("[triggers]", "BOGUS_KEY = \"1\"\n[triggers]"));
    assert!(
        bogus_var.contains("wrangler.toml:4: `[vars]` sets `BOGUS_KEY`, which has no row"),
        "{bogus_var}"
    );
    assert!(
        bogus_var.contains("`BOGUS_KEY`, which the code never reads"),
        "{bogus_var}"
    );
    let bogus_profile_key = with(&|i| i.profiles[0].1.push_str("BOGUS_KEY = \"1\"\n"));
    assert!(bogus_profile_key.contains("profiles/slow.toml:3: sets `BOGUS_KEY`, which is not a setting"));
    let profile_value = with(&|i| i.profiles[0].1 = i.profiles[0].1.replace("900", "600"));
    assert!(profile_value.contains("should say `slow=600`"), "{profile_value}");
    let default_drift = with(&|i| i.wrangler = i.wrangler.replace("\"300\"", "\"600\""));
    assert!(
        default_drift.contains("default reads \"`300`\", but wrangler.toml:3 ships `600`"),
        "{default_drift}"
    );
}

#[test]
fn the_settings_scan_reads_lookups_and_env_calls_only() {
    let lookup = source_scan::parse(
        "src/config/x.rs",
        "fn parse(get: &impl Fn(&str) -> Option<String>) { num(\"A_KEY\"); let m = \"not a KEY\"; }\n\
         #[cfg(test)]\nmod t { fn f() { get(\"TEST_ONLY\"); } }\n",
    );
    let other = source_scan::parse(
        "src/worker/x.rs",
        "fn f(env: Env) { env.var(\"FROM_ENV\"); env.secret( \"A_SECRET\" ); let m = \"GET\"; env.kv(\"BINDING\"); }\n",
    );
    let found: Vec<String> = settings_in_code(&[lookup, other]).into_keys().collect();
    assert_eq!(found, ["A_KEY", "A_SECRET", "FROM_ENV"]);
}

/// GitHub's anchor for a heading: lowercased, letters, digits, `-` and `_`
/// kept, spaces turned into `-`, everything else dropped.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The anchors of a markdown file's headings (outside code blocks), with
/// GitHub's `-1`, `-2` suffixes for repeats.
fn anchors(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.starts_with("```") {
            fenced = !fenced;
        }
        if fenced || !line.starts_with('#') {
            continue;
        }
        let base = slug(line.trim_start_matches('#'));
        let mut s = base.clone();
        let mut n = 0;
        while !out.insert(s.clone()) {
            n += 1;
            s = format!("{base}-{n}");
        }
    }
    out
}

/// Every relative link of README.md and docs/*.md leads to a file that exists
/// and, when it names one, to a heading of that file: moving a chapter or
/// renaming a heading must carry its links along.
#[test]
fn links_between_the_docs_resolve() {
    let root = source_scan::root();
    let mut files = vec![root.join("README.md")];
    let mut docs: Vec<_> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    let mut broken = Vec::new();
    let mut seen = 0;
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let rel = file.strip_prefix(&root).unwrap().display().to_string();
        for (n, line) in text.lines().enumerate() {
            let mut rest = line;
            while let Some(i) = rest.find("](") {
                let after = &rest[i + 2..];
                let Some(end) = after.find(')') else { break };
                let target = &after[..end];
                rest = &after[end..];
                if target.contains("://") || target.starts_with("mailto:") {
                    continue;
                }
                seen += 1;
                let (path, anchor) = target.split_once('#').unwrap_or((target, ""));
                let dest = if path.is_empty() {
                    file.clone()
                } else {
                    file.parent().unwrap().join(path)
                };
                let at = format!("{rel}:{}: [{target}]", n + 1);
                let Ok(dest_text) = std::fs::read_to_string(&dest) else {
                    broken.push(format!("{at}: no file {}", dest.display()));
                    continue;
                };
                if !anchor.is_empty() && !anchors(&dest_text).contains(anchor) {
                    broken.push(format!("{at}: no heading with the anchor #{anchor} in {path}"));
                }
            }
        }
    }
    assert!(
        seen > 20,
        "found only {seen} relative links: is the link scan still reading the docs?"
    );
    assert!(
        broken.is_empty(),
        "\nbroken links in the docs:\n  {}\n",
        broken.join("\n  ")
    );
    assert_eq!(
        slug("Azure DevOps compatibility (`AZURE_DEVOPS_COMPAT`)"),
        "azure-devops-compatibility-azure_devops_compat"
    );
}
