//! The CLI's exit statuses, the same for every subcommand, and the errors that choose them.

use std::process::ExitCode;

use zhengyin_model::Verdict;

/// What every `--help` says about exit statuses.
pub const EXIT_STATUSES: &str = "Exit status: 0 VALID, or done; 1 INVALID, or a check failed (an audit, an import \
with refused lines, a sync source stopped); 2 usage or input error (an argument, a file given, the configuration); \
3 INDETERMINATE (the verification could not decide, e.g. status is unknown offline); 4 could not complete (a node or \
database unreachable, a write failed).";

/// Something the user gave is wrong (an argument, a file, the configuration): exit 2.
#[derive(Debug)]
pub struct InputError(pub String);

impl std::fmt::Display for InputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InputError {}

/// An input error saying `what`.
pub fn input(what: impl std::fmt::Display) -> anyhow::Error {
    InputError(what.to_string()).into()
}

/// Marks any error as an input error, keeping its message.
pub fn as_input(e: anyhow::Error) -> anyhow::Error {
    if is_input(&e) {
        e
    } else {
        input(format!("{e:#}"))
    }
}

fn is_input(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| cause.is::<InputError>())
}

/// Reads a file the user named (an input error if it cannot be read).
pub fn read(path: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| input(format!("reading {}: {e}", path.display())))
}

/// Reads a text file the user named.
pub fn read_text(path: &std::path::Path) -> anyhow::Result<String> {
    String::from_utf8(read(path)?).map_err(|_| input(format!("{} is not UTF-8 text", path.display())))
}

/// The first `PUBLIC KEY` of a PEM file the user named.
pub(crate) fn read_public_key(path: &std::path::Path) -> anyhow::Result<zhengyin_crypto::PublicKey> {
    let text = read_text(path)?;
    let der = zhengyin_crypto::pem::decode_label(&text, "PUBLIC KEY")
        .ok()
        .and_then(|blocks| blocks.into_iter().next())
        .ok_or_else(|| input(format!("{}: no PUBLIC KEY block", path.display())))?;
    zhengyin_crypto::PublicKey::from_spki_der(&der).map_err(|e| input(format!("{}: {e}", path.display())))
}

/// 0 VALID, 1 INVALID, 3 INDETERMINATE.
pub fn for_verdict(verdict: Verdict) -> ExitCode {
    ExitCode::from(match verdict {
        Verdict::Valid => 0,
        Verdict::Invalid => 1,
        Verdict::Indeterminate => 3,
    })
}

/// 2 for an input error, 4 for anything else that stopped the command.
pub fn for_error(e: &anyhow::Error) -> ExitCode {
    ExitCode::from(if is_input(e) { 2 } else { 4 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_errors_exit_2_through_context_and_others_4() {
        use anyhow::Context as _;
        let wrapped = Err::<(), _>(input("bad file")).context("loading").unwrap_err();
        assert_eq!(for_error(&wrapped), ExitCode::from(2));
        assert_eq!(for_error(&anyhow::anyhow!("connection refused")), ExitCode::from(4));
        assert_eq!(for_error(&as_input(anyhow::anyhow!("x"))), ExitCode::from(2));
    }
}
