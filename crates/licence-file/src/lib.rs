//! A licence's OFD file (电子证照文件, GB/T 36905): what a holder downloads and a clerk opens.
//!
//! [`lay_out`] turns a signed licence into an unsealed OFD package (GB/T 33190):
//! - the face on A4 pages: the licence's name, its GB/T 36904 identifier, the holder, every face
//!   field under the catalogue's title for it (never the internal field name), the validity, the
//!   issuing authority and date, and a 2D code ([`Licence::code_text`]);
//! - GB/T 36903 metadata as `CustomData` of the document (identifier, type, number, holder,
//!   issuer, dates) and the SHA-256 of the signed licence;
//! - the signed licence itself, byte for byte, as the attachment `Doc_0/Attachs/licence.json`.
//!
//! It says where the issuer's seal goes ([`LaidOut::seal_at`]); sealing it is the seal
//! crate's work, so that the seal protects the pages, the metadata and the attachment together.
//! [`binding`] reads the metadata and the attachment back, and [`verify_document`] adds a
//! licence file's checks to its seals' verification.
//!
//! Text places every character itself (`DeltaX`), so the layout holds in any font. Given a
//! TrueType font ([`Licence::font`]), the file embeds the subset of it its text needs
//! (`Doc_0/Res/font_1.ttf`, a few tens of KB), so that it looks the same in every reader; without
//! one it names 宋体 and readers substitute a font of their own.
//!
//! What it is not: it bakes no status into the file (verification answers that) and signs
//! nothing.

mod page;
mod verify;

pub use verify::{verify_document, BoundLicence, DocumentVerification, Verifier};
pub use zhengyin_font::{Font, FontError};

use quick_xml::escape::escape;
use zhengyin_model::{FieldKind, LicenceBody, LicenceType};
use zhengyin_ses::ofd::{read_file, write_package, Limits, OfdError, Packing};
use zhengyin_ses::seal_ofd::Placement;

use page::{Align, Page, Sheet};

const NAMESPACE: &str = "http://www.ofdspec.org/2016";

/// Where the embedded font is in the package (named from `PublicRes.xml`, whose `BaseLoc` is `Res`).
pub const FONT_FILE: &str = "Doc_0/Res/font_1.ttf";

/// Where the signed licence is in the package.
pub const ATTACHMENT: &str = "Doc_0/Attachs/licence.json";

/// The `CustomData` names of the metadata (GB/T 36903 elements).
pub mod metadata {
    /// 证照标识 (GB/T 36904 identifier, with the version).
    pub const IDENTIFIER: &str = "证照标识";
    /// SHA-256 (hex) of the attached signed licence.
    pub const LICENCE_SHA256: &str = "证照数据SHA256";
}

/// Why a file could not be made or read.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The OFD package could not be written or read.
    #[error(transparent)]
    Ofd(#[from] OfdError),
    /// The font could not be subset.
    #[error("embedding the font: {0}")]
    Font(#[from] FontError),
    /// The licence's data cannot be laid out.
    #[error("cannot lay out the licence: {0}")]
    Layout(String),
}

/// What the file is made from.
pub struct Licence<'a> {
    /// The licence's content.
    pub body: &'a LicenceBody,
    /// Its type's version the licence was issued under: the face fields' titles and order.
    pub licence_type: &'a LicenceType,
    /// The signed licence, exactly as issued.
    pub signed: &'a [u8],
    /// What the 2D code carries (where to check the licence).
    pub code_text: &'a str,
    /// The font embedded (the subset the text needs), if any.
    pub font: Option<&'a Font>,
}

/// An unsealed licence file (its files stored, not deflated) and where its seal goes.
#[derive(Debug)]
pub struct LaidOut {
    /// The OFD package.
    pub package: Vec<u8>,
    /// The seal's place: over the issuer's name on the last page.
    pub seal_at: Placement,
    /// Characters of the face the embedded font has no glyph for (readers draw them in a
    /// font of their own).
    pub missing_glyphs: Vec<char>,
}

