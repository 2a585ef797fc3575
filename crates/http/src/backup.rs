//! `GET /v1/backup`: an operator downloads a consistent backup of a node while it serves.
//!
//! The store writes the archive into an unnamed temporary file first — writes wait only for that
//! local copy, never for a slow client — and the response then streams the file through a
//! bounded channel, so memory stays flat whatever the data's size. A backup that fails midway
//! ends the response with an error instead of the archive's end frame: a truncated download is
//! never taken for a whole one (`zhengyin restore` refuses it).

use std::io::{Seek, Write};
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::sync::mpsc;

use crate::auth::OperatorCaller;
use crate::{AppState, Problem};

/// Bytes written to the channel at once.
const CHUNK: usize = 256 * 1024;

/// The media type of a backup archive.
pub const BACKUP_MEDIA_TYPE: &str = "application/octet-stream";

type Chunk = Result<Bytes, std::io::Error>;

/// Forwards what the store writes to the response, chunk by chunk.
struct ChannelWriter(mpsc::Sender<Chunk>);

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .blocking_send(Ok(Bytes::copy_from_slice(buf)))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client went away"))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The response body: whatever the writer sends, until it is done.
struct ArchiveBody(mpsc::Receiver<Chunk>);

impl http_body::Body for ArchiveBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, std::io::Error>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|c| c.map(http_body::Frame::data)))
    }
}

/// Takes the backup into a temporary file, then sends the file.
fn take_and_send(store: &dyn zhengyin_store::Backup, sender: &mpsc::Sender<Chunk>) -> std::io::Result<()> {
    let mut file = std::io::BufWriter::with_capacity(CHUNK, tempfile::tempfile()?);
    let summary = store.backup(&mut file).map_err(std::io::Error::other)?;
    let mut file = file.into_inner().map_err(std::io::IntoInnerError::into_error)?;
    tracing::info!(
        records = summary.records,
        log_size = summary.log_size,
        sha256 = %hex::encode(summary.sha256),
        "backup taken; sending it"
    );
    file.seek(std::io::SeekFrom::Start(0))?;
    std::io::copy(&mut file, &mut ChannelWriter(sender.clone()))?;
    Ok(())
}

pub(crate) async fn backup(State(s): State<AppState>, _: OperatorCaller) -> Response {
    let Some(store) = s.backups.clone() else {
        return Problem::new(
            StatusCode::CONFLICT,
            "backup.database_tools",
            "this node's data is in PostgreSQL: back it up with the database's own tools \
             (pg_dump, or pg_basebackup with WAL archiving), as the operations guide describes",
        )
        .into_response();
    };
    let (sender, receiver) = mpsc::channel::<Chunk>(4);
    tokio::task::spawn_blocking(move || {
        if let Err(e) = take_and_send(store.as_ref(), &sender) {
            tracing::error!(error = %e, "backup failed");
            let _ = sender.blocking_send(Err(std::io::Error::other("the backup failed")));
        }
    });
    let mut response = Body::new(ArchiveBody(receiver)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(BACKUP_MEDIA_TYPE));
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"zhengyin.backup\""),
    );
    response
}
