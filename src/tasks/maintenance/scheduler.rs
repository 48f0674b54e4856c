//! The scheduler: enqueues periodic tasks ([`Periodic`]) on their cron schedule, each slot
//! exactly once, with no leader.
//!
//! Every worker given a schedule runs it. A slot's task carries the idempotency key
//! `NAME@SLOT-TIME` (the slot's time in RFC 3339, UTC, to the second), so however many
//! workers enqueue a slot, the backend stores one task for it. Slots are enqueued a little
//! ahead of their time (`run_after` is the slot's time), so a slot is stored while at least
//! one worker runs before it comes; a worker that starts catches up the slots of the last
//! [`Periodic::catch_up`] window, so a restart of every worker loses none of those.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use chrono_tz::Tz;
use croner::Cron;
use tokio::sync::watch;

use crate::tasks::{NewTask, TaskError, UniqueScope, WorkerBackend};

/// How far ahead of its time a slot is enqueued.
const AHEAD: Duration = Duration::from_secs(10);

/// How often the scheduler looks at its schedules.
const TICK: Duration = Duration::from_secs(1);

/// At most this many slots of one schedule per enqueue.
const MAX_SLOTS_PER_PASS: usize = 1000;

/// The default [`Periodic::catch_up`] window.
pub const DEFAULT_CATCH_UP: Duration = Duration::from_secs(60);

/// A task enqueued on a cron schedule, registered on a worker with
/// [`WorkerBuilder::periodic`](crate::tasks::WorkerBuilder::periodic).
///
/// The expression has five fields (minute, hour, day of month, month, day of week) or six
/// with seconds first, as [`croner`] reads them (`*/15 * * * * *`: every 15 seconds;
/// `0 30 9 * * MON-FRI`: 09:30:00 on weekdays), in UTC unless
/// [`Periodic::time_zone`] says otherwise.
///
/// ```
/// use mailroom::tasks::{NewTask, Periodic};
///
/// let digest = Periodic::new("digest", "0 0 8 * * *", NewTask::new("send_digest", serde_json::json!({})))?
///     .time_zone("Europe/Paris")?;
/// assert_eq!(digest.name(), "digest");
/// # Ok::<(), mailroom::tasks::TaskError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Periodic {
    name: String,
    expression: String,
    cron: Arc<Cron>,
    zone: Tz,
    task: NewTask,
    catch_up: Duration,
}

impl Periodic {
    /// `task` enqueued at every slot of the cron `expression`, under the schedule `name`
    /// (its slots' idempotency keys are `NAME@SLOT-TIME`).
    ///
    /// # Errors
    ///
    /// [`TaskError::Invalid`] naming `name` (empty, over 200 bytes, or holding `@`),
    /// `cron` (not a cron expression), or `idempotency_key` / `unique` when `task` has its
    /// own (the schedule sets them).
    pub fn new(
        name: impl Into<String>,
        expression: &str,
        task: NewTask,
    ) -> Result<Self, TaskError> {
        let name = name.into();
        if name.is_empty() || name.len() > 200 || name.contains('@') {
            return Err(TaskError::invalid(
                "name",
                "a schedule's name must be 1 to 200 bytes long, without `@`",
            ));
        }
        let cron = Cron::from_str(expression).map_err(|e| {
            TaskError::invalid(
                "cron",
                format!(
                    "`{expression}` is not a cron expression ({e}); write five fields, or six with seconds first"
                ),
            )
        })?;
        if task.idempotency_key.is_some() {
            return Err(TaskError::invalid(
                "idempotency_key",
                "a periodic task gets its key from the schedule (`NAME@SLOT-TIME`); leave it unset",
            ));
        }
        if task.unique != UniqueScope::Forever {
            return Err(TaskError::invalid(
                "unique",
                "a periodic task's key must stay taken, or a slot could run twice; leave `unique` at its default",
            ));
        }
        Ok(Periodic {
            name,
            expression: expression.to_owned(),
            cron: Arc::new(cron),
            zone: Tz::UTC,
            task,
            catch_up: DEFAULT_CATCH_UP,
        })
    }

