//! `file:DIR`: one `.eml` file per message.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use tracing::Instrument;

use super::{Delivery, Transport};
use crate::error::{Error, Result};
use crate::render::Rendered;

/// Writes each message to `DIR/<time>-<uuid>.eml`.
///
/// The file is written under a hidden temporary name and renamed into place, so a reader
/// watching the directory never sees half a message. The directory is created when missing.
#[derive(Debug, Clone)]
pub struct FileTransport {
    dir: PathBuf,
}

impl FileTransport {
    /// A transport writing into `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        FileTransport { dir: dir.into() }
    }

    /// The directory messages go to.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

#[async_trait]
impl Transport for FileTransport {
    async fn send_rendered(&self, message: &Rendered) -> Result<Delivery> {
        let span = super::send_span("file", message);
        async move {
            let bytes = message.bytes();
            let name = format!(
                "{}-{}.eml",
                chrono::Utc::now().format("%Y%m%dT%H%M%S%.6fZ"),
                uuid::Uuid::new_v4().simple()
            );
            let tmp = self.dir.join(format!(".{name}.tmp"));
            let path = self.dir.join(&name);
            let io = |p: &Path| {
                let p = p.display().to_string();
                move |e| Error::io(p, e)
            };
            tokio::fs::create_dir_all(&self.dir)
                .await
                .map_err(io(&self.dir))?;
            if let Err(e) = tokio::fs::write(&tmp, bytes).await {
                // A full disk leaves half a file: remove it, so the retry starts clean.
                let _ = tokio::fs::remove_file(&tmp).await;
                return Err(io(&tmp)(e));
            }
            tokio::fs::rename(&tmp, &path).await.map_err(io(&path))?;
            tracing::debug!(path = %path.display(), "message written");
            let mut delivery = Delivery::local(message);
            delivery.queue_id = Some(name);
            Ok(delivery)
        }
        .instrument(span)
        .await
    }
}