/// Lays out `licence` as an OFD package.
pub fn lay_out(licence: &Licence<'_>) -> Result<LaidOut, FileError> {
    let body = licence.body;
    let layout = licence.licence_type.file_layout.clone().unwrap_or_default();
    let sheet = Sheet::new(layout.orientation);
    let mut pages = vec![Page::new()];
    let mut y = 24.0;
    {
        let page = pages.last_mut().ok_or_else(|| FileError::Layout("no page".into()))?;
        page.text(&body.name, sheet.width / 2.0, y, 10.0, Align::Centre);
        y += 14.0;
        if let Some(subtitle) = &layout.subtitle {
            page.text(subtitle, sheet.width / 2.0, y, 5.0, Align::Centre);
            y += 9.0;
        }
        y += 2.0;
        page.text(
            &format!("证照标识：{}", body.id.as_str()),
            sheet.width / 2.0,
            y,
            2.8,
            Align::Centre,
        );
        y += 12.0;
    }
    for (label, value) in rows(licence, &layout) {
        let lines = page::wrap(&value, sheet.value_width(), page::BODY_SIZE);
        let height = lines.len() as f64 * page::LINE_HEIGHT;
        if y + height > sheet.height - 20.0 {
            pages.push(Page::new());
            y = 24.0;
        }
        let page = pages.last_mut().ok_or_else(|| FileError::Layout("no page".into()))?;
        page.text(&label, page::LEFT, y, page::BODY_SIZE, Align::Left);
        for line in &lines {
            page.text(line, page::VALUE_LEFT, y, page::BODY_SIZE, Align::Left);
            y += page::LINE_HEIGHT;
        }
        y += 2.0;
    }
    // The issuer block and the 2D code sit at the foot of the last page.
    if y > sheet.foot_top() {
        pages.push(Page::new());
    }
    let last = pages.len() - 1;
    let page = &mut pages[last];
    let code = qrcodegen::QrCode::encode_text(licence.code_text, qrcodegen::QrCodeEcc::Medium)
        .map_err(|e| FileError::Layout(format!("the 2D code: {e:?}")))?;
    page.code(&code, page::LEFT, sheet.foot_top() + 6.0, 34.0);
    page.text(
        "扫码核验",
        page::LEFT + 17.0,
        sheet.foot_top() + 43.0,
        3.2,
        Align::Centre,
    );
    page.text(
        &body.issuer.name,
        sheet.right(),
        sheet.foot_top() + 18.0,
        page::BODY_SIZE,
        Align::Right,
    );
    page.text(
        &chinese_date(body.issue_date),
        sheet.right(),
        sheet.foot_top() + 26.0,
        page::BODY_SIZE,
        Align::Right,
    );
    let seal_at = Placement {
        page: last,
        x: sheet.right() - 52.0,
        y: sheet.foot_top(),
    };

    let mut files = vec![
        ("OFD.xml".to_owned(), ofd_xml(licence).into_bytes()),
        (
            "Doc_0/Document.xml".to_owned(),
            document_xml(pages.len(), sheet).into_bytes(),
        ),
    ];
    let mut missing_glyphs = Vec::new();
    match licence.font {
        Some(font) => {
            let text: String = pages.iter().flat_map(Page::texts).collect();
            let subset = font.subset(&text)?;
            missing_glyphs = subset.missing;
            files.push((
                "Doc_0/PublicRes.xml".to_owned(),
                public_res(Some(font.family())).into_bytes(),
            ));
            files.push((FONT_FILE.to_owned(), subset.bytes));
        }
        None => files.push(("Doc_0/PublicRes.xml".to_owned(), public_res(None).into_bytes())),
    }
    let mut next_id = 100 + pages.len() as u64;
    for (i, page) in pages.iter().enumerate() {
        files.push((
            format!("Doc_0/Pages/Page_{i}/Content.xml"),
            page.content_xml(&mut next_id).into_bytes(),
        ));
    }
    files.push((
        "Doc_0/Attachs/Attachments.xml".to_owned(),
        attachments_xml(licence).into_bytes(),
    ));
    files.push((ATTACHMENT.to_owned(), licence.signed.to_vec()));
    // Stored: sealing reads it again at once and writes the package handed out deflated.
    Ok(LaidOut {
        package: write_package(&files, Packing::Stored)?,
        seal_at,
        missing_glyphs,
    })
}

