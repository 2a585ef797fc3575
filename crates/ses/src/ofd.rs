//! Verifying the signatures of an OFD document (GB/T 33190 container, GB/T 38540 seals).
//!
//! An OFD file is a zip. `OFD.xml` names, per document, a `Signatures` list; each entry
//! (`Type="Seal"` or `Type="Sign"`, `BaseLoc`) points to a `Signature.xml` whose `References`
//! give every protected file with its SM3 `CheckValue`, and whose `SignedValue` names the
//! `SES_Signature` (DER) whose `dataHash` is SM3 of that `Signature.xml`.
//!
//! A document is VALID only when it has at least one seal, every seal signature is VALID
//! ([`crate::verify::verify_signature`]) and every protected file is present and unchanged;
//! each changed or missing file is named. The one change allowed is to the signature list itself
//! when later signatures follow in it (each appends itself): a warning saying exactly that. `Type="Sign"` entries (GB/T 35275 digital signatures,
//! not seals) are reported as not verified here, never skipped silently.
//!
//! Every size is bounded before it is read: entries, bytes per entry (whatever the zip header
//! claims, reads stop at the limit), total bytes, XML depth and elements. Paths that leave the
//! package (`..`) are refused.

use std::collections::HashMap;
use std::io::{Cursor, Read};

use base64::Engine as _;
use quick_xml::events::Event;
use time::OffsetDateTime;
use zhengyin_crypto::hash;
use zhengyin_model::{ReportBuilder, VerificationReport};

use crate::verify::{verify_signature, Context, Protected};

/// Bounds on what is read from an OFD package.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most entries in the zip.
    pub max_entries: usize,
    /// Most bytes of one entry, uncompressed.
    pub max_entry_bytes: u64,
    /// Most bytes read in total, uncompressed.
    pub max_total_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_entries: 10_000,
            max_entry_bytes: 32 * 1024 * 1024,
            max_total_bytes: 128 * 1024 * 1024,
        }
    }
}

/// Why a package could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum OfdError {
    /// Not a zip, or an entry could not be read.
    #[error("not a readable OFD package: {0}")]
    Package(String),
    /// A limit was exceeded.
    #[error("too large: {0}")]
    TooLarge(String),
    /// A path leaves the package or is malformed.
    #[error("unsafe path {0:?}")]
    Path(String),
    /// An XML file is malformed or lacks what OFD requires.
    #[error("malformed {0}")]
    Xml(String),
    /// Sealing failed: the seal, the placement or the signing.
    #[error("cannot seal: {0}")]
    Sealing(String),
}

/// One signature of the document and its report.
#[derive(Debug, Clone)]
pub struct SignatureOutcome {
    /// The `Signature.xml` path.
    pub path: String,
    /// `Seal` or `Sign`.
    pub kind: String,
    /// The GB/T 38540 report (for seals), with one `file` check per protected file.
    pub report: VerificationReport,
    /// The files it protects that are present and unchanged (package paths, no leading `/`).
    pub unchanged: Vec<String>,
    /// The esID of the seal it applies, when its signed value could be read.
    pub es_id: Option<String>,
}

/// The document's verdict and each signature's report.
#[derive(Debug, Clone)]
pub struct OfdVerification {
    /// The whole document: VALID only if every seal and every protected file is.
    pub report: VerificationReport,
    /// Each signature, in the order of the list.
    pub signatures: Vec<SignatureOutcome>,
}

/// Verifies every signature of an OFD package.
pub fn verify_ofd(ctx: &dyn Context, bytes: &[u8], now: OffsetDateTime, limits: Limits) -> OfdVerification {
    let mut r = ReportBuilder::new(&["package", "seals_present"]);
    let mut signatures = Vec::new();
    match Package::open(bytes, limits).and_then(|mut p| check_package(ctx, &mut p, now, &mut r, &mut signatures)) {
        Ok(()) => {}
        Err(e) => {
            r.fail("package", e.to_string());
        }
    }
    OfdVerification {
        report: r.finish(now),
        signatures,
    }
}

