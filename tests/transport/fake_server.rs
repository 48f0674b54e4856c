//! A scriptable fake SMTP server, only to inject faults a real server will not produce
//! on demand.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// What the server does.
#[derive(Debug, Clone, Default)]
pub(crate) struct Script {
    /// Greeting line; default `220 fake ESMTP`.
    pub(crate) greeting: Option<&'static str>,
    /// Never send anything.
    pub(crate) silent: bool,
    /// Advertise PIPELINING.
    pub(crate) pipelining: bool,
    /// Recipients refused with 550.
    pub(crate) reject_rcpt: Vec<&'static str>,
    /// The reply after the message data (default 250 with a queue id).
    pub(crate) after_data: Option<&'static str>,
    /// Close the connection after the first line of message data.
    pub(crate) drop_mid_data: bool,
    /// Take the message data, then never answer.
    pub(crate) silent_after_data: bool,
    /// Close a connection idle this long; with `true`, say 421 first.
    pub(crate) idle_close: Option<(Duration, bool)>,
    /// Messages to any of these recipients get 451 after their data.
    pub(crate) tempfail_rcpt: Vec<&'static str>,
    /// Hold each transaction this long before the final reply (to overlap senders).
    pub(crate) data_delay: Option<Duration>,
    /// Advertise `AUTH PLAIN LOGIN` without STARTTLS (a misconfigured server, or a
    /// STARTTLS-stripping attacker) and accept any credentials.
    pub(crate) auth_in_clear: bool,
    /// Recipients greylisted: 451 to their first `RCPT TO`, 250 to later ones.
    pub(crate) greylist_rcpt: Vec<&'static str>,
    /// Answer the greeting (`Some("")`), the message data (`Some(".")`) or the first
    /// command starting with this text with one endless reply line, up to
    /// [`ENDLESS_CAP`] octets.
    pub(crate) endless_reply: Option<&'static str>,
    /// Make the endless reply endless short lines (`250-x`) instead of one line.
    pub(crate) endless_lines: bool,
}

/// Where an endless reply line stops (a client without a bound reads all of it).
pub(crate) const ENDLESS_CAP: usize = 64 << 20;

/// Counters the tests assert on.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub(crate) connections: AtomicUsize,
    pub(crate) concurrent: AtomicUsize,
    pub(crate) max_concurrent: AtomicUsize,
    pub(crate) messages: Mutex<Vec<Vec<String>>>,
    /// The data of each message in `messages`, as the client sent it.
    pub(crate) bodies: Mutex<Vec<String>>,
    /// Every line a client sent, message data included.
    pub(crate) lines: Mutex<Vec<String>>,
    /// Recipients already greylisted once.
    pub(crate) greylisted: Mutex<Vec<String>>,
    /// Octets of the endless reply the server got written before the client hung up
    /// (or [`ENDLESS_CAP`]); sent once the endless reply ends.
    pub(crate) endless_written: tokio::sync::watch::Sender<Option<usize>>,
}

pub(crate) struct FakeServer {
    pub(crate) port: u16,
    pub(crate) stats: Arc<Stats>,
}

impl FakeServer {
    pub(crate) async fn start(script: Script) -> FakeServer {
        Self::start_on(std::net::Ipv4Addr::LOCALHOST.into(), script).await
    }

