//! Shared helpers of the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

pub fn golden(name: &str) -> serde_json::Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).expect("golden file")).expect("golden JSON")
}

pub fn f32s(v: &serde_json::Value) -> Vec<f32> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().expect("number") as f32)
        .collect()
}

pub fn f64s(v: &serde_json::Value) -> Vec<f64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().expect("number"))
        .collect()
}

/// A 5-level EfficientNet-Lite of width 4–8 (random weights): the test backbone.
pub fn tiny_backbone() -> rechroma::model::efficientnet::EfficientNetConfig {
    rechroma::model::efficientnet::EfficientNetConfig {
        stem: 4,
        stages: vec![
            (3, 1, 1, 4, 1),
            (3, 2, 2, 4, 1),
            (5, 2, 2, 8, 1),
            (3, 2, 2, 8, 2),
            (3, 2, 2, 8, 1),
        ],
        head: 8,
        classes: 10,
    }
}

/// A tiny MLEU (encoder widths `widths`) on the tiny backbone, frozen.
pub fn tiny_mleu(widths: [usize; 5], head: rechroma::model::mleu::Head) -> rechroma::model::mleu::MleuConfig {
    rechroma::model::mleu::MleuConfig {
        widths,
        head,
        backbone: Some(rechroma::model::backbone::BackboneConfig::EfficientNet(tiny_backbone())),
        finetune_backbone: false,
        class_stride: 1,
        hints: false,
        hint_scale: rechroma::model::mleu::DEFAULT_HINT_SCALE,
    }
}

/// A PNG whose IHDR declares `w × h` (CRCs right), with no image data: 70 bytes.
pub fn png_declaring(w: u32, h: u32) -> Vec<u8> {
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend(w.to_be_bytes());
    ihdr.extend(h.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]);
    let crc = crc32(&ihdr);
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    out.extend(13u32.to_be_bytes());
    out.extend(&ihdr);
    out.extend(crc.to_be_bytes());
    // An empty IDAT, then IEND: the header is all a decoder reads before it would allocate.
    for chunk in [&b"IDAT"[..], &b"IEND"[..]] {
        out.extend(0u32.to_be_bytes());
        out.extend(chunk);
        out.extend(crc32(chunk).to_be_bytes());
    }
    out
}

/// CRC-32 (IEEE), as PNG chunks use; hand-written for the one header this test forges.
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A JPEG whose frame header declares `w × h`: a small real JPEG with its SOF0 dimensions patched (the
/// scan data stays that of the small image).
pub fn jpeg_declaring(w: u16, h: u16) -> Vec<u8> {
    let img = image::DynamicImage::ImageRgb8(image::RgbImage::from_fn(16, 16, |x, y| {
        image::Rgb([x as u8 * 9, y as u8 * 9, 90])
    }));
    let mut bytes = std::io::Cursor::new(Vec::new());
    img.write_to(&mut bytes, image::ImageFormat::Jpeg).unwrap();
    let mut bytes = bytes.into_inner();
    let sof = bytes
        .windows(2)
        .position(|m| m == [0xFF, 0xC0])
        .expect("baseline JPEG has SOF0");
    // FF C0, length (2), precision (1), height (2), width (2).
    bytes[sof + 5..sof + 7].copy_from_slice(&h.to_be_bytes());
    bytes[sof + 7..sof + 9].copy_from_slice(&w.to_be_bytes());
    bytes
}