fn check_package(
    ctx: &dyn Context,
    package: &mut Package<'_>,
    now: OffsetDateTime,
    r: &mut ReportBuilder,
    out: &mut Vec<SignatureOutcome>,
) -> Result<(), OfdError> {
    let entries = signature_entries(package)?;
    r.pass("package", format!("OFD package, {} entries", package.entries()));
    let mut seals = 0;
    for entry in entries {
        let SignatureEntry {
            list,
            path,
            kind,
            later,
        } = entry;
        let (mut unchanged, mut es_id) = (Vec::new(), None);
        let report = if kind == "Seal" {
            seals += 1;
            let appended = Appended { list: &list, later };
            check_seal(ctx, package, &path, appended, now, &mut unchanged, &mut es_id)?
        } else {
            let mut s = ReportBuilder::new(&["signature"]);
            s.indeterminate(
                "signature",
                format!("Type=\"{kind}\": a GB/T 35275 digital signature, not a seal; not verified here"),
            );
            s.finish(now)
        };
        let outcome = match report.verdict {
            zhengyin_model::Verdict::Valid => zhengyin_model::Outcome::Passed,
            zhengyin_model::Verdict::Invalid => zhengyin_model::Outcome::Failed,
            zhengyin_model::Verdict::Indeterminate => zhengyin_model::Outcome::Indeterminate,
        };
        r.check("signature", outcome, format!("{path} ({kind}): {:?}", report.verdict));
        out.push(SignatureOutcome {
            path,
            kind,
            report,
            unchanged,
            es_id,
        });
    }
    if seals == 0 {
        r.fail("seals_present", "the document carries no seal: nothing vouches for it");
    } else {
        r.pass("seals_present", format!("{seals} seal signature(s)"));
    }
    Ok(())
}

/// One entry of a document's signature list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureEntry {
    /// The list (`Signatures.xml`) it is in.
    pub list: String,
    /// Its `Signature.xml`.
    pub path: String,
    /// `Seal` or `Sign`.
    pub kind: String,
    /// How many signatures the list holds after it.
    pub later: usize,
}

/// Every signature entry of every document: `OFD.xml` names each document's list, each list its
/// entries, in order.
fn signature_entries(package: &mut Package<'_>) -> Result<Vec<SignatureEntry>, OfdError> {
    let ofd = package.xml("OFD.xml")?;
    let lists: Vec<String> = ofd
        .descendants("Signatures")
        .into_iter()
        .map(|e| e.text.trim().to_owned())
        .filter(|t| !t.is_empty())
        .collect();
    let mut out = Vec::new();
    for list_path in lists {
        let list_path = resolve("", &list_path)?;
        let list = package.xml(&list_path)?;
        let base = parent(&list_path);
        let entries = list.descendants("Signature");
        let count = entries.len();
        for (position, entry) in entries.into_iter().enumerate() {
            let loc = entry
                .attr("BaseLoc")
                .ok_or_else(|| OfdError::Xml(format!("{list_path}: a Signature without BaseLoc")))?;
            out.push(SignatureEntry {
                path: resolve(base, loc)?,
                kind: entry.attr("Type").unwrap_or("Seal").to_owned(),
                later: count - position - 1,
                list: list_path.clone(),
            });
        }
    }
    Ok(out)
}

/// A `Signature.xml` (bytes, parsed) and the signed value (DER) it names.
fn signed_value(package: &mut Package<'_>, path: &str) -> Result<(Vec<u8>, Element, Vec<u8>), OfdError> {
    let signature_xml = package.read(path)?;
    let doc = Element::parse(&signature_xml, path)?;
    let signed_value = doc
        .descendants("SignedValue")
        .first()
        .map(|e| e.text.trim().to_owned())
        .ok_or_else(|| OfdError::Xml(format!("{path}: no SignedValue")))?;
    let der = package.read(&resolve(parent(path), &signed_value)?)?;
    Ok((signature_xml, doc, der))
}

/// A signature entry and the bytes of its signed value (for a seal, the `SES_Signature`), or why
/// they could not be read.
#[derive(Debug)]
pub struct SignedValue {
    /// Where the signature is listed.
    pub entry: SignatureEntry,
    /// Its signed value.
    pub der: Result<Vec<u8>, OfdError>,
}

