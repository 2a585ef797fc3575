//! Sealing an OFD document (电子签章): a new seal signature appended to the first document's
//! signature list, the way GB/T 38540 vendors do it, so earlier signatures keep verifying.
//!
//! The new signature is `Doc_0/Signs/Sign_N/`: `Signature.xml` lists every file of the package
//! (after the list itself gained the new entry) with its SM3 `CheckValue`, places the stamps
//! (`StampAnnot`s, see [`crate::stamps`]: at a position, on a keyword, or across the pages'
//! edge), names the seal (`Seal.esl`, a copy of
//! the `SESeal`) and its `SignedValue.dat`: a v4 `SES_Signature` over SM3(`Signature.xml`) made
//! with the signer's key ([`crate::write::apply_seal`]). A document without a signature list gets
//! one, named in `OFD.xml`.
//!
//! What it is not: no layout of the document itself. The package is read within the same
//! [`Limits`] as for verifying.

use base64::Engine as _;
use quick_xml::escape::escape;
use time::OffsetDateTime;
use zhengyin_crypto::{hash, Signer};

use crate::ofd::{parent, resolve, Element, Limits, OfdError, Package};
use crate::write::apply_seal;

const NAMESPACE: &str = "http://www.ofdspec.org/2016";

pub use crate::stamps::{Placement, Stamps};

/// What seals the document.
pub struct Sealing<'a> {
    /// The seal (DER `SESeal`).
    pub seal: &'a [u8],
    /// The signer's certificate (DER), one the seal lists.
    pub signer_certificate: &'a [u8],
    /// The signer's key.
    pub signer: &'a dyn Signer,
    /// The signing time written in the signature.
    pub time: OffsetDateTime,
    /// Where the stamps go.
    pub stamps: Stamps,
}

/// Seals the OFD package `bytes`; returns the sealed package.
pub fn seal_ofd(bytes: &[u8], sealing: &Sealing<'_>, limits: Limits) -> Result<Vec<u8>, OfdError> {
    let prepared = prepare(bytes, sealing.seal, sealing.time, &sealing.stamps, limits)?;
    let signed_value = apply_seal(
        sealing.seal,
        sealing.time,
        &hash::sm3(&prepared.signature_xml),
        &prepared.property_info,
        sealing.signer_certificate,
        sealing.signer,
    )
    .map_err(|e| OfdError::Sealing(e.to_string()))?;
    prepared.finish(signed_value)
}

/// A package ready for its new signature: everything but the `SES_Signature`, which whoever
/// holds the signer's key makes over SM3([`Self::signature_xml`]) with [`Self::property_info`].
#[derive(Debug)]
pub struct Prepared {
    files: Vec<(String, Vec<u8>)>,
    sign_dir: String,
    seal: Vec<u8>,
    /// The new `Signature.xml`.
    pub signature_xml: Vec<u8>,
    /// Its path in the package (`/Doc_0/Signs/Sign_N/Signature.xml`), the `propertyInfo`.
    pub property_info: String,
}

impl Prepared {
    /// The sealed package, with `signed_value` (DER `SES_Signature`) as `SignedValue.dat`.
    pub fn finish(mut self, signed_value: Vec<u8>) -> Result<Vec<u8>, OfdError> {
        let dir = self.sign_dir;
        self.files.push((format!("{dir}/Signature.xml"), self.signature_xml));
        self.files.push((format!("{dir}/SignedValue.dat"), signed_value));
        self.files.push((format!("{dir}/Seal.esl"), self.seal));
        crate::ofd::write_package(&self.files, crate::ofd::Packing::Deflated)
    }
}

