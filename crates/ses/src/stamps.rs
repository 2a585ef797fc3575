//! Where a seal's stamps go on the pages (the `StampAnnot`s of its `Signature.xml`): at a
//! position, centred on a keyword's first or every occurrence, or across the pages' right edge
//! (骑缝章), each page showing its slice of the picture through a `Clip`. Lengths are millimetres
//! from a page's top-left corner.
//!
//! What it is not: keywords are found within one `TextCode` (text split across text objects is
//! not joined), and a text object's `CTM` is not applied.

use crate::ofd::{resolve, Element, OfdError};

/// A position: a page (0 for the first) and the top-left corner of the seal's picture.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Placement {
    /// The page, from 0.
    pub page: usize,
    /// Millimetres from the page's left edge.
    pub x: f64,
    /// Millimetres from the page's top edge.
    pub y: f64,
}

/// Where one seal signature's stamps go.
#[derive(Debug, Clone, PartialEq)]
pub enum Stamps {
    /// One stamp, its picture's top-left corner here.
    At(Placement),
    /// Centred on the keyword's first occurrence, or on every one.
    Keyword {
        /// The text to find.
        text: String,
        /// Every occurrence, not only the first.
        every: bool,
    },
    /// 骑缝章: across the right edge of every page, its top `y` millimetres from the page's top
    /// (the picture centred on the edge's height when `None`).
    Riding {
        /// Millimetres from the top.
        y: Option<f64>,
    },
}

impl From<Placement> for Stamps {
    fn from(placement: Placement) -> Self {
        Self::At(placement)
    }
}

/// Most stamps one signature places (a keyword found more often is refused).
pub const MAX_STAMPS: usize = 500;

/// One page of the document: its object ID, its content, and its size.
pub(crate) struct Page {
    pub(crate) id: String,
    pub(crate) content: Element,
    pub(crate) width: f64,
    pub(crate) height: f64,
}

/// One stamp: the page it is on, its box, and the part of the picture shown (in the box's
/// own coordinates), if not all of it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Annot {
    pub(crate) page_id: String,
    pub(crate) boundary: [f64; 4],
    pub(crate) clip: Option<[f64; 4]>,
}

/// Reads a file of the package by its path: `None` when it has no such file.
pub(crate) type ReadFile<'a> = dyn FnMut(&str) -> Result<Option<Vec<u8>>, OfdError> + 'a;

/// The pages of the document whose root is `document` at `doc_root`, read with `read` (a
/// package path to its bytes, `None` when missing); every page's content must be there.
pub(crate) fn pages(document: &Element, doc_root: &str, read: &mut ReadFile<'_>) -> Result<Vec<Page>, OfdError> {
    let doc_dir = crate::ofd::parent(doc_root);
    let default_box = document
        .descendants("PageArea")
        .first()
        .and_then(|area| physical_box(area))
        .unwrap_or([0.0, 0.0, 210.0, 297.0]);
    let mut out = Vec::new();
    for (n, page) in document.descendants("Page").into_iter().enumerate() {
        let id = page
            .attr("ID")
            .ok_or_else(|| OfdError::Xml(format!("{doc_root}: page {} has no ID", n + 1)))?
            .to_owned();
        let loc = page
            .attr("BaseLoc")
            .ok_or_else(|| OfdError::Xml(format!("{doc_root}: page {} has no BaseLoc", n + 1)))?;
        let path = resolve(doc_dir, loc)?;
        let bytes = read(&path)?.ok_or_else(|| OfdError::Package(format!("{path} (page {}) is missing", n + 1)))?;
        let content = Element::parse(&bytes, &path)?;
        let area = content
            .descendants("Area")
            .first()
            .and_then(|a| physical_box(a))
            .unwrap_or(default_box);
        out.push(Page {
            id,
            content,
            width: area[2],
            height: area[3],
        });
    }
    Ok(out)
}

fn physical_box(area: &Element) -> Option<[f64; 4]> {
    numbers(&area.descendants("PhysicalBox").first()?.text)
}

fn numbers(text: &str) -> Option<[f64; 4]> {
    let v: Vec<f64> = text.split_whitespace().map(str::parse).collect::<Result<_, _>>().ok()?;
    v.try_into().ok()
}

