//! `/department`: what a using department's clerk does at the counter. 扫码核验 — read the QR
//! code a holder shows (an uploaded photo or screenshot of it, decoded here, or the code's text)
//! and get the licence, verified now, with the use recorded; 核验文件 — check a licence (JSON) or
//! a sealed OFD file someone hands in. Every report is shown check by check, in plain words.
//! The page names the service item and use cause from lists: the use is recorded with them.

use askama::Template;
use axum::extract::{Multipart, State};
use axum::response::Response;
use zhengyin_engine::UseContext;
use zhengyin_model::{Check, VerificationReport};

use crate::error::PageError;
use crate::face::FaceRow;
use crate::session::{Me, Visitor};
use crate::{words, Choice, Shared};

/// The largest file the page takes (a photo of a QR code, a licence, an OFD file).
pub(crate) const UPLOAD_LIMIT: usize = 10 * 1024 * 1024;
/// The largest image the QR decoder looks at, in pixels.
const MAX_PIXELS: u64 = 40_000_000;

/// The use causes a clerk picks from (用证事由).
const USE_CAUSES: [&str; 4] = ["核验", "办理业务", "资格审查", "事后监管"];

#[derive(Template)]
#[template(path = "department.html")]
struct DepartmentHome {
    me: Option<Me>,
    csrf: String,
    department: String,
    service_items: Vec<Choice>,
    use_causes: [&'static str; 4],
}

/// `GET /department`.
pub(crate) async fn home(State(pages): State<Shared>, visitor: Visitor) -> Result<Response, PageError> {
    let department = visitor.department()?.to_owned();
    let me = visitor.me().ok_or(PageError::SignIn)?;
    let service_items = crate::service_item_choices(&pages.engine);
    Ok(crate::page(&DepartmentHome {
        csrf: me.csrf.clone(),
        me: Some(me),
        department,
        service_items,
        use_causes: USE_CAUSES,
    }))
}

/// One check, in words.
struct CheckRow {
    what: String,
    outcome: &'static str,
    class: &'static str,
    message: String,
}

#[derive(Template)]
#[template(path = "report.html")]
struct ReportPage {
    me: Option<Me>,
    title: &'static str,
    verdict: &'static str,
    class: &'static str,
    licence_id: Option<String>,
    status: Option<&'static str>,
    face: Vec<FaceRow>,
    checks: Vec<CheckRow>,
    use_record: Option<String>,
    evaluated: String,
}

fn check_rows(checks: &[Check]) -> Vec<CheckRow> {
    checks
        .iter()
        .map(|c| {
            let (outcome, class) = words::outcome(c.outcome);
            CheckRow {
                what: words::check(c.code).to_owned(),
                outcome,
                class,
                message: c.message.clone(),
            }
        })
        .collect()
}

fn report_page(
    visitor: &Visitor,
    title: &'static str,
    report: &VerificationReport,
    face: Vec<FaceRow>,
    status: Option<&'static str>,
    use_record: Option<String>,
) -> Response {
    let (verdict, class) = words::verdict(report.verdict);
    crate::page(&ReportPage {
        me: visitor.me(),
        title,
        verdict,
        class,
        licence_id: report.licence_id.clone(),
        status,
        face,
        checks: check_rows(&report.checks),
        use_record,
        evaluated: words::moment(report.evaluated_at),
    })
}

/// The parts of a multipart form, each read up to [`UPLOAD_LIMIT`] bytes in all.
struct Parts(Vec<(String, Vec<u8>)>);

impl Parts {
    async fn read(mut multipart: Multipart) -> Result<Parts, PageError> {
        let bad = |e: axum::extract::multipart::MultipartError| PageError::BadRequest(format!("表单无法读取：{e}"));
        let mut parts = Vec::new();
        let mut total = 0usize;
        while let Some(mut field) = multipart.next_field().await.map_err(bad)? {
            let name = field.name().unwrap_or_default().to_owned();
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
            parts.push((name, bytes));
        }
        Ok(Parts(parts))
    }

    fn bytes(&self, name: &str) -> Option<&[u8]> {
        self.0
            .iter()
            .find(|(n, b)| n == name && !b.is_empty())
            .map(|(_, b)| b.as_slice())
    }

    fn text(&self, name: &str) -> Option<String> {
        self.bytes(name)
            .and_then(|b| std::str::from_utf8(b).ok())
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
    }

