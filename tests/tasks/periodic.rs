//! Periodic tasks with no leader: every worker runs the schedule, each slot is stored once
//! (its idempotency key is `NAME@SLOT-TIME`) — with three worker processes killed and
//! restarted at random, and after a start that catches up the recent past.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Child;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, DurationRound, SecondsFormat, Utc};
use mailroom::tasks::{
    NewTask, Periodic, Registry, SqliteBackend, SqliteOptions, Task, TaskContext, TaskFailure,
    Worker, WorkerBackend,
};
use rand::Rng;
use sqlx::Connection;

use super::worker_process::spawn_worker;

/// The stored slots of schedule `tick`: slot time → how many tasks. Each key must name its
/// task's `run_after`.
async fn slots(db: &Path) -> BTreeMap<DateTime<Utc>, usize> {
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite:{}", db.display()))
        .await
        .unwrap();
    // One read (workers may be enqueueing meanwhile): every task of the schedule, keyed or
    // not. Slots are counted by `run_after`, not by key: a doubled slot under two spellings
    // of its key would show here.
    let rows: Vec<(Option<String>, i64)> = sqlx::query_as(
        "SELECT idempotency_key, run_after FROM mailroom_tasks WHERE task_name = 'noop'",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
    let mut slots = BTreeMap::new();
    for (key, run_after) in rows {
        let key = key.expect("a periodic task without a slot key");
        let at = DateTime::from_timestamp_micros(run_after).unwrap();
        assert_eq!(
            key,
            format!("tick@{}", at.to_rfc3339_opts(SecondsFormat::Secs, true)),
            "the key names the slot"
        );
        *slots.entry(at).or_insert(0) += 1;
    }
    slots
}

/// Every second after `from` up to `to` is a slot stored exactly once; no slot is doubled.
fn assert_every_slot_once(
    slots: &BTreeMap<DateTime<Utc>, usize>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) {
    let doubled: Vec<_> = slots.iter().filter(|(_, n)| **n != 1).collect();
    assert!(
        doubled.is_empty(),
        "slots stored more than once: {doubled:?}"
    );
    let mut at =
        from.duration_trunc(chrono::Duration::seconds(1)).unwrap() + chrono::Duration::seconds(1);
    let mut missing = Vec::new();
    while at <= to {
        if !slots.contains_key(&at) {
            missing.push(at);
        }
        at += chrono::Duration::seconds(1);
    }
    assert!(missing.is_empty(), "slots never enqueued: {missing:?}");
}

/// Waits until a slot at or after `from` is stored; fails after `give_up_secs` seconds.
async fn wait_for_a_slot_from(db: &Path, from: DateTime<Utc>, give_up_secs: u64) {
    let give_up = tokio::time::Instant::now() + Duration::from_secs(give_up_secs);
    while slots(db).await.range(from..).next().is_none() {
        assert!(
            tokio::time::Instant::now() < give_up,
            "no slot at or after {from} was stored within {give_up_secs} s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Worker processes, killed when dropped.
struct Workers(Vec<Child>);

impl Drop for Workers {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_workers_restarted_at_random_enqueue_every_slot_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tasks.db");
    let out = dir.path().join("side-effects.txt");
    let url = format!("sqlite:{}", db.display());
    SqliteBackend::connect_with(SqliteOptions::new(&db))
        .await
        .unwrap();
    let args = ["--periodic", "* * * * * *", "--poll-ms", "50"];
    let start = Utc::now();
    let mut workers = Workers((0..3).map(|_| spawn_worker(&url, &out, &args)).collect());
    // 30 one-second slots, a worker killed (SIGKILL) and restarted every 0.3 to 1.5 s.
    let mut restarts = 0;
    let until = tokio::time::Instant::now() + Duration::from_secs(30);
    while tokio::time::Instant::now() < until {
        let (pause, victim) = {
            let mut rng = rand::rng();
            (rng.random_range(300..1500), rng.random_range(0..3))
        };
        tokio::time::sleep(Duration::from_millis(pause)).await;
        let w = &mut workers.0[victim];
        w.kill().unwrap();
        w.wait().unwrap();
        *w = spawn_worker(&url, &out, &args);
        restarts += 1;
    }
    let end = Utc::now();
    // Each pass stores the slots of the next 10 s, and each worker's first pass catches up
    // the last 60 s, so once a worker has made a pass after `end` every slot up to `end`
    // must be there. On a loaded machine a restarted worker may take seconds to make its
    // first pass, and the last pass before `end` may lie more than 10 s back: let the
    // workers (no longer killed) run until one has stored a slot beyond `end`.
    wait_for_a_slot_from(&db, end + chrono::Duration::seconds(1), 120).await;
    // (Killed, not stopped: one may have been spawned a moment ago, before it handles
    // SIGTERM.)
    drop(workers);
    eprintln!("{restarts} restarts over {:?}", end - start);
    assert!(restarts >= 15, "only {restarts} restarts");
    let stored = slots(&db).await;
    assert_every_slot_once(&stored, start, end);
    assert!(
        stored.range(start..=end).count() >= 30,
        "fewer than 30 slots in the run"
    );
}

/// Does nothing: the scheduled task.
struct Noop;

#[async_trait::async_trait]
impl Task for Noop {
    const NAME: &'static str = "noop";
    type Args = u64;
    type Output = ();

    async fn run(&self, _ctx: TaskContext, _n: u64) -> Result<(), TaskFailure> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starting_workers_catch_up_the_recent_past_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tasks.db");
    let backend: Arc<dyn WorkerBackend> = Arc::new(
        SqliteBackend::connect_with(SqliteOptions::new(&db))
            .await
            .unwrap(),
    );
    let schedule = Periodic::new("tick", "* * * * * *", NewTask::new("noop", 0.into()))
        .unwrap()
        .catch_up(Duration::from_secs(5));
    let start = Utc::now();
    // Two workers with the same schedule start together.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut runs = Vec::new();
    for _ in 0..2 {
        let worker = Worker::builder(backend.clone(), Registry::new().with(Noop))
            .periodic(schedule.clone())
            .poll_interval(Duration::from_millis(20))
            .build();
        let mut stopped = stopped.clone();
        runs.push(tokio::spawn(async move {
            worker
                .run(async move {
                    let _ = stopped.wait_for(|s| *s).await;
                })
                .await
                .unwrap()
        }));
    }
    // The first pass stores the last 5 s and the next few (slots go in ahead of time).
    let want = start + chrono::Duration::seconds(5);
    wait_for_a_slot_from(&db, want, 60).await;
    stop.send(true).unwrap();
    for r in runs {
        r.await.unwrap();
    }
    let stored = slots(&db).await;
    let window = start - chrono::Duration::seconds(5);
    let first = *stored.keys().next().unwrap();
    // A worker's window starts when its scheduler does, a little (on a loaded machine, a
    // second or two) after `start`: the first slot lies in the catch-up window, in the past,
    // and from it on every slot is there once.
    assert!(
        first >= window - chrono::Duration::seconds(1),
        "a slot before the catch-up window: {first}"
    );
    assert!(
        first <= start - chrono::Duration::seconds(2),
        "the past was not caught up: the first slot is {first}, the workers started at {start}"
    );
    assert_every_slot_once(&stored, first - chrono::Duration::seconds(1), want);
}
