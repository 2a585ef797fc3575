//! `zhengyin verify licence|copy|seal|ofd FILE`: offline verification, one shape for every kind.
//!
//! Every kind takes the same options — `--anchors`, `--chain`, `--crl`, `--at`, `--format` — and
//! exits by the verdict (0 VALID, 1 INVALID, 3 INDETERMINATE; 2 when an input is wrong).
//! Offline, nothing knows a licence's or a seal's registry status, so the best verdict is
//! INDETERMINATE. The old spellings (`verify FILE --certs …`, `seal verify FILE
//! --intermediates …`) still work for a release.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use zhengyin_crypto::crl::RevocationList;
use zhengyin_crypto::{hash, Certificate, TrustAnchors};
use zhengyin_model::{Outcome, VerificationReport};
use zhengyin_ses::ofd::{verify_ofd, Limits};
use zhengyin_ses::verify::{verify_seal, verify_signature, Offline, Protected};

use crate::exit::{self, input};

/// What to verify.
#[derive(clap::Subcommand)]
pub enum Kind {
    /// A licence (its signed JSON): signature, format, the certificate chain at signing time
    /// and the CRLs given. Needs --chain with the signing certificate.
    Licence {
        /// The licence file.
        file: PathBuf,
    },
    /// An annotated copy (加注件): the node's signature over it, its expiry, and the licence
    /// inside as `verify licence` checks it.
    Copy {
        /// The annotated copy (JSON).
        file: PathBuf,
        /// The issuing node's token public key (PEM; `GET /v1/token-key` answers it as
        /// `public_key_pem`). Without it the copy's own signature is not checked.
        #[arg(long)]
        token_key: Option<PathBuf>,
    },
    /// An e-seal (.esl, SESeal) or a sealed signature (SignedValue.dat, SES_Signature), by the
    /// GB/T 38540 steps.
    Seal {
        /// The DER file.
        file: PathBuf,
        /// For a signature: the protected data (for OFD, the Signature.xml); its SM3 must equal
        /// the signature's dataHash.
        #[arg(long)]
        data: Option<PathBuf>,
    },
    /// An OFD document: every signature in it and every file it protects; for a licence file,
    /// also the licence it carries (with --chain) and that the file is bound to it.
    Ofd {
        /// The .ofd file.
        file: PathBuf,
    },
}

/// How an answer is printed (a verification report, the sync sources).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// JSON, as the API answers it.
    Json,
    /// Plain text for people: a report's verdict and one line per check; a line per source.
    Text,
}

/// The options every kind shares.
#[derive(clap::Args)]
pub struct Inputs {
    /// PEM file of trust anchors (root CA certificates).
    #[arg(long, global = true)]
    pub anchors: Option<PathBuf>,
    /// PEM file(s) of certificates on the path to the anchors (repeatable): for a licence its
    /// signing certificate followed by intermediates; for seals and OFD the intermediate CAs.
    #[arg(long = "chain", alias = "certs", global = true)]
    pub chain: Vec<PathBuf>,
    /// A CRL (PEM or DER) of a CA on the path, to check revocation (repeatable).
    #[arg(long = "crl", global = true)]
    pub crls: Vec<PathBuf>,
    /// Evaluate at this time (RFC 3339) instead of now.
    #[arg(long, global = true, value_parser = crate::parse_time)]
    pub at: Option<time::OffsetDateTime>,
    /// How to print the report.
    #[arg(long, value_enum, default_value_t = Format::Json, global = true)]
    pub format: Format,
}

/// The trust material read from the inputs.
struct Trust {
    anchors: TrustAnchors,
    /// Each --chain file's text (a licence's chains are one file each).
    chain_pems: Vec<String>,
    /// Every certificate of every --chain file.
    chain: Vec<Certificate>,
    crls: Vec<RevocationList>,
}