/// Refuses a request no page can hold: lengths that are not 0–10,000 mm, a keyword that is empty
/// or longer than 100 characters.
fn check(stamps: &Stamps) -> Result<(), String> {
    let millimetres = |v: f64| v.is_finite() && (0.0..=10_000.0).contains(&v);
    match stamps {
        Stamps::At(p) if !millimetres(p.x) || !millimetres(p.y) => {
            Err("x and y are millimetres from 0 to 10000".to_owned())
        }
        Stamps::Riding { y: Some(y) } if !millimetres(*y) => Err("y is millimetres from 0 to 10000".to_owned()),
        Stamps::Keyword { text, .. } if text.trim().is_empty() || text.chars().count() > 100 => {
            Err("the keyword is 1 to 100 characters".to_owned())
        }
        _ => Ok(()),
    }
}

/// The stamps of `stamps` for a picture `size` (width, height in mm) on `pages`.
pub(crate) fn place(stamps: &Stamps, size: (f64, f64), pages: &[Page]) -> Result<Vec<Annot>, OfdError> {
    let (w, h) = size;
    let refuse = |m: String| OfdError::Sealing(m);
    check(stamps).map_err(refuse)?;
    match stamps {
        Stamps::At(p) => {
            let page = pages.get(p.page).ok_or_else(|| {
                refuse(format!(
                    "the document has {} page(s); page {} was asked for",
                    pages.len(),
                    p.page + 1
                ))
            })?;
            Ok(vec![Annot {
                page_id: page.id.clone(),
                boundary: [p.x, p.y, w, h],
                clip: None,
            }])
        }
        Stamps::Riding { y } => {
            if pages.len() < 2 {
                return Err(refuse("a cross-page (骑缝) stamp needs at least two pages".to_owned()));
            }
            let slice = w / pages.len() as f64;
            Ok(pages
                .iter()
                .enumerate()
                .map(|(i, page)| Annot {
                    page_id: page.id.clone(),
                    boundary: [
                        page.width - slice * (i + 1) as f64,
                        y.unwrap_or(page.height / 2.0 - h / 2.0),
                        w,
                        h,
                    ],
                    clip: Some([slice * i as f64, 0.0, slice, h]),
                })
                .collect())
        }
        Stamps::Keyword { text, every } => {
            let wanted: Vec<char> = text.chars().collect();
            let mut found = Vec::new();
            for page in pages {
                let content = &page.content;
                for (cx, cy) in occurrences(content, &wanted) {
                    found.push(Annot {
                        page_id: page.id.clone(),
                        boundary: [cx - w / 2.0, cy - h / 2.0, w, h],
                        clip: None,
                    });
                    if !every {
                        return Ok(found);
                    }
                    if found.len() > MAX_STAMPS {
                        return Err(refuse(format!(
                            "the keyword {text:?} occurs more than {MAX_STAMPS} times"
                        )));
                    }
                }
            }
            if found.is_empty() {
                return Err(refuse(format!(
                    "the keyword {text:?} does not occur in the document's text"
                )));
            }
            Ok(found)
        }
    }
}

/// The centres of `wanted`'s occurrences in a page's text objects, in document order.
fn occurrences(content: &Element, wanted: &[char]) -> Vec<(f64, f64)> {
    let mut out = Vec::new();
    for object in content.descendants("TextObject") {
        let Some([bx, by, _, _]) = object.attr("Boundary").and_then(numbers) else {
            continue;
        };
        let size: f64 = object.attr("Size").and_then(|s| s.parse().ok()).unwrap_or(3.5);
        for code in object.descendants("TextCode") {
            let chars: Vec<char> = code.text.chars().collect();
            let x: f64 = code.attr("X").and_then(|v| v.parse().ok()).unwrap_or(0.0);
            let y: f64 = code.attr("Y").and_then(|v| v.parse().ok()).unwrap_or(size);
            let advances = deltas(code.attr("DeltaX").unwrap_or(""), chars.len(), size);
            let at = |i: usize| bx + x + advances[..i].iter().sum::<f64>();
            let mut i = 0;
            while i + wanted.len() <= chars.len() {
                if chars[i..i + wanted.len()] == *wanted {
                    let end = i + wanted.len() - 1;
                    let (left, right) = (at(i), at(end) + advances.get(end).copied().unwrap_or(size));
                    // The baseline is at Y; the glyphs' middle about a third of the size above it.
                    out.push(((left + right) / 2.0, by + y - size * 0.35));
                    i += wanted.len();
                } else {
                    i += 1;
                }
            }
        }
    }
    out
}

