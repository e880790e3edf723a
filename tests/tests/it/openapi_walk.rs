//! Walks every operation of the OpenAPI document with requests its schemas allow and some
//! they do not (no key, a wrong key, each role's key, the edges of every parameter and of the
//! booking body), and checks that each answer's status is documented for that operation and
//! its JSON body validates against the documented schema.

use std::collections::BTreeMap;

use bookhub_tests::{Backend, TestApp, booking_body, eventually};
use serde_json::{Value, json};

/// The document, with `$ref`s resolved on demand.
struct Spec(Value);

impl Spec {
    fn resolve<'a>(&'a self, mut v: &'a Value) -> &'a Value {
        while let Some(r) = v.get("$ref").and_then(Value::as_str) {
            let pointer = r.strip_prefix('#').unwrap_or_else(|| panic!("external $ref {r}"));
            v = self.0.pointer(pointer).unwrap_or_else(|| panic!("dangling $ref {r}"));
        }
        v
    }

    /// Every way `value` breaks `schema`, as `path: rule`.
    fn validate(&self, schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
        let schema = self.resolve(schema);
        if let Some(types) = schema.get("type") {
            let types: Vec<&str> = match types {
                Value::String(t) => vec![t.as_str()],
                Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
                _ => vec![],
            };
            if !types.iter().any(|t| type_matches(t, value)) {
                errors.push(format!("{at}: {value} is not {types:?}"));
                return;
            }
        }
        if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
            && !allowed.contains(value)
        {
            errors.push(format!("{at}: {value} is not one of the enum"));
        }
        for sub in schema.get("allOf").and_then(Value::as_array).into_iter().flatten() {
            self.validate(sub, value, at, errors);
        }
        for (key, exactly_one) in [("oneOf", true), ("anyOf", false)] {
            if let Some(subs) = schema.get(key).and_then(Value::as_array) {
                let passing = subs.iter().filter(|s| self.check(s, value)).count();
                if passing == 0 || (exactly_one && passing > 1) {
                    errors.push(format!("{at}: {passing} of the {key} schemas match {value}"));
                }
            }
        }
        match value {
            Value::Object(fields) => {
                for name in schema.get("required").and_then(Value::as_array).into_iter().flatten() {
                    let name = name.as_str().expect("a field name");
                    if !fields.contains_key(name) {
                        errors.push(format!("{at}.{name}: required but absent"));
                    }
                }
                let properties = schema.get("properties").and_then(Value::as_object);
                for (name, field) in fields {
                    if let Some(sub) = properties.and_then(|p| p.get(name)) {
                        self.validate(sub, field, &format!("{at}.{name}"), errors);
                    }
                }
            }
            Value::Array(items) => {
                let n = items.len() as u64;
                if schema.get("minItems").and_then(Value::as_u64).is_some_and(|min| n < min) {
                    errors.push(format!("{at}: {n} items, under minItems"));
                }
                if schema.get("maxItems").and_then(Value::as_u64).is_some_and(|max| n > max) {
                    errors.push(format!("{at}: {n} items, over maxItems"));
                }
                if let Some(sub) = schema.get("items") {
                    for (i, item) in items.iter().enumerate() {
                        self.validate(sub, item, &format!("{at}[{i}]"), errors);
                    }
                }
            }
            Value::String(s) => string_rules(schema, s, at, errors),
            Value::Number(n) => {
                let n = n.as_f64().expect("a number");
                if schema.get("minimum").and_then(Value::as_f64).is_some_and(|min| n < min) {
                    errors.push(format!("{at}: {n} under minimum"));
                }
                if schema.get("maximum").and_then(Value::as_f64).is_some_and(|max| n > max) {
                    errors.push(format!("{at}: {n} over maximum"));
                }
            }
            _ => {}
        }
    }

    fn check(&self, schema: &Value, value: &Value) -> bool {
        let mut errors = Vec::new();
        self.validate(schema, value, "", &mut errors);
        errors.is_empty()
    }
}