    /// Listens on `ip` instead of loopback.
    pub(crate) async fn start_on(ip: std::net::IpAddr, script: Script) -> FakeServer {
        let listener = TcpListener::bind((ip, 0)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let stats = Arc::new(Stats::default());
        let s = Arc::clone(&stats);
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let (script, stats) = (script.clone(), Arc::clone(&s));
                tokio::spawn(async move {
                    stats.connections.fetch_add(1, Ordering::SeqCst);
                    let now = stats.concurrent.fetch_add(1, Ordering::SeqCst) + 1;
                    stats.max_concurrent.fetch_max(now, Ordering::SeqCst);
                    let _ = session(socket, &script, &stats).await;
                    stats.concurrent.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        FakeServer { port, stats }
    }

    pub(crate) fn url(&self, query: &str) -> String {
        format!("smtp://127.0.0.1:{}?{query}", self.port)
    }

    pub(crate) fn lines(&self) -> Vec<String> {
        self.stats.lines.lock().unwrap().clone()
    }

    pub(crate) fn messages(&self) -> Vec<Vec<String>> {
        self.stats.messages.lock().unwrap().clone()
    }

    pub(crate) fn bodies(&self) -> Vec<String> {
        self.stats.bodies.lock().unwrap().clone()
    }

    /// Waits for the endless reply to end; the octets written.
    pub(crate) async fn endless_written(&self) -> usize {
        let mut rx = self.stats.endless_written.subscribe();
        let written = rx.wait_for(Option::is_some).await.unwrap();
        written.unwrap_or_default()
    }
}

/// Writes `code` and `xxx…` without a line end (or `x` lines, with `lines`) until the
/// client stops reading or
/// [`ENDLESS_CAP`] octets are out; records how many were written.
async fn endless(write: &mut (impl AsyncWriteExt + Unpin), code: &str, lines: bool, stats: &Stats) {
    let chunk = if lines {
        "x\r\n250-".repeat(8 * 1024).into_bytes()
    } else {
        vec![b'x'; 64 * 1024]
    };
    let mut written = 0;
    if write.write_all(code.as_bytes()).await.is_ok() {
        written = code.len();
        while written < ENDLESS_CAP {
            match write.write(&chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => written += n,
            }
        }
    }
    stats.endless_written.send_replace(Some(written));
}

async fn session(socket: TcpStream, script: &Script, stats: &Stats) -> std::io::Result<()> {
    let (read, mut write) = socket.into_split();
    let mut read = BufReader::new(read);
    if script.silent {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        return Ok(());
    }
    if script.endless_reply == Some("") {
        endless(&mut write, "220-", script.endless_lines, stats).await;
        return Ok(());
    }
    write
        .write_all(format!("{}\r\n", script.greeting.unwrap_or("220 fake ESMTP")).as_bytes())
        .await?;
    if script
        .greeting
        .is_some_and(|g| g.starts_with('4') || g.starts_with('5'))
    {
        return Ok(());
    }

    let mut rcpts: Vec<String> = Vec::new();
    loop {
        let mut line = String::new();
        let n = match script.idle_close {
            Some((idle, say_421)) => {
                match tokio::time::timeout(idle, read.read_line(&mut line)).await {
                    Ok(n) => n?,
                    Err(_) => {
                        if say_421 {
                            write
                                .write_all(b"421 4.4.2 fake idle timeout, closing\r\n")
                                .await?;
                        }
                        return Ok(());
                    }
                }
            }
            None => read.read_line(&mut line).await?,
        };
        if n == 0 {
            return Ok(());
        }
        stats.lines.lock().unwrap().push(line.clone());
        let upper = line.trim_end().to_ascii_uppercase();
        if script
            .endless_reply
            .is_some_and(|c| !c.is_empty() && upper.starts_with(c))
        {
            endless(&mut write, "250-", script.endless_lines, stats).await;
            return Ok(());
        }
        let reply: String = if upper.starts_with("EHLO") {
            let pipelining = if script.pipelining {
                "250-PIPELINING\r\n"
            } else {
                ""
            };
            let auth = if script.auth_in_clear {
                "250-AUTH PLAIN LOGIN\r\n"
            } else {
                ""
            };
            format!("250-fake\r\n{pipelining}{auth}250-8BITMIME\r\n250 SMTPUTF8\r\n")
        } else if script.auth_in_clear && upper.starts_with("AUTH") {
            "235 2.7.0 Authentication successful\r\n".into()
        } else if upper.starts_with("MAIL FROM") {
            rcpts.clear();
            "250 2.1.0 Ok\r\n".into()
        } else if upper.starts_with("RCPT TO:") {
            let addr = line.trim_end()[8..]
                .trim_matches(|c| c == '<' || c == '>')
                .to_owned();
            if script
                .reject_rcpt
                .iter()
                .any(|r| r.eq_ignore_ascii_case(&addr))
            {
                "550 5.1.1 no such user\r\n".into()
            } else if script
                .greylist_rcpt
                .iter()
                .any(|r| r.eq_ignore_ascii_case(&addr))
                && !stats.greylisted.lock().unwrap().contains(&addr)
            {
                stats.greylisted.lock().unwrap().push(addr);
                "451 4.7.1 greylisted, try again later\r\n".into()
            } else {
                rcpts.push(addr);
                "250 2.1.5 Ok\r\n".into()
            }
        } else if upper == "DATA" {
            if rcpts.is_empty() {
                "554 5.5.1 no valid recipients\r\n".into()
            } else {
                write.write_all(b"354 go ahead\r\n").await?;
                let mut first = true;
                let mut body = String::new();
                loop {
                    let mut data = String::new();
                    if read.read_line(&mut data).await? == 0 {
                        return Ok(());
                    }
                    stats.lines.lock().unwrap().push(data.clone());
                    body.push_str(&data);
                    if first && script.drop_mid_data {
                        return Ok(());
                    }
                    first = false;
                    if data == ".\r\n" {
                        break;
                    }
                }
                if script.endless_reply == Some(".") {
                    endless(&mut write, "250-", script.endless_lines, stats).await;
                    return Ok(());
                }
                if script.silent_after_data {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                }
                if let Some(delay) = script.data_delay {
                    tokio::time::sleep(delay).await;
                }
                let tempfail = rcpts
                    .iter()
                    .any(|r| script.tempfail_rcpt.contains(&r.as_str()));
                match script.after_data {
                    Some(reply) => format!("{reply}\r\n"),
                    None if tempfail => "451 4.3.0 try this one later\r\n".into(),
                    None => {
                        stats
                            .messages
                            .lock()
                            .unwrap()
                            .push(std::mem::take(&mut rcpts));
                        stats.bodies.lock().unwrap().push(body);
                        "250 2.0.0 Ok: queued as FAKE1\r\n".into()
                    }
                }
            }
        } else if upper == "RSET" || upper == "NOOP" {
            rcpts.clear();
            "250 2.0.0 Ok\r\n".into()
        } else if upper == "QUIT" {
            write.write_all(b"221 2.0.0 Bye\r\n").await?;
            return Ok(());
        } else {
            "502 5.5.2 command not recognized\r\n".into()
        };
        write.write_all(reply.as_bytes()).await?;
    }
}
