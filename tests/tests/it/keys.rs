//! API key lifecycle across processes (revoke, expire, rotate), the expiry warning header, the
//! failed-authentication limiter and the cache of unknown keys, the readiness cache, and a
//! staff cancel that records who made it.

use std::time::Duration;

use adapters::store::Pool;
use adapters::store::api_keys::{self, NewKey, Role};
use bookhub_tests::{TestApp, booking_body, eventually, no_workers, problem};
use serde_json::{Value, json};

/// A second bookhub process on `app`'s database, with its own caches; its base URL.
async fn second_process(app: &TestApp) -> String {
    let second = api::Application::build(api::Settings {
        database_url: app.database_url.parse().expect("the test database URL"),
        listen: ([127, 0, 0, 1], 0).into(),
        jobs: api::config::JobSettings { enabled: false, ..api::Settings::default().jobs },
        ..api::Settings::default()
    })
    .await
    .expect("the second process builds");
    let url = format!("http://127.0.0.1:{}", second.port());
    tokio::spawn(second.run_until_stopped());
    url
}

/// `GET base/v1/bookings` as `key`: its status and body.
async fn bookings_as(app: &TestApp, base: &str, key: &str) -> (u16, Value) {
    let response = app.client.get(format!("{base}/v1/bookings")).bearer_auth(key).send().await.expect("answered");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Waits until `key` gets `status` (and, for a problem, `code`) from the process at `base`.
async fn until_answered(app: &TestApp, base: &str, key: &str, status: u16, code: Option<&str>) {
    eventually(Duration::from_secs(10), || async {
        let (got, body) = bookings_as(app, base, key).await;
        if got == status && code.is_none_or(|c| body["code"] == c) { Ok(()) } else { Err(format!("{got}: {body}")) }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_key_is_refused_by_every_process_within_seconds() {
    let app = TestApp::spawn_with(bookhub_tests::Backend::from_env(), no_workers).await;
    let second = second_process(&app).await;
    let admin = app.key(Role::Admin).await;
    let (_, agency) = app.agency("Viajes Sol").await;
    // Both processes now hold the key in their caches.
    assert_eq!(bookings_as(&app, &app.address, &agency).await.0, 200);
    assert_eq!(bookings_as(&app, &second, &agency).await.0, 200);

    let keys = app.get_json(&admin, "/v1/keys").await;
    let id = keys["data"].as_array().unwrap().iter().find(|k| k["role"] == "agency").unwrap()["id"].clone();
    assert!(keys.to_string().find("bkh_").is_none(), "a listing never shows a secret: {keys}");
    let revoked = app.post(&admin, &format!("/v1/keys/{}/revoke", id.as_str().unwrap())).send().await.unwrap();
    assert_eq!(revoked.status(), 200);
    assert!(revoked.json::<Value>().await.unwrap()["revoked_at"].is_string());

    assert_eq!(bookings_as(&app, &app.address, &agency).await.0, 401, "the revoking process refuses at once");
    let started = std::time::Instant::now();
    until_answered(&app, &second, &agency, 401, Some("unauthorized")).await;
    assert!(started.elapsed() <= Duration::from_secs(6), "took {:?}", started.elapsed());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_key_gets_key_expired_and_a_near_expiry_is_announced() {
    let app = TestApp::spawn_with(bookhub_tests::Backend::from_env(), no_workers).await;
    let admin = app.key(Role::Admin).await;
    let create = |expires_in: &'static str| {
        let request =
            app.post(&admin, "/v1/keys").json(&json!({"role": "staff", "label": "ops", "expires_in": expires_in}));
        async move {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 201);
            response.json::<Value>().await.unwrap()
        }
    };
    let soon = create("10d").await;
    let later = create("30d").await;
    assert_eq!(soon["key"]["label"], "ops");
    let answer = app.get(soon["api_key"].as_str().unwrap(), "/v1/bookings").send().await.unwrap();
    assert_eq!(answer.status(), 200);
    let header = answer.headers()["x-key-expires-at"].to_str().unwrap().to_owned();
    let announced = chrono::DateTime::parse_from_rfc3339(&header).unwrap();
    let expires = chrono::DateTime::parse_from_rfc3339(soon["key"]["expires_at"].as_str().unwrap()).unwrap();
    assert!((announced - expires).num_seconds().abs() <= 1, "{header} vs {expires}");
    let far = app.get(later["api_key"].as_str().unwrap(), "/v1/bookings").send().await.unwrap();
    assert!(far.headers().get("x-key-expires-at").is_none());

    let past = NewKey {
        expires_at: Some(chrono::Utc::now() - chrono::Duration::seconds(1)),
        ..NewKey::new(Role::Staff, None)
    };
    let (expired, _) = api::auth::issue(&app.db, &past).await.unwrap();
    let refused = problem(app.get(&expired, "/v1/bookings").send().await.unwrap(), 401).await;
    assert_eq!(refused["type"], "urn:bookhub:problem:key_expired");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_key_works_during_its_grace_and_not_after_in_every_process() {
    let app = TestApp::spawn_with(bookhub_tests::Backend::from_env(), no_workers).await;
    let second = second_process(&app).await;
    let (_, old) = app.agency("Viajes Sol").await;
    assert_eq!(bookings_as(&app, &second, &old).await.0, 200);

    let rotated = app.post(&old, "/v1/keys/self/rotate?grace=3s").send().await.unwrap();
    assert_eq!(rotated.status(), 200);
    let rotated: Value = rotated.json().await.unwrap();
    let new = rotated["api_key"].as_str().unwrap();
    assert_eq!(rotated["key"]["role"], "agency");
    for base in [&app.address, &second] {
        assert_eq!(bookings_as(&app, base, new).await.0, 200, "the new key works at {base}");
    }
    // Within the grace the old key still works (3 s is far longer than these requests take).
    assert_eq!(bookings_as(&app, &app.address, &old).await.0, 200, "the old key works during the grace");
    for base in [&app.address, &second] {
        until_answered(&app, base, &old, 401, Some("key_expired")).await;
        assert_eq!(bookings_as(&app, base, new).await.0, 200);
    }
    app.stop().await;
}

#[tokio::test]
async fn a_flood_of_unknown_keys_from_one_address_gets_429() {
    let app = TestApp::spawn_with(bookhub_tests::Backend::from_env(), |s| {
        no_workers(s);
        s.rate_limit.failed_auth_per_minute = 1;
        s.rate_limit.failed_auth_burst = 5;
    })
    .await;
    let (_, agency) = app.agency("Viajes Sol").await;
    assert_eq!(bookings_as(&app, &app.address, &agency).await.0, 200);
    for i in 0..5 {
        let (status, _) = bookings_as(&app, &app.address, &format!("bkh_made-up-{i}")).await;
        assert_eq!(status, 401, "attempt {i}");
    }
    let flooded = app.get("bkh_made-up-6", "/v1/bookings").send().await.unwrap();
    assert!(flooded.headers()["retry-after"].to_str().unwrap().parse::<u64>().unwrap() >= 1);
    assert_eq!(problem(flooded, 429).await["code"], "rate_limited");
    // A key this process already knows costs no lookup, so the flood does not lock it out.
    assert_eq!(bookings_as(&app, &app.address, &agency).await.0, 200);
    app.stop().await;
}

#[tokio::test]
async fn an_unknown_key_is_remembered_and_not_looked_up_again_at_once() {
    let app = TestApp::spawn_with(bookhub_tests::Backend::from_env(), |s| {
        no_workers(s);
        s.rate_limit.key_cache_ttl = Duration::from_secs(2);
    })
    .await;
    let key = api::auth::generate_key();
    assert_eq!(bookings_as(&app, &app.address, &key).await.0, 401);
    // The key appears in the database behind the process's back: while the process remembers
    // it as unknown it does not ask the database, so it still refuses it.
    api_keys::create(&app.db, &NewKey::new(Role::Staff, None), &api::auth::hash_key(&key)).await.unwrap();
    assert_eq!(bookings_as(&app, &app.address, &key).await.0, 401, "answered from the cache of unknown keys");
    until_answered(&app, &app.address, &key, 200, None).await;
    app.stop().await;
}

#[tokio::test]
async fn readiness_is_checked_at_most_once_a_second() {
    let app = TestApp::spawn_with(bookhub_tests::Backend::from_env(), no_workers).await;
    let readyz = || async { app.client.get(app.url("/readyz")).send().await.unwrap().status().as_u16() };
    let checked = std::time::Instant::now();
    assert_eq!(readyz().await, 200);
    // A migration goes missing: a fresh check would answer 503.
    let sql = "DELETE FROM seaql_migrations WHERE version = 'm20261202_000020_key_lifecycle'";
    let deleted = match app.db.pool() {
        Pool::Postgres(p) => sqlx::query(sql).execute(p).await.unwrap().rows_affected(),
        Pool::Sqlite(p) => sqlx::query(sql).execute(p).await.unwrap().rows_affected(),
    };
    assert_eq!(deleted, 1);
    let cached = readyz().await;
    if checked.elapsed() < Duration::from_millis(900) {
        assert_eq!(cached, 200, "within a second the last answer is reused");
    }
    eventually(Duration::from_secs(5), || async {
        match readyz().await {
            503 => Ok(()),
            other => Err(format!("still {other}")),
        }
    })
    .await;
    app.stop().await;
}

#[tokio::test]
async fn staff_may_cancel_any_agencys_booking_and_the_booking_says_who_did() {
    let app = TestApp::spawn_with(bookhub_tests::Backend::from_env(), no_workers).await;
    let (_, agency) = app.agency("Viajes Sol").await;
    let (staff, staff_key) = api::auth::issue(&app.db, &NewKey::new(Role::Staff, None)).await.unwrap();
    let theirs = app.booked(&agency, &booking_body()).await["id"].as_str().unwrap().to_owned();
    let own = app.booked(&agency, &booking_body()).await["id"].as_str().unwrap().to_owned();

    let cancelled = app.post(&staff, &format!("/v1/bookings/{theirs}/cancel")).send().await.unwrap();
    assert_eq!(cancelled.status(), 202);
    let expected = json!({"role": "staff", "key_id": staff_key.id.to_string()});
    assert_eq!(cancelled.json::<Value>().await.unwrap()["cancelled_by"], expected);
    assert_eq!(app.get_json(&agency, &format!("/v1/bookings/{theirs}")).await["cancelled_by"], expected);

    let by_agency = app.post(&agency, &format!("/v1/bookings/{own}/cancel")).send().await.unwrap();
    assert_eq!(by_agency.status(), 202);
    assert!(by_agency.json::<Value>().await.unwrap().get("cancelled_by").is_none(), "an agency's own cancel");
    app.stop().await;
}

#[tokio::test]
async fn a_key_has_one_successor_so_a_leaked_key_cannot_mint_more() {
    let app = TestApp::spawn().await;
    let (_, old) = app.agency("Viajes Sol").await;
    let first = app.post(&old, "/v1/keys/self/rotate?grace=1h").send().await.unwrap();
    assert_eq!(first.status(), 200);
    // The old key still works during its grace, but cannot rotate again, nor can two at once.
    let again = problem(app.post(&old, "/v1/keys/self/rotate?grace=30d").send().await.unwrap(), 409).await;
    assert_eq!(again["code"], "not_rotatable");
    let successor: Value = first.json().await.unwrap();
    let successor = successor["api_key"].as_str().unwrap().to_owned();
    let racing = futures::future::join_all((0..4).map(|_| app.post(&successor, "/v1/keys/self/rotate").send())).await;
    let won = racing.iter().filter(|r| r.as_ref().unwrap().status() == 200).count();
    assert_eq!(won, 1, "one of four concurrent rotations wins");
    let admin = app.key(Role::Admin).await;
    let keys = app.get_json(&admin, "/v1/keys?limit=100").await;
    let live = keys["data"].as_array().unwrap().iter().filter(|k| k["role"] == "agency").count();
    assert_eq!(live, 3, "the agency's first key and two successors: {keys}");
}

#[tokio::test]
async fn an_expiry_past_ten_years_is_refused() {
    let app = TestApp::spawn().await;
    let admin = app.key(Role::Admin).await;
    let far = app
        .post(&admin, "/v1/keys")
        .json(&json!({"role": "staff", "expires_at": "+262142-12-31T23:59:59Z"}))
        .send()
        .await
        .unwrap();
    let answer = problem(far, 422).await;
    assert_eq!(answer["errors"][0]["field"], "expires_at", "{answer}");
}
