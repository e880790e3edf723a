//! Scheduled reconciliation runs on one Postgres shared by two bookhub processes (two
//! schedulers, each with its own connection pool): each slot runs once in all, and a slot
//! missed while both were stopped runs once at the next start. The schedule is every minute;
//! the clock is the test's, so three slots take milliseconds instead of minutes.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use adapters::store::{Database, queue, reconciliation, schedule};
use bookhub_tests::{Backend, TestApp, eventually, postgres_available_or_skip};
use chrono::{DateTime, Utc};
use domain::SupplierCode;
use jobs::schedule::{RECONCILE, ScheduleConfig};
use tokio::task::JoinHandle;

/// The time every process reads, set by the test.
#[derive(Clone)]
struct TestClock {
    micros: Arc<AtomicI64>,
}

impl TestClock {
    fn at(time: &str) -> TestClock {
        let clock = TestClock { micros: Arc::new(AtomicI64::new(0)) };
        clock.set(time);
        clock
    }

    fn set(&self, time: &str) {
        let time: DateTime<Utc> = time.parse().unwrap();
        self.micros.store(time.timestamp_micros(), Ordering::SeqCst);
    }
}

/// One bookhub process's scheduler, and how often it has read the clock (once per tick).
struct Process {
    task: JoinHandle<()>,
    reads: Arc<AtomicU64>,
}

impl Process {
    async fn start(url: &str, supplier: &SupplierCode, clock: &TestClock) -> Process {
        let db = Database::connect(url, 4).await.unwrap();
        let reads = Arc::new(AtomicU64::new(0));
        let (micros, counted) = (clock.micros.clone(), reads.clone());
        let config = ScheduleConfig {
            schedules: vec![(supplier.clone(), "0 * * * * *".parse().unwrap())],
            window: chrono::Duration::hours(1),
            tick: Duration::from_millis(10),
            clock: Arc::new(move || {
                counted.fetch_add(1, Ordering::SeqCst);
                DateTime::from_timestamp_micros(micros.load(Ordering::SeqCst)).unwrap()
            }),
        };
        Process { task: tokio::spawn(jobs::schedule::run(db, config)), reads }
    }

    /// Waits until this process has finished a whole tick after now: the clock read twice more.
    async fn ticked(&self) {
        let from = self.reads.load(Ordering::SeqCst);
        eventually(Duration::from_secs(10), || async {
            let reads = self.reads.load(Ordering::SeqCst);
            if reads >= from + 2 { Ok(()) } else { Err(format!("{} reads", reads - from)) }
        })
        .await;
    }
}

/// The slots the runs so far cover, oldest first (a run's window ends at its slot).
async fn run_slots(db: &Database, supplier: &SupplierCode) -> Vec<DateTime<Utc>> {
    let mut slots: Vec<_> =
        reconciliation::runs(db, supplier, 100).await.unwrap().iter().map(|r| r.window_to).collect();
    slots.sort();
    slots
}

async fn settled(processes: &[&Process]) {
    for p in processes {
        p.ticked().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_run_each_slot_once_and_a_missed_slot_at_start() {
    if !postgres_available_or_skip("two_processes_run_each_slot_once_and_a_missed_slot_at_start") {
        return;
    }
    let app = TestApp::spawn_with(Backend::Postgres, bookhub_tests::no_workers).await;
    let supplier: SupplierCode = "jsonrest".parse().unwrap();
    let clock = TestClock::at("2027-01-10T12:00:30Z");
    // Both start inside the 12:00 slot, then the clock crosses 12:01 and 12:02.
    let a = Process::start(&app.database_url, &supplier, &clock).await;
    let b = Process::start(&app.database_url, &supplier, &clock).await;
    for next in ["2027-01-10T12:01:30Z", "2027-01-10T12:02:30Z"] {
        settled(&[&a, &b]).await;
        clock.set(next);
    }
    settled(&[&a, &b]).await;
    let at = |t: &str| t.parse::<DateTime<Utc>>().unwrap();
    let three = vec![at("2027-01-10T12:00:00Z"), at("2027-01-10T12:01:00Z"), at("2027-01-10T12:02:00Z")];
    assert_eq!(run_slots(&app.db, &supplier).await, three, "3 slots, 3 runs in all");
    assert_eq!(schedule::claimed(&app.db, RECONCILE, &supplier).await.unwrap(), three);

    // Both stop; 12:03 to 12:05 pass with no process up. At the next start the latest missed
    // slot runs once, though both start together.
    a.task.abort();
    b.task.abort();
    clock.set("2027-01-10T12:05:10Z");
    let a = Process::start(&app.database_url, &supplier, &clock).await;
    let b = Process::start(&app.database_url, &supplier, &clock).await;
    settled(&[&a, &b]).await;
    let mut four = three;
    four.push(at("2027-01-10T12:05:00Z"));
    assert_eq!(run_slots(&app.db, &supplier).await, four, "the missed slot ran once");

    // Each scheduled run is queued for the workers, its window the hour before its slot.
    let runs = reconciliation::runs(&app.db, &supplier, 100).await.unwrap();
    assert!(runs.iter().all(|r| r.window_to - r.window_from == chrono::Duration::hours(1)));
    let queued = queue::count(app.db.pool(), jobs::reconcile::Reconcile::QUEUE, None).await.unwrap();
    assert_eq!(queued, 4);
}
