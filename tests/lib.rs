//! mailroom's integration tests: one binary, a module per area.

#[cfg(feature = "deliverability")]
mod deliverability;
mod html;
mod render;
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
