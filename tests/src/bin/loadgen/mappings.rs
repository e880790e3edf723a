//! `loadgen mappings`: the mapping tables' two hot paths, each beside its floor in the same run.
//!
//! - A cached lookup: `Mappings::translator` (the version-checked cache) and one (room type,
//!   board) translation, against two lookups in a plain `HashMap` of the same codes.
//! - A 10,000-row CSV import through `PUT /v1/mappings/{supplier}/{kind}.csv`, alternating two
//!   files so every round changes every row (parse, plan, delete and insert the rows, audit
//!   each, bump the version), against pgbench running the same writes as one SQL script in one
//!   transaction.

use std::collections::HashMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use adapters::store::api_keys::Role;
use anyhow::{Context, bail};

use crate::{Args, median, ms, spawn};

const ROWS: usize = 10_000;
const LOOKUPS: usize = 1_000_000;
/// bookhub room types the generated rows map to, in turn.
const ROOM_TYPES: [&str; 4] = ["SGL", "DBL", "TWN", "TPL"];

/// A table of `ROWS` room types; `tag` makes each file's descriptions differ.
fn csv(tag: &str) -> String {
    let mut csv = String::from("supplier_code,bookhub_code,description,active,outbound\n");
    for i in 0..ROWS {
        let bookhub = ROOM_TYPES[i % ROOM_TYPES.len()];
        let outbound = i < ROOM_TYPES.len();
        csv += &format!("RT{i:05},{bookhub},Room {i} {tag},true,{outbound}\n");
    }
    csv
}

/// The SQL of one import that changes every row: what bookhub writes, as one script.
fn pgbench_script(tag: &str) -> String {
    let mut sql = String::from(
        "BEGIN;\nUPDATE mapping_versions SET version = version + 1, changed_at = now() WHERE supplier = 'sandbox';\n\
         DELETE FROM code_mappings WHERE supplier = 'pgbench' AND kind = 'room_type';\n",
    );
    for chunk in (0..ROWS).collect::<Vec<_>>().chunks(500) {
        sql += "INSERT INTO code_mappings (supplier, kind, supplier_code, bookhub_code, description, active, outbound, updated_at, updated_by_key, updated_by_label) VALUES ";
        let rows: Vec<String> = chunk
            .iter()
            .map(|i| {
                let bookhub = ROOM_TYPES[i % ROOM_TYPES.len()];
                let outbound = *i < ROOM_TYPES.len();
                format!("('pgbench','room_type','RT{i:05}','{bookhub}','Room {i} {tag}',true,{outbound},now(),'key','label')")
            })
            .collect();
        sql += &rows.join(",");
        sql += ";\n";
        sql += "INSERT INTO mapping_audit (supplier, kind, supplier_code, action, before, after, actor_key, actor_label, via, at) VALUES ";
        let audits: Vec<String> = chunk
            .iter()
            .map(|i| {
                let bookhub = ROOM_TYPES[i % ROOM_TYPES.len()];
                let row = format!(
                    r#"{{"bookhub_code":"{bookhub}","description":"Room {i} {tag}","active":true,"outbound":false}}"#
                );
                format!(
                    "('pgbench','room_type','RT{i:05}','updated','{row}','{row}','key','label','api_csv_import',now())"
                )
            })
            .collect();
        sql += &audits.join(",");
        sql += ";\n";
    }
    sql + "COMMIT;\n"
}

