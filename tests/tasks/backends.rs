//! The conformance suite, run once per backend, each case on fresh storage.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicUsize, Ordering};

use mailroom::tasks::conformance::{self, CONFORMANCE_QUEUES};
use mailroom::tasks::{DummyBackend, ImmediateBackend};
#[cfg(feature = "sqlite")]
use mailroom::tasks::{SqliteBackend, SqliteOptions};

#[cfg(feature = "sqlite")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_backend_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let n = AtomicUsize::new(0);
    conformance::run_all(|| async {
        let i = n.fetch_add(1, Ordering::SeqCst);
        let path = dir.path().join(format!("case-{i}.db"));
        SqliteBackend::connect_with(SqliteOptions::new(path).queues(CONFORMANCE_QUEUES))
            .await
            .unwrap()
    })
    .await;
    assert!(
        n.load(Ordering::SeqCst) > 20,
        "every case got fresh storage"
    );
}

#[tokio::test]
async fn immediate_backend_validates() {
    conformance::run_validation(|| async {
        ImmediateBackend::with_queues(conformance::registry(), CONFORMANCE_QUEUES)
    })
    .await;
}

#[tokio::test]
async fn dummy_backend_validates() {
    conformance::run_validation(|| async { DummyBackend::with_queues(CONFORMANCE_QUEUES) }).await;
}