    /// Reads the expression in this IANA time zone (e.g. `Europe/Paris`; default `UTC`):
    /// `0 0 8 * * *` is 08:00 there, summer and winter.
    ///
    /// # Errors
    ///
    /// [`TaskError::Invalid`] naming `time_zone` for a name the IANA database lacks.
    pub fn time_zone(mut self, zone: &str) -> Result<Self, TaskError> {
        self.zone = Tz::from_str(zone).map_err(|_| {
            TaskError::invalid(
                "time_zone",
                format!("`{zone}` is not an IANA time zone name (e.g. `Europe/Paris`, `UTC`)"),
            )
        })?;
        Ok(self)
    }

    /// How far back a starting worker enqueues slots that no worker enqueued (default
    /// [`DEFAULT_CATCH_UP`], one minute; zero: none). Slots already stored are not
    /// doubled. Keep it well under the worker's result retention: a slot whose task was
    /// pruned would be enqueued again.
    pub fn catch_up(mut self, window: Duration) -> Self {
        self.catch_up = window;
        self
    }

    /// The schedule's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The cron expression.
    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// The idempotency key of the slot at `slot`: `NAME@2026-01-31T08:00:00Z`.
    pub fn slot_key(&self, slot: DateTime<Utc>) -> String {
        format!(
            "{}@{}",
            self.name,
            slot.to_rfc3339_opts(SecondsFormat::Secs, true)
        )
    }

