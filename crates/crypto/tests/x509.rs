//! X.509 chain validation: the example PKI of `keys-example/` (happy and unhappy paths) and the
//! C2SP x509-limbo suite (snapshot in the workspace's `tests/vectors/x509-limbo/`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use serde_json::Value;
use time::macros::datetime;
use time::OffsetDateTime;
use zhengyin_crypto::{validate_chain, Certificate, ChainError, TrustAnchors};

fn root_path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").join(rel)
}

fn certs(rel: &str) -> Vec<Certificate> {
    Certificate::all_from_pem(&std::fs::read_to_string(root_path(rel)).unwrap()).unwrap()
}

fn cert(rel: &str) -> Certificate {
    certs(rel).remove(0)
}

const NOW: OffsetDateTime = datetime!(2026-11-22 12:00 UTC);

fn example_anchors() -> TrustAnchors {
    TrustAnchors::new(certs("keys-example/root-ca.pem"))
}

#[test]
fn every_example_authority_validates_through_sm2_signed_cas() {
    let intermediates = certs("keys-example/issuing-ca.pem");
    for alg in ["ed25519", "p256", "rsa2048", "sm2"] {
        let leaf = cert(&format!("keys-example/authority-{alg}.pem"));
        let chain = validate_chain(&leaf, &intermediates, &example_anchors(), NOW).unwrap();
        assert_eq!(chain.path.len(), 3, "{alg}");
        assert!(chain.covers(NOW));
        assert!(
            !chain.covers(datetime!(2036-01-01 0:00 UTC)),
            "the leaf expires in 2035"
        );
    }
}

#[test]
fn unhappy_certificates_are_refused_with_the_reason() {
    let intermediates = certs("keys-example/issuing-ca.pem");
    let anchors = example_anchors();
    let check = |rel: &str, at: OffsetDateTime| validate_chain(&cert(rel), &intermediates, &anchors, at);
    assert!(matches!(
        check("keys-example/test-only/expired.pem", NOW),
        Err(ChainError::Expired(_))
    ));
    assert!(
        check("keys-example/test-only/expired.pem", datetime!(2020-06-01 0:00 UTC)).is_err(),
        "issuing CA not yet valid then"
    );
    assert!(matches!(
        check("keys-example/test-only/not-yet-valid.pem", NOW),
        Err(ChainError::NotYetValid(_))
    ));
    assert!(matches!(
        check("keys-example/test-only/wrong-usage.pem", NOW),
        Err(ChainError::LeafUsage(_))
    ));
    assert!(matches!(
        check("keys-example/test-only/ca-as-leaf.pem", NOW),
        Err(ChainError::LeafUsage(_))
    ));
    assert!(matches!(
        check("keys-example/test-only/untrusted.pem", NOW),
        Err(ChainError::UnknownIssuer(_))
    ));
    assert!(matches!(
        check("keys-example/authority-sm2.pem", datetime!(2024-06-01 0:00 UTC)),
        Err(ChainError::NotYetValid(_))
    ));
    // The forged issuing CA names the real root but was signed by another key.
    let forged = certs("keys-example/test-only/forged-issuing-ca.pem");
    // Its key identifier names the rogue key, so no path reaches the real root.
    let r = validate_chain(&cert("keys-example/test-only/forged-leaf.pem"), &forged, &anchors, NOW);
    assert!(matches!(r, Err(ChainError::UnknownIssuer(_))), "{r:?}");
    // Without the intermediate there is no path.
    let r = validate_chain(&cert("keys-example/authority-p256.pem"), &[], &anchors, NOW);
    assert!(matches!(r, Err(ChainError::UnknownIssuer(_))));
}

