//! Per-API-key rate limits: headers on every authenticated answer, 429 past the burst.

use bookhub_tests::{Backend, TestApp, problem};

#[tokio::test]
async fn each_key_gets_its_own_burst_then_429_with_retry_after() {
    // One request a minute refills the burst, so nothing refills while the test runs.
    let app = TestApp::spawn_with(Backend::from_env(), |s| {
        s.rate_limit.per_minute = 1;
        s.rate_limit.burst = 3;
    })
    .await;
    let (_, sol) = app.agency("Viajes Sol").await;
    let (_, luna) = app.agency("Viajes Luna").await;

    for remaining in ["2", "1", "0"] {
        let ok = app.get(&sol, "/v1/bookings").send().await.unwrap();
        assert_eq!(ok.status(), 200);
        assert_eq!(ok.headers()["x-ratelimit-limit"], "3");
        assert_eq!(ok.headers()["x-ratelimit-remaining"], remaining);
    }
    let limited = app.get(&sol, "/v1/bookings").send().await.unwrap();
    let retry_after: u64 = limited.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_eq!(limited.headers()["x-ratelimit-remaining"], "0");
    let reset: u64 = limited.headers()["x-ratelimit-reset"].to_str().unwrap().parse().unwrap();
    assert!((retry_after..=180).contains(&reset), "{reset}");
    assert_eq!(problem(limited, 429).await["code"], "rate_limited");

    // Other keys are untouched, and requests without a valid key count against no one.
    problem(app.get("bkh_unknown", "/v1/bookings").send().await.unwrap(), 401).await;
    let other = app.get(&luna, "/v1/bookings").send().await.unwrap();
    assert_eq!(other.status(), 200);
    assert_eq!(other.headers()["x-ratelimit-remaining"], "2");
}
