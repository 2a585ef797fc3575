//! Check-character systems used by Chinese identifiers.
//!
//! * ISO/IEC 7064 hybrid system MOD 37,36 (alphabet `0-9A-Z`) — GB/T 36904 licence identifiers.
//! * ISO/IEC 7064 MOD 11-2 (check `0-9X`) — GB 11643 citizen identity numbers.
//! * GB 32100-2015 weighted MOD 31 — unified social credit codes.

/// Value of `c` in the alphabet `0-9A-Z`, or `None`.
fn base36_value(c: u8) -> Option<u32> {
    match c {
        b'0'..=b'9' => Some(u32::from(c - b'0')),
        b'A'..=b'Z' => Some(u32::from(c - b'A') + 10),
        _ => None,
    }
}

/// The ISO/IEC 7064 MOD 37,36 check character over `data` (uppercase letters and digits only).
///
/// Returns `None` when `data` holds a character outside `0-9A-Z`.
pub fn iso7064_mod37_36(data: &str) -> Option<char> {
    const M: u32 = 36;
    let mut p = M;
    for c in data.bytes() {
        let mut s = (p + base36_value(c)?) % M;
        if s == 0 {
            s = M;
        }
        p = (s * 2) % (M + 1);
    }
    let check = (M + 1 - p) % M;
    char::from_digit(check, 36).map(|c| c.to_ascii_uppercase())
}

/// The ISO/IEC 7064 MOD 11-2 check character over 17 decimal digits (`0-9` or `X`).
pub fn iso7064_mod11_2(digits: &str) -> Option<char> {
    let mut sum = 0u32;
    for c in digits.bytes() {
        let d = match c {
            b'0'..=b'9' => u32::from(c - b'0'),
            _ => return None,
        };
        sum = (sum + d) * 2 % 11;
    }
    let check = (12 - sum % 11) % 11;
    Some(if check == 10 { 'X' } else { char::from_digit(check, 10)? })
}

/// Alphabet of GB 32100-2015 (digits and uppercase letters except I, O, Z, S, V).
pub const USCC_ALPHABET: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
const USCC_WEIGHTS: [u32; 17] = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28];

/// The GB 32100-2015 check character over the first 17 characters of a USCC.
pub fn gb32100(first17: &str) -> Option<char> {
    if first17.len() != 17 {
        return None;
    }
    let mut sum = 0u32;
    for (c, w) in first17.bytes().zip(USCC_WEIGHTS) {
        let v = USCC_ALPHABET.iter().position(|&a| a == c)?;
        sum += u32::try_from(v).ok()? * w;
    }
    let check = (31 - sum % 31) % 31;
    USCC_ALPHABET.get(check as usize).map(|&b| char::from(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mod37_36_matches_the_real_licence_identifier() {
        // 1.2.156.3005.2.11100000000013338W032.11220000013544541J.2430599.001.F
        let data = "11100000000013338W032".to_owned() + "11220000013544541J" + "2430599" + "001";
        assert_eq!(iso7064_mod37_36(&data), Some('F'));
    }

    #[test]
    fn mod37_36_refuses_other_characters() {
        assert_eq!(iso7064_mod37_36("abc"), None);
        assert_eq!(iso7064_mod37_36("12.3"), None);
    }

    #[test]
    fn mod11_2_matches_the_gb11643_example() {
        assert_eq!(iso7064_mod11_2("11010519491231002"), Some('X'));
    }

    #[test]
    fn gb32100_matches_real_codes() {
        assert_eq!(gb32100("11220000013544541"), Some('J'));
        assert_eq!(gb32100("11100000000013338"), Some('W'));
        assert_eq!(gb32100("91350100M000100Y4"), Some('3'));
        assert_eq!(gb32100("9135010OM000100Y4"), None, "O is not in the alphabet");
    }
}
