"""An independent check of the font a licence file embeds, with fontTools (a font library written
apart from ours) reading both the embedded subset and the font it was cut from.

    check_font.py FILE.ofd ORIGINAL_FONT FACE

It reads the OFD package with Python's standard library: PublicRes.xml must name an embedded
font file (`FontFile`), and every table of that font must decompile. Then, for every character
of every page's text (`TextCode`), the subset must map it to a glyph that draws the same points
(composite glyphs resolved) with the same advance width as the original font's glyph for it.
Prints VALID and exits 0, or INVALID and each failure and exits 1.
"""

import io
import posixpath
import sys
import xml.etree.ElementTree as ET
import zipfile

from fontTools.ttLib import TTFont

OFD = "{http://www.ofdspec.org/2016}"


def drawn(font, char):
    """The glyph of `char`: its points, contour ends and flags with composites resolved, and its
    advance width; None when the font has no glyph for it."""
    name = font.getBestCmap().get(ord(char))
    if name is None:
        return None
    glyf = font["glyf"]
    coordinates, ends, flags = glyf[name].getCoordinates(glyf)
    return list(coordinates), list(ends), list(flags), font["hmtx"][name][0]


def main(path, original_path, face):
    failures = []
    package = zipfile.ZipFile(path)
    names = set(package.namelist())
    root = ET.fromstring(package.read("Doc_0/PublicRes.xml"))
    base = posixpath.join("Doc_0", root.get("BaseLoc", ""))
    files = [f.text for f in root.iter(OFD + "FontFile")]
    if len(files) != 1:
        print(f"INVALID\nfont: {len(files)} embedded font files named, expected one")
        return 1
    font_path = posixpath.normpath(posixpath.join(base, files[0]))
    if font_path not in names:
        print(f"INVALID\nfont: {font_path} is not in the package")
        return 1
    subset = TTFont(io.BytesIO(package.read(font_path)))
    for tag in subset.keys():
        try:
            subset[tag]
        except Exception as error:  # any failure to decompile is a finding
            failures.append(f"table {tag}: {error}")
    original = TTFont(original_path, fontNumber=face)

    text = set()
    for name in sorted(names):
        if name.endswith("Content.xml") and "/Pages/" in name:
            for code in ET.fromstring(package.read(name)).iter(OFD + "TextCode"):
                text.update(code.text or "")
    if not text:
        failures.append("no text on the pages")
    for char in sorted(text):
        want = drawn(original, char)
        if want is None:
            continue
        got = drawn(subset, char)
        if got is None:
            failures.append(f"glyph: {char!r} is not in the embedded font")
        elif got != want:
            failures.append(f"glyph: {char!r} is drawn differently from the original font")
    if failures:
        print("INVALID")
        for failure in failures:
            print(failure)
        return 1
    print(f"VALID\n{len(text)} characters, {len(subset.getGlyphOrder())} glyphs")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
