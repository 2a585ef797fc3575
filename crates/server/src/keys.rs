//! `zhengyin keys generate`: a new authority (or log, token) key where it will live — in an HSM
//! by its `pkcs11:` URI, or a PEM file for the demo — and a PKCS#10 request for its certificate,
//! signed by the new key, for the authority's CA. `zhengyin keys csr`: the request for a key that
//! exists already (an SM2 key a 密码机's own tools made, named by its `sdf:` URI).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use zhengyin_crypto::csr::{certification_request, DistinguishedName};
use zhengyin_crypto::{pem, Algorithm, Signer};
use zhengyin_keys::KeyLocator;

use crate::exit::input;

/// `zhengyin keys …`
#[derive(clap::Subcommand)]
pub(crate) enum Command {
    /// Make a key and, with --subject, a certificate request (PKCS#10, PEM) for it. The key is
    /// made in the HSM (`pkcs11:token=…;object=…?module-path=…&pin-source=file:…`; Ed25519,
    /// P-256, RSA 3072) or in a new PEM file (Ed25519, P-256, SM2), never overwriting one.
    Generate {
        /// Where: a `pkcs11:` URI or the path of a new PEM file.
        #[arg(long)]
        key: String,
        /// The algorithm.
        #[arg(long, value_enum)]
        algorithm: KeyAlgorithm,
        /// The certificate's subject in OpenSSL's form, e.g.
        /// "/C=CN/O=某市市场监督管理局/serialNumber=11100000000013338W/CN=某市市场监督管理局".
        #[arg(long, requires = "csr")]
        subject: Option<String>,
        /// Where to write the certificate request (PEM).
        #[arg(long, requires = "subject")]
        csr: Option<PathBuf>,
    },
    /// Write a certificate request (PKCS#10, PEM) for an existing key: a PEM file, a `pkcs11:`
    /// URI, or an SM2 key in a GM/T 0018 device (`sdf:index=N?module-path=…&pin-source=file:…`).
    Csr {
        /// The key: a PEM file, a `pkcs11:` or an `sdf:` URI.
        #[arg(long)]
        key: String,
        /// The certificate's subject in OpenSSL's form (as for `generate`).
        #[arg(long)]
        subject: String,
        /// Where to write the certificate request (PEM).
        #[arg(long)]
        csr: PathBuf,
    },
}

/// The algorithms a key can be made for.
#[derive(Clone, Copy, clap::ValueEnum)]
pub(crate) enum KeyAlgorithm {
    /// Ed25519.
    Ed25519,
    /// ECDSA over P-256.
    P256,
    /// RSA (3072 bits; in an HSM only).
    Rsa,
    /// SM2 (in a file only: SM2 has no standard PKCS#11 mechanism, and a GM/T 0018 device makes
    /// its keys with its own tools — see `keys csr`).
    Sm2,
}

/// Runs a `keys` subcommand.
pub(crate) fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Generate {
            key,
            algorithm,
            subject,
            csr,
        } => {
            let algorithm = match algorithm {
                KeyAlgorithm::Ed25519 => Algorithm::Ed25519,
                KeyAlgorithm::P256 => Algorithm::EcdsaP256,
                KeyAlgorithm::Rsa => Algorithm::Rsa,
                KeyAlgorithm::Sm2 => Algorithm::Sm2,
            };
            // The subject is checked before a key is made, so a typo leaves no orphan key.
            let subject = subject
                .map(|s| DistinguishedName::parse(&s))
                .transpose()
                .map_err(input)?;
            let locator = KeyLocator::parse(&key).map_err(input)?;
            let signer = locator.generate(algorithm).map_err(input)?;
            println!("made {algorithm:?} key {locator}");
            show_public_key(&*signer);
            if let (Some(subject), Some(path)) = (subject, csr) {
                write_request(&subject, &*signer, &path)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Csr { key, subject, csr } => {
            let subject = DistinguishedName::parse(&subject).map_err(input)?;
            let locator = KeyLocator::parse(&key).map_err(input)?;
            let signer = locator.open().map_err(input)?;
            println!("{:?} key {locator}", signer.algorithm());
            show_public_key(&*signer);
            write_request(&subject, &*signer, &csr)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn show_public_key(signer: &dyn Signer) {
    println!("key id {}", hex::encode(signer.public_key().id().0));
    print!("{}", pem::encode("PUBLIC KEY", signer.public_key().spki_der()));
}

/// Signs a request for `subject` with the key and writes it, PEM, to `path`.
fn write_request(subject: &DistinguishedName, signer: &dyn Signer, path: &Path) -> anyhow::Result<()> {
    let request = certification_request(subject, signer).map_err(input)?;
    std::fs::write(path, pem::encode("CERTIFICATE REQUEST", &request))
        .map_err(|e| input(format!("writing {}: {e}", path.display())))?;
    println!("certificate request written to {}", path.display());
    Ok(())
}