/// The labelled rows of the face, in order: the holder, the type's fields (those the layout
/// names, in its order, or all in schema order), the validity.
fn rows(licence: &Licence<'_>, layout: &zhengyin_model::FileLayout) -> Vec<(String, String)> {
    let body = licence.body;
    let mut rows = vec![
        ("证照编号".to_owned(), body.number.clone()),
        ("持证主体".to_owned(), body.holder.name.clone()),
        (holder_code_title(body).to_owned(), body.holder.code.clone()),
    ];
    let schema = &licence.licence_type.face_schema;
    let shown: Vec<&zhengyin_model::FieldSpec> = if layout.fields.is_empty() {
        schema.iter().collect()
    } else {
        layout
            .fields
            .iter()
            .filter_map(|name| schema.iter().find(|f| &f.name == name))
            .collect()
    };
    for field in shown {
        let Some(value) = body.face.get(&field.name) else {
            continue;
        };
        let text = match (field.kind, value) {
            (FieldKind::Date, serde_json::Value::String(s)) => time::Date::parse(s, DATE)
                .map(chinese_date)
                .unwrap_or_else(|_| s.clone()),
            (_, serde_json::Value::String(s)) => s.clone(),
            (_, other) => other.to_string(),
        };
        rows.push((field.label.clone(), text));
    }
    let until = body.valid_until.map_or_else(|| "长期".to_owned(), chinese_date);
    rows.push((
        "有效期".to_owned(),
        format!("{} 至 {until}", chinese_date(body.valid_from)),
    ));
    rows
}

const DATE: &[time::format_description::FormatItem<'static>] =
    time::macros::format_description!("[year]-[month]-[day]");

fn holder_code_title(body: &LicenceBody) -> &'static str {
    match body.holder.code_type.as_str() {
        "111" => "公民身份号码",
        _ => "统一社会信用代码",
    }
}

fn chinese_date(date: time::Date) -> String {
    format!("{}年{}月{}日", date.year(), u8::from(date.month()), date.day())
}

fn iso_date(date: time::Date) -> String {
    format!("{:04}-{:02}-{:02}", date.year(), u8::from(date.month()), date.day())
}

fn sha256_hex(bytes: &[u8]) -> String {
    zhengyin_crypto::hash::sha256_hex(bytes)
}

/// `OFD.xml`: the document's metadata (GB/T 36903 elements as `CustomData`) and its root.
fn ofd_xml(licence: &Licence<'_>) -> String {
    let body = licence.body;
    let custom: Vec<(&str, String)> = vec![
        (metadata::IDENTIFIER, body.id.as_str().to_owned()),
        ("证照名称", body.name.clone()),
        ("证照类型代码", body.licence_type.code.as_str().to_owned()),
        ("证照编号", body.number.clone()),
        ("持证主体", body.holder.name.clone()),
        ("持证主体代码", body.holder.code.clone()),
        ("持证主体代码类型代码", body.holder.code_type.as_str().to_owned()),
        ("证照颁发机构", body.issuer.name.clone()),
        ("证照颁发机构代码", body.issuer.code.as_str().to_owned()),
        ("证照颁发日期", iso_date(body.issue_date)),
        ("证照有效期起始日期", iso_date(body.valid_from)),
        (
            "证照有效期截止日期",
            body.valid_until.map_or_else(|| "长期".to_owned(), iso_date),
        ),
        (metadata::LICENCE_SHA256, sha256_hex(licence.signed)),
    ];
    let custom: String = custom
        .iter()
        .map(|(name, value)| {
            format!(
                r#"<ofd:CustomData Name="{}">{}</ofd:CustomData>"#,
                escape(*name),
                escape(value)
            )
        })
        .collect();
    let doc_id = &sha256_hex(body.id.as_str().as_bytes())[..32];
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<ofd:OFD xmlns:ofd="{NAMESPACE}" Version="1.0" DocType="OFD"><ofd:DocBody><ofd:DocInfo><ofd:DocID>{doc_id}</ofd:DocID><ofd:Title>{title}</ofd:Title><ofd:Author>{author}</ofd:Author><ofd:CreationDate>{created}</ofd:CreationDate><ofd:Creator>Zhengyin</ofd:Creator><ofd:CustomDatas>{custom}</ofd:CustomDatas></ofd:DocInfo><ofd:DocRoot>Doc_0/Document.xml</ofd:DocRoot></ofd:DocBody></ofd:OFD>"#,
        title = escape(&body.name),
        author = escape(&body.issuer.name),
        created = iso_date(body.issue_date),
    )
}

