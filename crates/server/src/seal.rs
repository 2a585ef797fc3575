//! `zhengyin seal inspect`: e-seal files (`.esl`, `SESeal`), sealed
//! signatures (`SignedValue.dat`, `SES_Signature`) and OFD documents, offline.

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

use zhengyin_crypto::Certificate;
use zhengyin_model::licence::format_time;
use zhengyin_ses::format::{CertList, Seal, SealSignature};
use zhengyin_ses::{parse_seal, parse_signature};

/// Prints a seal, a signature or each signature of an OFD document as readable text.
pub fn inspect(file: &Path) -> anyhow::Result<ExitCode> {
    let bytes = crate::exit::read(file)?;
    let mut out = String::new();
    if bytes.starts_with(b"PK\x03\x04") {
        let entries = zhengyin_ses::ofd::signed_values(&bytes, zhengyin_ses::ofd::Limits::default())
            .map_err(|e| crate::exit::input(format!("{}: {e}", file.display())))?;
        writeln!(out, "OFD document, {} signature(s)", entries.len())?;
        for value in entries {
            let entry = &value.entry;
            writeln!(out, "\n{} ({}) in {}", entry.path, entry.kind, entry.list)?;
            match value.der.as_deref().map(parse_signature) {
                Ok(Ok(sig)) => describe_signature(&mut out, &sig)?,
                Ok(Err(e)) => writeln!(out, "  signed value   not an SES_Signature ({e})")?,
                Err(e) => writeln!(out, "  signed value   unreadable ({e})")?,
            }
        }
    } else if let Ok(sig) = parse_signature(&bytes) {
        describe_signature(&mut out, &sig)?;
    } else {
        let seal = parse_seal(&bytes)
            .map_err(|e| crate::exit::input(format!("{} is neither a seal nor a signature: {e}", file.display())))?;
        describe_seal(&mut out, &seal)?;
    }
    say_raw!("{out}");
    Ok(ExitCode::SUCCESS)
}

fn describe_signature(out: &mut String, sig: &SealSignature<'_>) -> std::fmt::Result {
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
    describe_seal(out, &t.seal)
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
        CertList::Text(text) => writeln!(out, "  signer allowed (no certificates; text {text:?})")?,
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

fn subject(der: &[u8]) -> String {
    Certificate::from_der(der).map_or_else(|e| format!("(unreadable certificate: {e})"), |c| c.subject().to_owned())
}

fn hex_text(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
