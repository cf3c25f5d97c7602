//! Decoding (colour types, EXIF orientation, broken files), augmentation and batching on the fixtures.
mod common;

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::Dataset;
use burn::tensor::Device;
use rand::SeedableRng;
use rechroma::data::{self, AugmentConfig, ColorBatcher, DataError, DatasetConfig, Loader, PhotoDataset};

fn tiny() -> DatasetConfig {
    DatasetConfig {
        augment: AugmentConfig {
            size: 32,
            ..AugmentConfig::default()
        },
        ..DatasetConfig::default()
    }
}

#[test]
fn scan_finds_photos_recursively_in_a_stable_order() {
    let files = data::scan(&common::fixtures().join("photos")).unwrap();
    let names: Vec<_> = files.iter().map(|p| p.file_name().unwrap().to_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "astronaut_64x64.webp",
            "chelsea_128x96.png",
            "coffee_128x128.jpg",
            "chelsea_gray.png"
        ]
    );
}

#[test]
fn every_colour_type_decodes_to_rgb_with_exif_orientation_applied() {
    let dir = common::fixtures().join("types");
    for name in [
        "rgba_48x32.png",
        "palette_48x32.png",
        "gray16_48x32.png",
        "bmp_48x32.bmp",
        "tiff_48x32.tiff",
    ] {
        let img = data::load_rgb(&dir.join(name)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(img.dimensions(), (48, 32), "{name}");
    }
    let reference = data::load_rgb(&dir.join("bmp_48x32.bmp")).unwrap();
    let rotated = data::load_rgb(&dir.join("exif_orientation6_48x32.jpg")).unwrap();
    assert_eq!(rotated.dimensions(), (32, 48), "orientation 6 turns 48×32 into 32×48");
    // Orientation 6 = rotate 90° clockwise: the stored top-left pixel ends at the top-right.
    let (s, r) = (reference.get_pixel(0, 0).0, rotated.get_pixel(31, 0).0);
    assert!(
        s.iter().zip(r).all(|(a, b)| (*a as i32 - b as i32).abs() < 24),
        "{s:?} vs {r:?}"
    );
    let gray16 = data::load_image(&dir.join("gray16_48x32.png")).unwrap();
    assert_eq!(
        gray16.color(),
        image::ColorType::L16,
        "the original colour type is kept by load_image"
    );
}

#[test]
fn broken_files_give_an_error_naming_the_file() {
    for name in ["truncated.jpg", "not_an_image.png", "empty.webp"] {
        let path = common::fixtures().join("bad").join(name);
        let err = data::load_rgb(&path).expect_err(name);
        assert!(matches!(err, DataError::Decode { .. }), "{name}: {err}");
        let msg = err.to_string();
        assert!(
            msg.contains(name) && !msg.contains('\n'),
            "one line naming the file: {msg}"
        );
    }
    let missing = data::load_rgb(std::path::Path::new("/no/such/photo.jpg")).unwrap_err();
    assert!(missing.to_string().contains("/no/such/photo.jpg"));
}

#[test]
fn a_truncated_file_of_any_format_says_it_is_truncated() {
    let img = image::DynamicImage::ImageRgb8(image::RgbImage::from_fn(64, 48, |x, y| {
        image::Rgb([(x * 4) as u8, (y * 5) as u8, ((x + y) * 2) as u8])
    }));
    let dir = std::env::temp_dir().join(format!("rechroma-truncated-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for ext in ["png", "webp", "bmp", "tiff"] {
        let path = dir.join(format!("cut.{ext}"));
        img.save(&path).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() * 2 / 3]).unwrap();
        let err = data::load_image(&path).expect_err(ext);
        let msg = err.to_string();
        // Was "failed to fill whole buffer" for WebP, TIFF and BMP.
        assert!(
            msg.contains("truncated") && msg.contains(&format!("cut.{ext}")),
            "{ext}: {msg}"
        );
        assert!(!msg.contains('\n'), "{msg}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_folder_with_broken_files_skips_them_once_and_keeps_the_rest() {
    let dir = std::env::temp_dir().join(format!("rechroma-data-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    for name in ["chelsea_128x96.png", "coffee_128x128.jpg"] {
        std::fs::copy(common::fixtures().join("photos").join(name), dir.join("sub").join(name)).unwrap();
    }
    std::fs::copy(common::fixtures().join("bad/truncated.jpg"), dir.join("truncated.jpg")).unwrap();
    let ds = PhotoDataset::open(&dir, tiny(), |_, _| {}).unwrap();
    assert_eq!(ds.len(), 2);
    assert_eq!(ds.skipped().len(), 1);
    assert!(ds.skipped()[0].to_string().contains("truncated.jpg"));
    std::fs::remove_dir_all(&dir).unwrap();
    let empty = std::env::temp_dir().join(format!("rechroma-empty-{}", std::process::id()));
    std::fs::create_dir_all(&empty).unwrap();
    assert!(matches!(
        PhotoDataset::open(&empty, tiny(), |_, _| {}),
        Err(DataError::Empty { .. })
    ));
    std::fs::remove_dir_all(&empty).unwrap();
}

#[test]
fn samples_are_deterministic_per_epoch_and_vary_across_epochs() {
    let ds = PhotoDataset::open(&common::fixtures().join("photos"), tiny(), |_, _| {}).unwrap();
    let a = ds.sample(1, 0).unwrap();
    assert_eq!(a.l.len(), 32 * 32);
    assert_eq!(a.ab.len(), 2 * 32 * 32);
    assert_eq!(a, ds.sample(1, 0).unwrap(), "same (seed, epoch, index), same crop");
    assert_ne!(a, ds.sample(1, 1).unwrap(), "another epoch, another crop");
    assert!(a.l.iter().all(|&l| (0.0..=100.0).contains(&l)));
    // burn's Dataset view follows the epoch set on it.
    ds.set_epoch(1);
    assert_eq!(ds.get(1).unwrap(), ds.sample(1, 1).unwrap());
}

#[test]
fn an_unaugmented_full_crop_is_the_resized_photo() {
    // scale 1, no flip, no rotation: the crop is the centred square of the shorter side.
    let img = image::RgbImage::from_fn(64, 32, |x, y| image::Rgb([(x * 4) as u8, (y * 8) as u8, 128]));
    let cfg = AugmentConfig {
        size: 32,
        min_scale: 1.0,
        max_scale: 1.0,
        hflip: false,
        max_rotation_deg: 0.0,
    };
    let lab = data::random_crop(&img, &cfg, &mut rand::rngs::StdRng::seed_from_u64(3));
    let rgb = lab.to_rgb8();
    // The horizontal position is random; find it from the red ramp and check the whole crop.
    let x0 = (rgb.get_pixel(0, 0).0[0] / 4) as u32;
    for (x, y, px) in rgb.enumerate_pixels() {
        assert_eq!(px.0, img.get_pixel(x + x0, y).0, "at ({x}, {y})");
    }
    // Flipping mirrors it.
    let flip = AugmentConfig { hflip: true, ..cfg };
    let mut seen_flip = false;
    for seed in 0..8 {
        let f = data::random_crop(&img, &flip, &mut rand::rngs::StdRng::seed_from_u64(seed)).to_rgb8();
        let (l, r) = (f.get_pixel(0, 5).0[0], f.get_pixel(31, 5).0[0]);
        seen_flip |= l > r;
    }
    assert!(seen_flip, "some of 8 seeds mirror the crop");
}

#[test]
fn rotated_crops_never_leave_the_photo() {
    // A photo with a pure-black 1-pixel frame: any crop that left the interior would pick black up.
    let img = image::RgbImage::from_fn(80, 60, |x, y| {
        if x == 0 || y == 0 || x == 79 || y == 59 {
            image::Rgb([0, 0, 0])
        } else {
            image::Rgb([200, 180, 40])
        }
    });
    let cfg = AugmentConfig {
        size: 16,
        min_scale: 0.9,
        max_scale: 1.0,
        hflip: true,
        max_rotation_deg: 30.0,
    };
    for seed in 0..20 {
        let lab = data::random_crop(&img, &cfg, &mut rand::rngs::StdRng::seed_from_u64(seed));
        assert!(
            lab.l().iter().all(|&l| l > 50.0),
            "seed {seed}: the crop reached the border"
        );
    }
}

#[test]
fn batches_have_the_documented_shapes_and_values() {
    let ds = PhotoDataset::open(&common::fixtures().join("photos"), tiny(), |_, _| {}).unwrap();
    let loader = Loader::new(&ds, 3);
    assert_eq!(loader.batches_per_epoch(), 1);
    let device = Device::flex();
    let batch = loader.batch(5, &device).unwrap();
    assert_eq!(batch.l.dims(), [3, 1, 32, 32]);
    assert_eq!(batch.ab.dims(), [3, 2, 32, 32]);
    let items = loader.items(5).unwrap();
    let l: Vec<f32> = batch.l.into_data().try_to_vec().unwrap();
    assert_eq!(&l[..32 * 32], &items[0].l[..]);
    assert_eq!(loader.items(5).unwrap(), items, "step 5 is always the same batch");
    let order = loader.order(5);
    let mut sorted = order.clone();
    sorted.sort();
    // The folder's grayscale photo (photos/gray) is left out: it would teach gray.
    assert_eq!(sorted, vec![0, 1, 2]);
    assert!(
        ds.paths().iter().all(|p| !p.to_string_lossy().contains("gray")),
        "{:?}",
        ds.paths()
    );
    // The batcher also plugs into burn's own data loader.
    let dl = burn::data::dataloader::DataLoaderBuilder::new(ColorBatcher)
        .batch_size(2)
        .build(ds);
    let n: usize = dl.iter().map(|b| b.unwrap().l.dims()[0]).sum();
    assert_eq!(n, 3);
    let single = ColorBatcher.batch(vec![items[1].clone()], &device);
    assert_eq!(single.ab.dims(), [1, 2, 32, 32]);
}

/// A PNG whose header declares `w × h` RGB pixels, with almost no data: 69 bytes.
fn png_declaring(w: u32, h: u32) -> Vec<u8> {
    fn chunk(kind: &[u8], data: &[u8]) -> Vec<u8> {
        let mut c = (data.len() as u32).to_be_bytes().to_vec();
        c.extend_from_slice(kind);
        c.extend_from_slice(data);
        let mut crc_input = kind.to_vec();
        crc_input.extend_from_slice(data);
        c.extend_from_slice(&crc32(&crc_input).to_be_bytes());
        c
    }
    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
    let mut ihdr = w.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    // A stored (uncompressed) zlib stream of 10 zero bytes.
    let idat = [
        0x78, 0x01, 0x01, 0x0a, 0x00, 0xf5, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x00, 0x00, 0x01,
    ];
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend(chunk(b"IHDR", &ihdr));
    png.extend(chunk(b"IDAT", &idat));
    png.extend(chunk(b"IEND", &[]));
    png
}

#[test]
fn a_header_declaring_a_huge_image_is_refused_before_allocation() {
    let dir = std::env::temp_dir().join(format!("rechroma-huge-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("huge.png");
    std::fs::write(&path, png_declaring(60_000, 60_000)).unwrap();
    // Before the check this aborted the process: 10.8 GB were allocated for the pixels.
    let err = rechroma::data::load_image(&path).unwrap_err().to_string();
    assert!(
        err.contains("huge.png") && err.contains("60000×60000") && err.contains("200 MP"),
        "{err}"
    );
    // Under the cap the same header is decoded (and fails on its missing data, not on memory).
    std::fs::write(&path, png_declaring(64, 64)).unwrap();
    let err = rechroma::data::load_image(&path).unwrap_err().to_string();
    assert!(!err.contains("limit"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[cfg(unix)]
#[test]
fn a_pipe_or_device_named_like_a_photo_is_never_read() {
    let dir = std::env::temp_dir().join(format!("rechroma-fifo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(
        common::fixtures().join("photos/astronaut_64x64.webp"),
        dir.join("a.webp"),
    )
    .unwrap();
    let fifo = dir.join("pipe.jpg");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    // Before: the scan listed the FIFO and reading it blocked forever.
    assert_eq!(rechroma::data::scan(&dir).unwrap(), vec![dir.join("a.webp")]);
    // It is reported as what it is, with a link that leads nowhere, not as "a .jpg that is not a photo".
    std::os::unix::fs::symlink(dir.join("missing.png"), dir.join("broken.png")).unwrap();
    let summary = rechroma::data::scan_all(&dir).unwrap().skipped_summary().unwrap();
    assert_eq!(
        summary,
        "2 photo name(s) that are not files (a pipe, a device or a link that leads nowhere)"
    );
    let err = rechroma::data::load_image(&fifo).unwrap_err().to_string();
    assert!(err.contains("pipe.jpg") && err.contains("not a regular file"), "{err}");
    let err = rechroma::data::load_image(std::path::Path::new("/dev/zero"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("not a regular file"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_evaluation_crop_of_a_thin_strip_takes_its_middle_without_a_huge_resize() {
    // 1 × 20000, the left half black and the right half white along its length: `eval` once resized all
    // of it to 256 × 5 120 000 and aborted. Its middle (where black meets white) is what is kept.
    let strip = image::RgbImage::from_fn(20_000, 1, |x, _| {
        if x < 10_000 {
            image::Rgb([0, 0, 0])
        } else {
            image::Rgb([255, 255, 255])
        }
    });
    let crop = rechroma::data::center_crop(&strip, 64);
    assert_eq!(crop.dimensions(), (64, 64));
    // (Upscaled 64× from 16 source pixels, the edge is a ramp across the crop.)
    let (left, right) = (crop.get_pixel(2, 32)[0], crop.get_pixel(61, 32)[0]);
    assert!(i32::from(left) + 30 < i32::from(right), "{left} → {right}");
    // Ordinary photos crop as before: the shorter side resized, the centre kept.
    let wide = image::RgbImage::from_fn(300, 100, |x, _| image::Rgb([(x * 255 / 299) as u8; 3]));
    let crop = rechroma::data::center_crop(&wide, 50);
    assert_eq!(crop.dimensions(), (50, 50));
    let mid = crop.get_pixel(25, 25)[0];
    assert!((120..=135).contains(&mid), "{mid}");
}

#[test]
fn a_photo_too_wide_for_webp_is_refused_in_one_clear_line() {
    let dir = std::env::temp_dir().join(format!("rechroma-webp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("wide.webp");
    let img = image::DynamicImage::ImageRgb8(image::RgbImage::new(16_384, 1));
    let e = rechroma::fsutil::save_image_atomic(&img, &out).unwrap_err();
    let line = rechroma::error_chain(&e);
    assert_eq!(
        line,
        format!(
            "{}: WebP holds at most 16383 pixels a side, this photo is 16384 × 1: write PNG or TIFF",
            out.display()
        )
    );
    assert!(!out.exists());
    std::fs::remove_dir_all(&dir).unwrap();
}
