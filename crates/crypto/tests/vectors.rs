//! External test vectors: Wycheproof, RFC 8032, ed25519-speccheck, C2SP CCTV, GM/T 0003/0004 and
//! OpenSSL's SM2/SM3 files. The files live in the workspace's `tests/vectors/` with their
//! provenance (see its README); nothing here edits them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use serde_json::Value;
use zhengyin_crypto::key::hazmat::{sm2_key_with_distid_danger, sm2_verify_prehash_danger};
use zhengyin_crypto::{hash, FileKey, PublicKey, SignatureScheme, Signer};

fn vector_path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/vectors")
        .join(rel)
}

fn load_json(rel: &str) -> Value {
    let text = std::fs::read_to_string(vector_path(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    serde_json::from_str(&text).unwrap()
}

fn hexd(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap()).unwrap()
}

/// Runs a Wycheproof signature-verification file; returns (cases, accepted).
/// `expect` decides what our verifier must say for a (group, test) pair.
fn run_wycheproof(file: &str, scheme: SignatureScheme, expect: impl Fn(&Value, &Value) -> bool) -> (usize, usize) {
    let doc = load_json(file);
    let (mut cases, mut accepted) = (0, 0);
    for group in doc["testGroups"].as_array().unwrap() {
        let key = PublicKey::from_spki_der(&hexd(&group["publicKeyDer"]));
        for test in group["tests"].as_array().unwrap() {
            cases += 1;
            let ok = key
                .as_ref()
                .is_ok_and(|k| k.verify(scheme, &hexd(&test["msg"]), &hexd(&test["sig"])).is_ok());
            accepted += usize::from(ok);
            assert_eq!(
                ok,
                expect(group, test),
                "{file} tcId {} ({})",
                test["tcId"],
                test["comment"]
            );
        }
    }
    (cases, accepted)
}

fn is_valid(_: &Value, t: &Value) -> bool {
    t["result"] == "valid"
}

#[test]
fn wycheproof_ed25519() {
    assert_eq!(
        run_wycheproof("wycheproof/ed25519_test.json", SignatureScheme::Ed25519, is_valid),
        (151, 88)
    );
}

#[test]
fn wycheproof_ecdsa_p256_sha256_der() {
    let r = run_wycheproof(
        "wycheproof/ecdsa_secp256r1_sha256_test.json",
        SignatureScheme::EcdsaSha256Der,
        is_valid,
    );
    assert_eq!(r, (484, 174));
}

#[test]
fn wycheproof_ecdsa_p256_sha256_p1363() {
    let r = run_wycheproof(
        "wycheproof/ecdsa_secp256r1_sha256_p1363_test.json",
        SignatureScheme::EcdsaP256Sha256Fixed,
        is_valid,
    );
    assert_eq!(r, (262, 173));
}

#[test]
fn wycheproof_rsa_pkcs1_2048_sha256_rejects_acceptable() {
    // Policy: "acceptable" cases are rejected, as OpenSSL does.
    let r = run_wycheproof(
        "wycheproof/rsa_signature_2048_sha256_test.json",
        SignatureScheme::RsaPkcs1Sha256,
        is_valid,
    );
    assert_eq!(r, (259, 9));
}

#[test]
fn wycheproof_rsa_pss_2048() {
    // Salt length 32 (= SHA-256 length) is the only PSS form we accept.
    let r = run_wycheproof(
        "wycheproof/rsa_pss_2048_sha256_mgf1_32_test.json",
        SignatureScheme::RsaPssSha256,
        is_valid,
    );
    assert_eq!(r, (108, 63));
    // Policy: PSS with salt length 0 is unsupported (ring requires salt = hash length), so even
    // the file's valid signatures are refused.
    // The one exception is the case whose salt was changed to 32: that is a good salt-32 signature.
    let r = run_wycheproof(
        "wycheproof/rsa_pss_2048_sha256_mgf1_0_test.json",
        SignatureScheme::RsaPssSha256,
        |g, t| {
            assert_eq!(g["sLen"], 0);
            t["comment"] == "s_len changed to 32"
        },
    );
    assert_eq!(r, (103, 1));
}

fn ed25519_pkcs8(seed: &[u8]) -> Vec<u8> {
    let mut der = hex::decode("302e020100300506032b657004220420").unwrap();
    der.extend_from_slice(seed);
    der
}

#[test]
fn rfc8032_signing_is_byte_for_byte() {
    let doc = load_json("rfc8032/ed25519_rfc8032_section7_1.json");
    let vectors = doc["vectors"].as_array().or_else(|| doc["tests"].as_array()).unwrap();
    assert_eq!(vectors.len(), 5);
    for v in vectors {
        let key = FileKey::from_pkcs8_der(&ed25519_pkcs8(&hexd(&v["secretKeySeedHex"]))).unwrap();
        let spki = key.public_key().spki_der();
        assert_eq!(&spki[spki.len() - 32..], &hexd(&v["publicKeyHex"])[..]);
        let sig = key.sign(&hexd(&v["messageHex"])).unwrap();
        assert_eq!(sig, hexd(&v["signatureHex"]), "{}", v);
        key.public_key()
            .verify(SignatureScheme::Ed25519, &hexd(&v["messageHex"]), &sig)
            .unwrap();
    }
}

fn ed25519_raw_key(pk: &[u8]) -> Result<PublicKey, zhengyin_crypto::CryptoError> {
    let mut spki = hex::decode("302a300506032b6570032100").unwrap();
    spki.extend_from_slice(pk);
    PublicKey::from_spki_der(&spki)
}

#[test]
fn ed25519_speccheck_matches_the_dalek_strict_row() {
    let cases: Value = load_json("ed25519-speccheck/cases.json");
    let results = std::fs::read_to_string(vector_path("ed25519-speccheck/results.md")).unwrap();
    let row = results.lines().find(|l| l.starts_with("|Dalek strict")).unwrap();
    let expected: Vec<bool> = row
        .split('|')
        .skip(2)
        .filter(|c| !c.trim().is_empty())
        .map(|c| c.trim() == "V")
        .collect();
    let cases = cases.as_array().unwrap();
    assert_eq!(cases.len(), 12);
    assert_eq!(expected.len(), 12);
    for (i, c) in cases.iter().enumerate() {
        let ok = ed25519_raw_key(&hexd(&c["pub_key"])).is_ok_and(|k| {
            k.verify(SignatureScheme::Ed25519, &hexd(&c["message"]), &hexd(&c["signature"]))
                .is_ok()
        });
        assert_eq!(ok, expected[i], "speccheck case {i}");
    }
}

#[test]
fn cctv_ed25519_edge_cases() {
    // verify_strict rejects every vector with a low-order or non-canonical A or R, and every
    // vector whose equation only holds cofactored; a low-order *component* alone is accepted.
    let doc = load_json("cctv-ed25519/ed25519vectors.json");
    let vectors = doc.as_array().unwrap();
    assert_eq!(vectors.len(), 914);
    let mut accepted = 0;
    for v in vectors {
        let flags: Vec<&str> = v["flags"]
            .as_array()
            .map(|f| f.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let ok = ed25519_raw_key(&hexd(&v["key"])).is_ok_and(|k| {
            k.verify(
                SignatureScheme::Ed25519,
                v["msg"].as_str().unwrap().as_bytes(),
                &hexd(&v["sig"]),
            )
            .is_ok()
        });
        let expected = flags.iter().all(|f| f.starts_with("low_order_component"));
        assert_eq!(ok, expected, "CCTV vector {} flags {flags:?}", v["number"]);
        accepted += usize::from(ok);
    }
    assert_eq!(accepted, 43);
}

/// Every CCTV vector alone and in the middle of a batch of good signatures: the batch accepts
/// what `verify_strict` accepts, refuses every low-order or non-canonical `A` or `R`, and differs
/// only on the vectors whose equation holds just cofactored (`low_order_residue`), which it
/// accepts (see the `batch` module docs).
#[test]
fn cctv_ed25519_through_the_batch() {
    use zhengyin_crypto::batch::{ed25519_verify_batch, BatchItem};
    let rfc = &load_json("rfc8032/ed25519_rfc8032_section7_1.json")["tests"][1];
    let good_key = ed25519_raw_key(&hexd(&rfc["publicKeyHex"])).unwrap();
    let (good_msg, good_sig) = (hexd(&rfc["messageHex"]), hexd(&rfc["signatureHex"]));
    let good = BatchItem {
        key: &good_key,
        message: &good_msg,
        signature: &good_sig,
    };
    let doc = load_json("cctv-ed25519/ed25519vectors.json");
    let (mut differ, mut accepted) = (0, 0);
    for v in doc.as_array().unwrap() {
        let flags: Vec<&str> = v["flags"]
            .as_array()
            .map(|f| f.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let Ok(key) = ed25519_raw_key(&hexd(&v["key"])) else {
            continue; // not a key at all: never reaches a batch
        };
        let (msg, sig) = (v["msg"].as_str().unwrap().as_bytes(), hexd(&v["sig"]));
        let strict = key.verify(SignatureScheme::Ed25519, msg, &sig).is_ok();
        let item = BatchItem {
            key: &key,
            message: msg,
            signature: &sig,
        };
        let alone = ed25519_verify_batch(&[item]);
        let refused = ["low_order_A", "low_order_R", "non_canonical_A", "non_canonical_R"];
        let expected = !flags.iter().any(|f| refused.contains(f));
        assert_eq!(alone, expected, "CCTV vector {} flags {flags:?}", v["number"]);
        if alone != strict {
            assert!(alone && flags.contains(&"low_order_residue"), "vector {}", v["number"]);
            differ += 1;
        }
        accepted += usize::from(alone);
        assert_eq!(
            ed25519_verify_batch(&[good, item, good]),
            alone,
            "vector {} among good ones",
            v["number"]
        );
    }
    println!("CCTV through the batch: {accepted} accepted, {differ} only cofactored");
    assert_eq!((accepted, differ), (43 + 63, 63));
}

fn sm2_key(sec1: &[u8]) -> PublicKey {
    let mut spki = hex::decode("3059301306072a8648ce3d020106082a811ccf5501822d034200").unwrap();
    spki.extend_from_slice(sec1);
    PublicKey::from_spki_der(&spki).unwrap()
}

#[test]
fn gmt0003_sm2_signature_example() {
    let doc = load_json("sm2-sm3/gmt0003/sm2_sign_gmt0003_5_example.json");
    for t in doc["tests"].as_array().unwrap() {
        let sec1 = hexd(&t["publicKeyUncompressedHex"]);
        let user_id = t["userIdAscii"].as_str().unwrap();
        let key = sm2_key_with_distid_danger(&sec1, user_id).unwrap();
        if user_id == zhengyin_crypto::SM2_DISTID {
            assert_eq!(sm2_key(&sec1).id(), key.id());
        }
        let msg = hexd(&t["messageHex"]);
        let sig = hexd(&t["signatureDerHex"]);
        let ok = key.verify(SignatureScheme::Sm2Sm3Der, &msg, &sig).is_ok();
        assert_eq!(ok, t["result"] == "valid", "tcId {}: {}", t["tcId"], t["comment"]);
        if let Some(raw) = t.get("signatureRawRSHex") {
            assert_eq!(key.verify(SignatureScheme::Sm2Sm3Raw, &msg, &hexd(raw)).is_ok(), ok);
        }
        if let (Some(za), Some(e)) = (t.get("ZAHex"), t.get("eHex")) {
            let mut za_m = hexd(za);
            za_m.extend_from_slice(&msg);
            assert_eq!(hash::sm3(&za_m).to_vec(), hexd(e));
            sm2_verify_prehash_danger(&key, &hexd(e), &sig).unwrap();
        }
    }
}

#[test]
fn openssl_sm2_verify_vectors() {
    // Input is the prehashed e. Policy: a 64-byte (SHA-512) e is refused, as Tongsuo does.
    let text = std::fs::read_to_string(vector_path("sm2-sm3/openssl/evppkey_sm2.txt")).unwrap();
    let key_pem: String = text
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN PRIVATE KEY"))
        .take_while(|l| !l.is_empty())
        .map(|l| format!("{l}\n"))
        .collect();
    let key = FileKey::from_pem(&key_pem).unwrap();
    let mut seen = 0;
    for block in text.split("\n\n").filter(|b| b.contains("Verify = SM2_key1")) {
        let field = |name: &str| block.lines().find_map(|l| l.strip_prefix(name)).unwrap().trim();
        let digest = field("Ctrl = digest:");
        let ok = sm2_verify_prehash_danger(
            key.public_key(),
            &hex::decode(field("Input = ")).unwrap(),
            &hex::decode(field("Output = ")).unwrap(),
        )
        .is_ok();
        assert_eq!(ok, digest == "SM3", "digest {digest}");
        seen += 1;
    }
    assert_eq!(seen, 3);
    // The key signs and verifies through the ordinary path too.
    let sig = key.sign(b"message").unwrap();
    key.public_key()
        .verify(SignatureScheme::Sm2Sm3Raw, b"message", &sig)
        .unwrap();
    assert!(key
        .public_key()
        .verify(SignatureScheme::Sm2Sm3Raw, b"messagf", &sig)
        .is_err());
}

#[test]
fn sm3_vectors() {
    let text = std::fs::read_to_string(vector_path("sm2-sm3/openssl/evpmd_sm3.txt")).unwrap();
    let mut seen = 0;
    for block in text.split("\n\n").filter(|b| b.contains("Digest = SM3")) {
        let field = |name: &str| block.lines().find_map(|l| l.strip_prefix(name)).map(str::trim);
        let (Some(input), Some(output)) = (field("Input = "), field("Output = ")) else {
            continue;
        };
        assert_eq!(
            hash::sm3(&hex::decode(input).unwrap()).to_vec(),
            hex::decode(output).unwrap()
        );
        seen += 1;
    }
    assert_eq!(seen, 8);
    for t in load_json("sm2-sm3/gmt0003/sm3_gmt0004_examples.json")["tests"]
        .as_array()
        .unwrap()
    {
        assert_eq!(hash::sm3(&hexd(&t["messageHex"])).to_vec(), hexd(&t["digestHex"]));
    }
}
