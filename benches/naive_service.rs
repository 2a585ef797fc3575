//! The yardstick `benches/load.sh` measures the verification service against: the simplest axum
//! service a team could write instead of Zhengyin — take a JSON body, decode base64, one Ed25519
//! `verify_strict`, answer JSON. No registry, no status, no certificates, no use records, no
//! metrics, no logs; the default allocator, as such a service would have.
//!
//!     cargo run --release --example naive_service -- serve 127.0.0.1:0
//!     cargo run --release --example naive_service -- fixtures 4096 FILE
//!
//! `serve` prints `naive listening on http://ADDR` and answers `POST /verify` with
//! `{"public_key", "message", "signature"}` (standard base64) → `{"valid": bool}`.
//! `fixtures N FILE` writes N such bodies, one per line: a fresh key's signatures over 64-byte
//! messages, the size of a licence's hashData.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use axum::routing::post;
use axum::{Json, Router};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Deserialize)]
struct Request {
    public_key: String,
    message: String,
    signature: String,
}

async fn verify(Json(request): Json<Request>) -> Json<Value> {
    let valid = (|| {
        let key: [u8; 32] = STANDARD.decode(&request.public_key).ok()?.try_into().ok()?;
        let signature: [u8; 64] = STANDARD.decode(&request.signature).ok()?.try_into().ok()?;
        let message = STANDARD.decode(&request.message).ok()?;
        let key = VerifyingKey::from_bytes(&key).ok()?;
        key.verify_strict(&message, &Signature::from_bytes(&signature)).ok()
    })()
    .is_some();
    Json(json!({ "valid": valid }))
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("serve") => {
            let listen = args.get(1).map_or("127.0.0.1:0", String::as_str);
            let listener = tokio::net::TcpListener::bind(listen).await.unwrap();
            println!("naive listening on http://{}", listener.local_addr().unwrap());
            let app = Router::new().route("/verify", post(verify));
            axum::serve(listener, app).await.unwrap();
        }
        Some("fixtures") => {
            let n: usize = args[1].parse().unwrap();
            // A fixed seed: the fixtures need a key, not a secret one.
            let key = SigningKey::from_bytes(&[7; 32]);
            let public = STANDARD.encode(key.verifying_key().as_bytes());
            let mut out = String::new();
            for i in 0..n {
                let mut message = [0u8; 64];
                message[..8].copy_from_slice(&(i as u64).to_le_bytes());
                let signature = key.sign(&message);
                out.push_str(
                    &json!({
                        "public_key": public,
                        "message": STANDARD.encode(message),
                        "signature": STANDARD.encode(signature.to_bytes()),
                    })
                    .to_string(),
                );
                out.push('\n');
            }
            std::fs::write(&args[2], out).unwrap();
        }
        _ => panic!("usage: naive_service serve [ADDR] | fixtures N FILE"),
    }
}
