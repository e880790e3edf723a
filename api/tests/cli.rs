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

/// `key list`'s lines, by key id.
fn listed(db: &std::path::Path) -> std::collections::HashMap<String, serde_json::Value> {
    let out = bookhub(db).args(["key", "list"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(!stdout.contains("bkh_"), "a listing never shows a key: {stdout}");
    stdout
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
        .map(|key| (key["id"].as_str().unwrap().to_owned(), key))
        .collect()
}

#[test]
fn keys_are_listed_revoked_and_rotated_with_a_grace() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("b.db");
    let agency = json_out(bookhub(&db).args(["agency", "create", "--name", "Viajes Sol"]));
    let agency_id = agency["agency_id"].as_str().unwrap();
    let created = json_out(bookhub(&db).args([
        "key",
        "create",
        "--role",
        "agency",
        "--agency",
        agency_id,
        "--label",
        "booking engine",
        "--expires-in",
        "90d",
    ]));
    let id = created["id"].as_str().unwrap().to_owned();
    let staff = json_out(bookhub(&db).args(["key", "create", "--role", "staff"]));
    let staff_id = staff["id"].as_str().unwrap().to_owned();

    let keys = listed(&db);
    assert_eq!(keys.len(), 3, "{keys:?}");
    let key = &keys[&id];
    assert_eq!((key["role"].as_str(), key["agency"].as_str()), (Some("agency"), Some(agency_id)));
    assert_eq!(key["label"], "booking engine");
    let expires = chrono::DateTime::parse_from_rfc3339(key["expires_at"].as_str().unwrap()).unwrap();
    let lifetime = expires.with_timezone(&chrono::Utc) - chrono::Utc::now();
    assert!((89..=90).contains(&lifetime.num_days()), "{lifetime}");
    assert!(key["revoked_at"].is_null() && key["last_used_at"].is_null() && key["created_at"].is_string());

    let rotated = json_out(bookhub(&db).args(["key", "rotate", &id, "--grace", "7d"]));
    assert!(rotated["api_key"].as_str().unwrap().starts_with("bkh_"));
    let keys = listed(&db);
    let (old, new) = (&keys[&id], &keys[rotated["id"].as_str().unwrap()]);
    assert_eq!((&new["role"], &new["agency"], &new["label"]), (&old["role"], &old["agency"], &old["label"]));
    let grace_ends = chrono::DateTime::parse_from_rfc3339(old["expires_at"].as_str().unwrap()).unwrap();
    let grace = grace_ends.with_timezone(&chrono::Utc) - chrono::Utc::now();
    assert!((6..=7).contains(&grace.num_days()), "the old key expires after the grace: {grace}");
    let twice = bookhub(&db).args(["key", "rotate", &id]).output().unwrap();
    assert!(!twice.status.success(), "a key has one successor");
    assert!(String::from_utf8_lossy(&twice.stderr).contains("already rotated"));
    let forever =
        bookhub(&db).args(["key", "create", "--role", "staff", "--expires-in", "99999days"]).output().unwrap();
    assert!(!forever.status.success(), "at most 10 years");

    let revoked = json_out(bookhub(&db).args(["key", "revoke", &staff_id]));
    assert!(revoked["revoked_at"].is_string());
    assert!(listed(&db)[&staff_id]["revoked_at"].is_string());
    assert!(!bookhub(&db).args(["key", "rotate", &staff_id]).output().unwrap().status.success());
    assert!(!bookhub(&db).args(["key", "revoke", "key_nope"]).output().unwrap().status.success());
}
