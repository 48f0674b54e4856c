//! A real SMTP server (aiosmtpd) started per test, with a CA made by rcgen.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use base64::Engine;

/// How to start the server.
#[derive(Debug, Default, Clone)]
pub(crate) struct Options {
    pub(crate) tls: &'static str,
    pub(crate) auth: Option<(&'static str, &'static str)>,
    pub(crate) smtputf8: bool,
    pub(crate) reject: Vec<&'static str>,
    pub(crate) exclude_auth: Vec<&'static str>,
    pub(crate) xoauth2_token: Option<&'static str>,
}

/// One received message.
#[derive(Debug)]
pub(crate) struct Received {
    pub(crate) mail_from: String,
    pub(crate) mail_options: Vec<String>,
    pub(crate) rcpt_tos: Vec<String>,
    pub(crate) data: Vec<u8>,
    pub(crate) tls: bool,
    pub(crate) authenticated: bool,
    /// When the server took the message, in seconds since the Unix epoch.
    pub(crate) at: f64,
}

impl Received {
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.data).into_owned()
    }
}

/// A running aiosmtpd; killed on drop.
pub(crate) struct Aiosmtpd {
    child: Child,
    pub(crate) port: u16,
    out: PathBuf,
    pub(crate) ca: PathBuf,
    _dir: tempfile::TempDir,
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Writes a test CA and a server certificate for `localhost` and `127.0.0.1`.
fn write_certificates(dir: &std::path::Path) -> (PathBuf, PathBuf, PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "mailroom test CA");
    let ca_key = KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf_params =
        CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = leaf_params.signed_by(&leaf_key, &ca, &ca_key).unwrap();
    let (ca_path, cert_path, key_path) = (
        dir.join("ca.pem"),
        dir.join("cert.pem"),
        dir.join("key.pem"),
    );
    std::fs::write(&ca_path, ca.pem()).unwrap();
    std::fs::write(&cert_path, leaf.pem()).unwrap();
    std::fs::write(&key_path, leaf_key.serialize_pem()).unwrap();
    (ca_path, cert_path, key_path)
}

impl Aiosmtpd {
    pub(crate) fn start(options: Options) -> Aiosmtpd {
        let dir = tempfile::tempdir().unwrap();
        let (ca, cert, key) = write_certificates(dir.path());
        let out = dir.path().join("received.jsonl");
        let port = free_port();
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/transport/aiosmtpd_server.py"
        );
        let mut cmd = Command::new("python3");
        cmd.arg(script)
            .arg("--port")
            .arg(port.to_string())
            .arg("--out")
            .arg(&out)
            .arg("--tls")
            .arg(if options.tls.is_empty() {
                "none"
            } else {
                options.tls
            })
            .arg("--cert")
            .arg(&cert)
            .arg("--key")
            .arg(&key);
        if let Some((user, password)) = options.auth {
            cmd.args(["--user", user, "--password", password]);
        }
        if options.smtputf8 {
            cmd.arg("--smtputf8");
        }
        for r in &options.reject {
            cmd.args(["--reject", r]);
        }
        for m in &options.exclude_auth {
            cmd.args(["--exclude-auth", m]);
        }
        if let Some(token) = options.xoauth2_token {
            cmd.args(["--xoauth2-token", token]);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 is required for the SMTP tests (run .ci/setup.d/20-smtp.sh)");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(line) if line.trim() == "READY" => {}
            other => {
                let _ = child.kill();
                panic!(
                    "aiosmtpd did not start ({other:?}); it is required: `python3 -m pip install aiosmtpd` (.ci/setup.d/20-smtp.sh)"
                );
            }
        }
        Aiosmtpd {
            child,
            port,
            out,
            ca,
            _dir: dir,
        }
    }

    /// Every message received so far.
    pub(crate) fn received(&self) -> Vec<Received> {
        let Ok(text) = std::fs::read_to_string(&self.out) else {
            return Vec::new();
        };
        text.lines()
            .map(|line| {
                let v: serde_json::Value = serde_json::from_str(line).unwrap();
                let strings = |key: &str| -> Vec<String> {
                    v[key]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|s| s.as_str().unwrap().to_owned())
                        .collect()
                };
                Received {
                    mail_from: v["mail_from"].as_str().unwrap().to_owned(),
                    mail_options: strings("mail_options"),
                    rcpt_tos: strings("rcpt_tos"),
                    data: base64::engine::general_purpose::STANDARD
                        .decode(v["data_b64"].as_str().unwrap())
                        .unwrap(),
                    tls: v["tls"].as_bool().unwrap(),
                    authenticated: v["authenticated"].as_bool().unwrap(),
                    at: v["at"].as_f64().unwrap(),
                }
            })
            .collect()
    }

    pub(crate) fn ca_query(&self) -> String {
        format!("ca={}", self.ca.display())
    }
}

impl Drop for Aiosmtpd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