/// Prepares the OFD package `bytes` for a new signature with `seal` (DER `SESeal`) at `time`,
/// its stamps where `stamps` says.
pub fn prepare(
    bytes: &[u8],
    seal_der: &[u8],
    time: OffsetDateTime,
    stamps: &Stamps,
    limits: Limits,
) -> Result<Prepared, OfdError> {
    let seal = crate::parse_seal(seal_der).map_err(|e| OfdError::Sealing(format!("the seal: {e}")))?;
    let mut files = Package::open(bytes, limits)?.all()?;
    let text = |files: &[(String, Vec<u8>)], path: &str| -> Result<String, OfdError> {
        let bytes = files
            .iter()
            .find(|(name, _)| name == path)
            .map(|(_, bytes)| bytes.clone())
            .ok_or_else(|| OfdError::Package(format!("{path} is missing")))?;
        String::from_utf8(bytes).map_err(|_| OfdError::Xml(format!("{path}: not UTF-8")))
    };

    // The first document: its root and its signature list, if it has one.
    let ofd_xml = text(&files, "OFD.xml")?;
    let ofd = Element::parse(ofd_xml.as_bytes(), "OFD.xml")?;
    let body = ofd
        .descendants("DocBody")
        .into_iter()
        .next()
        .ok_or_else(|| OfdError::Xml("OFD.xml: no DocBody".to_owned()))?;
    let doc_root = body
        .descendants("DocRoot")
        .first()
        .map(|e| resolve("", e.text.trim()))
        .transpose()?
        .ok_or_else(|| OfdError::Xml("OFD.xml: no DocRoot".to_owned()))?;
    let doc_dir = parent(&doc_root).to_owned();
    let list_path = match body.descendants("Signatures").first() {
        Some(e) => Some(resolve("", e.text.trim())?),
        None => None,
    };

    // The stamps, on pages named by their object IDs.
    let document = Element::parse(text(&files, &doc_root)?.as_bytes(), &doc_root)?;
    let mut read = |path: &str| Ok(files.iter().find(|(name, _)| name == path).map(|(_, b)| b.clone()));
    let pages = crate::stamps::pages(&document, &doc_root, &mut read)?;
    let picture = &seal.info.picture;
    let annots = crate::stamps::place(stamps, (picture.width as f64, picture.height as f64), &pages)?;

    // The new signature's folder, and its entry in the list (made if missing).
    let signs_dir = match &list_path {
        Some(path) => parent(path).to_owned(),
        None => join(&doc_dir, "Signs"),
    };
    let sign_dir = (0..)
        .map(|n| join(&signs_dir, &format!("Sign_{n}")))
        .find(|dir| !files.iter().any(|(name, _)| name.starts_with(&format!("{dir}/"))))
        .unwrap_or_default();
    let signature_path = format!("{sign_dir}/Signature.xml");
    match &list_path {
        Some(path) => {
            let list = text(&files, path)?;
            let updated = append_to_list(&list, path, &signature_path)?;
            replace(&mut files, path, updated.into_bytes());
        }
        None => {
            let path = join(&signs_dir, "Signatures.xml");
            let list = format!(
                r#"<?xml version="1.0" encoding="UTF-8"?><ofd:Signatures xmlns:ofd="{NAMESPACE}"><ofd:MaxSignId>1</ofd:MaxSignId><ofd:Signature ID="1" Type="Seal" BaseLoc="/{}"/></ofd:Signatures>"#,
                escape(&signature_path)
            );
            files.push((path.clone(), list.into_bytes()));
            let entry = format!("<{{p}}Signatures>{}</{{p}}Signatures>", escape(&path));
            let updated = insert_before_close(&ofd_xml, "DocBody", Closing::First, &entry)
                .ok_or_else(|| OfdError::Xml("OFD.xml: no closing DocBody".to_owned()))?;
            replace(&mut files, "OFD.xml", updated.into_bytes());
        }
    }

    // Signature.xml over every file as it now is, then the SES_Signature over it.
    let references: String = files
        .iter()
        .map(|(name, bytes)| {
            format!(
                r#"<ofd:Reference FileRef="/{}"><ofd:CheckValue>{}</ofd:CheckValue></ofd:Reference>"#,
                escape(name.as_str()),
                base64::engine::general_purpose::STANDARD.encode(hash::sm3(bytes))
            )
        })
        .collect();
    let stamp_annots: String = annots
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let clip = a
                .clip
                .map(|[x, y, w, h]| format!(r#" Clip="{x} {y} {w} {h}""#))
                .unwrap_or_default();
            let [x, y, w, h] = a.boundary;
            format!(
                r#"<ofd:StampAnnot ID="{}" PageRef="{}" Boundary="{x} {y} {w} {h}"{clip}/>"#,
                i + 1,
                escape(a.page_id.as_str())
            )
        })
        .collect();
    let signature_xml = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><ofd:Signature xmlns:ofd="{NAMESPACE}"><ofd:SignedInfo><ofd:Provider ProviderName="Zhengyin" Version="{}"/><ofd:SignatureMethod>1.2.156.10197.1.501</ofd:SignatureMethod><ofd:SignatureDateTime>{}</ofd:SignatureDateTime><ofd:References CheckMethod="1.2.156.10197.1.401">{references}</ofd:References>{stamp_annots}<ofd:Seal><ofd:BaseLoc>/{sign_dir}/Seal.esl</ofd:BaseLoc></ofd:Seal></ofd:SignedInfo><ofd:SignedValue>/{sign_dir}/SignedValue.dat</ofd:SignedValue></ofd:Signature>"#,
        env!("CARGO_PKG_VERSION"),
        signature_time(time),
    )
    .into_bytes();
    Ok(Prepared {
        files,
        sign_dir,
        seal: seal_der.to_vec(),
        signature_xml,
        property_info: format!("/{signature_path}"),
    })
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_owned()
    } else {
        format!("{dir}/{name}")
    }
}