impl Inputs {
    fn trust(&self) -> anyhow::Result<Trust> {
        let path = self
            .anchors
            .as_deref()
            .ok_or_else(|| input("--anchors is required: the PEM file of trust anchors"))?;
        let anchors =
            TrustAnchors::from_pem(&exit::read_text(path)?).map_err(|e| input(format!("{}: {e}", path.display())))?;
        if anchors.certificates().is_empty() {
            return Err(input(format!("{} holds no certificate", path.display())));
        }
        let mut chain_pems = Vec::new();
        let mut chain = Vec::new();
        for path in &self.chain {
            let pem = exit::read_text(path)?;
            let certs = Certificate::all_from_pem(&pem).map_err(|e| input(format!("{}: {e}", path.display())))?;
            if certs.is_empty() {
                return Err(input(format!("{} holds no certificate", path.display())));
            }
            chain.extend(certs);
            chain_pems.push(pem);
        }
        let mut cas: Vec<Certificate> = anchors.certificates().to_vec();
        cas.extend(chain.iter().cloned());
        let mut crls = Vec::new();
        for path in &self.crls {
            let crl = zhengyin_crypto::crl::from_any(&exit::read(path)?, &cas)
                .map_err(|e| input(format!("{}: not a CRL of the given CAs ({e})", path.display())))?;
            crls.push(crl);
        }
        Ok(Trust {
            anchors,
            chain_pems,
            chain,
            crls,
        })
    }
}

/// Runs `zhengyin verify KIND FILE`.
pub fn run(kind: &Kind, inputs: &Inputs) -> anyhow::Result<ExitCode> {
    let trust = inputs.trust()?;
    let now = time::OffsetDateTime::now_utc();
    let at = inputs.at.unwrap_or(now);
    match kind {
        Kind::Licence { file } => {
            let report = licence(&exit::read(file)?, &trust, now, inputs.at)?;
            print(&report, inputs.format, None)
        }
        Kind::Copy { file, token_key } => {
            let report = copy(&exit::read(file)?, token_key.as_deref(), &trust, now)?;
            print(&report, inputs.format, None)
        }
        Kind::Seal { file, data } => {
            let bytes = exit::read(file)?;
            let offline = offline(&trust);
            let report = if zhengyin_ses::parse_signature(&bytes).is_ok() {
                let protected = match data {
                    Some(path) => Protected::Sm3(hash::sm3(&exit::read(path)?)),
                    None => Protected::Absent,
                };
                verify_signature(&offline, &bytes, protected, at)
            } else {
                if data.is_some() {
                    return Err(input(format!(
                        "--data applies to signatures; {} is not one",
                        file.display()
                    )));
                }
                verify_seal(&offline, &bytes, at)
            };
            print(&report, inputs.format, None)
        }
        Kind::Ofd { file } => {
            let package = exit::read(file)?;
            let seals = verify_ofd(&offline(&trust), &package, at, Limits::default());
            // A licence file's licence, verified offline with --chain (without it, not verified);
            // whose seal a signature applies is the registry's to say, so it stays open here.
            let verify_licence = |signed: &[u8]| {
                licence(signed, &trust, now, inputs.at).unwrap_or_else(|e| {
                    let mut r = zhengyin_model::ReportBuilder::new(&[]);
                    r.indeterminate("licence", format!("not verified: {e}"));
                    r.finish(at)
                })
            };
            let verifier = zhengyin_licence_file::Verifier {
                licence: &verify_licence,
                seal_held_by: &|_, _| None,
                now: at,
            };
            let result = zhengyin_licence_file::verify_document(&package, seals, &verifier);
            let mut parts: Vec<(String, &VerificationReport)> = result
                .signatures
                .iter()
                .map(|s| (format!("{} ({})", s.path, s.kind), &s.report))
                .collect();
            if let Some(bound) = &result.licence {
                if let Some(report) = &bound.report {
                    parts.push((format!("licence {}", bound.id), report));
                }
            }
            print(&result.report, inputs.format, Some(&parts))
        }
    }
}

fn offline(trust: &Trust) -> Offline<'_> {
    Offline {
        anchors: &trust.anchors,
        intermediates: &trust.chain,
        crls: &trust.crls,
    }
}