/// Each signature entry of a package with its signed value: what `seal inspect` shows of an OFD.
/// Nothing is verified.
pub fn signed_values(bytes: &[u8], limits: Limits) -> Result<Vec<SignedValue>, OfdError> {
    let mut package = Package::open(bytes, limits)?;
    let entries = signature_entries(&mut package)?;
    Ok(entries
        .into_iter()
        .map(|entry| {
            let der = signed_value(&mut package, &entry.path).map(|(_, _, der)| der);
            SignedValue { entry, der }
        })
        .collect())
}

/// The signature list a seal is in, and how many signatures the list holds after it.
struct Appended<'a> {
    list: &'a str,
    later: usize,
}

/// One seal: its `Signature.xml`, the protected files (those unchanged are added to
/// `unchanged`), and the `SES_Signature` (its seal's esID put in `es_id`).
fn check_seal(
    ctx: &dyn Context,
    package: &mut Package<'_>,
    path: &str,
    appended: Appended<'_>,
    now: OffsetDateTime,
    unchanged: &mut Vec<String>,
    es_id: &mut Option<String>,
) -> Result<VerificationReport, OfdError> {
    let (signature_xml, doc, der) = signed_value(package, path)?;
    *es_id = crate::parse_signature(&der)
        .ok()
        .map(|s| s.to_sign.seal.info.es_id.to_owned());
    let base = parent(path);
    let mut report = verify_signature(ctx, &der, Protected::Bytes(&signature_xml), now);

    let mut files = ReportBuilder::new(&[]);
    let references = doc.descendants("References");
    let method = references.first().and_then(|e| e.attr("CheckMethod")).unwrap_or("");
    let sm3 = matches!(method, "" | "1.2.156.10197.1.401" | "SM3" | "sm3");
    let mut any = false;
    for reference in doc.descendants("Reference") {
        any = true;
        let Some(file_ref) = reference.attr("FileRef") else {
            files.fail("file", "a Reference without FileRef");
            continue;
        };
        let file = resolve(base, file_ref)?;
        let expected = reference
            .descendants("CheckValue")
            .first()
            .and_then(|e| base64::engine::general_purpose::STANDARD.decode(e.text.trim()).ok());
        if !sm3 {
            files.indeterminate("file", format!("{file}: check method {method} is not SM3"));
            continue;
        }
        match (package.read_optional(&file)?, expected) {
            (None, _) => files.fail("file", format!("{file} is missing")),
            (Some(_), None) => files.fail("file", format!("{file}: CheckValue is not base64")),
            (Some(bytes), Some(expected)) if hash::sm3(&bytes).as_slice() == expected.as_slice() => {
                unchanged.push(file.clone());
                files.pass("file", format!("{file} unchanged"))
            }
            // Each later signature adds itself to the list: expected, and each is verified on its own.
            (Some(_), Some(_)) if file == appended.list && appended.later > 0 => files.warn(
                "file",
                format!(
                    "{file} changed after sealing: {} later signature(s) appended to it, each verified on its own",
                    appended.later
                ),
            ),
            (Some(_), Some(_)) => files.fail("file", format!("{file} changed after sealing")),
        };
    }
    if !any {
        files.fail("file", "the signature protects no file");
    }
    let files = files.finish(now);
    // The file checks join the seal's report; the verdict is derived again from all of them.
    let mut all = ReportBuilder::new(crate::verify::SIGNATURE_REQUIRED);
    for c in report.checks.drain(..).chain(files.checks) {
        all.check(c.code, c.outcome, c.message);
    }
    if let Some(t) = report.signing_time {
        all.signing_time(t);
    }
    Ok(all.finish(now))
}

/// One file of the package `bytes` (a package path, no leading `/`), read within `limits`;
/// `None` when the package has no such file.
pub fn read_file(bytes: &[u8], path: &str, limits: Limits) -> Result<Option<Vec<u8>>, OfdError> {
    Package::open(bytes, limits)?.read_optional(path)
}

/// How a package's files are kept in its zip.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packing {
    /// Deflated: a package to hand out.
    Deflated,
    /// Stored as they are: a package read again at once (as sealing reads a laid-out file),
    /// where compressing would be work thrown away.
    Stored,
}