pub async fn run(args: &Args, server: &str) -> anyhow::Result<()> {
    let app = spawn(args, server, |s| s.jobs.enabled = false).await;
    let staff = app.key(Role::Staff).await;
    println!("loadgen mappings: {ROWS}-row CSV imports and {LOOKUPS} cached lookups, {} rounds", args.rounds);

    // Cached lookups, against a HashMap of the same two codes.
    let mappings = app.jobs().mappings.clone();
    let sandbox = "sandbox".parse().expect("a supplier code");
    let mut floor: HashMap<(u8, String), String> = HashMap::new();
    floor.insert((0, "DBL".into()), "DBL".into());
    floor.insert((1, "BB".into()), "BB".into());
    let (mut cached, mut floors) = (Vec::new(), Vec::new());
    for round in 1..=args.rounds {
        let started = Instant::now();
        for _ in 0..LOOKUPS {
            let translator = mappings.translator(&sandbox).await.context("a translator")?;
            black_box(translator.room(black_box("DBL"), black_box("BB")).is_ok());
        }
        let hub = started.elapsed().as_nanos() as f64 / LOOKUPS as f64;
        let started = Instant::now();
        for _ in 0..LOOKUPS {
            let room = floor.get(&(0, black_box("DBL").to_owned()));
            let board = floor.get(&(1, black_box("BB").to_owned()));
            black_box(room.is_some() && board.is_some());
        }
        let raw = started.elapsed().as_nanos() as f64 / LOOKUPS as f64;
        println!(
            "round {round}: cached lookup {hub:.0} ns, HashMap floor {raw:.0} ns, ratio floor/bookhub {:.2}",
            raw / hub
        );
        cached.push(hub);
        floors.push(raw);
    }

    // 10,000-row imports, against pgbench with the same writes.
    let url = app.url("/v1/mappings/sandbox/room_type.csv");
    let files = [csv("a"), csv("b")];
    let scripts = tempfile::tempdir()?;
    let mut paths = Vec::new();
    for (i, tag) in ["a", "b"].iter().enumerate() {
        let path = scripts.path().join(format!("import-{i}.sql"));
        std::fs::write(&path, pgbench_script(tag))?;
        paths.push(path);
    }
    let import = |body: String| {
        let request = app.client.put(&url).bearer_auth(&staff).header("content-type", "text/csv").body(body);
        async move {
            let answer = request.send().await?;
            anyhow::ensure!(answer.status() == 200, "import answered {}", answer.status());
            Ok::<_, anyhow::Error>(())
        }
    };
    // Warm-up: the first import adds every row and pgbench's first run deletes none; the
    // rounds change every row on both sides.
    import(files[1].clone()).await?;
    pgbench(&app.database_url, &paths[1])?;
    let (mut imports, mut pgbenches) = (Vec::new(), Vec::new());
    for round in 1..=args.rounds {
        let started = Instant::now();
        import(files[(round - 1) % 2].clone()).await?;
        let hub = started.elapsed();
        let raw = pgbench(&app.database_url, &paths[(round - 1) % 2])?;
        println!(
            "round {round}: import {:.0} ms, pgbench {:.0} ms, ratio pgbench/bookhub {:.2}",
            ms(hub),
            ms(raw),
            raw.as_secs_f64() / hub.as_secs_f64()
        );
        imports.push(ms(hub));
        pgbenches.push(ms(raw));
    }
    println!(
        "median: cached lookup {:.0} ns (floor {:.0} ns); {ROWS}-row import {:.0} ms (pgbench {:.0} ms, ratio {:.2})",
        median(cached),
        median(floors),
        median(imports.clone()),
        median(pgbenches.clone()),
        median(pgbenches) / median(imports)
    );
    app.stop().await;
    Ok(())
}

/// One run of `script` by pgbench (one client, one transaction): its latency.
fn pgbench(database_url: &str, script: &std::path::Path) -> anyhow::Result<Duration> {
    let out = std::process::Command::new("pgbench")
        .args(["-n", "-c", "1", "-t", "1", "-f"])
        .arg(script)
        // Without the sqlx options bookhub's URL carries (libpq refuses them).
        .arg(database_url.split('?').next().unwrap_or(database_url))
        .output()
        .context("running pgbench (apt-get install postgresql-contrib)")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let Some(line) = stdout.lines().find(|l| l.starts_with("latency average")) else {
        bail!("pgbench said: {stdout}{}", String::from_utf8_lossy(&out.stderr));
    };
    let value: f64 = line.split_whitespace().nth(3).context("a latency")?.parse()?;
    Ok(Duration::from_secs_f64(value / 1000.0))
}
