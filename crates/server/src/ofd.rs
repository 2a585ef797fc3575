//! `zhengyin ofd seal`: seals an OFD document offline with a seal file and the signer's key (a
//! PEM file, or a key in an HSM or a GM/T 0018 device), writing the sealed document to a new
//! file. The stamp goes on a page at a position in millimetres, on a keyword's first or every
//! occurrence, or across the pages' right edge (骑缝章).

use std::path::PathBuf;
use std::process::ExitCode;

use zhengyin_crypto::Certificate;
use zhengyin_keys::KeyLocator;
use zhengyin_ses::ofd::Limits;
use zhengyin_ses::seal_ofd::{seal_ofd, Placement, Sealing, Stamps};

use crate::exit::input;

/// `zhengyin ofd …`
#[derive(clap::Subcommand)]
pub(crate) enum Command {
    /// Seal an OFD document: a new signature appended to its list, earlier ones left verifying.
    #[command(group(clap::ArgGroup::new("where").required(true).args(["at", "keyword", "riding"])))]
    Seal {
        /// The OFD document.
        file: PathBuf,
        /// The seal (SESeal DER, `.esl`), one that lists the signer's certificate.
        #[arg(long)]
        seal: PathBuf,
        /// The signer's key: a PEM file, a `pkcs11:` or an `sdf:` URI.
        #[arg(long)]
        key: String,
        /// The signer's certificate (PEM; the first one is used).
        #[arg(long)]
        certificate: PathBuf,
        /// The page the stamp goes on, from 1.
        #[arg(long, default_value_t = 1)]
        page: usize,
        /// Where the stamp's top-left corner goes, in millimetres from the page's top-left: X,Y.
        #[arg(long, value_parser = parse_position)]
        at: Option<(f64, f64)>,
        /// Stamp centred on this text's first occurrence (every one with --every).
        #[arg(long)]
        keyword: Option<String>,
        /// With --keyword: stamp every occurrence.
        #[arg(long, requires = "keyword")]
        every: bool,
        /// A cross-page stamp (骑缝章) over every page's right edge, centred on its height.
        #[arg(long)]
        riding: bool,
        /// Where to write the sealed document (a new file).
        #[arg(long)]
        out: PathBuf,
    },
}

fn parse_position(text: &str) -> Result<(f64, f64), String> {
    let (x, y) = text.split_once(',').ok_or("X,Y in millimetres, e.g. 120,200")?;
    let number = |s: &str| {
        s.trim()
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite() && *n >= 0.0)
            .ok_or_else(|| format!("{s:?} is not a non-negative number of millimetres"))
    };
    Ok((number(x)?, number(y)?))
}

/// Runs an `ofd` subcommand.
pub(crate) fn run(command: Command) -> anyhow::Result<ExitCode> {
    let Command::Seal {
        file,
        seal,
        key,
        certificate,
        page,
        at,
        keyword,
        every,
        riding: _,
        out,
    } = command;
    if page == 0 {
        return Err(input("--page counts from 1"));
    }
    if out.exists() {
        return Err(input(format!(
            "{} exists; the sealed document goes to a new file",
            out.display()
        )));
    }
    let document = crate::exit::read(&file)?;
    let seal = crate::exit::read(&seal)?;
    let certificate = Certificate::all_from_pem(&crate::exit::read_text(&certificate)?)
        .ok()
        .and_then(|mut certs| (!certs.is_empty()).then(|| certs.remove(0)))
        .ok_or_else(|| input(format!("{} holds no certificate", certificate.display())))?;
    let signer = KeyLocator::parse(&key).and_then(|k| k.open()).map_err(input)?;
    let sealed = seal_ofd(
        &document,
        &Sealing {
            seal: &seal,
            signer_certificate: certificate.der(),
            signer: &*signer,
            time: time::OffsetDateTime::now_utc(),
            stamps: match (at, keyword) {
                (Some((x, y)), _) => Stamps::At(Placement { page: page - 1, x, y }),
                (None, Some(text)) => Stamps::Keyword { text, every },
                (None, None) => Stamps::Riding { y: None },
            },
        },
        Limits::default(),
    )
    .map_err(|e| input(format!("{}: {e}", file.display())))?;
    std::fs::write(&out, sealed).map_err(|e| input(format!("writing {}: {e}", out.display())))?;
    say!("sealed {} into {}", file.display(), out.display());
    Ok(ExitCode::SUCCESS)
}