fn type_matches(t: &str, v: &Value) -> bool {
    match t {
        "null" => v.is_null(),
        "boolean" => v.is_boolean(),
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        other => panic!("unknown type {other}"),
    }
}

fn string_rules(schema: &Value, s: &str, at: &str, errors: &mut Vec<String>) {
    let chars = s.chars().count() as u64;
    if schema.get("minLength").and_then(Value::as_u64).is_some_and(|min| chars < min) {
        errors.push(format!("{at}: {s:?} under minLength"));
    }
    if schema.get("maxLength").and_then(Value::as_u64).is_some_and(|max| chars > max) {
        errors.push(format!("{at}: {chars} characters, over maxLength"));
    }
    if let Some(pattern) = schema.get("pattern").and_then(Value::as_str)
        && !regex::Regex::new(pattern).expect("a pattern the regex crate reads").is_match(s)
    {
        errors.push(format!("{at}: {s:?} does not match {pattern}"));
    }
    let format_ok = match schema.get("format").and_then(Value::as_str) {
        Some("date") => chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok(),
        Some("date-time") => chrono::DateTime::parse_from_rfc3339(s).is_ok(),
        _ => true,
    };
    if !format_ok {
        errors.push(format!("{at}: {s:?} is not its format"));
    }
}

/// Who an operation is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Audience {
    /// An agency's own key only.
    Agency,
    /// An agency (its own) or staff and admins (all).
    AgencyOrStaff,
    /// Staff and admins.
    Staff,
    Admin,
    /// Finance, staff and admins.
    FinanceOrStaff,
    /// Finance and admins.
    Finance,
}

fn audience(method: &str, template: &str) -> Audience {
    match template {
        "/v1/bookings" if method == "post" => Audience::Agency,
        "/v1/keys/self/rotate" => Audience::Agency,
        t if t.starts_with("/v1/bookings") || t.starts_with("/v1/events") => Audience::AgencyOrStaff,
        t if t.starts_with("/v1/agency/") => Audience::Agency,
        "/v1/agencies/{id}/webhook" if method == "get" => Audience::Staff,
        t if t.starts_with("/v1/keys") || t.starts_with("/v1/agencies/") => Audience::Admin,
        "/v1/reconciliation/statements" | "/v1/invoices" | "/v1/reports/finance" => Audience::Finance,
        t if t.starts_with("/v1/reconciliation") => Audience::FinanceOrStaff,
        _ => Audience::Staff,
    }
}

/// A path parameter's value, and the status it must get when not the first (fixture) value.
type PathValue<'a> = (&'a str, Option<u16>);

/// One request of the walk.
#[derive(Debug, Clone, Default)]
struct Case {
    label: String,
    path: String,
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    /// `Authorization` value; none when `None`.
    auth: Option<String>,
    body: Option<(String, Vec<u8>)>,
    /// A status the walk insists on (for requests the spec allows and the fixtures make valid).
    expect: Option<u16>,
}

impl Case {
    fn with(&self, label: impl Into<String>) -> Case {
        Case { label: label.into(), expect: None, ..self.clone() }
    }

    fn json(mut self, body: &Value) -> Case {
        self.body = Some(("application/json".into(), serde_json::to_vec(body).expect("JSON")));
        self
    }

    fn header(mut self, name: &str, value: impl Into<String>) -> Case {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.headers.push((name.into(), value.into()));
        self
    }

    fn expect(mut self, status: u16) -> Case {
        self.expect = Some(status);
        self
    }
}

struct Walk {
    spec: Spec,
    app: TestApp,
    requests: usize,
    failures: Vec<String>,
}

