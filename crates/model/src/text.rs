//! What text printed on a licence, or said of one, may contain: no control characters (C0, DEL,
//! C1) and no bidirectional formatting characters, which can make a text display as something
//! other than what it is (U+202E turns "txt.exe" into "exe.txt" on screen). Multi-line text, where
//! a licence type allows it, may also hold line feeds and tabs.

/// The first character of `text` that is not allowed, if any.
pub fn forbidden_char(text: &str, multiline: bool) -> Option<char> {
    text.chars().find(|&c| match c {
        '\n' | '\t' => !multiline,
        // LRM, RLM and the Arabic letter mark; embeddings and overrides; isolates.
        '\u{200E}' | '\u{200F}' | '\u{061C}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' => true,
        c => c.is_control(),
    })
}

/// `Err` naming the character and `what` holds it, when [`forbidden_char`] finds one.
pub fn check_plain(text: &str, what: &str, multiline: bool) -> Result<(), String> {
    match forbidden_char(text, multiline) {
        None => Ok(()),
        Some(c) => Err(format!(
            "{what} must not contain control or bidirectional formatting characters (U+{:04X})",
            u32::from(c)
        )),
    }
}

/// A one-line text of 1 to `max` characters, not only blanks, with nothing [`forbidden_char`]
/// refuses; `Err` says what `what` must be.
pub fn check_line(text: &str, what: &str, max: usize) -> Result<(), String> {
    if text.trim().is_empty() || text.chars().count() > max {
        return Err(format!("{what} must be 1 to {max} characters"));
    }
    check_plain(text, what, false)
}

#[cfg(test)]
mod tests {
    use super::forbidden_char;

    #[test]
    fn controls_and_bidi_formatting_are_refused_and_lines_only_where_allowed() {
        assert_eq!(forbidden_char("长春市示例路1号 (A-1)", false), None);
        for bad in [
            "a\u{0}b",
            "a\u{1b}[31m",
            "a\u{7f}",
            "a\u{85}",
            "invoice\u{202E}txt.exe",
            "\u{2066}x",
            "a\rb",
        ] {
            assert!(forbidden_char(bad, false).is_some(), "{bad:?}");
            assert!(forbidden_char(bad, true).is_some(), "{bad:?} (multi-line)");
        }
        assert_eq!(forbidden_char("第一行\n第二行\t注", false), Some('\n'));
        assert_eq!(forbidden_char("第一行\n第二行\t注", true), None);
    }
}