fn replace(files: &mut [(String, Vec<u8>)], path: &str, bytes: Vec<u8>) {
    if let Some(entry) = files.iter_mut().find(|(name, _)| name == path) {
        entry.1 = bytes;
    }
}

/// The list with a new `Seal` entry (the next ID) and its `MaxSignId` raised.
fn append_to_list(list: &str, path: &str, signature_path: &str) -> Result<String, OfdError> {
    let parsed = Element::parse(list.as_bytes(), path)?;
    let ids = parsed
        .descendants("Signature")
        .iter()
        .filter_map(|e| e.attr("ID")?.parse::<u64>().ok())
        .chain(
            parsed
                .descendants("MaxSignId")
                .iter()
                .filter_map(|e| e.text.trim().parse().ok()),
        )
        .max()
        .unwrap_or(0);
    let id = ids + 1;
    let entry = format!(
        r#"<{{p}}Signature ID="{id}" Type="Seal" BaseLoc="/{}"/>"#,
        escape(signature_path)
    );
    let mut updated = insert_before_close(list, "Signatures", Closing::Last, &entry)
        .ok_or_else(|| OfdError::Xml(format!("{path}: no closing Signatures")))?;
    if let Some(max) = parsed.descendants("MaxSignId").first() {
        let old = max.text.trim();
        for prefix in prefixes(&updated, "MaxSignId") {
            let from = format!("<{prefix}MaxSignId>{old}</{prefix}MaxSignId>");
            if updated.contains(&from) {
                updated = updated.replacen(&from, &format!("<{prefix}MaxSignId>{id}</{prefix}MaxSignId>"), 1);
                break;
            }
        }
    }
    Ok(updated)
}

/// The prefixes (`ofd:`, or none) the document uses for `local`.
fn prefixes(xml: &str, local: &str) -> Vec<String> {
    let mut found: Vec<String> = xml
        .match_indices(&format!("{local}>"))
        .filter_map(|(at, _)| {
            let before = &xml[..at];
            let open = before.rfind('<')?;
            let name = before[open + 1..].trim_start_matches('/');
            (name.is_empty() || name.ends_with(':')).then(|| name.to_owned())
        })
        .collect();
    found.dedup();
    found
}

/// Which closing tag [`insert_before_close`] inserts before.
#[derive(Clone, Copy)]
enum Closing {
    /// The first (the first document's `DocBody`).
    First,
    /// The last (a root element's).
    Last,
}

/// `xml` with `content` inserted before a closing tag of element `local` (whatever its prefix);
/// `{p}` in `content` becomes that prefix.
fn insert_before_close(xml: &str, local: &str, which: Closing, content: &str) -> Option<String> {
    let found = prefixes(xml, local).into_iter().filter_map(|prefix| {
        let tag = format!("</{prefix}{local}>");
        let at = match which {
            Closing::First => xml.find(&tag),
            Closing::Last => xml.rfind(&tag),
        };
        Some((at?, prefix))
    });
    let (at, prefix) = match which {
        Closing::First => found.min_by_key(|(at, _)| *at)?,
        Closing::Last => found.max_by_key(|(at, _)| *at)?,
    };
    let mut out = String::with_capacity(xml.len() + content.len());
    out.push_str(&xml[..at]);
    out.push_str(&content.replace("{p}", &prefix));
    out.push_str(&xml[at..]);
    Some(out)
}

/// `SignatureDateTime`: `YYYYMMDDhhmmssZ`, as vendors write it.
fn signature_time(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}