impl Walk {
    async fn send(&mut self, method: &str, template: &str, case: Case) -> (u16, Value, BTreeMap<String, String>) {
        self.requests += 1;
        let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).expect("a method");
        let mut request = self.app.client.request(method.clone(), self.app.url(&case.path)).query(&case.query);
        for (name, value) in &case.headers {
            request = request.header(name, value);
        }
        if let Some(auth) = &case.auth {
            request = request.header("Authorization", auth);
        }
        if let Some((content_type, body)) = &case.body {
            request = request.header("Content-Type", content_type).body(body.clone());
        }
        let response = request.send().await.expect("the request is answered");
        let status = response.status().as_u16();
        let headers: BTreeMap<String, String> = response
            .headers()
            .iter()
            .map(|(n, v)| (n.as_str().to_owned(), v.to_str().unwrap_or_default().to_owned()))
            .collect();
        let bytes = response.bytes().await.expect("a body");
        let what = format!("{method} {template} [{}] → {status}", case.label);
        if let Some(expected) = case.expect
            && expected != status
        {
            self.failures.push(format!("{what}: expected {expected}: {}", String::from_utf8_lossy(&bytes)));
        }
        let operation = &self.spec.0["paths"][template][method.as_str().to_lowercase()];
        let documented = operation["responses"].get(status.to_string()).or(operation["responses"].get("default"));
        let Some(documented) = documented else {
            self.failures.push(format!("{what}: status not documented: {}", String::from_utf8_lossy(&bytes)));
            return (status, Value::Null, headers);
        };
        let documented = self.spec.resolve(documented).clone();
        let media = headers.get("content-type").map(|c| c.split(';').next().unwrap_or_default().trim().to_owned());
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let json = media.as_deref().is_some_and(|m| m.ends_with("json"));
        if let Some(content) = documented.get("content").and_then(Value::as_object) {
            match media.as_deref().and_then(|m| content.get(m)) {
                // The validator reads JSON; a PDF is checked by its media type alone.
                Some(declared) if declared.get("schema").is_some() && json => {
                    let mut errors = Vec::new();
                    self.spec.validate(&declared["schema"], &body, "$", &mut errors);
                    if !errors.is_empty() {
                        self.failures.push(format!("{what}: body breaks its schema: {errors:?}"));
                    }
                }
                Some(_) => {}
                None => self.failures.push(format!("{what}: media type {media:?} not documented")),
            }
        }
        (status, body, headers)
    }
}

/// `n` characters of `[!-~]`, different every call.
fn key_of(n: usize) -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..n).map(|_| char::from(rng.random_range(b'!'..=b'~'))).collect()
}

/// Each value a query parameter's schema names as an edge, with whether the spec allows it.
fn param_edges(spec: &Spec, schema: &Value) -> Vec<(String, bool)> {
    let schema = spec.resolve(schema);
    let mut edges = vec![(String::new(), false)];
    for alternative in schema.get("oneOf").and_then(Value::as_array).into_iter().flatten() {
        edges.extend(param_edges(spec, alternative).into_iter().filter(|(v, _)| !v.is_empty()));
    }
    for value in schema.get("enum").and_then(Value::as_array).into_iter().flatten() {
        edges.push((value.as_str().expect("a string enum").to_owned(), true));
    }
    if schema.get("enum").is_some() {
        edges.push(("not_a_value".into(), false));
    }
    if let Some(min) = schema.get("minimum").and_then(Value::as_i64) {
        edges.extend([(min.to_string(), true), ((min - 1).to_string(), false)]);
    }
    if let Some(max) = schema.get("maximum").and_then(Value::as_i64) {
        edges.extend([(max.to_string(), true), ((max + 1).to_string(), false)]);
    }
    if let Some(max) = schema.get("maxLength").and_then(Value::as_u64) {
        edges.extend([("a".repeat(max as usize), true), ("a".repeat(max as usize + 1), false)]);
    }
    if schema.get("format").and_then(Value::as_str) == Some("date-time") {
        edges.extend([("2027-01-01T00:00:00Z".into(), true), ("yesterday".into(), false)]);
    }
    let types = schema.get("type").map(Value::to_string).unwrap_or_default();
    if let Some(pattern) = schema.get("pattern") {
        edges.push(("not it".into(), false));
        let example = schema.get("example").or(schema.get("examples").and_then(|e| e.get(0)));
        if let Some(example) = example.and_then(Value::as_str) {
            let matches = regex::Regex::new(pattern.as_str().expect("a pattern")).expect("a pattern").is_match(example);
            edges.push((example.to_owned(), matches));
        }
    } else if types.contains("string") && schema.get("enum").is_none() && schema.get("format").is_none() {
        edges.push(("some-value".into(), true));
    }
    if types.contains("integer") {
        edges.push(("ten".into(), false));
    }
    edges
}

