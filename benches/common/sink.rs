//! Postfix's `smtp-sink` on a free loopback port, for the SMTP benches; stopped on drop.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running `smtp-sink`; killed on drop.
pub(crate) struct Sink(pub(crate) Child);

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `smtp-sink -u nobody -c 127.0.0.1:PORT 1000` and waits until it listens.
pub(crate) fn start_sink() -> (Sink, u16) {
    let binary = ["/usr/sbin/smtp-sink", "/usr/bin/smtp-sink"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("smtp-sink not found: apt-get install postfix (.ci/setup.d/20-smtp.sh)");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let sink = Sink(
        Command::new(binary)
            .args(["-u", "nobody", "-c", &format!("127.0.0.1:{port}"), "1000"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot start smtp-sink"),
    );
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return (sink, port);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("smtp-sink did not listen on {port}");
}