    /// The service item and use cause the clerk chose.
    fn purpose(&self) -> Result<UseContext, PageError> {
        let missing = |what: &str| PageError::BadRequest(format!("请选择{what}。"));
        Ok(UseContext {
            service_item: self.text("service_item").ok_or_else(|| missing("办事事项"))?,
            use_cause: self.text("use_cause").ok_or_else(|| missing("用证事由"))?,
            authorisation: None,
        })
    }
}

/// The text of the QR code in a PNG image.
fn decode_qr(image: &[u8]) -> Result<String, PageError> {
    let unreadable = |why: &str| PageError::BadRequest(format!("无法从图片中读出二维码：{why}"));
    let mut decoder = png::Decoder::new_with_limits(
        std::io::Cursor::new(image),
        png::Limits {
            bytes: usize::try_from(MAX_PIXELS * 4).unwrap_or(usize::MAX),
        },
    );
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder
        .read_info()
        .map_err(|_| unreadable("请上传 PNG 格式的截图或照片"))?;
    let mut pixels = vec![0u8; reader.output_buffer_size()];
    let frame = reader.next_frame(&mut pixels).map_err(|e| unreadable(&e.to_string()))?;
    let (width, height) = (frame.width as usize, frame.height as usize);
    let channels = frame.color_type.samples();
    let grey = |x: usize, y: usize| {
        let at = y * frame.line_size + x * channels;
        match channels {
            1 | 2 => pixels[at],
            // Luma from RGB (ITU-R BT.601 weights), alpha ignored.
            _ => {
                ((u32::from(pixels[at]) * 299 + u32::from(pixels[at + 1]) * 587 + u32::from(pixels[at + 2]) * 114)
                    / 1000) as u8
            }
        }
    };
    let mut prepared = rqrr::PreparedImage::prepare_from_greyscale(width, height, grey);
    let grids = prepared.detect_grids();
    let grid = grids.first().ok_or_else(|| unreadable("图片中没有找到二维码"))?;
    let (_, text) = grid.decode().map_err(|e| unreadable(&e.to_string()))?;
    Ok(text)
}

/// `POST /department/scan`: 扫码核验 of an uploaded QR image, or of the code's text.
pub(crate) async fn scan(
    State(pages): State<Shared>,
    visitor: Visitor,
    multipart: Multipart,
) -> Result<Response, PageError> {
    let department = visitor.department()?.to_owned();
    let form = Parts::read(multipart).await?;
    visitor.check_csrf(form.text("csrf").as_deref())?;
    let ctx = form.purpose()?;
    let token = match (form.bytes("qr"), form.text("token")) {
        (Some(image), _) => decode_qr(image)?,
        (None, Some(token)) => token,
        (None, None) => {
            return Err(PageError::BadRequest(
                "请上传亮证二维码的图片，或填入二维码内容。".to_owned(),
            ))
        }
    };
    let answer = pages.engine.scan(&department, &ctx, &token).await?;
    let body = answer.licence.body()?;
    let types = pages.engine.licence_types();
    let licence_type = types.iter().find(|t| t.code == body.licence_type.code);
    let mut face = vec![
        FaceRow {
            label: "证照名称".to_owned(),
            value: body.name.clone(),
        },
        FaceRow {
            label: "证照编号".to_owned(),
            value: body.number.clone(),
        },
        FaceRow {
            label: "持证主体".to_owned(),
            value: format!("{}（{}）", body.holder.name, body.holder.code),
        },
        FaceRow {
            label: "发证机关".to_owned(),
            value: body.issuer.name.clone(),
        },
    ];
    face.extend(crate::face::rows(&body, licence_type));
    let status = words::status(answer.licence.status_at(pages.engine.now()));
    Ok(report_page(
        &visitor,
        "扫码核验结果",
        &answer.report,
        face,
        Some(status),
        Some(answer.use_record),
    ))
}

/// `POST /department/verify`: a licence (JSON) or sealed OFD file handed in.
pub(crate) async fn verify(
    State(pages): State<Shared>,
    visitor: Visitor,
    multipart: Multipart,
) -> Result<Response, PageError> {
    let department = visitor.department()?.to_owned();
    let form = Parts::read(multipart).await?;
    visitor.check_csrf(form.text("csrf").as_deref())?;
    let ctx = form.purpose()?;
    pages.engine.check_purpose(&ctx)?;
    let file = form
        .bytes("file")
        .ok_or_else(|| PageError::BadRequest("请选择要核验的证照文件（JSON 或 OFD）。".to_owned()))?
        .to_vec();
    if file.starts_with(b"PK") {
        let engine = pages.engine.clone();
        let verified = tokio_blocking(move || engine.verify_ofd(&file)).await?;
        return Ok(report_page(
            &visitor,
            "电子签章文件核验结果",
            &verified.report,
            Vec::new(),
            None,
            None,
        ));
    }
    let report = pages.engine.verify(&file, None);
    if report.store_unreadable {
        return Err(PageError::Unavailable);
    }
    let recorded = pages
        .engine
        .record_verifications(&department, &ctx, std::slice::from_ref(&report))
        .await?;
    let use_record = recorded.into_iter().next().flatten();
    Ok(report_page(
        &visitor,
        "证照核验结果",
        &report,
        Vec::new(),
        None,
        use_record,
    ))
}

/// Runs CPU-heavy work (reading a whole OFD package) off the async workers.
async fn tokio_blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T, PageError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|_| PageError::BadRequest("核验中断，请重试。".to_owned()))
}