    /// The slots after `after` and at or before `until`, in order, at most `limit`.
    pub fn slots(
        &self,
        after: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Vec<DateTime<Utc>> {
        let mut slots = Vec::new();
        let mut from = after.with_timezone(&self.zone);
        while slots.len() < limit {
            let Ok(next) = self.cron.find_next_occurrence(&from, false) else {
                break;
            };
            let at = next.with_timezone(&Utc);
            if at > until {
                break;
            }
            slots.push(at);
            from = next;
        }
        slots
    }

    /// The task of the slot at `slot`.
    fn task_at(&self, slot: DateTime<Utc>) -> NewTask {
        self.task
            .clone()
            .run_after(slot)
            .idempotency_key(self.slot_key(slot))
    }
}

/// Enqueues the slots of `schedule` after `after` and up to `until`; returns the last slot
/// it stored (or found stored), so the next pass starts after it. A storage error stores
/// nothing and returns `None` (the next pass tries again); a slot whose key holds a
/// different task (the schedule's task changed since) is skipped with a warning.
async fn enqueue_slots(
    backend: &dyn WorkerBackend,
    schedule: &Periodic,
    after: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let slots = schedule.slots(after, until, MAX_SLOTS_PER_PASS);
    let last = *slots.last()?;
    let tasks = slots.iter().map(|s| schedule.task_at(*s)).collect();
    match backend.enqueue_many(tasks).await {
        Ok(_) => Some(last),
        Err(TaskError::Conflict { .. }) => {
            // One at a time, to store the slots that do not clash.
            for slot in &slots {
                match backend.enqueue(schedule.task_at(*slot)).await {
                    Ok(_) => {}
                    Err(e @ TaskError::Conflict { .. }) => {
                        tracing::warn!(schedule = %schedule.name, %slot, error = %e, "slot already taken by a different task; skipped");
                    }
                    Err(e) => {
                        tracing::error!(schedule = %schedule.name, %slot, error = %e, "enqueueing a periodic task failed; trying again");
                        return None;
                    }
                }
            }
            Some(last)
        }
        Err(e) => {
            tracing::error!(schedule = %schedule.name, error = %e, "enqueueing periodic tasks failed; trying again");
            None
        }
    }
}

/// Runs the schedules until `stop` turns true: at once (catching up the last
/// [`Periodic::catch_up`] of each), then every second, each pass enqueueing the slots due
/// within the next few seconds that this worker has not enqueued yet.
pub(crate) async fn run(
    backend: Arc<dyn WorkerBackend>,
    schedules: Vec<Periodic>,
    mut stop: watch::Receiver<bool>,
) {
    let started = Utc::now();
    let mut done: Vec<DateTime<Utc>> = schedules
        .iter()
        .map(|s| {
            chrono::Duration::from_std(s.catch_up)
                .ok()
                .and_then(|w| started.checked_sub_signed(w))
                .unwrap_or(DateTime::<Utc>::MIN_UTC)
        })
        .collect();
    let ahead = chrono::Duration::from_std(AHEAD).unwrap_or_default();
    loop {
        let until = Utc::now() + ahead;
        for (schedule, done) in schedules.iter().zip(done.iter_mut()) {
            // A long catch-up goes in slices of MAX_SLOTS_PER_PASS.
            while let Some(last) = enqueue_slots(backend.as_ref(), schedule, *done, until).await {
                *done = last;
                if *stop.borrow() {
                    return;
                }
            }
        }
        if !super::tick(TICK, &mut stop).await {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn noop() -> NewTask {
        NewTask::new("noop", serde_json::json!(null))
    }

    #[test]
    fn slots_follow_the_expression_with_seconds() {
        let p = Periodic::new("tick", "*/20 * * * * *", noop()).unwrap();
        let slots = p.slots(at("2026-01-01T00:00:00Z"), at("2026-01-01T00:01:00Z"), 10);
        assert_eq!(
            slots,
            [
                at("2026-01-01T00:00:20Z"),
                at("2026-01-01T00:00:40Z"),
                at("2026-01-01T00:01:00Z")
            ]
        );
        assert_eq!(p.slot_key(slots[0]), "tick@2026-01-01T00:00:20Z");
        assert_eq!(
            p.slots(at("2026-01-01T00:00:00Z"), at("2026-01-01T01:00:00Z"), 2)
                .len(),
            2
        );
    }

    #[test]
    fn a_time_zone_keeps_local_time_across_daylight_saving() {
        let p = Periodic::new("digest", "0 0 8 * * *", noop())
            .unwrap()
            .time_zone("Europe/Paris")
            .unwrap();
        // 08:00 in Paris is 07:00 UTC in winter and 06:00 UTC in summer.
        let winter = p.slots(at("2026-03-27T12:00:00Z"), at("2026-03-28T12:00:00Z"), 5);
        let summer = p.slots(at("2026-03-28T12:00:00Z"), at("2026-03-29T12:00:00Z"), 5);
        assert_eq!(winter, [at("2026-03-28T07:00:00Z")]);
        assert_eq!(summer, [at("2026-03-29T06:00:00Z")]);
        assert_eq!(
            Periodic::new("d", "0 0 8 * * *", noop())
                .unwrap()
                .time_zone("Mars/Olympus")
                .unwrap_err()
                .field(),
            Some("time_zone")
        );
    }

    #[test]
    fn bad_schedules_are_refused_naming_the_field() {
        let field = |r: Result<Periodic, TaskError>| r.unwrap_err().field().map(str::to_owned);
        assert_eq!(
            field(Periodic::new("x", "every day", noop())),
            Some("cron".to_owned())
        );
        assert_eq!(
            field(Periodic::new("", "* * * * *", noop())),
            Some("name".to_owned())
        );
        assert_eq!(
            field(Periodic::new("a@b", "* * * * *", noop())),
            Some("name".to_owned())
        );
        assert_eq!(
            field(Periodic::new("x", "* * * * *", noop().idempotency_key("k"))),
            Some("idempotency_key".to_owned())
        );
        assert_eq!(
            field(Periodic::new(
                "x",
                "* * * * *",
                noop().unique(UniqueScope::UntilFinished)
            )),
            Some("unique".to_owned())
        );
    }
}
