//! PEM (RFC 7468) decoding. Decoded bytes are zeroized when dropped, since they may be keys.

use base64::Engine as _;
use zeroize::Zeroizing;

use crate::CryptoError;

/// One PEM block.
pub struct PemBlock {
    /// The label, e.g. `CERTIFICATE` or `PRIVATE KEY`.
    pub label: String,
    /// The decoded DER bytes.
    pub der: Zeroizing<Vec<u8>>,
}

/// Decodes every PEM block in `text`, in order. Text outside blocks is ignored.
pub fn decode_all(text: &str) -> Result<Vec<PemBlock>, CryptoError> {
    let mut blocks = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let Some(label) = line
            .trim()
            .strip_prefix("-----BEGIN ")
            .and_then(|l| l.strip_suffix("-----"))
        else {
            continue;
        };
        let end = format!("-----END {label}-----");
        let mut body = Zeroizing::new(String::new());
        let mut closed = false;
        for line in lines.by_ref() {
            if line.trim() == end {
                closed = true;
                break;
            }
            body.push_str(line.trim());
        }
        if !closed {
            return Err(CryptoError::Pem(format!("block {label} has no END line")));
        }
        let der = base64::engine::general_purpose::STANDARD
            .decode(body.as_bytes())
            .map_err(|_| CryptoError::Pem(format!("block {label} is not base64")))?;
        blocks.push(PemBlock {
            label: label.to_owned(),
            der: Zeroizing::new(der),
        });
    }
    Ok(blocks)
}

/// Decodes every block labelled `label`.
pub fn decode_label(text: &str, label: &str) -> Result<Vec<Zeroizing<Vec<u8>>>, CryptoError> {
    Ok(decode_all(text)?
        .into_iter()
        .filter(|b| b.label == label)
        .map(|b| b.der)
        .collect())
}

/// Encodes DER as one PEM block.
pub fn encode(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_errors() {
        let text = format!("junk\n{}{}", encode("A", b"hello"), encode("B", &[0u8; 100]));
        let blocks = decode_all(&text).unwrap();
        assert_eq!(blocks.len(), 2);
        assert_eq!(&blocks[0].der[..], b"hello");
        assert_eq!(blocks[1].der.len(), 100);
        assert!(decode_all("-----BEGIN A-----\nAAAA\n").is_err());
        assert!(decode_all("-----BEGIN A-----\n!!!\n-----END A-----\n").is_err());
    }
}
