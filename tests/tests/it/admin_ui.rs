//! The admin UI in headless Chromium, driven over WebDriver (chromedriver): sign in, edit a
//! mapping, import a CSV after its dry run, map a code a message waits for and see the booking
//! confirmed, replay a webhook, retry a dead job, a form without its CSRF token refused, the
//! pages at 390 px, and sign out. Screenshots go to `target/tmp/admin-ui/`.
//!
//! Needs Debian's `chromium` and `chromium-driver`; without them the test is skipped with the
//! reason printed, except under CI (`.ci/run` installs them).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use adapters::store::api_keys::{NewKey, Role};
use adapters::store::queue::{self, EnqueuedJob};
use bookhub_tests::{Backend, TestApp, eventually, free_port};
use fantoccini::{Client, ClientBuilder, Locator};
use jobs::SubmitBooking;
use serde_json::{Value, json};

use crate::webhooks::{deliver, event, pending_booking, start_with};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
const WAIT: Duration = Duration::from_secs(20);

/// chromedriver on a free port, stopped with the test.
struct Driver {
    _process: tokio::process::Child,
    url: String,
}

impl Driver {
    /// Starts chromedriver, or says why the test cannot run here.
    async fn start() -> Option<Driver> {
        let (driver, browser) = (Path::new(CHROMEDRIVER), Path::new(CHROMIUM));
        if !driver.exists() || !browser.exists() {
            let why = format!("{CHROMEDRIVER} or {CHROMIUM} is missing (apt-get install chromium chromium-driver)");
            assert!(std::env::var_os("CI").is_none(), "the admin UI test must run under CI: {why}");
            eprintln!("skipping the admin UI browser test: {why}");
            return None;
        }
        let port = free_port();
        let process = tokio::process::Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver starts");
        let url = format!("http://127.0.0.1:{port}");
        let status = format!("{url}/status");
        eventually(WAIT, || async {
            let ready = reqwest::get(&status).await.map_err(|e| e.to_string())?;
            let body: Value = ready.json().await.map_err(|e| e.to_string())?;
            if body["value"]["ready"] == true { Ok(()) } else { Err(body.to_string()) }
        })
        .await;
        Some(Driver { _process: process, url })
    }

    async fn browser(&self) -> Client {
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,800"],
            },
        });
        let serde_json::Value::Object(capabilities) = capabilities else { unreachable!() };
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .expect("a browser session")
    }
}

/// Where this run's screenshots go.
fn screenshots() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("admin-ui");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn snap(browser: &Client, name: &str) {
    let path = screenshots().join(format!("{name}.png"));
    std::fs::write(&path, browser.screenshot().await.unwrap()).unwrap();
    eprintln!("screenshot: {}", path.display());
}

/// The text of the first `css` element, waiting for it; the page's own text when it never comes.
async fn text(browser: &Client, css: &str) -> String {
    match browser.wait().at_most(WAIT).for_element(Locator::Css(css)).await {
        Ok(element) => element.text().await.unwrap(),
        Err(e) => {
            let url = browser.current_url().await.unwrap();
            let page = browser.find(Locator::Css("body")).await.unwrap().text().await.unwrap();
            panic!("no {css} at {url} ({e}): {page}")
        }
    }
}

/// The form of the row `code` on a mapping table page.
fn row_form(code: &str) -> String {
    format!("//form[contains(@class, 'edit')][.//input[@name='supplier_code' and @value='{code}']]")
}

async fn click(browser: &Client, xpath: &str) {
    browser.find(Locator::XPath(xpath)).await.unwrap_or_else(|e| panic!("{xpath}: {e}")).click().await.unwrap();
}

