//! Real worker processes for the multi-process tests: `examples/task_worker.rs`, built once
//! per test run and pointed at any queue URL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

/// The example worker binary, built (with every feature) on first use.
pub(crate) fn worker_exe() -> PathBuf {
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    EXE.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let mut build = Command::new(cargo);
        // Without the variables cargo sets for this test process: build scripts (ring's)
        // watch some of them, and seeing them change would rebuild dependencies each run.
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy();
            if (key.starts_with("CARGO_") && key != "CARGO_HOME" && key != "CARGO_TARGET_DIR")
                || key == "OUT_DIR"
            {
                build.env_remove(&*key);
            }
        }
        let status = build
            .args([
                "build",
                "--quiet",
                "--all-features",
                "--example",
                "task_worker",
            ])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("run cargo build for the example worker");
        assert!(status.success(), "building examples/task_worker failed");
        let deps = std::env::current_exe().unwrap();
        let exe = deps
            .parent()
            .unwrap()
            .parent()
            .unwrap()
            .join("examples")
            .join("task_worker");
        assert!(exe.exists(), "{} missing", exe.display());
        exe
    })
    .clone()
}

/// Starts `task_worker work QUEUE_URL OUT EXTRA...`.
pub(crate) fn spawn_worker(queue_url: &str, out: &Path, extra: &[&str]) -> Child {
    Command::new(worker_exe())
        .arg("work")
        .arg(queue_url)
        .arg(out)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn the example worker")
}

/// `(n, attempt, worker)` per whole line of the side-effect file (a line being written when
/// a worker was killed is skipped).
pub(crate) fn lines(out: &Path) -> Vec<(u64, u32, String)> {
    let text = std::fs::read_to_string(out).unwrap_or_default();
    text.lines()
        .filter(|l| l.ends_with(|c: char| !c.is_whitespace()))
        .filter_map(|l| {
            let mut parts = l.split(' ');
            Some((
                parts.next()?.parse().ok()?,
                parts.next()?.parse().ok()?,
                parts.next()?.to_owned(),
            ))
        })
        .collect()
}

/// Sends SIGTERM to a worker.
pub(crate) fn sigterm(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -TERM failed");
}
