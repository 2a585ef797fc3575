//! OFD packages built here: a sealed document verifies; a changed, missing or unlisted file, an
//! unsealed document, a digital signature, unsafe paths and zip bombs are each reported.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use base64::Engine as _;
use common::package::{entry as file, unzip, zip};
use common::{cert, key, our_seal, registry};
use time::macros::datetime;
use zhengyin_crypto::hash;
use zhengyin_model::{Outcome, Verdict};
use zhengyin_ses::ofd::{verify_ofd, Limits, OfdVerification};
use zhengyin_ses::verify::SealStatus;
use zhengyin_ses::write::apply_seal;

const NOW: time::OffsetDateTime = datetime!(2026-11-22 08:00 UTC);
const CONTENT: &[u8] =
    b"<ofd:Page xmlns:ofd=\"http://www.ofdspec.org/2016\"><ofd:Content>invoice 1000 CNY</ofd:Content></ofd:Page>";
const DOCUMENT: &[u8] = b"<ofd:Document xmlns:ofd=\"http://www.ofdspec.org/2016\"><ofd:Pages><ofd:Page BaseLoc=\"Pages/Page_0/Content.xml\"/></ofd:Pages></ofd:Document>";

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A seal's `Signature.xml` protecting `references` (package paths and their bytes), and its
/// `SignedValue.dat` over it.
fn seal_signature(sign_dir: &str, references: &[(&str, &[u8])]) -> (Vec<u8>, Vec<u8>) {
    let refs: String = references
        .iter()
        .map(|(path, bytes)| {
            format!(
                r#"<ofd:Reference FileRef="/{path}"><ofd:CheckValue>{}</ofd:CheckValue></ofd:Reference>"#,
                b64(&hash::sm3(bytes))
            )
        })
        .collect();
    let signature_xml = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<ofd:Signature xmlns:ofd="http://www.ofdspec.org/2016"><ofd:SignedInfo>
<ofd:Provider ProviderName="Zhengyin"/><ofd:SignatureMethod>1.2.156.10197.1.501</ofd:SignatureMethod>
<ofd:References CheckMethod="1.2.156.10197.1.401">{refs}</ofd:References></ofd:SignedInfo>
<ofd:SignedValue>/{sign_dir}/SignedValue.dat</ofd:SignedValue></ofd:Signature>"#
    )
    .into_bytes();
    let signed_value = apply_seal(
        &our_seal(),
        datetime!(2026-06-01 09:30 UTC),
        &hash::sm3(&signature_xml),
        &format!("/{sign_dir}/Signature.xml"),
        cert("authority-sm2.pem").der(),
        &key("authority-sm2.key"),
    )
    .unwrap();
    (signature_xml, signed_value)
}

const OFD_XML: &[u8] = br#"<ofd:OFD xmlns:ofd="http://www.ofdspec.org/2016" Version="1.0"><ofd:DocBody><ofd:DocRoot>Doc_0/Document.xml</ofd:DocRoot><ofd:Signatures>Doc_0/Signs/Signatures.xml</ofd:Signatures></ofd:DocBody></ofd:OFD>"#;