/// Writes `files` (package paths and bytes, in order) as an OFD package.
pub fn write_package(files: &[(String, Vec<u8>)], packing: Packing) -> Result<Vec<u8>, OfdError> {
    use std::io::Write as _;
    let failed = |e: &dyn std::fmt::Display| OfdError::Package(format!("writing: {e}"));
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    // Deflate at level 1: most of what deflate saves on XML and fonts, for a fraction of the
    // time (profiled: the default level was half the cost of making a licence file).
    let (method, level) = match packing {
        Packing::Deflated => (zip::CompressionMethod::Deflated, Some(1)),
        Packing::Stored => (zip::CompressionMethod::Stored, None),
    };
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(method)
        .compression_level(level);
    for (name, bytes) in files {
        zip.start_file(name.as_str(), options).map_err(|e| failed(&e))?;
        zip.write_all(bytes).map_err(|e| failed(&e))?;
    }
    Ok(zip.finish().map_err(|e| failed(&e))?.into_inner())
}

/// The zip, read within limits.
pub(crate) struct Package<'a> {
    zip: zip::ZipArchive<Cursor<&'a [u8]>>,
    limits: Limits,
    read_total: u64,
    names: HashMap<String, usize>,
}

impl<'a> Package<'a> {
    pub(crate) fn open(bytes: &'a [u8], limits: Limits) -> Result<Self, OfdError> {
        let zip = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| OfdError::Package(e.to_string()))?;
        if zip.len() > limits.max_entries {
            return Err(OfdError::TooLarge(format!(
                "{} entries (at most {})",
                zip.len(),
                limits.max_entries
            )));
        }
        let mut names = HashMap::new();
        for (i, name) in zip.file_names().enumerate() {
            // An entry's name is relative to the package: never absolute, never a drive.
            if name.starts_with('/') || name.contains(':') {
                return Err(OfdError::Path(name.to_owned()));
            }
            let clean = resolve("", name)?;
            if names.insert(clean.clone(), i).is_some() {
                return Err(OfdError::Package(format!("{clean} is in the package twice")));
            }
        }
        Ok(Self {
            zip,
            limits,
            read_total: 0,
            names,
        })
    }

    fn entries(&self) -> usize {
        self.zip.len()
    }

    /// Every entry, in the zip's order, each read within the limits.
    pub(crate) fn all(&mut self) -> Result<Vec<(String, Vec<u8>)>, OfdError> {
        let mut names: Vec<(usize, String)> = self.names.iter().map(|(name, &i)| (i, name.clone())).collect();
        names.sort();
        let mut out = Vec::with_capacity(names.len());
        for (_, name) in names {
            let bytes = self.read(&name)?;
            out.push((name, bytes));
        }
        Ok(out)
    }

    pub(crate) fn read(&mut self, path: &str) -> Result<Vec<u8>, OfdError> {
        self.read_optional(path)?
            .ok_or_else(|| OfdError::Package(format!("{path} is missing")))
    }

    fn read_optional(&mut self, path: &str) -> Result<Option<Vec<u8>>, OfdError> {
        let Some(&index) = self.names.get(path) else {
            return Ok(None);
        };
        let entry = self.zip.by_index(index).map_err(|e| OfdError::Package(e.to_string()))?;
        let budget = self
            .limits
            .max_entry_bytes
            .min(self.limits.max_total_bytes.saturating_sub(self.read_total));
        if entry.size() > budget {
            return Err(OfdError::TooLarge(format!("{path}: {} bytes", entry.size())));
        }
        // The header's size may lie (zip bombs): never read past the budget.
        let mut bytes = Vec::new();
        entry
            .take(budget + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| OfdError::Package(format!("{path}: {e}")))?;
        if bytes.len() as u64 > budget {
            return Err(OfdError::TooLarge(format!("{path} inflates beyond {budget} bytes")));
        }
        self.read_total += bytes.len() as u64;
        Ok(Some(bytes))
    }

    fn xml(&mut self, path: &str) -> Result<Element, OfdError> {
        let bytes = self.read(path)?;
        Element::parse(&bytes, path)
    }
}