#[test]
fn every_byte_of_a_certificate_signature_matters() {
    let leaf = cert("keys-example/authority-ed25519.pem");
    let intermediates = certs("keys-example/issuing-ca.pem");
    let der = leaf.der().to_vec();
    // Flip one bit in each of the last 64 bytes (the signature); the certificate either fails to
    // parse or fails to validate.
    for i in der.len() - 64..der.len() {
        let mut bad = der.clone();
        bad[i] ^= 1;
        if let Ok(c) = Certificate::from_der(&bad) {
            assert!(
                validate_chain(&c, &intermediates, &example_anchors(), NOW).is_err(),
                "byte {i}"
            );
        }
    }
    // And in the signed part: the subject's name.
    let mut bad = der.clone();
    let pos = bad.windows(17).position(|w| w == b"Example Authority").unwrap();
    bad[pos] ^= 0x20;
    let c = Certificate::from_der(&bad).unwrap();
    assert!(matches!(
        validate_chain(&c, &intermediates, &example_anchors(), NOW),
        Err(ChainError::BadSignature(_))
    ));
}

#[test]
fn malformed_der_is_an_error_not_a_panic() {
    let der = cert("keys-example/authority-sm2.pem").der().to_vec();
    for cut in [0, 1, 10, der.len() / 2, der.len() - 1] {
        assert!(Certificate::from_der(&der[..cut]).is_err());
    }
    let mut extra = der.clone();
    extra.push(0);
    assert!(Certificate::from_der(&extra).is_err());
}

/// Limbo cases outside what a document-signing validator does, each with the reason. Every
/// other case's expected result is asserted.
fn out_of_scope(case: &Value) -> Option<&'static str> {
    let id = case["id"].as_str().unwrap_or_default();
    if id.contains("::san::") {
        return Some("host-name matching is a TLS concern");
    }
    if id.starts_with("online::") {
        return Some("real-world TLS server chains");
    }
    if id.contains("max-chain-depth") {
        return Some("the caller-chosen maximum depth is fixed here (8 certificates)");
    }
    if id == "pathlen::validation-ignores-pathlen-in-leaf" {
        return Some("policy: a CA certificate may not sign licences, so a CA leaf is refused");
    }
    if id.contains("::eku::") {
        return Some("TLS extended key usage (serverAuth); licence signing does not use EKU");
    }
    if id.contains("::nc::") && case["expected_result"] == "SUCCESS" {
        return Some("name constraints are not enforced, so certificates carrying them are refused");
    }
    None
}

#[test]
fn x509_limbo_subset() {
    let text = std::fs::read_to_string(root_path("tests/vectors/x509-limbo/limbo-2023-12-02-ddc40b47.json")).unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    let (mut asserted, mut skipped, mut mismatches) = (0, 0, Vec::new());
    for case in doc["testcases"].as_array().unwrap() {
        let id = case["id"].as_str().unwrap();
        if out_of_scope(case).is_some() {
            skipped += 1;
            continue;
        }
        let pems = |key: &str| -> Vec<Certificate> {
            case[key]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|p| Certificate::all_from_pem(p.as_str()?).ok())
                .flatten()
                .collect()
        };
        let anchors = TrustAnchors::new(pems("trusted_certs"));
        let intermediates = pems("untrusted_intermediates");
        let at = case["validation_time"]
            .as_str()
            .map(|t| OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).unwrap())
            .unwrap_or(datetime!(2023-12-02 0:00 UTC));
        let result = Certificate::all_from_pem(case["peer_certificate"].as_str().unwrap())
            .ok()
            .and_then(|mut v| (!v.is_empty()).then(|| v.remove(0)))
            .map(|leaf| validate_chain(&leaf, &intermediates, &anchors, at));
        let ok = matches!(result, Some(Ok(_)));
        let expected = case["expected_result"] == "SUCCESS";
        asserted += 1;
        if ok != expected {
            mismatches.push(format!("{id}: expected {expected}, got {result:?}"));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} mismatches:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
    assert_eq!(asserted + skipped, 135);
    println!("x509-limbo: {asserted} cases asserted, {skipped} out of scope");
}