/// The advance after each of `count` characters: `DeltaX` as written (with the `g n v`
/// repetition), then `size` for any it does not give.
fn deltas(delta_x: &str, count: usize, size: f64) -> Vec<f64> {
    let mut out = Vec::with_capacity(count);
    let mut tokens = delta_x.split_whitespace();
    while let Some(token) = tokens.next() {
        if out.len() >= count {
            break;
        }
        if token == "g" {
            let times: usize = tokens.next().and_then(|t| t.parse().ok()).unwrap_or(0);
            let value: f64 = tokens.next().and_then(|t| t.parse().ok()).unwrap_or(size);
            out.extend(std::iter::repeat_n(value, times.min(count - out.len())));
        } else {
            out.push(token.parse().unwrap_or(size));
        }
    }
    out.resize(count, size);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delta_x_with_repetition_reads_as_advances() {
        assert_eq!(deltas("1 g 3 2.5 4", 6, 9.0), vec![1.0, 2.5, 2.5, 2.5, 4.0, 9.0]);
        assert_eq!(deltas("", 2, 3.0), vec![3.0, 3.0]);
        assert_eq!(deltas("g 99 1", 3, 3.0), vec![1.0, 1.0, 1.0]);
    }

    fn page(id: &str, content: &str) -> Page {
        Page {
            id: id.to_owned(),
            content: Element::parse(content.as_bytes(), "Content.xml").unwrap(),
            width: 210.0,
            height: 297.0,
        }
    }

    #[test]
    fn a_keyword_is_stamped_at_its_first_or_every_occurrence() {
        let text = r#"<ofd:Page xmlns:ofd="http://www.ofdspec.org/2016"><ofd:Content><ofd:Layer ID="2">
            <ofd:TextObject ID="3" Boundary="20 30 100 10" Size="5"><ofd:TextCode X="0" Y="5" DeltaX="g 5 5">甲方盖章乙方</ofd:TextCode></ofd:TextObject>
            <ofd:TextObject ID="4" Boundary="20 80 100 10" Size="5"><ofd:TextCode X="10" Y="5">乙方盖章</ofd:TextCode></ofd:TextObject>
            </ofd:Layer></ofd:Content></ofd:Page>"#;
        let pages = [page("1", text), page("9", text)];
        let first = Stamps::Keyword {
            text: "盖章".to_owned(),
            every: false,
        };
        // 盖章 spans x 30..40 on the first line: the 40 mm picture is centred on x 35.
        assert_eq!(
            place(&first, (40.0, 40.0), &pages).unwrap(),
            vec![Annot {
                page_id: "1".to_owned(),
                boundary: [15.0, 35.0 - 1.75 - 20.0, 40.0, 40.0],
                clip: None
            }]
        );
        let every = Stamps::Keyword {
            text: "盖章".to_owned(),
            every: true,
        };
        let all = place(&every, (40.0, 40.0), &pages).unwrap();
        assert_eq!(all.len(), 4);
        assert_eq!(
            (all[1].page_id.as_str(), all[1].boundary[0]),
            ("1", 20.0 + 10.0 + 15.0 - 20.0)
        );
        assert_eq!(all[3].page_id, "9");
        let missing = Stamps::Keyword {
            text: "丙方".to_owned(),
            every: true,
        };
        assert!(place(&missing, (40.0, 40.0), &pages)
            .unwrap_err()
            .to_string()
            .contains("does not occur"));
    }

    #[test]
    fn a_riding_stamp_shows_each_page_its_slice_at_the_right_edge() {
        let pages = [
            page("1", "<Page/>"),
            page("2", "<Page/>"),
            page("3", "<Page/>"),
            page("4", "<Page/>"),
        ];
        let annots = place(&Stamps::Riding { y: None }, (40.0, 40.0), &pages).unwrap();
        assert_eq!(annots.len(), 4);
        for (i, a) in annots.iter().enumerate() {
            let i = i as f64;
            assert_eq!(a.boundary, [210.0 - 10.0 * (i + 1.0), 297.0 / 2.0 - 20.0, 40.0, 40.0]);
            assert_eq!(a.clip, Some([10.0 * i, 0.0, 10.0, 40.0]));
            // The slice shown lies exactly on the page's last 10 mm.
            assert_eq!(a.boundary[0] + a.clip.unwrap()[0], 200.0);
        }
        assert!(place(&Stamps::Riding { y: None }, (40.0, 40.0), &pages[..1]).is_err());
    }
}
