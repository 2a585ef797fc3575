//! Reading the pages' multipart forms (uploads): every part, within one bound for the whole
//! form, with plain-words refusals.

use axum::extract::Multipart;
use zhengyin_engine::UseContext;

use crate::error::PageError;

/// The largest form the pages take in all (a photo of a QR code, a licence, an OFD file, an
/// evidence file).
pub(crate) const UPLOAD_LIMIT: usize = 10 * 1024 * 1024;

/// One part of a multipart form.
struct Part {
    name: String,
    file_name: Option<String>,
    bytes: Vec<u8>,
}

/// The parts of a multipart form, read up to [`UPLOAD_LIMIT`] bytes in all.
pub(crate) struct Parts(Vec<Part>);

impl Parts {
    pub(crate) async fn read(mut multipart: Multipart) -> Result<Parts, PageError> {
        let bad = |e: axum::extract::multipart::MultipartError| PageError::BadRequest(format!("表单无法读取：{e}"));
        let mut parts = Vec::new();
        let mut total = 0usize;
        while let Some(mut field) = multipart.next_field().await.map_err(bad)? {
            let name = field.name().unwrap_or_default().to_owned();
            let file_name = field.file_name().map(str::to_owned);
            let mut bytes = Vec::new();
            while let Some(chunk) = field.chunk().await.map_err(bad)? {
                total += chunk.len();
                if total > UPLOAD_LIMIT {
                    return Err(PageError::BadRequest(format!(
                        "上传的内容超过 {} MB，未予处理。",
                        UPLOAD_LIMIT / 1024 / 1024
                    )));
                }
                bytes.extend_from_slice(&chunk);
            }
            parts.push(Part { name, file_name, bytes });
        }
        Ok(Parts(parts))
    }

    /// The first non-empty part called `name`.
    fn part(&self, name: &str) -> Option<&Part> {
        self.0.iter().find(|p| p.name == name && !p.bytes.is_empty())
    }

    pub(crate) fn bytes(&self, name: &str) -> Option<&[u8]> {
        self.part(name).map(|p| p.bytes.as_slice())
    }

    /// The name the browser gave the file uploaded as `name`.
    pub(crate) fn file_name(&self, name: &str) -> Option<&str> {
        self.part(name).and_then(|p| p.file_name.as_deref())
    }

    pub(crate) fn text(&self, name: &str) -> Option<String> {
        self.bytes(name)
            .and_then(|b| std::str::from_utf8(b).ok())
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
    }

    /// Every non-empty value sent as `name` (ticked boxes).
    pub(crate) fn texts(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|p| p.name == name)
            .filter_map(|p| std::str::from_utf8(&p.bytes).ok())
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect()
    }

    /// The service item and use cause the clerk chose.
    pub(crate) fn purpose(&self) -> Result<UseContext, PageError> {
        let missing = |what: &str| PageError::BadRequest(format!("请选择{what}。"));
        Ok(UseContext {
            service_item: self.text("service_item").ok_or_else(|| missing("办事事项"))?,
            use_cause: self.text("use_cause").ok_or_else(|| missing("用证事由"))?,
            authorisation: None,
        })
    }
}