/// The booking body's edges, from its schema: each constrained field at and past its limits.
fn booking_edges(spec: &Spec) -> Vec<(String, Value, Option<u16>)> {
    let schemas = &spec.0["components"]["schemas"];
    let base = booking_body();
    let mut edges = Vec::new();
    let mut edit = |label: String, expect: Option<u16>, f: &dyn Fn(&mut Value)| {
        let mut body = base.clone();
        f(&mut body);
        edges.push((label, body, expect));
    };
    let request = &schemas["BookingRequest"];
    for (name, field) in request["properties"].as_object().expect("properties") {
        let field = spec.resolve(field).clone();
        let name = name.clone();
        let required = request["required"].as_array().expect("required").contains(&json!(name));
        edit(format!("without {name}"), if required { Some(422) } else { Some(202) }, &|b| {
            b.as_object_mut().expect("an object").remove(&name);
        });
        edit(format!("{name} of the wrong type"), Some(422), &|b| b[&name] = json!(42));
        if let Some(max) = field.get("maxLength").and_then(Value::as_u64) {
            let (at, past) = ("A".repeat(max as usize), "A".repeat(max as usize + 1));
            let fits = name != "supplier"; // a code of 32 letters is allowed, but not configured
            edit(format!("{name} at maxLength"), Some(if fits { 202 } else { 422 }), &|b| b[&name] = json!(at));
            edit(format!("{name} past maxLength"), Some(422), &|b| b[&name] = json!(past));
        }
        if let Some(min) = field.get("minItems").and_then(Value::as_u64) {
            edit(format!("{name} at minItems"), Some(202), &|b| {
                b[&name].as_array_mut().expect("an array").truncate(min as usize)
            });
            edit(format!("{name} under minItems"), Some(422), &|b| b[&name] = json!([]));
        }
        if let Some(max) = field.get("maxItems").and_then(Value::as_u64) {
            for (n, expect) in [(max, 202), (max + 1, 422)] {
                edit(format!("{name} with {n} items"), Some(expect), &|b| {
                    let first = b[&name][0].clone();
                    b[&name] = Value::Array(vec![first; n as usize]);
                });
            }
        }
        if field["type"].as_array().is_some_and(|t| t.contains(&json!("null"))) {
            edit(format!("{name} null"), Some(202), &|b| b[&name] = Value::Null);
        }
    }
    for code in spec.resolve(&schemas["RoomRequest"]["properties"]["room_type"])["enum"].as_array().expect("codes") {
        edit(format!("room_type {code}"), Some(202), &|b| b["rooms"][0]["room_type"] = code.clone());
    }
    for code in spec.resolve(&schemas["RoomRequest"]["properties"]["board"])["enum"].as_array().expect("codes") {
        edit(format!("board {code}"), Some(202), &|b| b["rooms"][0]["board"] = code.clone());
    }
    let guests = &schemas["RoomRequest"]["properties"]["guests"];
    let max_guests = guests["maxItems"].as_u64().expect("maxItems");
    for (n, expect) in [(max_guests, 202), (max_guests + 1, 422)] {
        edit(format!("{n} guests"), Some(expect), &|b| {
            let guest = b["rooms"][0]["guests"][0].clone();
            b["rooms"][0]["guests"] = Value::Array(vec![guest; n as usize]);
        });
    }
    edit("a second guest without a name".into(), Some(422), &|b| b["rooms"][0]["guests"][1]["first_name"] = json!(" "));
    edit("a lead guest without email".into(), Some(422), &|b| {
        b["rooms"][0]["guests"][0].as_object_mut().expect("a guest").remove("email");
    });
    let currencies = schemas["MoneyDto"]["properties"]["currency"]["enum"].as_array().expect("currencies");
    for code in [&currencies[0], &currencies[currencies.len() / 2], &currencies[currencies.len() - 1]] {
        // "1" is a valid amount in every currency, whatever its minor units.
        edit(format!("currency {code}"), Some(202), &|b| b["total"] = json!({"amount": "1", "currency": code}));
    }
    edit("currency not ISO 4217".into(), Some(422), &|b| b["total"]["currency"] = json!("EURO"));
    edit("amount zero".into(), Some(422), &|b| b["total"]["amount"] = json!("0"));
    edit("amount negative".into(), Some(422), &|b| b["total"]["amount"] = json!("-1.00"));
    for (check_in, check_out, expect) in [
        ("2000-01-01", "2000-01-02", 202),
        ("2999-12-30", "2999-12-31", 202),
        ("2027-01-01", "2027-04-01", 202), // 90 nights
        ("2027-01-01", "2027-04-02", 422), // 91
        ("1999-12-31", "2000-01-01", 422),
        ("2027-01-02", "2027-01-02", 422),
        ("2027-02-30", "2027-03-02", 422),
    ] {
        edit(format!("stay {check_in}..{check_out}"), Some(expect), &|b| {
            b["check_in"] = json!(check_in);
            b["check_out"] = json!(check_out);
        });
    }
    edges
}