/// `reference` resolved against the folder `base`: absolute (`/Doc_0/…`) from the package root,
/// otherwise relative to `base`. Refuses `..`, backslashes and empty segments.
pub(crate) fn resolve(base: &str, reference: &str) -> Result<String, OfdError> {
    let (start, rest) = match reference.strip_prefix('/') {
        Some(rest) => ("", rest),
        None => (base, reference),
    };
    let mut parts: Vec<&str> = start.split('/').filter(|p| !p.is_empty()).collect();
    for part in rest.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(OfdError::Path(reference.to_owned())),
            p if p.contains('\\') || p.contains('\0') => return Err(OfdError::Path(reference.to_owned())),
            p => parts.push(p),
        }
    }
    if parts.is_empty() {
        return Err(OfdError::Path(reference.to_owned()));
    }
    Ok(parts.join("/"))
}

pub(crate) fn parent(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(dir, _)| dir)
}

/// A small XML tree: local names (prefixes dropped), attributes, text.
#[derive(Debug, Default)]
pub(crate) struct Element {
    pub(crate) name: String,
    attrs: Vec<(String, String)>,
    pub(crate) text: String,
    children: Vec<Element>,
}

const MAX_DEPTH: usize = 64;
const MAX_ELEMENTS: usize = 100_000;

impl Element {
    pub(crate) fn parse(bytes: &[u8], path: &str) -> Result<Element, OfdError> {
        let bad = |m: String| OfdError::Xml(format!("{path}: {m}"));
        let text = std::str::from_utf8(bytes).map_err(|_| bad("not UTF-8".to_owned()))?;
        let mut reader = quick_xml::Reader::from_str(text);
        let mut stack: Vec<Element> = vec![Element::default()];
        let mut count = 0;
        loop {
            match reader.read_event().map_err(|e| bad(e.to_string()))? {
                Event::Start(e) | Event::Empty(e) if stack.len() > MAX_DEPTH || count >= MAX_ELEMENTS => {
                    return Err(bad(format!(
                        "deeper than {MAX_DEPTH} or more than {MAX_ELEMENTS} elements ({:?})",
                        e.name()
                    )));
                }
                Event::Start(e) => {
                    count += 1;
                    stack.push(Element::from_start(&e).map_err(bad)?);
                }
                Event::Empty(e) => {
                    count += 1;
                    let element = Element::from_start(&e).map_err(bad)?;
                    if let Some(top) = stack.last_mut() {
                        top.children.push(element);
                    }
                }
                Event::Text(t) => {
                    let t = t.unescape().map_err(|e| bad(e.to_string()))?;
                    if let Some(top) = stack.last_mut() {
                        top.text.push_str(&t);
                    }
                }
                Event::End(_) => {
                    let done = stack.pop().ok_or_else(|| bad("unbalanced".to_owned()))?;
                    match stack.last_mut() {
                        Some(top) => top.children.push(done),
                        None => return Err(bad("unbalanced".to_owned())),
                    }
                }
                Event::Eof => break,
                _ => {}
            }
        }
        if stack.len() != 1 {
            return Err(bad("unclosed element".to_owned()));
        }
        let mut root = stack.pop().unwrap_or_default();
        root.children
            .pop()
            .filter(|_| root.children.is_empty())
            .ok_or_else(|| bad("not exactly one root element".to_owned()))
    }

    fn from_start(e: &quick_xml::events::BytesStart<'_>) -> Result<Element, String> {
        let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
        let mut attrs = Vec::new();
        for a in e.attributes() {
            let a = a.map_err(|e| e.to_string())?;
            let key = String::from_utf8_lossy(a.key.local_name().as_ref()).into_owned();
            let value = a.unescape_value().map_err(|e| e.to_string())?.into_owned();
            attrs.push((key, value));
        }
        Ok(Element {
            name,
            attrs,
            ..Element::default()
        })
    }

    pub(crate) fn attr(&self, name: &str) -> Option<&str> {
        self.attrs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Every element named `name` below this one (and this one), in document order.
    pub(crate) fn descendants(&self, name: &str) -> Vec<&Element> {
        let mut out = Vec::new();
        let mut stack = vec![self];
        while let Some(e) = stack.pop() {
            if e.name == name {
                out.push(e);
            }
            stack.extend(e.children.iter().rev());
        }
        out
    }
}