fn signature_list(entries: &[(&str, &str)]) -> Vec<u8> {
    let items: String = entries
        .iter()
        .enumerate()
        .map(|(i, (kind, loc))| format!(r#"<ofd:Signature ID="{}" Type="{kind}" BaseLoc="{loc}"/>"#, i + 1))
        .collect();
    format!(r#"<ofd:Signatures xmlns:ofd="http://www.ofdspec.org/2016"><ofd:MaxSignId>{}</ofd:MaxSignId>{items}</ofd:Signatures>"#, entries.len()).into_bytes()
}

/// The files of a sealed OFD: one seal over Document.xml and the page.
fn sealed_files(kind: &str, base_loc: &str) -> Vec<(String, Vec<u8>)> {
    let (signature_xml, signed_value) = seal_signature(
        "Doc_0/Signs/Sign_0",
        &[
            ("Doc_0/Document.xml", DOCUMENT),
            ("Doc_0/Pages/Page_0/Content.xml", CONTENT),
        ],
    );
    vec![
        ("OFD.xml".to_owned(), OFD_XML.to_vec()),
        ("Doc_0/Document.xml".to_owned(), DOCUMENT.to_vec()),
        ("Doc_0/Pages/Page_0/Content.xml".to_owned(), CONTENT.to_vec()),
        (
            "Doc_0/Signs/Signatures.xml".to_owned(),
            signature_list(&[(kind, base_loc)]),
        ),
        ("Doc_0/Signs/Sign_0/Signature.xml".to_owned(), signature_xml),
        ("Doc_0/Signs/Sign_0/SignedValue.dat".to_owned(), signed_value),
    ]
}

/// Two seals in turn: the first protects the signature list as it was; the second appends
/// itself to it. The first reports exactly that, and the document stays VALID; any other change
/// of the list is a failure.
#[test]
fn a_later_seal_appending_itself_to_the_list_is_named_as_such() {
    let first_list = signature_list(&[("Seal", "Sign_0/Signature.xml")]);
    let (xml_0, value_0) = seal_signature(
        "Doc_0/Signs/Sign_0",
        &[
            ("Doc_0/Document.xml", DOCUMENT),
            ("Doc_0/Signs/Signatures.xml", &first_list),
        ],
    );
    let second_list = signature_list(&[("Seal", "Sign_0/Signature.xml"), ("Seal", "Sign_1/Signature.xml")]);
    let (xml_1, value_1) = seal_signature(
        "Doc_0/Signs/Sign_1",
        &[
            ("Doc_0/Document.xml", DOCUMENT),
            ("Doc_0/Signs/Signatures.xml", &second_list),
        ],
    );
    let files = |list: Vec<u8>| {
        vec![
            ("OFD.xml".to_owned(), OFD_XML.to_vec()),
            ("Doc_0/Document.xml".to_owned(), DOCUMENT.to_vec()),
            ("Doc_0/Signs/Signatures.xml".to_owned(), list),
            ("Doc_0/Signs/Sign_0/Signature.xml".to_owned(), xml_0.clone()),
            ("Doc_0/Signs/Sign_0/SignedValue.dat".to_owned(), value_0.clone()),
            ("Doc_0/Signs/Sign_1/Signature.xml".to_owned(), xml_1.clone()),
            ("Doc_0/Signs/Sign_1/SignedValue.dat".to_owned(), value_1.clone()),
        ]
    };
    let result = verify(&files(second_list.clone()));
    assert_eq!(result.report.verdict, Verdict::Valid, "{result:#?}");
    let first = &result.signatures[0].report;
    assert!(first.checks.iter().any(|c| c.code == "file"
        && c.outcome == Outcome::Warning
        && c.message.contains("1 later signature(s) appended")));

    // The list changed in another way (its MaxSignId rewritten): the second seal,
    // the last in the list, fails on it.
    let tampered = String::from_utf8(second_list)
        .unwrap()
        .replace("MaxSignId>2", "MaxSignId>7");
    let result = verify(&files(tampered.into_bytes()));
    assert_eq!(result.report.verdict, Verdict::Invalid);
    assert!(result.signatures[1].report.checks.iter().any(|c| c.code == "file"
        && c.outcome == Outcome::Failed
        && c.message.contains("Signatures.xml changed after sealing")));
}

fn verify(files: &[(String, Vec<u8>)]) -> OfdVerification {
    verify_ofd(&registry(SealStatus::Active), &zip(files), NOW, Limits::default())
}

fn failed_with(result: &OfdVerification, text: &str) -> bool {
    result
        .report
        .checks
        .iter()
        .any(|c| c.outcome == Outcome::Failed && c.message.contains(text))
}

fn replace(files: &mut [(String, Vec<u8>)], name: &str, bytes: &[u8]) {
    files.iter_mut().find(|(n, _)| n == name).unwrap().1 = bytes.to_vec();
}

#[test]
fn a_sealed_ofd_verifies() {
    let result = verify(&sealed_files("Seal", "Sign_0/Signature.xml"));
    assert_eq!(result.report.verdict, Verdict::Valid, "{result:#?}");
    assert_eq!(result.signatures.len(), 1);
    let files: Vec<_> = result.signatures[0]
        .report
        .checks
        .iter()
        .filter(|c| c.code == "file")
        .collect();
    assert_eq!(files.len(), 2);
    assert!(files.iter().all(|c| c.outcome == Outcome::Passed));
}

#[test]
fn a_changed_or_missing_protected_file_is_named() {
    let mut files = sealed_files("Seal", "Sign_0/Signature.xml");
    replace(
        &mut files,
        "Doc_0/Pages/Page_0/Content.xml",
        b"<ofd:Page>invoice 9000 CNY</ofd:Page>",
    );
    let result = verify(&files);
    assert_eq!(result.report.verdict, Verdict::Invalid);
    let report = &result.signatures[0].report;
    assert!(report.checks.iter().any(|c| c.code == "file"
        && c.outcome == Outcome::Failed
        && c.message.contains("Doc_0/Pages/Page_0/Content.xml changed")));
    // Every signature still verifies: the change is caught by the file check alone.
    assert!(report
        .checks
        .iter()
        .filter(|c| c.code.ends_with("_signature"))
        .all(|c| c.outcome == Outcome::Passed));

    let mut files = sealed_files("Seal", "Sign_0/Signature.xml");
    files.retain(|(n, _)| n != "Doc_0/Document.xml");
    let result = verify(&files);
    assert_eq!(result.report.verdict, Verdict::Invalid);
    assert!(result.signatures[0]
        .report
        .checks
        .iter()
        .any(|c| c.message.contains("Doc_0/Document.xml is missing")));

    // Signature.xml itself changed: its SM3 no longer matches dataHash.
    let mut files = sealed_files("Seal", "Sign_0/Signature.xml");
    let xml = String::from_utf8(files[4].1.clone())
        .unwrap()
        .replace("Zhengyin", "Someone");
    replace(&mut files, "Doc_0/Signs/Sign_0/Signature.xml", xml.as_bytes());
    let result = verify(&files);
    assert_eq!(result.report.verdict, Verdict::Invalid);
}

#[test]
fn unsealed_documents_and_digital_signatures_are_not_valid() {
    let mut files = sealed_files("Seal", "Sign_0/Signature.xml");
    replace(
        &mut files,
        "Doc_0/Signs/Signatures.xml",
        br#"<ofd:Signatures xmlns:ofd="http://www.ofdspec.org/2016"/>"#,
    );
    let result = verify(&files);
    assert_eq!(result.report.verdict, Verdict::Invalid);
    assert!(result
        .report
        .checks
        .iter()
        .any(|c| c.code == "seals_present" && c.outcome == Outcome::Failed));

    let result = verify(&sealed_files("Sign", "Sign_0/Signature.xml"));
    assert_ne!(result.report.verdict, Verdict::Valid);
    assert_eq!(result.signatures[0].kind, "Sign");
    assert!(result.signatures[0].report.checks[0].message.contains("GB/T 35275"));
}

#[test]
fn unsafe_paths_bombs_and_garbage_are_refused() {
    for base_loc in ["../../../etc/passwd", "Sign_0/../../../x", "..\\x"] {
        let result = verify(&sealed_files("Seal", base_loc));
        assert_eq!(result.report.verdict, Verdict::Invalid, "{base_loc}");
        assert!(
            failed_with(&result, "unsafe path"),
            "{base_loc}: {:?}",
            result.report.checks
        );
    }
    // A zip entry that inflates far beyond the limit: refused before it is all read.
    let mut files = sealed_files("Seal", "Sign_0/Signature.xml");
    files.push(("Doc_0/Res/bomb.bin".to_owned(), vec![0u8; 8 * 1024 * 1024]));
    replace(&mut files, "Doc_0/Document.xml", DOCUMENT);
    let bomb = zip(&files);
    assert!(bomb.len() < 100 * 1024, "deflate squeezes zeros");
    let small = Limits {
        max_entry_bytes: 1024 * 1024,
        ..Limits::default()
    };
    // The bomb is only read when referenced: reference it from Signatures.xml's list.
    let mut referenced = files.clone();
    replace(&mut referenced, "OFD.xml", br#"<ofd:OFD xmlns:ofd="http://www.ofdspec.org/2016"><ofd:DocBody><ofd:Signatures>Doc_0/Res/bomb.bin</ofd:Signatures></ofd:DocBody></ofd:OFD>"#);
    let result = verify_ofd(&registry(SealStatus::Active), &zip(&referenced), NOW, small);
    assert_eq!(result.report.verdict, Verdict::Invalid);
    assert!(failed_with(&result, "too large"), "{:?}", result.report.checks);
    let few = Limits {
        max_entries: 3,
        ..Limits::default()
    };
    let result = verify_ofd(&registry(SealStatus::Active), &bomb, NOW, few);
    assert!(failed_with(&result, "entries"));

    for garbage in [&b"not a zip"[..], &[], &zip(&[])[..]] {
        let result = verify_ofd(&registry(SealStatus::Active), garbage, NOW, Limits::default());
        assert_eq!(result.report.verdict, Verdict::Invalid);
    }
    // Malformed and deeply nested XML.
    let mut files = sealed_files("Seal", "Sign_0/Signature.xml");
    replace(&mut files, "OFD.xml", b"<a><b></a>");
    assert_eq!(verify(&files).report.verdict, Verdict::Invalid);
    let deep = "<a>".repeat(10_000) + &"</a>".repeat(10_000);
    replace(&mut files, "OFD.xml", deep.as_bytes());
    assert_eq!(verify(&files).report.verdict, Verdict::Invalid);
}

/// An unsealed two-page document, as a layout tool writes it (no signature list yet).
fn unsealed_files() -> Vec<(String, Vec<u8>)> {
    let ofd = br#"<?xml version="1.0" encoding="UTF-8"?><ofd:OFD xmlns:ofd="http://www.ofdspec.org/2016" Version="1.1" DocType="OFD"><ofd:DocBody><ofd:DocInfo><ofd:DocID>0c1d</ofd:DocID></ofd:DocInfo><ofd:DocRoot>Doc_0/Document.xml</ofd:DocRoot></ofd:DocBody></ofd:OFD>"#;
    let document = br#"<ofd:Document xmlns:ofd="http://www.ofdspec.org/2016"><ofd:CommonData><ofd:MaxUnitID>9</ofd:MaxUnitID></ofd:CommonData><ofd:Pages><ofd:Page ID="2" BaseLoc="Pages/Page_0/Content.xml"/><ofd:Page ID="5" BaseLoc="Pages/Page_1/Content.xml"/></ofd:Pages></ofd:Document>"#;
    vec![
        ("OFD.xml".to_owned(), ofd.to_vec()),
        ("Doc_0/Document.xml".to_owned(), document.to_vec()),
        ("Doc_0/Pages/Page_0/Content.xml".to_owned(), CONTENT.to_vec()),
        (
            "Doc_0/Pages/Page_1/Content.xml".to_owned(),
            b"<ofd:Page xmlns:ofd=\"http://www.ofdspec.org/2016\"/>".to_vec(),
        ),
    ]
}

fn seal_here(package: &[u8], page: usize) -> Result<Vec<u8>, zhengyin_ses::ofd::OfdError> {
    use zhengyin_ses::seal_ofd::{seal_ofd, Placement, Sealing};
    let seal = our_seal();
    let signer = key("authority-sm2.key");
    let certificate = cert("authority-sm2.pem");
    seal_ofd(
        package,
        &Sealing {
            seal: &seal,
            signer_certificate: certificate.der(),
            signer: &signer,
            time: datetime!(2026-06-01 09:30 UTC),
            stamps: Placement { page, x: 20.0, y: 30.5 }.into(),
        },
        Limits::default(),
    )
}

#[test]
fn a_document_sealed_here_verifies_and_a_second_seal_keeps_the_first() {
    let sealed = seal_here(&zip(&unsealed_files()), 0).unwrap();
    let files = unzip(&sealed);
    let result = verify(&files);
    assert_eq!(result.report.verdict, Verdict::Valid, "{result:#?}");
    assert_eq!(result.signatures.len(), 1);
    // Every file of the package is protected, the list made here included.
    let protected = result.signatures[0]
        .report
        .checks
        .iter()
        .filter(|c| c.code == "file")
        .count();
    assert_eq!(protected, 5);
    let signature_xml = String::from_utf8(file(&files, "Doc_0/Signs/Sign_0/Signature.xml").to_vec()).unwrap();
    assert!(
        signature_xml.contains(r#"<ofd:StampAnnot ID="1" PageRef="2" Boundary="20 30.5 40 40"/>"#),
        "{signature_xml}"
    );
    assert!(String::from_utf8_lossy(file(&files, "OFD.xml"))
        .contains("<ofd:Signatures>Doc_0/Signs/Signatures.xml</ofd:Signatures></ofd:DocBody>"));
    assert_eq!(file(&files, "Doc_0/Signs/Sign_0/Seal.esl"), our_seal().as_slice());

    // Sealed again, on the second page: both verify; the first names the appended list.
    let twice = unzip(&seal_here(&sealed, 1).unwrap());
    let result = verify(&twice);
    assert_eq!(result.report.verdict, Verdict::Valid, "{result:#?}");
    assert_eq!(result.signatures.len(), 2);
    assert!(result.signatures.iter().all(|s| s.report.verdict == Verdict::Valid));
    assert!(result.signatures[0]
        .report
        .checks
        .iter()
        .any(|c| c.outcome == Outcome::Warning && c.message.contains("1 later signature(s) appended")));
    let list = String::from_utf8_lossy(file(&twice, "Doc_0/Signs/Signatures.xml")).into_owned();
    assert!(
        list.contains("<ofd:MaxSignId>2</ofd:MaxSignId>")
            && list.contains(r#"ID="2" Type="Seal" BaseLoc="/Doc_0/Signs/Sign_1/Signature.xml""#),
        "{list}"
    );
    assert!(String::from_utf8_lossy(file(&twice, "Doc_0/Signs/Sign_1/Signature.xml")).contains(r#"PageRef="5""#));

    // One byte of a page, of Signature.xml or of SignedValue.dat, or a listed file removed: INVALID.
    for (name, what) in [
        ("Doc_0/Pages/Page_0/Content.xml", "Content.xml changed after sealing"),
        ("Doc_0/Signs/Sign_1/Signature.xml", "data_hash"),
        ("Doc_0/Signs/Sign_1/SignedValue.dat", "signer_signature"),
    ] {
        let mut changed = twice.clone();
        let entry = &mut changed.iter_mut().find(|(n, _)| n == name).unwrap().1;
        let at = entry.len() / 2;
        entry[at] ^= 0x01;
        let result = verify(&changed);
        assert_eq!(result.report.verdict, Verdict::Invalid, "{name}");
        let said = format!("{result:?}");
        assert!(said.contains(what), "{name}: {what}");
    }
    let mut removed = twice.clone();
    removed.retain(|(n, _)| n != "Doc_0/Document.xml");
    assert!(failed_with_anywhere(&verify(&removed), "Document.xml is missing"));
}

fn failed_with_anywhere(result: &OfdVerification, text: &str) -> bool {
    result
        .signatures
        .iter()
        .flat_map(|s| &s.report.checks)
        .chain(&result.report.checks)
        .any(|c| c.outcome == Outcome::Failed && c.message.contains(text))
}

#[test]
fn sealing_refuses_what_it_cannot_seal_with_the_reason() {
    let package = zip(&unsealed_files());
    let error = seal_here(&package, 2).unwrap_err().to_string();
    assert!(error.contains("2 page(s); page 3"), "{error}");
    let error = seal_here(b"not a zip", 0).unwrap_err().to_string();
    assert!(error.contains("not a readable OFD package"), "{error}");
    let mut no_root = unsealed_files();
    no_root.retain(|(n, _)| n != "Doc_0/Document.xml");
    let error = seal_here(&zip(&no_root), 0).unwrap_err().to_string();
    assert!(error.contains("Document.xml is missing"), "{error}");
    let mut escaping = unsealed_files();
    replace(
        &mut escaping,
        "OFD.xml",
        br#"<ofd:OFD xmlns:ofd="http://www.ofdspec.org/2016"><ofd:DocBody><ofd:DocRoot>../Doc_0/Document.xml</ofd:DocRoot></ofd:DocBody></ofd:OFD>"#,
    );
    let error = seal_here(&zip(&escaping), 0).unwrap_err().to_string();
    assert!(error.contains("unsafe path"), "{error}");

    let mut no_ofd = unsealed_files();
    no_ofd.retain(|(n, _)| n != "OFD.xml");
    let error = seal_here(&zip(&no_ofd), 0).unwrap_err().to_string();
    assert!(error.contains("OFD.xml is missing"), "{error}");
    // A page the document lists whose content is not in the package.
    let mut no_page = unsealed_files();
    no_page.retain(|(n, _)| n != "Doc_0/Pages/Page_0/Content.xml");
    let error = seal_here(&zip(&no_page), 0).unwrap_err().to_string();
    assert!(error.contains("Page_0/Content.xml (page 1) is missing"), "{error}");
    // Entries that would land outside the package if it were unpacked: every file is listed in
    // the signature, so none may be refused only when it is read.
    // (Zip writers tidy such names, so each is written under a stand-in of its length and the
    // name's bytes put in after, in the local header and the central directory alike.)
    for name in [
        "../evil.xml",
        "/etc/passwd",
        "Doc_0/../../evil.xml",
        "C:\\evil.xml",
        "Doc_0\\..\\..\\evil.xml",
    ] {
        let stand_in = "Q".repeat(name.len());
        let mut files = unsealed_files();
        files.push((stand_in.clone(), b"<x/>".to_vec()));
        let mut package = zip(&files);
        let mut at = 0;
        while let Some(found) = package[at..].windows(name.len()).position(|w| w == stand_in.as_bytes()) {
            package[at + found..at + found + name.len()].copy_from_slice(name.as_bytes());
            at += found + name.len();
        }
        assert!(at > 0);
        let error = seal_here(&package, 0).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(error.contains("unsafe path"), "{name}: {error}");
    }
    // One file under two names that read alike: which one would a reader take?
    let mut twice = unsealed_files();
    twice.push(("Doc_0/./Document.xml".to_owned(), b"<x/>".to_vec()));
    let error = seal_here(&zip(&twice), 0)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(error.contains("Doc_0/Document.xml is in the package twice"), "{error}");
}

#[test]
fn sealing_bounds_what_it_inflates() {
    use zhengyin_ses::seal_ofd::{seal_ofd, Placement, Sealing};
    // 8 MiB of zeros, a few KiB deflated, in a file no page names: sealing lists (and so reads)
    // every file, within the limits it is given.
    let mut files = unsealed_files();
    files.push(("Doc_0/Res/bomb.bin".to_owned(), vec![0u8; 8 * 1024 * 1024]));
    let bomb = zip(&files);
    assert!(bomb.len() < 100 * 1024, "deflate squeezes zeros");
    let (seal, signer, certificate) = (our_seal(), key("authority-sm2.key"), cert("authority-sm2.pem"));
    let sealing = Sealing {
        seal: &seal,
        signer_certificate: certificate.der(),
        signer: &signer,
        time: datetime!(2026-06-01 09:30 UTC),
        stamps: Placement {
            page: 0,
            x: 20.0,
            y: 30.5,
        }
        .into(),
    };
    for limits in [
        Limits {
            max_entry_bytes: 1024 * 1024,
            ..Limits::default()
        },
        Limits {
            max_total_bytes: 4 * 1024 * 1024,
            ..Limits::default()
        },
    ] {
        let error = seal_ofd(&bomb, &sealing, limits).unwrap_err().to_string();
        assert!(error.contains("bomb.bin") || error.contains("bytes"), "{error}");
    }
    let many: Vec<(String, Vec<u8>)> = unsealed_files()
        .into_iter()
        .chain((0..40).map(|i| (format!("Doc_0/Res/{i}.bin"), vec![1])))
        .collect();
    let error = seal_ofd(
        &zip(&many),
        &sealing,
        Limits {
            max_entries: 20,
            ..Limits::default()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(error.contains("entries"), "{error}");
    // Within the limits, the bomb is only a large file.
    assert!(seal_ofd(&bomb, &sealing, Limits::default()).is_ok());
}
