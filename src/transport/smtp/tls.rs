//! TLS settings: lettre's parameters for STARTTLS, a rustls config for implicit TLS, and
//! the stream wrapper that lets lettre run over a TLS stream mailroom opened itself.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use lettre::transport::smtp::client::{AsyncTokioStream, Certificate, TlsParameters};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::error::{Error, Result};

/// Certificate trust for one server: the web PKI roots plus any CA the user added.
#[derive(Clone)]
pub(crate) struct TlsConfig {
    /// For STARTTLS, which lettre performs.
    pub(crate) starttls: TlsParameters,
    /// For implicit TLS, which mailroom performs before handing the stream to lettre.
    pub(crate) implicit: Arc<rustls::ClientConfig>,
    pub(crate) server_name: ServerName<'static>,
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

impl TlsConfig {
    pub(crate) fn new(host: &str, extra_roots: &[(String, Vec<u8>)]) -> Result<Self> {
        let bare_host = host.trim_start_matches('[').trim_end_matches(']');
        let server_name = ServerName::try_from(bare_host.to_owned()).map_err(|_| {
            Error::configuration(
                "smtp.host",
                format!("`{host}` is not a valid DNS name or IP address"),
            )
        })?;
        let mut builder = TlsParameters::builder(bare_host.to_owned());
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        for (field, pem) in extra_roots {
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| {
                    Error::configuration(
                        field.clone(),
                        format!("is not a PEM certificate file: {e}"),
                    )
                })?;
            if certs.is_empty() {
                return Err(Error::configuration(
                    field.clone(),
                    "holds no PEM certificate",
                ));
            }
            for cert in certs {
                let lettre_cert = Certificate::from_der(cert.to_vec()).map_err(|e| {
                    Error::configuration(field.clone(), format!("holds a bad certificate: {e}"))
                })?;
                builder = builder.add_root_certificate(lettre_cert);
                roots.add(cert).map_err(|e| {
                    Error::configuration(field.clone(), format!("holds a bad certificate: {e}"))
                })?;
            }
        }
        let starttls = builder
            .build_rustls()
            .map_err(|e| Error::configuration("smtp.tls", format!("cannot set up TLS: {e}")))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let implicit = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::configuration("smtp.tls", format!("cannot set up TLS: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(TlsConfig {
            starttls,
            implicit: Arc::new(implicit),
            server_name,
        })
    }
}

/// A TLS stream over a tuned TCP stream, in the shape lettre accepts.
#[derive(Debug)]
pub(crate) struct TlsStream(pub(crate) tokio_rustls::client::TlsStream<TcpStream>);

impl AsyncRead for TlsStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }
}

impl AsyncTokioStream for TlsStream {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.0.get_ref().0.peer_addr()
    }
}

/// The rustls error behind `error`, if any (walking sources and `io::Error` payloads).
pub(crate) fn rustls_error<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a rustls::Error> {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(r) = e.downcast_ref::<rustls::Error>() {
            return Some(r);
        }
        if let Some(r) = e
            .downcast_ref::<io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| rustls_error(inner))
        {
            return Some(r);
        }
        current = e.source();
    }
    None
}
