//! Scheduled reconciliation runs. Every process evaluates each supplier's cron schedule (UTC)
//! on a short tick; on reaching a new slot it claims it in the database
//! ([`adapters::store::schedule::claim`]) and, only if the claim landed, starts a run over the
//! window that ends at the slot. So several processes on one database run each slot once, and
//! a process starting after a slot that no process ran (all were down) runs the latest one at
//! once. Earlier missed slots are not replayed one by one: the window of the latest covers them
//! as far as it reaches.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use adapters::store::{Database, StoreError};
use chrono::{DateTime, SubsecRound, Utc};
use domain::SupplierCode;

/// The claims' job name.
pub const RECONCILE: &str = "reconcile";

/// Where "now" comes from: the system clock, or a test's.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// What the scheduler runs.
#[derive(Clone)]
pub struct ScheduleConfig {
    /// Each supplier's schedule.
    pub schedules: Vec<(SupplierCode, cron::Schedule)>,
    /// How far back from its slot a scheduled run looks.
    pub window: chrono::Duration,
    /// How often the schedules are looked at: the most a run starts after its slot.
    pub tick: Duration,
    pub clock: Clock,
}

impl ScheduleConfig {
    /// The system clock.
    pub fn system_clock() -> Clock {
        Arc::new(Utc::now)
    }
}

impl std::fmt::Debug for ScheduleConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let schedules: Vec<String> = self.schedules.iter().map(|(s, c)| format!("{s}: {c}")).collect();
        f.debug_struct("ScheduleConfig")
            .field("schedules", &schedules)
            .field("window", &self.window)
            .field("tick", &self.tick)
            .finish_non_exhaustive()
    }
}

/// The latest slot of `schedule` at or before `now`, if one is less than 35 days old (a yearly
/// schedule's last slot is not a missed one).
pub fn latest_slot(schedule: &cron::Schedule, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    // `after(t).next_back()` is the latest slot before `t`; a slot at `now` itself counts, and
    // none later in `now`'s second does.
    let now = now.trunc_subsecs(0);
    let slot = schedule.after(&(now + chrono::Duration::seconds(1))).next_back()?;
    (now - slot <= chrono::Duration::days(35)).then_some(slot)
}

/// Claims and starts the due slots, every `config.tick`, until aborted. A store that is down
/// is logged and tried again on the next tick; a slot is never claimed twice.
pub async fn run(db: Database, config: ScheduleConfig) {
    let mut seen: HashMap<SupplierCode, DateTime<Utc>> = HashMap::new();
    let mut tick = tokio::time::interval(config.tick);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let now = (config.clock)();
        for (supplier, schedule) in &config.schedules {
            let Some(slot) = latest_slot(schedule, now) else { continue };
            if seen.get(supplier) == Some(&slot) {
                continue;
            }
            match start_slot(&db, supplier, slot, config.window).await {
                Ok(()) => {
                    seen.insert(supplier.clone(), slot);
                }
                Err(e) => tracing::warn!(supplier = %supplier, %slot, error = %e, "a scheduled run could not start"),
            }
        }
    }
}

/// Claims `slot` for `supplier` and, if the claim is this caller's, starts its run (in one
/// transaction: a claim that fails leaves the slot to the next tick).
async fn start_slot(
    db: &Database,
    supplier: &SupplierCode,
    slot: DateTime<Utc>,
    window: chrono::Duration,
) -> Result<(), StoreError> {
    if let Some(run) = crate::reconcile::start_scheduled(db, supplier, slot, window).await? {
        tracing::info!(supplier = %supplier, %slot, run = %run.id, "scheduled reconciliation run started");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn the_latest_slot_is_the_one_at_or_before_now() {
        let every_6h = cron::Schedule::from_str("0 0 */6 * * *").unwrap();
        assert_eq!(latest_slot(&every_6h, at("2027-01-10T13:59:59Z")), Some(at("2027-01-10T12:00:00Z")));
        assert_eq!(latest_slot(&every_6h, at("2027-01-10T12:00:00Z")), Some(at("2027-01-10T12:00:00Z")));
        assert_eq!(latest_slot(&every_6h, at("2027-01-10T00:00:01Z")), Some(at("2027-01-10T00:00:00Z")));
        let every_minute = cron::Schedule::from_str("0 * * * * *").unwrap();
        assert_eq!(latest_slot(&every_minute, at("2027-01-10T12:03:30.5Z")), Some(at("2027-01-10T12:03:00Z")));
        // Half a second before a slot, it is not due yet.
        assert_eq!(latest_slot(&every_minute, at("2027-01-10T12:03:59.5Z")), Some(at("2027-01-10T12:03:00Z")));
    }

    #[test]
    fn a_slot_older_than_35_days_is_not_due() {
        let new_year = cron::Schedule::from_str("0 0 0 1 1 *").unwrap();
        assert_eq!(latest_slot(&new_year, at("2027-02-01T00:00:00Z")), Some(at("2027-01-01T00:00:00Z")));
        assert_eq!(latest_slot(&new_year, at("2027-03-01T00:00:00Z")), None);
    }
}