/// Every visible form control has a label, and nothing is wider than the window.
async fn check_layout(browser: &Client, page: &str) {
    let problems = browser
        .execute(
            "const unlabelled = [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
                .filter(e => e.labels.length === 0 && !e.getAttribute('aria-label')).map(e => e.name);
             const wide = document.documentElement.scrollWidth > window.innerWidth;
             const over = [...document.querySelectorAll('body *')]
                .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)
                .slice(-3).map(e => e.tagName + '.' + e.className + '#' + e.id);
             return { unlabelled, wide, over, width: document.documentElement.scrollWidth, window: window.innerWidth };",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(problems["unlabelled"], json!([]), "{page}: inputs without a label");
    assert_eq!(
        problems["wide"],
        json!(false),
        "{page}: wider than the window ({{over}} are the last elements past its edge): {problems}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_run_the_hub_from_the_admin_ui_in_a_real_browser() {
    let (_sim, app) = start_with(bookhub_tests::no_workers).await;
    let Some(driver) = Driver::start().await else { return };
    let new = NewKey { role: Role::Staff, agency_id: None, label: Some("Marta (ops)"), expires_at: None };
    let (staff, _) = api::auth::issue(&app.db, &new).await.unwrap();
    let browser = driver.browser().await;
    let result = run(&app, &browser, &staff).await;
    browser.close().await.unwrap();
    result
}

async fn run(app: &TestApp, browser: &Client, staff: &str) {
    // Signing in: a wrong key is told so; the right one opens the dashboard.
    browser.goto(&app.url("/admin/mappings")).await.unwrap();
    assert!(browser.current_url().await.unwrap().path().ends_with("/admin/login"));
    browser.find(Locator::Id("key")).await.unwrap().send_keys("bkh_not-a-real-key").await.unwrap();
    click(browser, "//button[text()='Sign in']").await;
    assert_eq!(text(browser, "#login-error").await, "That key is not valid.");
    browser.find(Locator::Id("key")).await.unwrap().send_keys(staff).await.unwrap();
    click(browser, "//button[text()='Sign in']").await;
    // The sign-in page has an h1 too: the new page is the one at the asked URL.
    let asked = url::Url::parse(&app.url("/admin/mappings")).unwrap();
    browser.wait().at_most(WAIT).for_url(&asked).await.expect("back where sign-in was asked");
    assert_eq!(text(browser, "h1").await, "Mapping tables");
    let cookies = browser.get_all_cookies().await.unwrap();
    let session = cookies.iter().find(|c| c.name() == "bookhub_session").expect("the session cookie");
    assert_eq!(
        (session.http_only(), format!("{:?}", session.same_site()), session.path()),
        (Some(true), "Some(Strict)".to_owned(), Some("/admin"))
    );
    browser.goto(&app.url("/admin")).await.unwrap();
    assert!(text(browser, "table.rows").await.contains("jsonrest"));
    snap(browser, "dashboard").await;

    edit_a_mapping(app, browser, staff).await;
    import_a_csv_after_its_dry_run(app, browser, staff).await;
    let webhook = reprocess_a_waiting_message(app, browser, staff).await;
    replay_a_webhook(app, browser, staff, &webhook).await;
    retry_a_dead_job(app, browser).await;
    refuse_a_form_without_its_csrf_token(app, browser, staff).await;

    // At 390 px every page still fits and every control keeps its label.
    browser.set_window_size(390, 844).await.unwrap();
    for page in ["/admin", "/admin/mappings/sandbox/room_type", "/admin/webhooks", "/admin/bookings", "/admin/jobs"] {
        browser.goto(&app.url(page)).await.unwrap();
        check_layout(browser, page).await;
    }
    browser.goto(&app.url("/admin/mappings/sandbox/room_type")).await.unwrap();
    snap(browser, "mappings-390px").await;
    browser.set_window_size(1280, 800).await.unwrap();

    // Signing out ends the session: the pages ask to sign in again.
    click(browser, "//button[text()='Sign out']").await;
    assert_eq!(text(browser, "p.notice").await, "Signed out.");
    browser.goto(&app.url("/admin")).await.unwrap();
    assert!(browser.current_url().await.unwrap().path().ends_with("/admin/login"));
}

async fn edit_a_mapping(app: &TestApp, browser: &Client, staff: &str) {
    browser.goto(&app.url("/admin/mappings/sandbox/room_type")).await.unwrap();
    check_layout(browser, "mapping table").await;
    let form = browser.find(Locator::XPath(&row_form("DBL_SUP"))).await.unwrap();
    let description = form.find(Locator::Css("input[name=description]")).await.unwrap();
    description.clear().await.unwrap();
    description.send_keys("Double superior, sea view").await.unwrap();
    form.find(Locator::XPath(".//button[text()='Save']")).await.unwrap().click().await.unwrap();
    assert_eq!(text(browser, "p.notice").await, "Saved DBL_SUP → DBL_SUP.");
    let row = app.get_json(staff, "/v1/mappings/sandbox/room_type/DBL_SUP").await;
    assert_eq!(
        (
            row["description"].clone(),
            row["active"].clone(),
            row["outbound"].clone(),
            row["updated_by"]["label"].clone()
        ),
        (json!("Double superior, sea view"), json!(true), json!(true), json!("Marta (ops)")),
        "the description changed; the flags did not"
    );
    snap(browser, "mapping-saved").await;

    browser.goto(&app.url("/admin/mappings/sandbox/room_type/audit")).await.unwrap();
    let newest = text(browser, "table.rows tbody tr").await;
    assert!(newest.contains("DBL_SUP") && newest.contains("Marta (ops)") && newest.contains("ui"), "{newest}");
}

async fn import_a_csv_after_its_dry_run(app: &TestApp, browser: &Client, staff: &str) {
    let exported = app.get(staff, "/v1/mappings/sandbox/board.csv").send().await.unwrap().text().await.unwrap();
    let file = tempfile::Builder::new().suffix(".csv").tempfile().unwrap();
    std::fs::write(file.path(), exported + "ALLINC,AI,All inclusive (long code),true,false\n").unwrap();
    browser.goto(&app.url("/admin/mappings/sandbox/board")).await.unwrap();
    browser.find(Locator::Id("csv-file")).await.unwrap().send_keys(&file.path().to_string_lossy()).await.unwrap();
    click(browser, "//button[text()='Check the file']").await;
    let dry_run = text(browser, "#dry-run").await;
    assert!(dry_run.contains("1 to add, 0 to change, 0 to remove"), "{dry_run}");
    let before = app.get(staff, "/v1/mappings/sandbox/board/ALLINC").send().await.unwrap();
    assert_eq!(before.status(), 404, "the dry run wrote nothing");
    snap(browser, "import-dry-run").await;
    click(browser, "//button[text()='Apply this import']").await;
    assert!(text(browser, "p.notice").await.starts_with("Imported: 1 added, 0 changed, 0 removed"));
    let row = app.get_json(staff, "/v1/mappings/sandbox/board/ALLINC").await;
    assert_eq!(row["description"], "All inclusive (long code)");
}

/// A confirmation naming a room type no row maps waits; mapping it from the unmapped page
/// processes it again, and the booking is confirmed. The message's log id.
async fn reprocess_a_waiting_message(app: &TestApp, browser: &Client, staff: &str) -> String {
    let (_, agency) = app.agency("Viajes Sol").await;
    let booking = pending_booking(app, &agency).await;
    let body = event("evt_ui", "booking.confirmed", &booking, "CNF").replace("DBL.ST", "DBL.VISTA");
    assert_eq!(deliver(app, "evt_ui", &body).await.status(), 200);
    app.run_due_jobs().await;
    let log = app.get_json(staff, "/v1/webhook-events?supplier=jsonrest").await;
    let logged = log["data"].as_array().unwrap().iter().find(|e| e["event_id"] == "evt_ui").unwrap().clone();
    assert_eq!(logged["status"], "needs_mapping");

    browser.goto(&app.url("/admin/unmapped")).await.unwrap();
    check_layout(browser, "unmapped codes").await;
    let form = browser.find(Locator::XPath(&row_form("DBL.VISTA"))).await.unwrap();
    form.find(Locator::Css("input[name=bookhub_code]")).await.unwrap().send_keys("DBL").await.unwrap();
    snap(browser, "unmapped").await;
    form.find(Locator::XPath(".//button[text()='Map and reprocess']")).await.unwrap().click().await.unwrap();
    let notice = text(browser, "p.notice").await;
    assert!(notice.contains("1 waiting message(s) are being processed again"), "{notice}");
    // The requeue is a background job: drained here, as the workers would run it.
    eventually(WAIT, || async {
        app.run_due_jobs().await;
        let status = app.get_json(&agency, &format!("/v1/bookings/{booking}")).await["status"].clone();
        if status == "confirmed" { Ok(()) } else { Err(status.to_string()) }
    })
    .await;

    browser.goto(&app.url(&format!("/admin/bookings?q={booking}"))).await.unwrap();
    click(browser, &format!("//a[text()='{booking}']")).await;
    assert_eq!(text(browser, "#booking-status").await, "confirmed");
    let timeline = text(browser, "ol.timeline").await;
    assert!(timeline.contains("In: jsonrest webhook evt_ui → applied"), "{timeline}");
    assert!(timeline.contains("Out: event booking.confirmed"), "{timeline}");
    snap(browser, "booking-timeline").await;
    logged["id"].as_str().unwrap().to_owned()
}

async fn replay_a_webhook(app: &TestApp, browser: &Client, staff: &str, id: &str) {
    // Its reprocessing was a replay already.
    let replays = app.get_json(staff, &format!("/v1/webhook-events/{id}")).await["replays"].as_i64().unwrap();
    browser.goto(&app.url("/admin/webhooks?supplier=jsonrest&status=applied")).await.unwrap();
    click(browser, &format!("//a[contains(@href, '/admin/webhooks/{id}')]")).await;
    assert_eq!(text(browser, "#event-status").await, "applied");
    click(browser, "//button[text()='Replay']").await;
    assert_eq!(text(browser, "p.notice").await, "Replay queued: the message is processed again.");
    let logged = app.get_json(staff, &format!("/v1/webhook-events/{id}")).await;
    assert_eq!((logged["replays"].clone(), logged["status"].clone()), (json!(replays + 1), json!("queued")));
}

async fn retry_a_dead_job(app: &TestApp, browser: &Client) {
    queue::push(app.db.pool(), &[EnqueuedJob::new(SubmitBooking::QUEUE, b"{}".to_vec(), "ui-dead".into())])
        .await
        .unwrap();
    let kill = match app.backend {
        Backend::Postgres => "UPDATE apalis.jobs SET status = 'Killed', attempts = 3 WHERE idempotency_key = 'ui-dead'",
        Backend::Sqlite => "UPDATE Jobs SET status = 'Killed', attempts = 3 WHERE idempotency_key = 'ui-dead'",
    };
    match app.db.pool() {
        adapters::store::Pool::Postgres(p) => sqlx::query(kill).execute(p).await.map(|_| ()),
        adapters::store::Pool::Sqlite(p) => sqlx::query(kill).execute(p).await.map(|_| ()),
    }
    .unwrap();
    let [dead] = &queue::dead(app.db.pool(), None, 10).await.unwrap()[..] else { panic!("one dead job") };
    browser.goto(&app.url("/admin/jobs")).await.unwrap();
    assert!(text(browser, "main").await.contains(&dead.id));
    click(browser, "//button[text()='Retry']").await;
    assert_eq!(text(browser, "p.notice").await, format!("Job {} queued again with fresh attempts.", dead.id));
    assert!(queue::dead(app.db.pool(), None, 10).await.unwrap().is_empty(), "the job is pending again");
}

async fn refuse_a_form_without_its_csrf_token(app: &TestApp, browser: &Client, staff: &str) {
    browser.goto(&app.url("/admin/mappings/sandbox/room_type")).await.unwrap();
    browser
        .execute(
            "const form = document.evaluate(arguments[0], document, null, 9, null).singleNodeValue;
             form.querySelector('input[name=csrf]').remove();
             form.querySelector('input[name=bookhub_code]').value = 'TWN';
             form.submit();",
            vec![json!(row_form("SGL"))],
        )
        .await
        .unwrap();
    let refused = text(browser, "p.error").await;
    assert!(refused.contains("not sent from this session's pages"), "{refused}");
    assert_eq!(text(browser, "h1").await, "Forbidden");
    let row = app.get_json(staff, "/v1/mappings/sandbox/room_type/SGL").await;
    assert_eq!(row["bookhub_code"], "SGL", "nothing changed");
}
