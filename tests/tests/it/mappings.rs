//! The mapping tables' staff API: rows, CSV export and all-or-nothing import with a dry run,
//! the audit, the unmapped codes and their reprocessing, and another process using an edit
//! within 2 s.

use std::time::{Duration, Instant};

use adapters::store::api_keys::{NewKey, Role};
use bookhub_tests::{Backend, TestApp, eventually, postgres_available_or_skip, problem};
use reqwest::Response;
use serde_json::{Value, json};

use crate::webhooks::{deliver, event, pending_booking, processed, start};

const TABLE: &str = "/v1/mappings/sandbox/room_type";

/// A staff key with a label, and its id.
async fn labelled_staff(app: &TestApp, label: &str) -> (String, String) {
    let new = NewKey { role: Role::Staff, agency_id: None, label: Some(label), expires_at: None };
    let (key, record) = api::auth::issue(&app.db, &new).await.unwrap();
    (key, record.id.to_string())
}

async fn put_row(app: &TestApp, key: &str, code: &str, body: Value) -> Response {
    app.client.put(app.url(&format!("{TABLE}/{code}"))).bearer_auth(key).json(&body).send().await.unwrap()
}

async fn export(app: &TestApp, key: &str, table: &str) -> String {
    let answer = app.get(key, &format!("{table}.csv")).send().await.unwrap();
    assert_eq!(answer.status(), 200);
    assert!(answer.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    answer.text().await.unwrap()
}

async fn import(app: &TestApp, key: &str, table: &str, csv: impl Into<reqwest::Body>, dry_run: bool) -> Response {
    let url = app.url(&format!("{table}.csv?dry_run={dry_run}"));
    app.client.put(url).bearer_auth(key).header("content-type", "text/csv").body(csv).send().await.unwrap()
}

async fn audit(app: &TestApp, key: &str) -> Vec<Value> {
    app.get_json(key, &format!("{TABLE}/audit?limit=100")).await["data"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_create_read_change_and_delete_a_row() {
    let app = TestApp::spawn().await;
    let staff = app.key(Role::Staff).await;

    let tables = app.get_json(&staff, "/v1/mappings").await;
    let room_types =
        tables["data"].as_array().unwrap().iter().find(|t| t["supplier"] == "sandbox" && t["kind"] == "room_type");
    assert_eq!(room_types.unwrap()["rows"], 7, "the seeds: {tables}");

    let created =
        put_row(&app, &staff, "DBL.SEA", json!({"bookhub_code": "DBL", "description": "Double, sea view"})).await;
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();
    assert_eq!(
        (created["active"].clone(), created["outbound"].clone()),
        (json!(true), json!(false)),
        "DBL keeps its outbound row"
    );
    assert_eq!(app.get_json(&staff, &format!("{TABLE}/DBL.SEA")).await["description"], "Double, sea view");

    let changed = put_row(&app, &staff, "DBL.SEA", json!({"bookhub_code": "DBL_SUP", "active": false})).await;
    assert_eq!(changed.status(), 200);
    let row = app.get_json(&staff, &format!("{TABLE}/DBL.SEA")).await;
    assert_eq!(
        (row["bookhub_code"].clone(), row["active"].clone(), row["description"].clone()),
        (json!("DBL_SUP"), json!(false), json!(""))
    );
    let rows = app.get_json(&staff, TABLE).await["data"].as_array().unwrap().clone();
    assert_eq!(rows.len(), 8);
    assert!(rows.windows(2).all(|w| w[0]["supplier_code"].as_str() < w[1]["supplier_code"].as_str()), "code order");

    let deleted = app.client.delete(app.url(&format!("{TABLE}/DBL.SEA"))).bearer_auth(&staff).send().await.unwrap();
    assert_eq!(deleted.status(), 200);
    problem(app.get(&staff, &format!("{TABLE}/DBL.SEA")).send().await.unwrap(), 404).await;
    problem(app.client.delete(app.url(&format!("{TABLE}/DBL.SEA"))).bearer_auth(&staff).send().await.unwrap(), 404)
        .await;

    // Bad bodies are field errors; unknown tables are 404; agencies are refused.
    let bad = put_row(&app, &staff, "X", json!({"bookhub_code": "PENTHOUSE", "description": "d".repeat(501)})).await;
    let fields: Vec<_> =
        problem(bad, 422).await["errors"].as_array().unwrap().iter().map(|e| e["field"].clone()).collect();
    assert_eq!(fields, [json!("bookhub_code"), json!("description")]);
    let inactive_outbound =
        put_row(&app, &staff, "X", json!({"bookhub_code": "DBL", "active": false, "outbound": true})).await;
    assert_eq!(problem(inactive_outbound, 422).await["errors"][0]["code"], "inactive_outbound");
    for path in ["/v1/mappings/nowhere/room_type/X", "/v1/mappings/sandbox/colour/X"] {
        let answer =
            app.client.put(app.url(path)).bearer_auth(&staff).json(&json!({"bookhub_code": "DBL"})).send().await;
        problem(answer.unwrap(), 404).await;
        problem(app.get(&staff, &format!("{}.csv", path.rsplit_once('/').unwrap().0)).send().await.unwrap(), 404).await;
    }
    let (_, agency) = app.agency("Viajes Sol").await;
    problem(app.get(&agency, TABLE).send().await.unwrap(), 403).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_outbound_row_for_one_code_is_refused_with_409_and_a_duplicate_csv_row_with_422() {
    let app = TestApp::spawn().await;
    let staff = app.key(Role::Staff).await;
    let before = export(&app, &staff, TABLE).await;

    let twice =
        problem(put_row(&app, &staff, "DBL.SEA", json!({"bookhub_code": "DBL", "outbound": true})).await, 409).await;
    assert_eq!(twice["code"], "outbound_conflict");
    assert!(twice["detail"].as_str().unwrap().contains("DBL, DBL.SEA"), "{twice}");

    // Two rows for DBL, then deleting the outbound one would leave two and no choice.
    assert_eq!(put_row(&app, &staff, "DBL.SEA", json!({"bookhub_code": "DBL"})).await.status(), 201);
    assert_eq!(put_row(&app, &staff, "DBL.POOL", json!({"bookhub_code": "DBL"})).await.status(), 201);
    let ambiguous = app.client.delete(app.url(&format!("{TABLE}/DBL"))).bearer_auth(&staff).send().await.unwrap();
    assert!(problem(ambiguous, 409).await["detail"].as_str().unwrap().contains("DBL.POOL, DBL.SEA"));
    // Moving the choice is one import: the file says which row is outbound.
    let moved = export(&app, &staff, TABLE)
        .await
        .replace("DBL,DBL,Double,true,true", "DBL,DBL,Double,true,false")
        .replace("DBL.SEA,DBL,,true,false", "DBL.SEA,DBL,,true,true");
    let report: Value = import(&app, &staff, TABLE, moved, false).await.json().await.unwrap();
    assert_eq!(report["changed"].as_array().unwrap().len(), 2, "{report}");
    assert!(app.get_json(&staff, &format!("{TABLE}/DBL.SEA")).await["outbound"].as_bool().unwrap());

    let duplicate = format!("{before}DBL,DBL,again,true,false\n");
    let answer = problem(import(&app, &staff, TABLE, duplicate, false).await, 422).await;
    assert_eq!(answer["row_errors"][0]["code"], "duplicate_code");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_imported_back_is_the_identity_and_a_dry_run_changes_nothing() {
    let app = TestApp::spawn().await;
    let staff = app.key(Role::Staff).await;
    put_row(&app, &staff, "DBL.SEA", json!({"bookhub_code": "DBL", "description": "Sea, \"view\"; wide"})).await;
    let exported = export(&app, &staff, TABLE).await;
    let audited = audit(&app, &staff).await.len();

    let report: Value = import(&app, &staff, TABLE, exported.clone(), false).await.json().await.unwrap();
    assert_eq!(
        (report["added"].clone(), report["changed"].clone(), report["removed"].clone()),
        (json!([]), json!([]), json!([]))
    );
    assert_eq!(report["unchanged"], 8);
    assert_eq!(export(&app, &staff, TABLE).await, exported, "byte for byte");
    assert_eq!(audit(&app, &staff).await.len(), audited, "no change, no audit");

    // One addition, one change, one removal: listed by the dry run, written by nothing.
    let edited = exported.replace("SGL,SGL,Single,true,true\n", "").replace("TWN,TWN,Twin,", "TWN,TWN,Twin beds,")
        + "FAM.XL,FAM,Family XL,true,\n";
    let dry = import(&app, &staff, TABLE, edited.clone(), true).await;
    assert_eq!(dry.status(), 200);
    let dry: Value = dry.json().await.unwrap();
    assert_eq!(dry["dry_run"], true);
    assert_eq!(dry["added"][0]["supplier_code"], "FAM.XL");
    assert_eq!(
        (dry["changed"][0]["before"]["description"].clone(), dry["changed"][0]["after"]["description"].clone()),
        (json!("Twin"), json!("Twin beds"))
    );
    assert_eq!(dry["removed"][0]["supplier_code"], "SGL");
    assert_eq!(export(&app, &staff, TABLE).await, exported, "the dry run wrote nothing");
    assert_eq!(audit(&app, &staff).await.len(), audited);

    let applied: Value = import(&app, &staff, TABLE, edited, false).await.json().await.unwrap();
    assert_eq!((applied["dry_run"].clone(), applied["changed"].clone()), (json!(false), dry["changed"].clone()));
    let now = export(&app, &staff, TABLE).await;
    assert!(
        now.contains("FAM.XL,FAM,Family XL,true,false") && now.contains("Twin beds") && !now.contains("SGL,SGL"),
        "{now}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_csv_gets_row_level_errors_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let staff = app.key(Role::Staff).await;
    let before = export(&app, &staff, TABLE).await;
    let header = "supplier_code,bookhub_code,description,active\n";
    let cases: Vec<(&str, Vec<u8>, Value)> = vec![
        (
            "unknown bookhub code",
            format!("{header}DBL,DBL,,true\nPH,PENTHOUSE,,true\n").into_bytes(),
            json!([3, "bookhub_code", "unknown_code"]),
        ),
        (
            "duplicate supplier code",
            format!("{header}DBL,DBL,,true\nDBL,SGL,,true\n").into_bytes(),
            json!([3, "supplier_code", "duplicate_code"]),
        ),
        (
            "missing column",
            b"supplier_code,bookhub_code,description\nDBL,DBL,\n".to_vec(),
            json!([1, "active", "missing_column"]),
        ),
        (
            "bad UTF-8",
            [header.as_bytes(), b"DBL,DBL,Doppelzimmer \xfc\xfc,true\n"].concat(),
            json!([2, "description", "not_utf8"]),
        ),
    ];
    for (case, csv, expected) in cases {
        let answer = problem(import(&app, &staff, TABLE, csv, false).await, 422).await;
        assert_eq!(answer["code"], "invalid_csv", "{case}");
        let first = &answer["row_errors"][0];
        assert_eq!(json!([first["row"], first["column"], first["code"]]), expected, "{case}: {answer}");
        assert_eq!(export(&app, &staff, TABLE).await, before, "{case}: nothing changed");
    }
    let not_csv = app.client.put(app.url(&format!("{TABLE}.csv"))).bearer_auth(&staff).json(&json!({})).send().await;
    problem(not_csv.unwrap(), 415).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_lists_every_change_with_who_when_and_through_what() {
    let app = TestApp::spawn().await;
    let (ana, ana_id) = labelled_staff(&app, "Ana (ops)").await;
    let (bo, bo_id) = labelled_staff(&app, "Bo (night shift)").await;
    let seeded = audit(&app, &ana).await;
    assert!(seeded.iter().all(|e| e["via"] == "seed" && e["action"] == "created" && e["key_id"].is_null()));

    put_row(&app, &ana, "DBL.SEA", json!({"bookhub_code": "DBL"})).await;
    put_row(&app, &bo, "DBL.SEA", json!({"bookhub_code": "DBL", "description": "Sea view"})).await;
    let csv = export(&app, &bo, TABLE).await.replace("JSU,JSU,Junior suite,true,true\n", "");
    import(&app, &bo, TABLE, csv, false).await;
    app.client.delete(app.url(&format!("{TABLE}/DBL.SEA"))).bearer_auth(&ana).send().await.unwrap();

    let entries = audit(&app, &ana).await;
    let newest: Vec<_> = entries[..4]
        .iter()
        .map(|e| {
            (
                e["supplier_code"].as_str().unwrap(),
                e["action"].as_str().unwrap(),
                e["via"].as_str().unwrap(),
                e["key_id"].as_str().unwrap(),
                e["key_label"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        newest,
        [
            ("DBL.SEA", "deleted", "api", ana_id.as_str(), "Ana (ops)"),
            ("JSU", "deleted", "api_csv_import", bo_id.as_str(), "Bo (night shift)"),
            ("DBL.SEA", "updated", "api", bo_id.as_str(), "Bo (night shift)"),
            ("DBL.SEA", "created", "api", ana_id.as_str(), "Ana (ops)"),
        ]
    );
    assert_eq!(
        (entries[2]["before"]["description"].clone(), entries[2]["after"]["description"].clone()),
        (json!(""), json!("Sea view"))
    );
    assert!(entries[0]["after"].is_null() && entries[3]["before"].is_null());
    assert!(entries.windows(2).all(|w| w[0]["at"].as_str() >= w[1]["at"].as_str()), "newest first");
    assert_eq!(entries.len(), seeded.len() + 4);
    let row = app.get_json(&bo, &format!("{TABLE}/DBL")).await;
    assert!(row["updated_by"].is_null(), "a seeded row names no key: {row}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unmapped_codes_are_listed_and_an_import_that_maps_them_reprocesses_their_messages() {
    let (_sim, app) = start().await;
    let (_, key) = app.agency("Viajes Sol").await;
    let staff = app.key(Role::Staff).await;
    let booking = pending_booking(&app, &key).await;
    let body = event("evt_view", "booking.confirmed", &booking, "CNF").replace("DBL.ST", "DBL.VISTA");
    assert_eq!(deliver(&app, "evt_view", &body).await.status(), 200);
    assert_eq!(processed(&app, &staff, "evt_view").await["status"], "needs_mapping");

    let unmapped = app.get_json(&staff, "/v1/mappings/unmapped").await["data"].clone();
    assert_eq!(unmapped.as_array().unwrap().len(), 1, "{unmapped}");
    let code = &unmapped[0];
    assert_eq!(
        (code["supplier"].clone(), code["kind"].clone(), code["code"].clone(), code["waiting"].clone()),
        (json!("jsonrest"), json!("room_type"), json!("DBL.VISTA"), json!(1))
    );
    let tables = app.get_json(&staff, "/v1/mappings").await["data"].clone();
    let table = tables
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["supplier"] == "jsonrest" && t["kind"] == "room_type")
        .unwrap()
        .clone();
    assert_eq!((table["unmapped_codes"].clone(), table["waiting_messages"].clone()), (json!(1), json!(1)));

    let jsonrest = "/v1/mappings/jsonrest/room_type";
    let csv = export(&app, &staff, jsonrest).await + "DBL.VISTA,DBL,Double with a view,true,\n";
    let report: Value = import(&app, &staff, jsonrest, csv, false).await.json().await.unwrap();
    assert_eq!(report["requeued_events"], 1);
    app.wait_for_status(&key, &booking, "confirmed", Duration::from_secs(20)).await;
    eventually(Duration::from_secs(10), || async {
        let left = app.get_json(&staff, "/v1/mappings/unmapped").await["data"].clone();
        if left == json!([]) { Ok(()) } else { Err(left.to_string()) }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_made_through_one_process_is_used_by_another_within_two_seconds() {
    if !postgres_available_or_skip("a_change_made_through_one_process_is_used_by_another_within_two_seconds") {
        return;
    }
    let a = TestApp::spawn_with(Backend::Postgres, bookhub_tests::no_workers).await;
    let staff = a.key(Role::Staff).await;
    let mut settings = bookhub_tests::test_settings(&a.database_url);
    bookhub_tests::no_workers(&mut settings);
    let b = api::Application::build(settings).await.unwrap();
    let b_mappings = b.jobs().mappings.clone();
    tokio::spawn(b.run_until_stopped());
    let sandbox = "sandbox".parse().unwrap();

    // B has read the table and caches it: CNF is confirmed, OK is unknown.
    let cached = b_mappings.translator(&sandbox).await.unwrap();
    assert!(cached.status("OK").is_err());
    let table = "/v1/mappings/sandbox/status";
    let put =
        a.client.put(a.url(&format!("{table}/OK"))).bearer_auth(&staff).json(&json!({"bookhub_code": "confirmed"}));
    assert_eq!(put.send().await.unwrap().status(), 201);
    let changed = Instant::now();
    eventually(Duration::from_secs(2), || async {
        let translator = b_mappings.translator(&sandbox).await.unwrap();
        translator.status("OK").map_err(|e| e.to_string())
    })
    .await;
    let seen_after = changed.elapsed();
    assert!(seen_after < Duration::from_secs(2), "B used the change after {seen_after:?}");
    // A change B has cached too: CNF switched off is unmapped in B as well.
    let off = a
        .client
        .put(a.url(&format!("{table}/CNF")))
        .bearer_auth(&staff)
        .json(&json!({"bookhub_code": "confirmed", "active": false}));
    assert_eq!(off.send().await.unwrap().status(), 200);
    eventually(Duration::from_secs(2), || async {
        let translator = b_mappings.translator(&sandbox).await.unwrap();
        if translator.status("CNF").is_err() { Ok(()) } else { Err("CNF still maps in B".to_owned()) }
    })
    .await;
}

/// A table of 12,000 rows, replaced by a file that changes every row: past every statement
/// chunk (500 rows written, 10,000 codes deleted at a time) on both databases.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_of_twelve_thousand_rows_replaces_a_table_of_as_many() {
    let app = TestApp::spawn().await;
    let staff = app.key(Role::Staff).await;
    let csv = |tag: &str| {
        let mut csv = String::from("supplier_code,bookhub_code,description,active,outbound\n");
        for i in 0..12_000 {
            let bookhub = ["SGL", "DBL", "TWN", "TPL"][i % 4];
            csv += &format!("RT{i:05},{bookhub},Room {i} {tag},true,{}\n", i < 4);
        }
        csv
    };
    let first: Value = import(&app, &staff, TABLE, csv("a"), false).await.json().await.unwrap();
    assert_eq!((first["added"].as_array().unwrap().len(), first["removed"].as_array().unwrap().len()), (12_000, 7));
    let second: Value = import(&app, &staff, TABLE, csv("b"), false).await.json().await.unwrap();
    assert_eq!((second["changed"].as_array().unwrap().len(), second["unchanged"].clone()), (12_000, json!(0)));
    assert_eq!(export(&app, &staff, TABLE).await, csv("b"), "the table is the second file");
}
