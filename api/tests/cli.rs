//! The `bookhub` binary as an operator uses it.

use std::process::Command;

fn bookhub(db: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_bookhub"));
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .current_dir(db.parent().unwrap())
        .env("BOOKHUB_DATABASE_URL", format!("sqlite://{}?mode=rwc", db.display()));
    command
}

fn json_out(command: &mut Command) -> serde_json::Value {
    let out = command.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn a_bad_setting_exits_2_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let out =
        bookhub(&dir.path().join("b.db")).env("BOOKHUB_LISTEN", "not-an-address").arg("migrate").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("BOOKHUB_LISTEN"), "{stderr}");
}

#[test]
fn a_config_file_is_read_and_the_environment_wins() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("b.db");
    std::fs::write(dir.path().join("bookhub.toml"), "body_limit_bytes = \"lots\"\n").unwrap();
    let out = bookhub(&db).arg("migrate").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("BOOKHUB_BODY_LIMIT_BYTES"));

    let fixed = bookhub(&db).env("BOOKHUB_BODY_LIMIT_BYTES", "4096").arg("migrate").output().unwrap();
    assert!(fixed.status.success(), "{}", String::from_utf8_lossy(&fixed.stderr));

    let missing = bookhub(&db).env("BOOKHUB_CONFIG", dir.path().join("nowhere.toml")).arg("migrate").output().unwrap();
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("BOOKHUB_CONFIG"));
}

#[test]
fn agencies_and_keys_are_created_and_keys_are_stored_only_as_hashes() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("b.db");

    let agency =
        json_out(bookhub(&db).args(["agency", "create", "--name", "Viajes Sol", "--email", "ops@sol.example"]));
    let agency_id = agency["agency_id"].as_str().unwrap();
    let agency_key = agency["api_key"].as_str().unwrap();
    assert!(agency_id.starts_with("ag_"));
    assert!(agency_key.starts_with("bkh_") && agency_key.len() >= 4 + 43, "256 random bits");

    let staff = json_out(bookhub(&db).args(["key", "create", "--role", "staff"]));
    let second = json_out(bookhub(&db).args(["key", "create", "--role", "agency", "--agency", agency_id]));
    assert_ne!(staff["api_key"], second["api_key"]);

    let stored = std::fs::read(&db).unwrap();
    for key in [agency_key, staff["api_key"].as_str().unwrap()] {
        let plain = key.as_bytes();
        assert!(!stored.windows(plain.len()).any(|w| w == plain), "a key is stored in the clear");
        let hash = bookhub_api::auth::hash_key(key);
        assert!(stored.windows(hash.len()).any(|w| w == hash.as_bytes()), "its hash is stored");
    }

    let refused = bookhub(&db).args(["key", "create", "--role", "agency"]).output().unwrap();
    assert!(!refused.status.success());
}

#[test]
fn rust_log_bookhub_debug_shows_bookhubs_own_debug_lines() {
    let dir = tempfile::tempdir().unwrap();
    let out = bookhub(&dir.path().join("b.db")).env("RUST_LOG", "bookhub=debug").arg("migrate").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.lines().any(|l| l.contains("DEBUG") && l.contains("bookhub_adapters::store")),
        "the store's debug line is missing:\n{stderr}"
    );
}
