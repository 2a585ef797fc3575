//! OFD packages in the tests: taken apart, put back together, and the demo SM2 authority's
//! e-seal that seals them.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read as _, Write as _};

use base64::Engine as _;

pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Every file of a package: its path and bytes, in the zip's order.
pub fn unzip(package: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(package)).unwrap();
    (0..zip.len())
        .map(|i| {
            let mut entry = zip.by_index(i).unwrap();
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).unwrap();
            (entry.name().to_owned(), bytes)
        })
        .collect()
}

/// A package of `files`.
pub fn zip(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, bytes) in files {
        zip.start_file(name.as_str(), zip::write::SimpleFileOptions::default())
            .unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

/// The bytes of the file `name`.
pub fn entry<'a>(files: &'a [(String, Vec<u8>)], name: &str) -> &'a [u8] {
    &files
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no {name}"))
        .1
}

/// The demo SM2 authority's certificate chain (PEM, leaf first): the signer of its e-seals.
pub fn sm2_signer_chain() -> String {
    let read = |f: &str| std::fs::read_to_string(super::root().join("keys-example").join(f)).unwrap();
    read("authority-sm2.pem") + &read("issuing-ca.pem")
}

/// Makes an e-seal for the demo SM2 authority (with `picture`, a PNG, when given); its esID.
pub async fn make_sm2_seal(http: &reqwest::Client, server: &super::Server, picture: Option<&[u8]>) -> String {
    let mut request = super::seal_request("12100000400010398P", &sm2_signer_chain());
    if let Some(png) = picture {
        request["picture"]["data_base64"] = serde_json::json!(b64(png));
    }
    let (status, seal) = super::send(http, server, "/v1/seals", "demo-operator", &request).await;
    assert_eq!(status, reqwest::StatusCode::CREATED, "{seal}");
    seal["es_id"].as_str().unwrap().to_owned()
}
