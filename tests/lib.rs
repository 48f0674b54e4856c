//! mailroom's integration tests: one binary, a module per area.

// The helpers for SMTP servers and worker processes serve the tests of the `smtp` and `cli`
// features; a build without them leaves the helpers unused (CI lints with every feature).
#![cfg_attr(not(all(feature = "smtp", feature = "cli")), allow(dead_code))]

#[cfg(feature = "deliverability")]
mod deliverability;
mod html;
mod render;
// Runs the `mailroom` program, which the `cli` feature builds.
#[cfg(feature = "cli")]
mod send_mail;
mod tasks;
#[cfg(feature = "templates")]
mod templates;
mod transport;
#[cfg(feature = "web")]
mod web;

/// Kills the listed processes (SIGKILL) when dropped, so that a failing test leaves no
/// worker process running behind it.
pub(crate) struct KillOnDrop(pub(crate) Vec<u32>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        for pid in &self.0 {
            let _ = std::process::Command::new("kill")
                .args(["-9", &pid.to_string()])
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
}
