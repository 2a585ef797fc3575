//! `zhengyin seal inspect` and `zhengyin seal verify`: e-seal files (`.esl`, `SESeal`), sealed
//! signatures (`SignedValue.dat`, `SES_Signature`) and OFD documents, offline.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use zhengyin_crypto::{hash, Certificate, TrustAnchors};
use zhengyin_model::licence::format_time;
use zhengyin_model::Verdict;
use zhengyin_ses::format::{CertList, Seal};
use zhengyin_ses::ofd::{verify_ofd, Limits};
use zhengyin_ses::verify::{verify_seal, verify_signature, Offline, Protected};
use zhengyin_ses::{parse_seal, parse_signature};

/// What `seal verify` was given.
pub struct VerifyArgs {
    pub file: PathBuf,
    pub anchors: PathBuf,
    pub intermediates: Vec<PathBuf>,
    pub data: Option<PathBuf>,
    pub at: Option<time::OffsetDateTime>,
    pub crls: Vec<PathBuf>,
}

/// Prints a seal or signature file as readable text.
pub fn inspect(file: &Path) -> anyhow::Result<ExitCode> {
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let mut out = String::new();
    if let Ok(sig) = parse_signature(&bytes) {
        let t = &sig.to_sign;
        writeln!(out, "SES_Signature version {}", t.version)?;
        writeln!(out, "  signed at      {}", format_time(t.time))?;
        writeln!(out, "  data hash      {}", hex_text(t.data_hash))?;
        writeln!(out, "  property info  {}", t.property_info)?;
        writeln!(out, "  signer         {}", subject(sig.signer_certificate))?;
        writeln!(out, "  algorithm      {}", sig.algorithm)?;
        writeln!(out, "  timestamp      {}", describe_timestamp(sig.timestamp))?;
        for q in &sig.quirks {
            writeln!(out, "  quirk          {q}")?;
        }
        describe_seal(&mut out, &t.seal)?;
    } else {
        let seal = parse_seal(&bytes)
            .map_err(|e| anyhow::anyhow!("{} is neither a seal nor a signature: {e}", file.display()))?;
        describe_seal(&mut out, &seal)?;
    }
    say_raw!("{out}");
    Ok(ExitCode::SUCCESS)
}

/// A timestamp as read (not verified: `seal verify` does that).
fn describe_timestamp(token: Option<&[u8]>) -> String {
    match token.map(zhengyin_ses::timestamp::parse_token) {
        None => "none".to_owned(),
        Some(Ok(t)) => format!(
            "RFC 3161 token, genTime {}, {:?} imprint {}",
            format_time(t.gen_time),
            t.imprint_algorithm,
            hex_text(t.imprint)
        ),
        Some(Err(e)) => format!("present, unreadable ({e})"),
    }
}

fn describe_seal(out: &mut String, seal: &Seal<'_>) -> std::fmt::Result {
    let (i, p) = (&seal.info, &seal.info.property);
    writeln!(
        out,
        "SESeal {:?} (header version {}, vendor {})",
        seal.version, i.header.version, i.header.vendor_id
    )?;
    writeln!(out, "  esID           {}", i.es_id)?;
    writeln!(out, "  name           {}", p.name)?;
    writeln!(out, "  type           {}", p.seal_type)?;
    writeln!(out, "  made           {}", format_time(p.created))?;
    writeln!(
        out,
        "  valid          {} – {}",
        format_time(p.valid_start),
        format_time(p.valid_end)
    )?;
    writeln!(
        out,
        "  picture        {} {}×{} mm, {} bytes",
        i.picture.kind,
        i.picture.width,
        i.picture.height,
        i.picture.data.len()
    )?;
    match &p.cert_list {
        CertList::Certificates(certs) => {
            for c in certs {
                writeln!(out, "  signer allowed {}", subject(c))?;
            }
        }
        CertList::Digests(digests) => {
            for d in digests {
                writeln!(out, "  signer allowed {} digest {}", d.algorithm, hex_text(d.value))?;
            }
        }
    }
    for e in &i.extensions {
        writeln!(
            out,
            "  extension      {}{} ({} bytes)",
            e.id,
            if e.critical { " critical" } else { "" },
            e.value.len()
        )?;
    }
    writeln!(out, "  maker          {}", subject(seal.maker_certificate))?;
    writeln!(out, "  algorithm      {}", seal.algorithm)?;
    if seal.timestamp.is_some() {
        writeln!(out, "  timestamp      {}", describe_timestamp(seal.timestamp))?;
    }
    for q in &seal.quirks {
        writeln!(out, "  quirk          {q}")?;
    }
    Ok(())
}

/// Verifies a seal or signature file offline and prints the report; exit 1 on INVALID.
pub fn verify(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let bytes = std::fs::read(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let anchors_pem =
        std::fs::read_to_string(&args.anchors).with_context(|| format!("reading {}", args.anchors.display()))?;
    let anchors = TrustAnchors::from_pem(&anchors_pem).context("parsing trust anchors")?;
    let mut intermediates = Vec::new();
    for path in &args.intermediates {
        let pem = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        intermediates.extend(Certificate::all_from_pem(&pem).with_context(|| format!("parsing {}", path.display()))?);
    }
    let data = match &args.data {
        Some(path) => Some(std::fs::read(path).with_context(|| format!("reading {}", path.display()))?),
        None => None,
    };
    let mut cas: Vec<Certificate> = anchors.certificates().to_vec();
    cas.extend(intermediates.iter().cloned());
    let mut crls = Vec::new();
    for path in &args.crls {
        let data = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        crls.push(
            zhengyin_crypto::crl::from_any(&data, &cas)
                .with_context(|| format!("{}: not a CRL of the given CAs", path.display()))?,
        );
    }
    let ctx = Offline {
        anchors: &anchors,
        intermediates: &intermediates,
        crls: &crls,
    };
    let now = time::OffsetDateTime::now_utc();
    if bytes.starts_with(b"PK\x03\x04") {
        // An OFD document (a zip): every seal and every protected file.
        if data.is_some() {
            anyhow::bail!("--data applies to signatures; an OFD document carries its data");
        }
        let result = verify_ofd(&ctx, &bytes, args.at.unwrap_or(now), Limits::default());
        let signatures: Vec<_> = result
            .signatures
            .iter()
            .map(|s| serde_json::json!({"path": s.path, "kind": s.kind, "report": s.report}))
            .collect();
        let out = serde_json::json!({"report": result.report, "signatures": signatures});
        say!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(exit_for(result.report.verdict));
    }
    let report = if parse_signature(&bytes).is_ok() {
        let protected = data
            .as_deref()
            .map_or(Protected::Absent, |d| Protected::Sm3(hash::sm3(d)));
        verify_signature(&ctx, &bytes, protected, args.at.unwrap_or(now))
    } else {
        if data.is_some() {
            anyhow::bail!("--data applies to signatures; {} is not one", args.file.display());
        }
        verify_seal(&ctx, &bytes, args.at.unwrap_or(now))
    };
    say!("{}", serde_json::to_string_pretty(&report)?);
    Ok(exit_for(report.verdict))
}

/// Exit 1 on INVALID; 0 when no step failed (offline, at best INDETERMINATE).
fn exit_for(verdict: Verdict) -> ExitCode {
    if verdict == Verdict::Invalid {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn subject(der: &[u8]) -> String {
    Certificate::from_der(der).map_or_else(|e| format!("(unreadable certificate: {e})"), |c| c.subject().to_owned())
}

fn hex_text(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
