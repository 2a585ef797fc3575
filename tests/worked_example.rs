//! The worked example in api-spec (openapi.yaml `x-worked-example`, licence-format.md) is real:
//! recomputed here from the example key, and verified by the offline verifier.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use serde_json::Value;
use zhengyin_crypto::suite::{decode_proof_value, encode_proof_value};
use zhengyin_crypto::{hash, Cryptosuite, FileKey, Signer, TrustAnchors};
use zhengyin_model::{canonical, ReceivedLicence, SigningInput, Verdict};

fn read(rel: &str) -> String {
    std::fs::read_to_string(common::root().join(rel)).unwrap()
}

#[test]
fn the_worked_example_recomputes_byte_for_byte() {
    let spec: Value = serde_yaml_ng::from_str(&read("api-spec/openapi.yaml")).unwrap();
    let ex = &spec["x-worked-example"];
    let field = |k: &str| ex[k].as_str().unwrap().to_owned();
    let signed = field("signed_licence");
    let received = ReceivedLicence::parse(signed.as_bytes()).unwrap();
    let input = SigningInput::from_values(&received.document, &received.proof).unwrap();
    assert_eq!(
        String::from_utf8(input.proof_config.clone()).unwrap(),
        field("proof_config_jcs")
    );
    assert_eq!(
        String::from_utf8(input.document.clone()).unwrap(),
        field("document_jcs")
    );
    assert_eq!(
        hex::encode(hash::sha256(&input.proof_config)),
        field("proof_config_sha256")
    );
    assert_eq!(hex::encode(hash::sha256(&input.document)), field("document_sha256"));
    let hash_data = Cryptosuite::EddsaJcs2022.hash_data(&input.proof_config, &input.document);
    assert_eq!(hex::encode(hash_data), field("hash_data"));
    let key = FileKey::from_pem_file(&common::root().join("keys-example/authority-ed25519.key")).unwrap();
    let signature = key.sign(&hash_data).unwrap();
    assert_eq!(hex::encode(&signature), field("signature"));
    assert_eq!(encode_proof_value(&signature), field("proof_value"));
    assert_eq!(decode_proof_value(&field("proof_value")).unwrap(), signature);
    let value: Value = serde_json::from_str(&signed).unwrap();
    assert_eq!(
        String::from_utf8(canonical::to_canonical(&value).unwrap()).unwrap(),
        signed,
        "stored form is JCS"
    );

    // The prose page quotes the same values.
    let page = read("api-spec/licence-format.md");
    for k in [
        "proof_config_jcs",
        "document_jcs",
        "proof_config_sha256",
        "document_sha256",
        "hash_data",
        "signature",
        "proof_value",
    ] {
        assert!(page.contains(&field(k)), "licence-format.md lacks the current {k}");
    }

    // The offline verifier accepts its signature and chain (status is unknown offline).
    let anchors = TrustAnchors::from_pem(&read("keys-example/root-ca.pem")).unwrap();
    let chain = read("keys-example/authority-ed25519.pem") + &read("keys-example/issuing-ca.pem");
    let now = time::OffsetDateTime::now_utc();
    let report = zhengyin_engine::verify_offline(signed.as_bytes(), anchors, &[chain], Vec::new(), now, None).unwrap();
    let outcome = |code: &str| report.checks.iter().find(|c| c.code == code).map(|c| c.outcome);
    assert_eq!(
        outcome("signature"),
        Some(zhengyin_model::Outcome::Passed),
        "{report:#?}"
    );
    assert_eq!(
        outcome("certificate"),
        Some(zhengyin_model::Outcome::Passed),
        "{report:#?}"
    );
    assert_eq!(report.verdict, Verdict::Indeterminate, "offline can never be VALID");
}

/// The first fenced block of `lang` in a markdown document.
fn fenced<'a>(doc: &'a str, lang: &str) -> &'a str {
    doc.split(&format!("```{lang}\n"))
        .nth(1)
        .and_then(|rest| rest.split("\n```").next())
        .unwrap_or_else(|| panic!("no {lang} block"))
}

#[test]
fn the_trust_list_example_signs_byte_for_byte_and_opens_with_the_operator_key() {
    use zhengyin_engine::trust_list::TrustList;
    let doc = read("api-spec/trust-list.md");
    let list: TrustList = serde_json::from_str(fenced(&doc, "json")).unwrap();
    let signed = fenced(&doc, "text").trim();
    let key = FileKey::from_pem_file(&common::root().join("keys-example/trust-list-ed25519.key")).unwrap();
    assert_eq!(list.sign(&key).unwrap(), signed);
    let opened = TrustList::open(signed, key.public_key(), None, Some(time::OffsetDateTime::now_utc())).unwrap();
    assert_eq!(opened, list);
}
