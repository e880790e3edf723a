//! The admin UI's sign-in, session and CSRF rules over plain HTTP (the browser test drives the
//! pages themselves): who may sign in, the cookie's flags, where a sign-in may lead, forms
//! from elsewhere refused, and a session that ends with its key or on sign-out.

use adapters::store::api_keys::{self, NewKey, Role};
use bookhub_tests::TestApp;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::{Client, Response, redirect};

/// A client that shows redirects instead of following them.
fn client() -> Client {
    Client::builder().redirect(redirect::Policy::none()).build().unwrap()
}

/// `name=value` of the `Set-Cookie` named `name`, and the whole header.
fn set_cookie(response: &Response, name: &str) -> Option<(String, String)> {
    response.headers().get_all(SET_COOKIE).iter().filter_map(|v| v.to_str().ok()).find_map(|header| {
        let pair = header.split(';').next()?.trim();
        pair.starts_with(&format!("{name}=")).then(|| (pair.to_owned(), header.to_owned()))
    })
}

/// The sign-in form's CSRF token and the cookie it pairs with.
async fn login_form(app: &TestApp, client: &Client) -> (String, String) {
    let page = client.get(app.url("/admin/login")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let (cookie, _) = set_cookie(&page, "bookhub_login_csrf").expect("the sign-in CSRF cookie");
    let token = cookie.split_once('=').unwrap().1.to_owned();
    (token, cookie)
}

async fn sign_in(app: &TestApp, client: &Client, key: &str, next: &str, extra: &[(&str, &str)]) -> Response {
    let (token, cookie) = login_form(app, client).await;
    let mut request = client
        .post(app.url("/admin/login"))
        .header(COOKIE, cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string([("csrf", token.as_str()), ("key", key), ("next", next)]).unwrap());
    for (name, value) in extra {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

/// A signed-in session's cookie (`bookhub_session=…`).
async fn session(app: &TestApp, client: &Client, key: &str) -> String {
    let answer = sign_in(app, client, key, "/admin", &[]).await;
    assert_eq!(answer.status(), 303);
    set_cookie(&answer, "bookhub_session").expect("a session cookie").0
}

async fn get(app: &TestApp, client: &Client, cookie: &str, path: &str) -> Response {
    client.get(app.url(path)).header(COOKIE, cookie).send().await.unwrap()
}

fn location(response: &Response) -> &str {
    response.headers()[LOCATION].to_str().unwrap()
}

/// The CSRF token of the first form on `path`.
async fn page_csrf(app: &TestApp, client: &Client, cookie: &str, path: &str) -> String {
    let html = get(app, client, cookie, path).await.text().await.unwrap();
    let start = html.find("name=\"csrf\" value=\"").expect("a form with its token") + 19;
    html[start..start + html[start..].find('"').unwrap()].to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_live_staff_and_admin_keys_sign_in_and_the_cookie_is_locked_down() {
    let app = TestApp::spawn().await;
    let client = client();
    let (_, agency) = app.agency("Viajes Sol").await;
    let staff = app.key(Role::Staff).await;

    let unknown = sign_in(&app, &client, "bkh_not-a-key", "/admin", &[]).await;
    assert_eq!(unknown.status(), 401);
    assert!(unknown.text().await.unwrap().contains("That key is not valid."));
    let agency_key = sign_in(&app, &client, &agency, "/admin", &[]).await;
    assert_eq!(agency_key.status(), 403);
    assert!(agency_key.text().await.unwrap().contains("Only staff and admin keys can sign in here."));

    let finance = app.key(Role::Finance).await;
    assert_eq!(sign_in(&app, &client, &finance, "/admin", &[]).await.status(), 403);
    let yesterday = adapters::store::now() - chrono::Duration::days(1);
    let old = NewKey { role: Role::Staff, agency_id: None, label: None, expires_at: Some(yesterday) };
    let (expired, _) = api::auth::issue(&app.db, &old).await.unwrap();
    let refused = sign_in(&app, &client, &expired, "/admin", &[]).await;
    assert_eq!(refused.status(), 403);
    assert!(refused.text().await.unwrap().contains("That key has expired"));

    let signed_in = sign_in(&app, &client, &staff, "/admin/jobs", &[]).await;
    assert_eq!((signed_in.status().as_u16(), location(&signed_in)), (303, "/admin/jobs"));
    let (_, header) = set_cookie(&signed_in, "bookhub_session").unwrap();
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/admin"] {
        assert!(header.contains(flag), "{flag} in {header}");
    }
    assert!(!header.contains("Secure"), "plain http: {header}");
    let https = sign_in(&app, &client, &staff, "/admin", &[("x-forwarded-proto", "https")]).await;
    assert!(set_cookie(&https, "bookhub_session").unwrap().1.contains("Secure"), "served over https");

    for elsewhere in
        ["https://evil.example/", "//evil.example/admin", "/v1/bookings", "/admin\\@evil.example", "/admin\n"]
    {
        let answer = sign_in(&app, &client, &staff, elsewhere, &[]).await;
        assert_eq!(location(&answer), "/admin", "a sign-in never leads to {elsewhere}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forms_need_their_session_token_and_a_session_ends_with_its_key_or_on_sign_out() {
    let app = TestApp::spawn().await;
    let client = client();

    let (token, _) = login_form(&app, &client).await;
    let no_cookie = client
        .post(app.url("/admin/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf={token}&key=x&next=/admin"))
        .send()
        .await
        .unwrap();
    assert_eq!(no_cookie.status(), 403, "a sign-in form posted from elsewhere");
    let (_, cookie) = login_form(&app, &client).await;
    let other_tab = client
        .post(app.url("/admin/login"))
        .header(COOKIE, cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf={token}&key=x&next=/admin"))
        .send()
        .await
        .unwrap();
    assert_eq!(other_tab.status(), 403, "a token that is not the cookie's");

    let staff = app.key(Role::Staff).await;
    let (mine, theirs) = (session(&app, &client, &staff).await, session(&app, &client, &staff).await);
    let their_token = page_csrf(&app, &client, &theirs, "/admin/jobs").await;
    let post = |cookie: &str, body: String| {
        client
            .post(app.url("/admin/unmapped/sandbox/reprocess"))
            .header(COOKIE, cookie.to_owned())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    assert_eq!(post(&mine, format!("csrf={their_token}")).await.unwrap().status(), 403, "another session's token");
    assert_eq!(post(&mine, String::new()).await.unwrap().status(), 403, "no token");
    let my_token = page_csrf(&app, &client, &mine, "/admin/jobs").await;
    assert_eq!(post(&mine, format!("csrf={my_token}")).await.unwrap().status(), 303);

    let export = get(&app, &client, &mine, "/admin/mappings/sandbox/board/export.csv").await;
    assert_eq!(export.status(), 200);
    let csv = export.text().await.unwrap();
    assert!(
        csv.starts_with("supplier_code,bookhub_code,description,active,outbound\n") && csv.contains("\nBB,BB,"),
        "{csv}"
    );

    // Recovering an agency's deliveries is for admins, as in the API.
    let (agency, _) = app.agency("Viajes Sol").await;
    let recover = |cookie: String, token: String| {
        client
            .post(app.url(&format!("/admin/agencies/{agency}/recover")))
            .header(COOKIE, cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("csrf={token}"))
            .send()
    };
    assert_eq!(recover(mine.clone(), my_token.clone()).await.unwrap().status(), 403, "staff");
    let admin = session(&app, &client, &app.key(Role::Admin).await).await;
    let admin_token = page_csrf(&app, &client, &admin, "/admin/jobs").await;
    let no_endpoint = recover(admin, admin_token).await.unwrap();
    assert_eq!(no_endpoint.status(), 409, "an admin reaches the recover: the agency has no callback URL");

    // Pages that name nothing real are 404 pages, not errors.
    for missing in [
        "/admin/webhooks/whe_nope",
        "/admin/bookings/nope",
        "/admin/mappings/nope/room_type",
        "/admin/deliveries/evt_x",
    ] {
        let answer = get(&app, &client, &mine, missing).await;
        assert_eq!(answer.status(), 404, "{missing}");
        assert!(answer.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    }

    // Sign-out ends that session only.
    let logout = client
        .post(app.url("/admin/logout"))
        .header(COOKIE, theirs.clone())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf={their_token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(location(&logout), "/admin/login?signed_out");
    assert_eq!(get(&app, &client, &theirs, "/admin").await.status(), 303);
    assert_eq!(get(&app, &client, &mine, "/admin").await.status(), 200);

    // Revoking the key ends its sessions at once.
    let record = api_keys::find_by_hash(&app.db, &api::auth::hash_key(&staff)).await.unwrap().unwrap();
    api_keys::revoke(&app.db, &record.id, adapters::store::now()).await.unwrap();
    let after = get(&app, &client, &mine, "/admin/mappings").await;
    assert_eq!((after.status().as_u16(), location(&after)), (303, "/admin/login?next=%2Fadmin%2Fmappings"));
}

/// A multipart body of `fields` (name, value), and its content type.
fn multipart(fields: &[(&str, &str)]) -> (String, String) {
    let boundary = "bookhub-test-boundary";
    let mut body = String::new();
    for (name, value) in fields {
        let filename = if *name == "file" { "; filename=\"table.csv\"" } else { "" };
        body +=
            &format!("--{boundary}\r\ncontent-disposition: form-data; name=\"{name}\"{filename}\r\n\r\n{value}\r\n");
    }
    (body + &format!("--{boundary}--\r\n"), format!("multipart/form-data; boundary={boundary}"))
}

/// The value of the hidden field `name` in `html`.
fn hidden(html: &str, name: &str) -> String {
    let start = html.find(&format!("name=\"{name}\" value=\"")).unwrap_or_else(|| panic!("no {name} in {html}"));
    let start = start + name.len() + 15;
    html[start..start + html[start..].find('"').unwrap()].to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_applies_only_the_checked_file_to_the_table_it_was_checked_against() {
    let app = TestApp::spawn().await;
    let client = client();
    let staff = app.key(Role::Staff).await;
    let cookie = session(&app, &client, &staff).await;
    let token = page_csrf(&app, &client, &cookie, "/admin/mappings/sandbox/board").await;
    let url = app.url("/admin/mappings/sandbox/board/import");
    let exported = app.get(&staff, "/v1/mappings/sandbox/board.csv").send().await.unwrap().text().await.unwrap();
    let file = exported + "ALLINC,AI,All inclusive,true,false\n";
    let check = |fields: Vec<(&'static str, String)>| {
        let fields: Vec<(&str, &str)> = fields.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let (body, content_type) = multipart(&fields);
        client.post(&url).header(COOKIE, cookie.clone()).header("content-type", content_type).body(body).send()
    };

    let forged = check(vec![("file", file.clone())]).await.unwrap();
    assert_eq!(forged.status(), 403, "the file before any token");
    let checked = check(vec![("csrf", token.clone()), ("file", file.clone())]).await.unwrap();
    assert_eq!(checked.status(), 200);
    let html = checked.text().await.unwrap();
    assert!(html.contains("1 to add, 0 to change, 0 to remove"), "{html}");
    let apply = |html: String| {
        let form =
            [("csrf", token.clone()), ("csv", hidden(&html, "csv")), ("table_digest", hidden(&html, "table_digest"))];
        client
            .post(app.url("/admin/mappings/sandbox/board/import/apply"))
            .header(COOKIE, cookie.clone())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(serde_urlencoded::to_string(form).unwrap())
            .send()
    };

    // Someone changes the table between the check and the apply: the apply is refused.
    let changed = app
        .client
        .put(app.url("/v1/mappings/sandbox/board/RO"))
        .bearer_auth(&staff)
        .json(&serde_json::json!({"bookhub_code": "RO", "description": "Room only (changed)"}))
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), 200);
    let stale = apply(html).await.unwrap();
    assert_eq!(stale.status(), 409);
    assert!(stale.text().await.unwrap().contains("the table changed since the file was checked"));
    assert_eq!(app.get(&staff, "/v1/mappings/sandbox/board/ALLINC").send().await.unwrap().status(), 404);

    // Checked again, it applies: the file's own RO row wins, ALLINC is added.
    let html = check(vec![("csrf", token.clone()), ("file", file.clone())]).await.unwrap().text().await.unwrap();
    assert!(html.contains("1 to add, 1 to change, 0 to remove"), "{html}");
    let applied = apply(html).await.unwrap();
    assert_eq!(applied.status(), 303);
    let now = app.get(&staff, "/v1/mappings/sandbox/board.csv").send().await.unwrap().text().await.unwrap();
    assert!(
        now.contains("\nALLINC,AI,All inclusive,true,false\n") && now.contains("\nRO,RO,Room only,true,true\n"),
        "{now}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_download_the_finance_report_from_the_console_and_staff_do_not() {
    // No workers: the booking stays pending while the test reads the report.
    let app = TestApp::spawn_with(bookhub_tests::Backend::from_env(), bookhub_tests::no_workers).await;
    let client = client();
    let admin = session(&app, &client, &app.key(Role::Admin).await).await;
    let staff = session(&app, &client, &app.key(Role::Staff).await).await;
    let (_, agency) = app.agency("Viajes Sol").await;
    app.booked(&agency, &bookhub_tests::booking_body()).await;
    let day = chrono::Utc::now().date_naive();

    let page = get(&app, &client, &admin, "/admin/finance").await.text().await.unwrap();
    assert!(page.contains("action=\"/admin/finance/report\""), "{page}");
    let report = format!("/admin/finance/report?from={day}&to={day}&format=csv");
    let csv = get(&app, &client, &admin, &report).await;
    assert_eq!(csv.status(), 200);
    let csv = csv.text().await.unwrap();
    let row = csv.lines().nth(1).expect("the agency's row");
    assert!(row.contains("Viajes Sol,sandbox,EUR,1,0"), "one pending booking: {row}");

    let staff_page = get(&app, &client, &staff, "/admin/finance").await.text().await.unwrap();
    assert!(!staff_page.contains("action=\"/admin/finance/report\""));
    assert_eq!(get(&app, &client, &staff, &report).await.status(), 403);
    let bad = get(&app, &client, &admin, &format!("/admin/finance/report?from={day}&to=2020-01-01")).await;
    assert_eq!(bad.status(), 400);
}
