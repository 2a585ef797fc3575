//! Prints the worked example of the licence signature format (api-spec/licence-format.md and the
//! `x-worked-example` of api-spec/openapi.yaml): every intermediate value, from the EXAMPLE
//! Ed25519 authority key in keys-example/. Ed25519 is deterministic, so anyone can recompute it:
//!
//!     cargo run --example worked_example

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::json;
use zhengyin_crypto::suite::encode_proof_value;
use zhengyin_crypto::{hash, Certificate, Cryptosuite, FileKey, Signer};
use zhengyin_model::{canonical, SigningInput};

fn main() {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let key = FileKey::from_pem_file(&root.join("keys-example/authority-ed25519.key")).unwrap();
    let cert =
        Certificate::all_from_pem(&std::fs::read_to_string(root.join("keys-example/authority-ed25519.pem")).unwrap())
            .unwrap()
            .remove(0);
    let document = json!({
        "id": "1.2.156.3005.2.11100000000013338W032.11220000013544541J.2430599.001.F",
        "name": "营业执照",
        "number": "JL2024000001",
        "type": {"code": "11100000000013338W032", "name": "营业执照", "version": 1},
        "defining_authority": "11100000000013338W",
        "issuer": {"name": "示例发证机构", "code": "11220000013544541J", "level": "city"},
        "issue_date": "2026-05-01",
        "valid_from": "2026-05-01",
        "valid_until": null,
        "region_code": "220100",
        "holder": {"name": "吉林示例科技有限公司", "code": "91350100M000100Y43", "code_type": "001"},
        "service_item": null,
        "face": {"company_name": "吉林示例科技有限公司", "established": "2020-02-29", "registered_capital": 500},
        "version": "001"
    });
    let proof = json!({
        "type": "DataIntegrityProof",
        "cryptosuite": "eddsa-jcs-2022",
        "verificationMethod": cert.id(),
        "created": "2026-05-01T08:00:00Z",
        "proofPurpose": "assertionMethod",
        "seal": null
    });
    let input = SigningInput::from_values(&document, &proof).unwrap();
    let suite = Cryptosuite::EddsaJcs2022;
    let hash_data = suite.hash_data(&input.proof_config, &input.document);
    let signature = key.sign(&hash_data).unwrap();
    let mut signed = document.clone();
    let mut full_proof = proof.clone();
    full_proof["proofValue"] = json!(encode_proof_value(&signature));
    signed["proof"] = full_proof;
    println!(
        "proof_config_jcs: '{}'",
        String::from_utf8(input.proof_config.clone()).unwrap()
    );
    println!(
        "proof_config_sha256: {}",
        hex::encode(hash::sha256(&input.proof_config))
    );
    println!("document_jcs: '{}'", String::from_utf8(input.document.clone()).unwrap());
    println!("document_sha256: {}", hex::encode(hash::sha256(&input.document)));
    println!("hash_data: {}", hex::encode(hash_data));
    println!("signature: {}", hex::encode(&signature));
    println!("proof_value: {}", encode_proof_value(&signature));
    println!(
        "signed_licence: '{}'",
        String::from_utf8(canonical::to_canonical(&signed).unwrap()).unwrap()
    );
}
