//! QR codes as PNG images, for presentation tokens (亮证).

use qrcodegen::{QrCode, QrCodeEcc};

/// Pixels per module.
const SCALE: usize = 4;
/// Quiet zone, in modules (ISO/IEC 18004 asks for four).
const BORDER: usize = 4;

/// Encodes `text` as a QR code (error correction M) and renders it as an 8-bit grey PNG.
pub fn png(text: &str) -> Result<Vec<u8>, String> {
    let code = QrCode::encode_text(text, QrCodeEcc::Medium).map_err(|e| format!("QR: {e:?}"))?;
    let modules = usize::try_from(code.size()).map_err(|e| e.to_string())?;
    let side = (modules + 2 * BORDER) * SCALE;
    let mut pixels = vec![255u8; side * side];
    for y in 0..modules {
        for x in 0..modules {
            // Both coordinates are below `size`, an i32.
            if code.get_module(x as i32, y as i32) {
                for dy in 0..SCALE {
                    let row = (y + BORDER) * SCALE + dy;
                    let start = row * side + (x + BORDER) * SCALE;
                    pixels[start..start + SCALE].fill(0);
                }
            }
        }
    }
    let side = u32::try_from(side).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, side, side);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(|e| e.to_string())?;
    writer.write_image_data(&pixels).map_err(|e| e.to_string())?;
    writer.finish().map_err(|e| e.to_string())?;
    Ok(out)
}
