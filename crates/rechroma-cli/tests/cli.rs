//! The `rechroma` binary end to end on the fixtures.

use std::path::PathBuf;
use std::process::Command;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../rechroma/tests/fixtures")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rechroma-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn prior_writes_the_json_and_the_picture_and_reports_bad_files() {
    let dir = scratch("prior");
    // The sample photos plus one truncated file: it is reported, the rest is counted.
    let photos = dir.join("photos");
    std::fs::create_dir_all(&photos).unwrap();
    for f in [
        "chelsea_128x96.png",
        "coffee_128x128.jpg",
        "astronaut_64x64.webp",
        "gray/chelsea_gray.png",
    ] {
        std::fs::copy(fixtures().join("photos").join(f), photos.join(f.replace('/', "_"))).unwrap();
    }
    std::fs::copy(fixtures().join("bad/truncated.jpg"), photos.join("truncated.jpg")).unwrap();
    let out = dir.join("prior.json");
    let run = Command::new(env!("CARGO_BIN_EXE_rechroma"))
        .args(["prior", "--data"])
        .arg(&photos)
        .arg("--out")
        .arg(&out)
        .args(["--smoothing", "index1d", "--lambda", "0.4"])
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr),
    );
    assert!(run.status.success(), "{stderr}");
    assert!(
        stdout.contains("3 counted, 1 grayscale skipped, 1 unreadable"),
        "{stdout}"
    );
    assert!(stderr.contains("truncated.jpg"), "the bad file is named: {stderr}");
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(json["config"]["smoothing"], "index1d");
    assert_eq!(json["config"]["lambda"], 0.4);
    assert_eq!(json["weights"].as_array().unwrap().len(), 313);
    let picture = image::open(dir.join("prior.png")).unwrap();
    assert_eq!((picture.width(), picture.height()), (1320, 480));
    // No temporary files are left behind.
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name())
        .collect();
    assert_eq!(leftovers.len(), 3, "{leftovers:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn prior_of_a_missing_folder_is_a_one_line_error_and_writes_nothing() {
    let dir = scratch("missing");
    let out = dir.join("prior.json");
    let run = Command::new(env!("CARGO_BIN_EXE_rechroma"))
        .args(["prior", "--data", "/no/such/folder", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(!run.status.success());
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("/no/such/folder"), "{stderr}");
    assert!(!out.exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn every_command_has_help() {
    for args in [&["--help"][..], &["prior", "--help"]] {
        let run = Command::new(env!("CARGO_BIN_EXE_rechroma"))
            .args(args)
            .output()
            .unwrap();
        assert!(run.status.success());
        assert!(String::from_utf8_lossy(&run.stdout).contains("prior"));
    }
}