fn licence(
    bytes: &[u8],
    trust: &Trust,
    now: time::OffsetDateTime,
    at: Option<time::OffsetDateTime>,
) -> anyhow::Result<VerificationReport> {
    if trust.chain_pems.is_empty() {
        return Err(input(
            "--chain is required for a licence: the signing certificate (and its intermediates)",
        ));
    }
    zhengyin_engine::verify_offline(
        bytes,
        trust.anchors.clone(),
        &trust.chain_pems,
        trust.crls.clone(),
        now,
        at,
    )
    .map_err(|e| input(format!("the certificates given: {e}")))
}

fn copy(
    bytes: &[u8],
    token_key: Option<&Path>,
    trust: &Trust,
    now: time::OffsetDateTime,
) -> anyhow::Result<VerificationReport> {
    let key = match token_key {
        Some(path) => Some(exit::read_public_key(path)?),
        None => None,
    };
    let mut inner_error = None;
    let report = zhengyin_engine::annotated::verify_annotated_copy(bytes, key.as_ref(), now, |inner| {
        licence(inner, trust, now, None).unwrap_or_else(|e| {
            inner_error = Some(e);
            zhengyin_model::ReportBuilder::new(&["licence"]).finish(now)
        })
    });
    match inner_error {
        Some(e) => Err(e.context("the licence inside")),
        None => Ok(report),
    }
}

/// `zhengyin verify FILE` (the old spelling): an annotated copy if the file is one, else a licence.
pub fn legacy(file: &Path, token_key: Option<&Path>, inputs: &Inputs) -> anyhow::Result<ExitCode> {
    let bytes = exit::read(file)?;
    let is_copy = serde_json::from_slice::<serde_json::Value>(&bytes)
        .is_ok_and(|v| v["type"] == zhengyin_engine::annotated::ANNOTATED_COPY);
    let kind = if is_copy {
        Kind::Copy {
            file: file.to_owned(),
            token_key: token_key.map(Path::to_owned),
        }
    } else {
        Kind::Licence { file: file.to_owned() }
    };
    run(&kind, inputs)
}

/// Prints `report` (and an OFD document's signatures) and answers the exit status of its verdict.
fn print(
    report: &VerificationReport,
    format: Format,
    signatures: Option<&[(String, &VerificationReport)]>,
) -> anyhow::Result<ExitCode> {
    match format {
        Format::Json => {
            let value = match signatures {
                Some(signatures) => serde_json::json!({
                    "report": report,
                    "signatures": signatures
                        .iter()
                        .map(|(name, r)| serde_json::json!({"signature": name, "report": r}))
                        .collect::<Vec<_>>(),
                }),
                None => serde_json::to_value(report)?,
            };
            say!(
                "{}",
                serde_json::to_string_pretty(&value).context("printing the report")?
            );
        }
        Format::Text => {
            say_raw!("{}", text(report, ""));
            for (name, r) in signatures.unwrap_or_default() {
                say!("signature {name}");
                say_raw!("{}", text(r, "  "));
            }
        }
    }
    Ok(exit::for_verdict(report.verdict))
}

/// A report as lines: the verdict, what it is about, then each check.
fn text(report: &VerificationReport, indent: &str) -> String {
    let verdict = serde_json::to_value(report.verdict).ok();
    let mut out = format!("{indent}{}\n", verdict.as_ref().and_then(|v| v.as_str()).unwrap_or("?"));
    if let Some(id) = &report.licence_id {
        out.push_str(&format!("{indent}  licence  {id}\n"));
    }
    for check in &report.checks {
        let outcome = match check.outcome {
            Outcome::Passed => "passed",
            Outcome::Failed => "FAILED",
            Outcome::Indeterminate => "indeterminate",
            Outcome::Warning => "warning",
        };
        out.push_str(&format!(
            "{indent}  {outcome:<13} {:<20} {}\n",
            check.code, check.message
        ));
    }
    out
}