#[tokio::test(flavor = "multi_thread")]
async fn every_documented_operation_answers_as_documented() {
    let started = std::time::Instant::now();
    let app = TestApp::spawn_with(Backend::from_env(), |s| {
        s.rate_limit.per_minute = 1_000_000;
        s.rate_limit.burst = 1_000_000;
        s.body_limit_bytes = 32 * 1024;
        s.rate_limit.failed_auth_per_minute = 1_000_000;
        s.rate_limit.failed_auth_burst = 1_000_000;
    })
    .await;
    let (agency_id, agency) = app.agency("Viajes Sol").await;
    let (_, other_agency) = app.agency("Viajes Luna").await;
    let staff = app.key(adapters::store::api_keys::Role::Staff).await;
    let admin = app.key(adapters::store::api_keys::Role::Admin).await;
    let finance = app.key(adapters::store::api_keys::Role::Finance).await;
    let booking = app.booked(&agency, &booking_body()).await["id"].as_str().expect("an id").to_owned();
    let others_booking = app.booked(&other_agency, &booking_body()).await["id"].as_str().expect("an id").to_owned();
    let spare = adapters::store::api_keys::NewKey::new(adapters::store::api_keys::Role::Staff, None);
    let spare_key = api::auth::issue(&app.db, &spare).await.expect("a spare key").1.id.to_string();
    let unsigned = app.client.post(app.url("/v1/webhooks/suppliers/sandbox")).body("{}").send().await.expect("sent");
    assert_eq!(unsigned.status(), 401);
    let events = app.get_json(&staff, "/v1/webhook-events").await;
    let event = events["data"][0]["id"].as_str().expect("a logged event").to_owned();
    // Settled, so its ETag stays valid for the walk.
    app.wait_for_status(&agency, &booking, "confirmed", std::time::Duration::from_secs(10)).await;
    let agency_event =
        app.get_json(&agency, "/v1/events").await["data"][0]["id"].as_str().expect("an event").to_owned();
    let booking_id: domain::BookingId = booking.parse().expect("a booking id");
    let voucher = eventually(std::time::Duration::from_secs(10), || async {
        adapters::store::vouchers::for_booking(&app.db, &booking_id)
            .await
            .expect("read")
            .ok_or_else(|| "no voucher yet".to_owned())
    })
    .await
    .number;
    // A run, and a mismatch to resolve (the sandbox agrees with bookhub: one is written).
    let run_started = app
        .post(&finance, "/v1/reconciliations")
        .json(&json!({"supplier": "sandbox", "from": "2026-11-01T00:00:00Z", "to": "2026-11-02T00:00:00Z"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(run_started.status(), 202);
    let run = run_started.json::<Value>().await.expect("a run")["id"].as_str().expect("an id").to_owned();
    let mismatch = {
        let found = domain::reconciliation::Mismatch {
            reason: domain::reconciliation::Reason::AmountDiffers,
            booking: Some(booking.parse().expect("a booking id")),
            supplier_reference: None,
            ours: Some("450.00 EUR".into()),
            theirs: Some("451.00 EUR".into()),
        };
        let (run_id, sandbox) = (run.parse().expect("a run id"), "sandbox".parse().expect("a code"));
        adapters::store::reconciliation::record(&app.db, &run_id, &sandbox, &[found], &[]).await.expect("recorded");
        let open = adapters::store::reconciliation::mismatches(&app.db, None, None, None, 1).await.expect("read");
        open[0].id.to_string()
    };
    let etag = app.get(&agency, &format!("/v1/bookings/{booking}")).send().await.expect("sent").headers()["etag"]
        .to_str()
        .expect("an ETag")
        .to_owned();

    let spec = Spec(serde_json::from_str(&api::openapi::document()).expect("the document"));
    let mut walk = Walk { spec, app, requests: 0, failures: Vec::new() };
    let bearer = |k: &str| Some(format!("Bearer {k}"));
    let operations: Vec<(String, String, Value)> = walk.spec.0["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .flat_map(|(path, item)| {
            item.as_object().expect("an item").iter().map(|(m, op)| (m.clone(), path.clone(), op.clone()))
        })
        .collect();
    let booking_edges = booking_edges(&walk.spec);

    for (method, template, op) in &operations {
        let audience = audience(method, template);
        let path_values: Vec<(&str, Vec<PathValue>)> = vec![
            (
                "{id}",
                match template.as_str() {
                    t if t.starts_with("/v1/bookings") => {
                        vec![(booking.as_str(), None), (others_booking.as_str(), Some(404)), ("bk_nope", Some(404))]
                    }
                    t if t.starts_with("/v1/webhook-events") => vec![(event.as_str(), None), ("whe_nope", Some(404))],
                    t if t.starts_with("/v1/keys") => vec![(spare_key.as_str(), None), ("key_nope", Some(404))],
                    t if t.starts_with("/v1/events") => vec![(agency_event.as_str(), None), ("evt_nope", Some(404))],
                    t if t.starts_with("/v1/agencies") => vec![(agency_id.as_str(), None), ("ag_nope", Some(404))],
                    t if t.starts_with("/v1/reconciliations") => vec![(run.as_str(), None), ("rcn_nope", Some(404))],
                    t if t.starts_with("/v1/reconciliation/mismatches") => {
                        vec![(mismatch.as_str(), None), ("999999", Some(404)), ("nope", Some(404))]
                    }
                    _ => vec![("nope", Some(404))],
                },
            ),
            ("{number}", vec![(voucher.as_str(), None), ("VCH-0000-000000", Some(404))]),
            ("{code}", vec![("sandbox", None), ("nope", Some(404)), ("NOT-A-CODE", Some(404))]),
            ("{supplier}", vec![("sandbox", None), ("nope", Some(404))]),
            ("{kind}", vec![("room_type", None), ("nope", Some(404))]),
            ("{supplier_code}", vec![("X1", None)]),
        ];
        let fill = |choice: Option<(&str, &str)>| {
            let mut path = template.clone();
            for (param, values) in &path_values {
                let value = choice.filter(|(p, _)| p == param).map_or(values[0].0, |(_, v)| v);
                path = path.replace(param, value);
            }
            path
        };
        let authenticated = op.get("security").is_some();
        let own_key = match audience {
            Audience::Agency | Audience::AgencyOrStaff => &agency,
            Audience::Admin => &admin,
            Audience::Staff => &staff,
            Audience::FinanceOrStaff | Audience::Finance => &finance,
        };
        let mut base = Case { label: "base".into(), path: fill(None), auth: bearer(own_key), ..Case::default() };
        if !authenticated {
            base.auth = None;
        }
        for param in op["parameters"].as_array().into_iter().flatten() {
            // A required choice gets its first value; a required name, its fixture below.
            let choice = walk.spec.resolve(&param["schema"])["enum"][0].as_str().map(str::to_owned);
            if let (true, true, Some(value)) = (param["required"] == json!(true), param["in"] == "query", choice) {
                base.query.push((param["name"].as_str().expect("a name").to_owned(), value));
            }
        }
        if method == "post" && template == "/v1/bookings" {
            base = base.json(&booking_body()).header("Idempotency-Key", key_of(16));
        } else if template == "/v1/reconciliations" {
            base = base
                .json(&json!({"supplier": "sandbox", "from": "2026-11-01T00:00:00Z", "to": "2026-11-02T00:00:00Z"}));
        } else if template == "/v1/reports/finance" {
            base.query.extend([("from".into(), "2026-11-01".into()), ("to".into(), "2026-11-30".into())]);
        } else if template == "/v1/reconciliation/statements" {
            base.query.push(("supplier".into(), "sandbox".into()));
            let csv = "supplier_reference,client_reference,amount,currency,status,billed_at\nSBX-1,,450.00,EUR,billed,2026-11-30\n";
            base.body = Some(("text/csv".into(), csv.as_bytes().to_vec()));
        } else if template.ends_with("/resolve") {
            base = base.json(&json!({"note": "checked with the supplier"}));
        } else if method == "post" && template == "/v1/keys" {
            base = base.json(&json!({"role": "staff", "label": "the walk", "expires_in": "90d"}));
        } else if method == "put" && template.ends_with("/webhook") {
            base = base.json(&json!({"url": null}));
        } else if method == "put" && template.ends_with(".csv") {
            // The seeded table and the row the walk's `PUT …/X1` writes: the same table whatever
            // the order the operations run in.
            let csv = format!("{}X1,DBL,,true,false\n", include_str!("../../../mappings/seeds/sandbox/room_type.csv"));
            base.body = Some(("text/csv".into(), csv.into_bytes()));
        } else if method == "put" {
            base = base.json(&json!({"bookhub_code": "DBL"}));
        } else if template.ends_with("/recover") {
            base = base.json(&json!({"since": "2026-01-01T00:00:00Z"}));
        } else if template.starts_with("/v1/webhooks") {
            base.body = Some(("application/json".into(), b"{}".to_vec()));
        }
        let fresh_key = |case: Case| {
            if case.headers.iter().any(|(n, _)| n == "Idempotency-Key") {
                case.header("Idempotency-Key", key_of(16))
            } else {
                case
            }
        };

        let mut cases = vec![base.clone()];
        if authenticated {
            cases.push(Case { auth: None, ..base.with("no key") }.expect(401));
            cases.push(Case { auth: bearer("bkh_not-a-real-key"), ..base.with("unknown key") }.expect(401));
            cases.push(Case { auth: bearer("not-even-shaped-like-one"), ..base.with("malformed key") }.expect(401));
            cases.push(Case { auth: Some("Basic dXNlcjpwYXNz".into()), ..base.with("wrong scheme") }.expect(401));
            for (role, key) in [("agency", &agency), ("staff", &staff), ("admin", &admin), ("finance", &finance)] {
                let mut case = fresh_key(Case { auth: bearer(key), ..base.with(format!("{role} key")) });
                let denied = match (audience, role) {
                    (Audience::FinanceOrStaff, other) => other == "agency",
                    (Audience::Finance, other) => other != "finance" && other != "admin",
                    (_, "finance") => true,
                    (Audience::Agency, other) => other != "agency",
                    (Audience::AgencyOrStaff, _) => false,
                    (Audience::Staff, other) => other == "agency",
                    (Audience::Admin, other) => other != "admin",
                };
                if denied {
                    case = case.expect(403);
                }
                cases.push(case);
            }
        }
        for (param, values) in &path_values {
            if template.contains(param) {
                for (value, expect) in &values[1..] {
                    let mut case = fresh_key(base.with(format!("{param}={value}")));
                    case.path = fill(Some((param, value)));
                    case.expect = *expect;
                    cases.push(case);
                }
            }
        }
        for param in op["parameters"].as_array().into_iter().flatten() {
            let name = param["name"].as_str().expect("a name");
            match param["in"].as_str() {
                Some("query") => {
                    for (value, allowed) in param_edges(&walk.spec, &param["schema"]) {
                        let mut case = base.with(format!("{name}={value:.20}"));
                        case.query.retain(|(n, _)| n != name);
                        case.query.push((name.to_owned(), value.clone()));
                        let is_text = walk.spec.resolve(&param["schema"]).get("format").is_none()
                            && !param["schema"]["type"].to_string().contains("integer");
                        let empty_means_absent = value.is_empty() && is_text && param["required"] != json!(true);
                        // A cursor is opaque: only one this API handed out is taken.
                        let opaque = name == "cursor" || name == "after";
                        // Only a configured supplier's statement is taken (201), any other 422.
                        let opaque = opaque || template == "/v1/reconciliation/statements";
                        if (allowed && !opaque) || empty_means_absent {
                            case = case.expect(200);
                        }
                        cases.push(case);
                    }
                }
                Some("header") if name == "Idempotency-Key" => {
                    let schema = walk.spec.resolve(&param["schema"]).clone();
                    let (min, max) =
                        (schema["minLength"].as_u64().unwrap_or(1), schema["maxLength"].as_u64().expect("max"));
                    cases.push(base.with("key at minLength").header(name, key_of(min as usize)).expect(202));
                    cases.push(base.with("key at maxLength").header(name, key_of(max as usize)).expect(202));
                    cases.push(base.with("key past maxLength").header(name, key_of(max as usize + 1)).expect(400));
                    cases.push(base.with("key with a space").header(name, "a b").expect(400));
                    let mut without = base.with("no Idempotency-Key");
                    without.headers.retain(|(n, _)| n != name);
                    cases.push(without.expect(400));
                }
                Some("header") if name == "If-None-Match" => {
                    cases.push(base.with("If-None-Match: etag").header(name, etag.clone()).expect(304));
                    cases.push(base.with("If-None-Match: *").header(name, "*").expect(304));
                    cases.push(base.with("If-None-Match: other").header(name, "\"other\"").expect(200));
                }
                _ => {}
            }
        }
        if base.body.is_some() {
            let mut wrong_type = fresh_key(base.with("text/plain body"));
            wrong_type.body = Some(("text/plain".into(), b"hello".to_vec()));
            cases.push(wrong_type);
            let mut malformed = fresh_key(base.with("malformed JSON"));
            malformed.body = Some(("application/json".into(), b"{\"supplier\":".to_vec()));
            // A webhook's signature is checked before its body is read as JSON.
            // A CSV import refuses any JSON body as the wrong media type.
            cases.push(match template.as_str() {
                t if t.starts_with("/v1/webhooks") => malformed,
                t if t.ends_with(".csv") || t.ends_with("/statements") => malformed.expect(415),
                _ => malformed.expect(400),
            });
            let mut huge = fresh_key(base.with("body past the limit"));
            huge.body = Some(("application/json".into(), vec![b' '; 33 * 1024]));
            cases.push(huge.expect(413));
        }
        if method == "post" && template == "/v1/bookings" {
            for (label, body, expect) in &booking_edges {
                let mut case = fresh_key(base.with(label.clone())).json(body);
                case.expect = *expect;
                cases.push(case);
            }
        }
        for mut case in cases {
            // A key has one successor: each rotation that is meant to succeed gets a fresh key.
            if template == "/v1/keys/self/rotate" && case.auth == bearer(&agency) {
                let (_, fresh) = walk.app.agency("Viajes Rotación").await;
                case.auth = bearer(&fresh);
            }
            walk.send(method, template, case).await;
        }
    }

    let Walk { app, requests, failures, .. } = walk;
    eprintln!("the walk made {requests} requests over {} operations in {:?}", operations.len(), started.elapsed());
    assert!(failures.is_empty(), "{} of {requests} answers break the spec:\n{}", failures.len(), failures.join("\n"));
    assert!(requests > 200, "the walk made only {requests} requests");
    app.stop().await;
}
