//! The little DER this crate writes: tag-length-value, unsigned integers, object identifiers,
//! SubjectPublicKeyInfo and `SEQUENCE { r, s }` signatures. Parsing is x509-parser's job.

/// One tag-length-value (definite length, as DER requires).
pub(crate) fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

/// A non-negative INTEGER from big-endian magnitude bytes (minimal: leading zeros dropped, one
/// added when the top bit is set).
pub(crate) fn unsigned(magnitude: &[u8]) -> Vec<u8> {
    let digits = match magnitude.iter().position(|&b| b != 0) {
        Some(first) => &magnitude[first..],
        None => &[0u8][..],
    };
    let mut content = Vec::with_capacity(digits.len() + 1);
    if digits[0] & 0x80 != 0 {
        content.push(0);
    }
    content.extend_from_slice(digits);
    tlv(0x02, &content)
}

/// An OBJECT IDENTIFIER from its dotted form; `None` if it is not one.
pub(crate) fn oid(dotted: &str) -> Option<Vec<u8>> {
    let arcs: Vec<u64> = dotted.split('.').map(|a| a.parse().ok()).collect::<Option<_>>()?;
    let (&first, &second) = (arcs.first()?, arcs.get(1)?);
    if first > 2 || (first < 2 && second > 39) {
        return None;
    }
    let mut content = Vec::new();
    for arc in std::iter::once(first * 40 + second).chain(arcs[2..].iter().copied()) {
        let mut groups = vec![(arc & 0x7f) as u8];
        let mut rest = arc >> 7;
        while rest > 0 {
            groups.push(0x80 | (rest & 0x7f) as u8);
            rest >>= 7;
        }
        content.extend(groups.iter().rev());
    }
    Some(tlv(0x06, &content))
}

/// A SubjectPublicKeyInfo from AlgorithmIdentifier contents and the key bits.
pub(crate) fn spki(algorithm: &[u8], key: &[u8]) -> Vec<u8> {
    let mut bits = vec![0u8];
    bits.extend_from_slice(key);
    let mut content = tlv(0x30, algorithm);
    content.extend(tlv(0x03, &bits));
    tlv(0x30, &content)
}

/// `SEQUENCE { r INTEGER, s INTEGER }` from a fixed-width `r‖s` (ECDSA and SM2 in X.509).
pub(crate) fn signature_sequence(raw: &[u8]) -> Vec<u8> {
    let (r, s) = raw.split_at(raw.len() / 2);
    let mut content = unsigned(r);
    content.extend(unsigned(s));
    tlv(0x30, &content)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_identifiers_encode_as_x690_says() {
        // X.690 §8.19.5's example arcs and two the crate uses.
        assert_eq!(oid("2.999.3"), Some(vec![0x06, 0x03, 0x88, 0x37, 0x03]));
        assert_eq!(oid("1.3.101.112"), Some(vec![0x06, 0x03, 0x2b, 0x65, 0x70]));
        assert_eq!(
            oid("1.2.156.10197.1.501"),
            Some(vec![0x06, 0x08, 0x2a, 0x81, 0x1c, 0xcf, 0x55, 0x01, 0x83, 0x75])
        );
        assert_eq!(oid("3.1"), None);
        assert_eq!(oid("1"), None);
        assert_eq!(oid("1.x"), None);
    }

    #[test]
    fn integers_are_minimal_and_positive() {
        assert_eq!(unsigned(&[0, 0, 5]), vec![0x02, 0x01, 0x05]);
        assert_eq!(unsigned(&[0x80]), vec![0x02, 0x02, 0x00, 0x80]);
        assert_eq!(unsigned(&[0, 0]), vec![0x02, 0x01, 0x00]);
        assert_eq!(tlv(0x04, &[0u8; 200])[..3], [0x04, 0x81, 200]);
    }
}
