//! Hostile and unusual files, generated at test time: each case with its expected outcome, and a property
//! test that mutates valid files (truncation, flipped bytes, patched header dimensions) and asserts that
//! decoding never panics, never hangs and never allocates what a header merely claims.

mod common;

use common::{crc32, png_declaring};
use rechroma::data::{self, DataError};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn encoded(ext: &str) -> Vec<u8> {
    let img = image::DynamicImage::ImageRgb8(image::RgbImage::from_fn(48, 32, |x, y| {
        image::Rgb([(x * 5) as u8, (y * 7) as u8, ((x ^ y) * 3) as u8])
    }));
    let format = image::ImageFormat::from_extension(ext).unwrap();
    let mut bytes = std::io::Cursor::new(Vec::new());
    img.write_to(&mut bytes, format).unwrap();
    bytes.into_inner()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rechroma-corpus-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Decodes with a time limit; the result's error text, or "ok".
fn outcome(path: &Path) -> String {
    let start = Instant::now();
    let result = data::load_image(path);
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{} took {:?}",
        path.display(),
        start.elapsed()
    );
    match result {
        Ok(_) => "ok".into(),
        Err(e) => {
            let msg = e.to_string();
            assert!(!msg.contains('\n'), "one line: {msg}");
            assert!(
                msg.contains(&path.file_name().unwrap().to_string_lossy().to_string()),
                "names the file: {msg}"
            );
            msg
        }
    }
}

#[test]
fn every_case_of_the_corpus_has_its_expected_outcome() {
    let dir = scratch("cases");
    let png = encoded("png");
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("good.png", png.clone(), "ok"),
        ("good.jpg", encoded("jpg"), "ok"),
        ("good.webp", encoded("webp"), "ok"),
        ("good.bmp", encoded("bmp"), "ok"),
        ("good.tiff", encoded("tiff"), "ok"),
        ("empty.png", Vec::new(), "cannot decode"),
        ("text.jpg", b"this is not a photo".to_vec(), "unknown or unsupported"),
        ("half.png", png[..png.len() / 2].to_vec(), "truncated"),
        ("half.webp", encoded("webp")[..40].to_vec(), "cannot decode"),
        ("header-only.jpg", encoded("jpg")[..200].to_vec(), "truncated"),
        ("huge.png", png_declaring(60_000, 60_000), "more than the limit"),
        ("zero.png", png_declaring(0, 0), "cannot decode"),
        ("misnamed.jpg", png.clone(), "ok"), // the content decides, not the extension
    ];
    let mut table = Vec::new();
    for (name, bytes, expected) in &cases {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        let got = outcome(&path);
        assert!(
            if *expected == "ok" {
                got == "ok"
            } else {
                got.contains(expected)
            },
            "{name}: expected {expected:?}, got {got:?}"
        );
        table.push(format!("{name}: {got}"));
    }
    println!("{}", table.join("\n"));
    // Not a regular file: a folder named like a photo.
    std::fs::create_dir_all(dir.join("folder.png")).unwrap();
    assert!(matches!(
        data::load_image(&dir.join("folder.png")),
        Err(DataError::Decode { .. })
    ));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_animation_decodes_as_its_first_frame_and_says_so() {
    // An APNG: a PNG with an acTL chunk (2 frames) after IHDR; its default image is the first frame.
    let png = encoded("png");
    let mut actl = b"acTL".to_vec();
    actl.extend(2u32.to_be_bytes());
    actl.extend(0u32.to_be_bytes());
    let mut chunk = 8u32.to_be_bytes().to_vec();
    chunk.extend(&actl);
    chunk.extend(crc32(&actl).to_be_bytes());
    let ihdr_end = 8 + 8 + 13 + 4;
    let apng = [&png[..ihdr_end], &chunk[..], &png[ihdr_end..]].concat();
    let dir = scratch("animation");
    for (name, bytes, animated) in [("still.png", png.clone(), false), ("animated.png", apng, true)] {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        let (img, metadata) = data::load_image_with_metadata(&path).unwrap();
        assert_eq!((img.width(), img.height()), (48, 32));
        assert_eq!(metadata.animated, animated, "{name}");
    }
    // A two-page TIFF (written with the tiff crate image itself uses).
    let tiff_path = dir.join("pages.tiff");
    {
        let file = std::fs::File::create(&tiff_path).unwrap();
        let mut encoder = tiff::encoder::TiffEncoder::new(file).unwrap();
        let page: Vec<u8> = (0..48 * 32 * 3).map(|i| (i % 251) as u8).collect();
        for _ in 0..2 {
            encoder
                .write_image::<tiff::encoder::colortype::RGB8>(48, 32, &page)
                .unwrap();
        }
    }
    let (_, metadata) = data::load_image_with_metadata(&tiff_path).unwrap();
    assert!(metadata.animated, "a multi-page TIFF says so");
    let single = dir.join("single.tiff");
    std::fs::write(&single, encoded("tiff")).unwrap();
    assert!(!data::load_image_with_metadata(&single).unwrap().1.animated);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn mutated_files_never_panic_hang_or_allocate_what_the_header_claims() {
    let dir = scratch("mutations");
    std::fs::create_dir_all(&dir).unwrap();
    // A deterministic generator (no test dependency on a random crate for a few hundred draws).
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut cases = 0;
    for ext in ["png", "jpg", "webp", "bmp", "tiff"] {
        let good = encoded(ext);
        for i in 0..40 {
            let mut bytes = good.clone();
            match i % 4 {
                0 => bytes.truncate(next() as usize % bytes.len()),
                1 => {
                    for _ in 0..4 {
                        let k = next() as usize % bytes.len();
                        bytes[k] ^= 1 << (next() % 8);
                    }
                }
                // Header dimensions: overwrite a few bytes near the start with 0xFF (huge sizes).
                2 => {
                    let k = 12 + next() as usize % 20.min(bytes.len() - 12);
                    for b in bytes.iter_mut().skip(k).take(3) {
                        *b = 0xFF;
                    }
                }
                _ => {
                    let k = next() as usize % bytes.len();
                    bytes.drain(k..(k + 16).min(bytes.len()));
                }
            }
            let path = dir.join(format!("m{i}.{ext}"));
            std::fs::write(&path, &bytes).unwrap();
            let _ = outcome(&path); // no panic (the decoders run under catch_unwind), no hang
            cases += 1;
        }
    }
    assert_eq!(cases, 200);
    std::fs::remove_dir_all(&dir).unwrap();
}
