//! `/department`: what a using department's clerk does at the counter. 扫码核验 — read the QR
//! code a holder shows (an uploaded photo or screenshot of it, decoded here, or the code's text)
//! and get the licence, verified now, with the use recorded; 核验文件 — check a licence (JSON) or
//! a sealed OFD file someone hands in. Every report is shown check by check, in plain words.
//! The page names the service item and use cause from lists: the use is recorded with them.

use askama::Template;
use std::collections::HashMap;

use axum::extract::{Multipart, State};
use axum::Form;
use zhengyin_engine::{GrantActor, UseContext};
use zhengyin_model::{HolderCodeType, HolderRef, TypeCode};

use axum::response::Response;
use zhengyin_model::{Check, VerificationReport};

use crate::error::PageError;
use crate::face::FaceRow;
use crate::form::Parts;
use crate::session::{Me, Visitor};
use crate::{words, Choice, Shared};

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
    /// The licence types this department holds a live grant for.
    granted_types: Vec<Choice>,
}

/// `GET /department`.
pub(crate) async fn home(State(pages): State<Shared>, visitor: Visitor) -> Result<Response, PageError> {
    let department = visitor.department()?.to_owned();
    let me = visitor.me().ok_or(PageError::SignIn)?;
    let service_items = crate::service_item_choices(&pages.engine);
    let now = pages.engine.now();
    let mut granted_types: Vec<Choice> = Vec::new();
    for grant in pages.engine.grants_for(&GrantActor::Department(department.clone())) {
        if grant.is_live(now) && !granted_types.iter().any(|c| c.value == grant.type_code.as_str()) {
            granted_types.push(Choice {
                value: grant.type_code.as_str().to_owned(),
                label: pages
                    .engine
                    .licence_type(&grant.type_code)
                    .map_or_else(|| grant.type_code.to_string(), |t| t.name),
            });
        }
    }
    Ok(crate::page(&DepartmentHome {
        csrf: me.csrf.clone(),
        me: Some(me),
        department,
        service_items,
        use_causes: USE_CAUSES,
        granted_types,
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
    face.extend(crate::face::rows(&body.face, licence_type));
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

/// One licence the one interface answered with, as the grant allows it to be seen.
struct FoundLicence {
    title: String,
    status: &'static str,
    valid: bool,
    face: Vec<FaceRow>,
    warnings: bool,
}

#[derive(Template)]
#[template(path = "lookup.html")]
struct LookupPage {
    me: Option<Me>,
    holder: String,
    licences: Vec<FoundLicence>,
    authorised: bool,
    use_record: String,
}

/// `POST /department/lookup`: 一证一接口 — the holder's licences of a type, through the
/// department's grant, with the holder's live authorisation for this service item when there
/// is one (a grant that requires it refuses without).
pub(crate) async fn lookup(
    State(pages): State<Shared>,
    visitor: Visitor,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, PageError> {
    let department = visitor.department()?.to_owned();
    visitor.check_csrf(form.get("csrf").map(String::as_str))?;
    let text = |name: &str| form.get(name).map(|s| s.trim()).filter(|s| !s.is_empty());
    let missing = |what: &str| PageError::BadRequest(format!("请填写{what}。"));
    let type_code = text("type")
        .and_then(|t| TypeCode::parse(t).ok())
        .ok_or_else(|| missing("证照类型"))?;
    let holder = HolderRef {
        code_type: text("holder_code_type")
            .and_then(|t| HolderCodeType::parse(t).ok())
            .ok_or_else(|| missing("持证主体代码类型"))?,
        code: text("holder_code")
            .ok_or_else(|| missing("持证主体代码"))?
            .to_uppercase(),
    };
    let service_item = text("service_item").ok_or_else(|| missing("办事事项"))?.to_owned();
    let now = pages.engine.now();
    let authorisation = pages
        .engine
        .authorisations_of(&holder)?
        .into_iter()
        .filter(|a| a.department == department && a.service_item == service_item)
        .find(|a| a.withdrawn.is_none() && a.until > now && a.licence.type_code() == &type_code)
        .map(|a| a.id);
    let ctx = UseContext {
        service_item,
        use_cause: text("use_cause").ok_or_else(|| missing("用证事由"))?.to_owned(),
        authorisation: authorisation.clone(),
    };
    let answer = pages
        .engine
        .lookup_by_holder(&department, &type_code, &holder, None, &ctx)
        .await?;
    let licence_type = pages.engine.licence_type(&type_code);
    let licences = answer
        .licences
        .iter()
        .map(|l| {
            let status = l["status"].as_str().unwrap_or_default();
            let face = l["face"].as_object().cloned().unwrap_or_default();
            FoundLicence {
                title: format!(
                    "{} {}",
                    l["name"].as_str().unwrap_or_default(),
                    l["number"].as_str().unwrap_or_default()
                ),
                status: words::status_name(status),
                valid: status == "valid",
                face: crate::face::rows(&face, licence_type.as_ref()),
                warnings: l["warnings"].as_array().is_some_and(|w| !w.is_empty()),
            }
        })
        .collect();
    Ok(crate::page(&LookupPage {
        me: visitor.me(),
        holder: format!("{}:{}", holder.code_type.as_str(), holder.code),
        licences,
        authorised: authorisation.is_some(),
        use_record: answer.use_record,
    }))
}

/// Runs CPU-heavy work (reading a whole OFD package) off the async workers.
async fn tokio_blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T, PageError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|_| PageError::BadRequest("核验中断，请重试。".to_owned()))
}
