//! Every native integration test in one binary: one link instead of one per
//! file, which was most of `cargo test`'s build time. Each file is a module;
//! run one with `cargo test --test suite <file>::`.

mod common;
mod source_scan;

mod architecture;
mod assertion_grant;
mod bearer_modes;
mod configuration_docs;
mod discovery_copies;
mod dynamic_registration;
mod fapi2_profile;
mod flow;
mod hardening_ops;
mod jwt_access_tokens;
mod metadata_documents;
mod oidc_logout;
mod oidc_tokens;
mod platform;
mod provisioning;
mod pushed_requests;
mod review_issue15_cimd;
mod storage_conformance;

/// `autotests = false` means a tests/*.rs file missing above would never be
/// compiled, let alone run: every file must be a module here.
#[test]
fn every_test_file_is_in_the_suite() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let suite = std::fs::read_to_string(dir.join("suite.rs")).unwrap();
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let is_rust = path.extension().is_some_and(|e| e == "rs");
        if is_rust && name != "suite" && !suite.contains(&format!("\nmod {name};\n")) {
            missing.push(name);
        }
    }
    assert!(missing.is_empty(), "add `mod NAME;` to tests/suite.rs for: {missing:?}");
}
