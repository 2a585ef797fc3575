//! OFD packages in the tests: taken apart, put back together, and the demo SM2 authority's
//! e-seal that seals them.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use base64::Engine as _;

#[path = "../../crates/ses/tests/common/package.rs"]
mod package;
#[allow(unused_imports)]
pub use package::{entry, unzip, zip};

pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
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