fn document_xml(pages: usize, sheet: Sheet) -> String {
    let list: String = (0..pages)
        .map(|i| format!(r#"<ofd:Page ID="{}" BaseLoc="Pages/Page_{i}/Content.xml"/>"#, 10 + i))
        .collect();
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<ofd:Document xmlns:ofd="{NAMESPACE}"><ofd:CommonData><ofd:MaxUnitID>{max}</ofd:MaxUnitID><ofd:PageArea><ofd:PhysicalBox>0 0 {} {}</ofd:PhysicalBox></ofd:PageArea><ofd:PublicRes>PublicRes.xml</ofd:PublicRes></ofd:CommonData><ofd:Pages>{list}</ofd:Pages><ofd:Attachments>Attachs/Attachments.xml</ofd:Attachments></ofd:Document>"#,
        sheet.width,
        sheet.height,
        max = 100_000,
    )
}

/// The font resource: the embedded subset under its family name, or 宋体 for readers to find.
fn public_res(embedded: Option<&str>) -> String {
    let font = match embedded {
        Some(family) => {
            let file = FONT_FILE.rsplit('/').next().unwrap_or(FONT_FILE);
            format!(
                r#"<ofd:Font ID="{}" FontName="{family}" FamilyName="{family}"><ofd:FontFile>{file}</ofd:FontFile></ofd:Font>"#,
                page::FONT_ID,
                family = escape(family)
            )
        }
        None => format!(
            r#"<ofd:Font ID="{}" FontName="宋体" FamilyName="宋体"/>"#,
            page::FONT_ID
        ),
    };
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<ofd:Res xmlns:ofd="{NAMESPACE}" BaseLoc="Res"><ofd:Fonts>{font}</ofd:Fonts></ofd:Res>"#
    )
}

fn attachments_xml(licence: &Licence<'_>) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<ofd:Attachments xmlns:ofd="{NAMESPACE}"><ofd:Attachment ID="1" Name="licence.json" Format="json" CreationDate="{}" Size="{:.3}" Visible="false" Usage="none"><ofd:FileLoc>licence.json</ofd:FileLoc></ofd:Attachment></ofd:Attachments>"#,
        iso_date(licence.body.issue_date),
        licence.signed.len() as f64 / 1024.0
    )
}

/// What a licence file says it carries: read back for verification, unverified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// The identifier in the metadata.
    pub identifier: String,
    /// The SHA-256 (hex) in the metadata.
    pub licence_sha256: String,
    /// The attached signed licence, if present.
    pub licence: Option<Vec<u8>>,
}

/// The binding of an OFD file to its licence, or `None` for a document that is not a licence
/// file (no identifier in its metadata).
pub fn binding(package: &[u8], limits: Limits) -> Result<Option<Binding>, FileError> {
    let ofd =
        read_file(package, "OFD.xml", limits)?.ok_or_else(|| OfdError::Package("OFD.xml is missing".to_owned()))?;
    let custom = custom_data(&ofd)?;
    let value = |name: &str| custom.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
    let Some(identifier) = value(metadata::IDENTIFIER) else {
        return Ok(None);
    };
    Ok(Some(Binding {
        identifier,
        licence_sha256: value(metadata::LICENCE_SHA256).unwrap_or_default(),
        licence: read_file(package, ATTACHMENT, limits)?,
    }))
}

/// The `CustomData` (name, text) pairs of `OFD.xml`.
fn custom_data(ofd: &[u8]) -> Result<Vec<(String, String)>, FileError> {
    use quick_xml::events::Event;
    let malformed = |e: &dyn std::fmt::Display| FileError::Ofd(OfdError::Xml(format!("OFD.xml: {e}")));
    let mut reader = quick_xml::Reader::from_reader(ofd);
    let mut out = Vec::new();
    let mut current: Option<(String, String)> = None;
    loop {
        match reader.read_event().map_err(|e| malformed(&e))? {
            Event::Start(e) if e.local_name().as_ref() == b"CustomData" => {
                let name = e
                    .try_get_attribute("Name")
                    .map_err(|e| malformed(&e))?
                    .map(|a| a.unescape_value().map(|v| v.into_owned()))
                    .transpose()
                    .map_err(|e| malformed(&e))?
                    .unwrap_or_default();
                current = Some((name, String::new()));
            }
            Event::Text(t) => {
                if let Some((_, text)) = current.as_mut() {
                    text.push_str(&t.unescape().map_err(|e| malformed(&e))?);
                }
            }
            Event::End(e) if e.local_name().as_ref() == b"CustomData" => out.extend(current.take()),
            Event::Eof => return Ok(out),
            _ => {}
        }
    }
}
