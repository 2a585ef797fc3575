//! One page of the face: lines of text placed character by character, and the 2D code drawn as
//! filled rectangles. Lengths are millimetres from the page's top-left corner (OFD's units).

use quick_xml::escape::escape;

/// The left margin's edge, and where the values start after their titles.
pub(crate) const LEFT: f64 = 25.0;
pub(crate) const VALUE_LEFT: f64 = 62.0;
/// Text size (4.2 mm ≈ 12 pt) and the distance between lines.
pub(crate) const BODY_SIZE: f64 = 4.2;
pub(crate) const LINE_HEIGHT: f64 = 6.5;

/// The sheet the face is laid out on (A4, either way round).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sheet {
    pub(crate) width: f64,
    pub(crate) height: f64,
}

impl Sheet {
    pub(crate) fn new(orientation: zhengyin_model::Orientation) -> Self {
        match orientation {
            zhengyin_model::Orientation::Portrait => Self {
                width: 210.0,
                height: 297.0,
            },
            zhengyin_model::Orientation::Landscape => Self {
                width: 297.0,
                height: 210.0,
            },
        }
    }

    /// The right margin's edge.
    pub(crate) fn right(self) -> f64 {
        self.width - 25.0
    }

    /// How wide a value may run.
    pub(crate) fn value_width(self) -> f64 {
        self.right() - VALUE_LEFT
    }

    /// The top of the foot block (2D code, issuer, date, seal) on the last page.
    pub(crate) fn foot_top(self) -> f64 {
        self.height - 75.0
    }
}
/// The one font resource.
pub(crate) const FONT_ID: u64 = 1;

/// How a line is placed relative to its x.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Align {
    Left,
    Centre,
    Right,
}

/// How far a character advances: full width for CJK and other wide characters, half for ASCII.
fn advance(c: char, size: f64) -> f64 {
    if c.is_ascii() {
        size * 0.5
    } else {
        size
    }
}

fn width(text: &str, size: f64) -> f64 {
    text.chars().map(|c| advance(c, size)).sum()
}

/// `text` broken into lines of at most `max` millimetres at `size` (its own line breaks kept;
/// an empty text is one empty line).
pub(crate) fn wrap(text: &str, max: f64, size: f64) -> Vec<String> {
    let mut lines = Vec::new();
    for paragraph in text.split('\n') {
        let mut line = String::new();
        let mut used = 0.0;
        for c in paragraph.chars().filter(|c| !c.is_control()) {
            let a = advance(c, size);
            if used + a > max && !line.is_empty() {
                lines.push(std::mem::take(&mut line));
                used = 0.0;
            }
            line.push(c);
            used += a;
        }
        lines.push(line);
    }
    lines
}

enum Object {
    Text { text: String, x: f64, y: f64, size: f64 },
    Rectangles { x: f64, y: f64, side: f64, path: String },
}

/// A page being laid out.
pub(crate) struct Page {
    objects: Vec<Object>,
}

impl Page {
    pub(crate) fn new() -> Self {
        Self { objects: Vec::new() }
    }

    /// One line of `text` whose top is at `y`.
    pub(crate) fn text(&mut self, text: &str, x: f64, y: f64, size: f64, align: Align) {
        let text: String = text.chars().filter(|c| !c.is_control()).collect();
        let x = match align {
            Align::Left => x,
            Align::Centre => x - width(&text, size) / 2.0,
            Align::Right => x - width(&text, size),
        };
        if !text.is_empty() {
            self.objects.push(Object::Text { text, x, y, size });
        }
    }

    /// The page's text, piece by piece.
    pub(crate) fn texts(&self) -> impl Iterator<Item = &str> {
        self.objects.iter().filter_map(|o| match o {
            Object::Text { text, .. } => Some(text.as_str()),
            Object::Rectangles { .. } => None,
        })
    }

