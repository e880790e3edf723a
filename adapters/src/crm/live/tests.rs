use std::time::Duration;

use tempfile::TempDir;
use test_support::eventually;

use super::*;

const WAIT: Duration = Duration::from_secs(10);

/// A directory holding `crm-mapping.toml` with `text` (none when `None`).
fn dir_with(text: Option<&str>) -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crm-mapping.toml");
    if let Some(text) = text {
        std::fs::write(&path, text).unwrap();
    }
    (dir, path)
}

fn shipped() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../crm-mapping.toml")).unwrap()
}

/// The shipped file with the agency's CRM field renamed to `name`.
fn renamed_agency(name: &str) -> String {
    shipped().replace("name = \"Agencia\"", &format!("name = {name:?}"))
}

fn names(live: &LiveMapping) -> Vec<String> {
    live.current().describe().fields.iter().map(|f| f.name.clone()).collect()
}

/// Waits until the mapping in use has a field called `name`.
async fn until_field(live: &LiveMapping, name: &str) {
    eventually(WAIT, || async {
        let now = names(live);
        if now.iter().any(|n| n == name) { Ok(()) } else { Err(format!("fields still {now:?}")) }
    })
    .await
}

#[test]
fn a_missing_file_gives_the_builtin_and_reloading_it_changes_nothing() {
    let (_dir, path) = dir_with(None);
    let live = LiveMapping::load(&path).unwrap();
    let status = live.status();
    assert_eq!(status.origin, Origin::Builtin);
    assert_eq!(status.fields, CrmMapping::builtin().describe().fields);
    live.reload().unwrap();
    assert_eq!(live.status(), status, "still the builtin, no error, same load time");
}

#[test]
fn a_bad_file_at_start_up_is_an_error_naming_the_problem() {
    let (_dir, path) = dir_with(Some(&shipped().replace("\"America/Caracas\"", "\"America/Carakas\"")));
    let error = LiveMapping::load(&path).unwrap_err();
    assert!(error.to_string().starts_with("time_zone: \"America/Carakas\" is not an IANA time zone name"), "{error}");
}

#[test]
fn reload_takes_a_good_file_and_keeps_the_previous_mapping_over_a_bad_one() {
    let (_dir, path) = dir_with(Some(&shipped()));
    let live = LiveMapping::load(&path).unwrap();
    let first = live.status();
    assert_eq!((first.origin, first.last_error.as_ref()), (Origin::File, None));

    std::fs::write(&path, shipped().replace("rule = \"email\"", "rule = \"emial\"")).unwrap();
    let error = live.reload().unwrap_err();
    let status = live.status();
    assert_eq!(status.fields, first.fields, "the previous mapping stays");
    assert_eq!(status.loaded_at, first.loaded_at);
    let last_error = status.last_error.expect("the refusal is recorded");
    assert_eq!(last_error.message, error.to_string());
    let expected = "[[field]] #1 (\"ContactEmail\"), rule: unknown CRM mapping rule \"emial\"";
    assert!(last_error.message.starts_with(expected), "{}", last_error.message);
    let json = serde_json::to_value(live.status()).unwrap();
    assert_eq!(json["last_error"]["message"], last_error.message.as_str());
    assert_eq!(json["origin"], "file");

    std::fs::write(&path, renamed_agency("NombreAgencia")).unwrap();
    live.reload().unwrap();
    assert!(names(&live).contains(&"NombreAgencia".to_owned()));
    assert_eq!(live.status().last_error, None, "a good file clears the refusal");

    std::fs::remove_file(&path).unwrap();
    assert!(live.reload().is_err(), "a file in use that disappears is refused");
    assert!(names(&live).contains(&"NombreAgencia".to_owned()));
}

#[tokio::test]
async fn a_saved_file_is_picked_up_whether_written_in_place_or_renamed_over() {
    let (dir, path) = dir_with(Some(&shipped()));
    let live = LiveMapping::load(&path).unwrap();
    let _watch = live.watch();

    std::fs::write(&path, renamed_agency("NombreAgencia")).unwrap();
    until_field(&live, "NombreAgencia").await;

    let staged = dir.path().join(".crm-mapping.toml.swp");
    std::fs::write(&staged, renamed_agency("AgenciaViajes")).unwrap();
    std::fs::rename(&staged, &path).unwrap();
    until_field(&live, "AgenciaViajes").await;
}

#[tokio::test]
async fn a_broken_file_keeps_the_previous_mapping_and_status_says_why() {
    let (_dir, path) = dir_with(Some(&shipped()));
    let live = LiveMapping::load(&path).unwrap();
    let _watch = live.watch();

    std::fs::write(&path, shipped().replace("table = { RO", "tabel = { RO")).unwrap();
    let last_error =
        eventually(WAIT, || async { live.status().last_error.ok_or_else(|| "no refusal recorded yet".to_owned()) })
            .await;
    assert!(last_error.message.contains("unknown field `tabel`"), "{}", last_error.message);
    assert_eq!(live.current().describe(), CrmMapping::builtin().describe(), "the shipped mapping is still in use");
}

#[tokio::test]
async fn sighup_reloads_the_file() {
    let (_dir, path) = dir_with(Some(&shipped()));
    let live = LiveMapping::load(&path).unwrap();
    // Changed before the watcher starts, so only the signal can bring it in.
    std::fs::write(&path, renamed_agency("AgenciaHup")).unwrap();
    let _watch = live.watch();
    assert!(!names(&live).contains(&"AgenciaHup".to_owned()));

    // `watch` installed the handler, so the signal cannot end the test process.
    let sent = std::process::Command::new("sh").arg("-c").arg(format!("kill -HUP {}", std::process::id())).status();
    assert!(sent.unwrap().success());
    until_field(&live, "AgenciaHup").await;
}