    /// The 2D code, `side` millimetres square, its top-left corner at (`x`, `y`).
    pub(crate) fn code(&mut self, code: &qrcodegen::QrCode, x: f64, y: f64, side: f64) {
        let n = code.size();
        let module = side / f64::from(n);
        let mut path = String::new();
        for row in 0..n {
            let mut col = 0;
            while col < n {
                if !code.get_module(col, row) {
                    col += 1;
                    continue;
                }
                let start = col;
                while col < n && code.get_module(col, row) {
                    col += 1;
                }
                let (x0, x1) = (f64::from(start) * module, f64::from(col) * module);
                let (y0, y1) = (f64::from(row) * module, f64::from(row + 1) * module);
                path.push_str(&format!(
                    "M {} {} L {} {} L {} {} L {} {} C ",
                    mm(x0),
                    mm(y0),
                    mm(x1),
                    mm(y0),
                    mm(x1),
                    mm(y1),
                    mm(x0),
                    mm(y1)
                ));
            }
        }
        self.objects.push(Object::Rectangles {
            x,
            y,
            side,
            path: path.trim_end().to_owned(),
        });
    }

    /// The page's `Content.xml`, its objects numbered from `next_id`.
    pub(crate) fn content_xml(&self, next_id: &mut u64) -> String {
        let mut id = || {
            *next_id += 1;
            *next_id
        };
        let layer = id();
        let objects: String = self
            .objects
            .iter()
            .map(|object| match object {
                Object::Text { text, x, y, size } => {
                    let advances: Vec<String> = text.chars().map(|c| mm(advance(c, *size))).collect();
                    let delta = advances[..advances.len().saturating_sub(1)].join(" ");
                    format!(
                        r#"<ofd:TextObject ID="{}" Boundary="{} {} {} {}" Font="{FONT_ID}" Size="{}"><ofd:FillColor Value="0 0 0"/><ofd:TextCode X="0" Y="{}" DeltaX="{delta}">{}</ofd:TextCode></ofd:TextObject>"#,
                        id(),
                        mm(*x),
                        mm(*y),
                        mm(width(text, *size) + size),
                        mm(size * 1.3),
                        mm(*size),
                        mm(size * 1.0),
                        escape(text.as_str()),
                    )
                }
                Object::Rectangles { x, y, side, path } => format!(
                    r#"<ofd:PathObject ID="{}" Boundary="{} {} {side} {side}" Stroke="false" Fill="true"><ofd:FillColor Value="0 0 0"/><ofd:AbbreviatedData>{path}</ofd:AbbreviatedData></ofd:PathObject>"#,
                    id(),
                    mm(*x),
                    mm(*y),
                ),
            })
            .collect();
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<ofd:Page xmlns:ofd="{}"><ofd:Content><ofd:Layer ID="{layer}" Type="Body">{objects}</ofd:Layer></ofd:Content></ofd:Page>"#,
            super::NAMESPACE
        )
    }
}

/// A length as OFD writes it: at most three decimals, no trailing zeros.
fn mm(v: f64) -> String {
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".to_owned()
    } else {
        s.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_text_wraps_within_the_width_and_keeps_its_breaks() {
        let max = Sheet::new(zhengyin_model::Orientation::Portrait).value_width();
        let lines = wrap(&"经营范围".repeat(20), max, BODY_SIZE);
        assert!(lines.len() > 1);
        assert!(lines.iter().all(|l| width(l, BODY_SIZE) <= max));
        assert_eq!(lines.concat(), "经营范围".repeat(20));
        assert_eq!(wrap("一\n二", max, BODY_SIZE), vec!["一", "二"]);
        assert_eq!(wrap("", max, BODY_SIZE), vec![""]);
    }

    #[test]
    fn lengths_are_written_without_noise() {
        assert_eq!(mm(4.2), "4.2");
        assert_eq!(mm(35.0), "35");
        assert_eq!(mm(1.0 / 3.0), "0.333");
    }
}
