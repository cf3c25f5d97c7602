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
    assert!(stderr.contains("no end-of-image marker"), "with its cause: {stderr}");
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

/// The embedded model's weights are in the binary once: as a `const`, each crate that named them
/// carried its own 22 MB copy (74 MB binary, and the copy the CLI hands back to the kernel after
/// loading was not the one loaded).
#[test]
fn the_binary_carries_the_embedded_weights_once() {
    let binary = std::fs::read(env!("CARGO_BIN_EXE_rechroma")).unwrap();
    let weights = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../rechroma/models/default/model.safetensors"),
    )
    .unwrap();
    let needle = &weights[weights.len() / 2..][..64];
    let copies = binary.windows(needle.len()).filter(|w| w == &needle).count();
    assert_eq!(copies, 1, "copies of the embedded weights in the binary");
}

#[test]
fn every_command_has_help() {
    for args in [
        &["--help"][..],
        &["prior", "--help"],
        &["train", "--help"],
        &["bench", "--help"],
        &["colorize", "--help"],
        &["eval", "--help"],
        &["export", "--help"],
    ] {
        let run = Command::new(env!("CARGO_BIN_EXE_rechroma"))
            .args(args)
            .output()
            .unwrap();
        assert!(run.status.success());
        let out = String::from_utf8_lossy(&run.stdout);
        assert!(out.contains("Usage: rechroma"), "{out}");
    }
}

/// `rechroma train` of a tiny plain regression U-Net on the fixture photos into `out` (64² crops, batch 2,
/// a checkpoint every 2 steps); further flags are appended by the caller.
fn tiny_train(out: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rechroma"));
    cmd.args([
        "train",
        "--arch",
        "mleu-reg",
        "--no-backbone",
        "--widths",
        "8,8,8,8,8",
        "--crop",
        "64",
    ])
    .args(["--batch-size", "2", "--checkpoint-every", "2", "--data"])
    .arg(fixtures().join("photos"))
    .arg("--out")
    .arg(out);
    cmd
}

fn train_run(out: &std::path::Path, steps: u32, resume: bool) -> Vec<(u64, f32)> {
    let mut cmd = tiny_train(out);
    cmd.args([
        "--validate-every",
        "4",
        "--val-crop",
        "64",
        "--steps",
        &steps.to_string(),
        "--val",
    ])
    .arg(fixtures().join("metrics"));
    if resume {
        cmd.arg("--resume");
    }
    let run = cmd.output().unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("checkpoint/state.json")).unwrap()).unwrap();
    state["losses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p[0].as_u64().unwrap(), p[1].as_f64().unwrap() as f32))
        .collect()
}

/// Every float tensor of a run folder's saved model (parameters and running statistics), in order.
fn saved_tensors(run: &std::path::Path) -> Vec<Vec<f32>> {
    use burn::module::{Module, ModuleVisitor, Param};
    use burn::tensor::{Device, Tensor};
    struct Collect(Vec<Vec<f32>>);
    impl ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.0
                .push(param.val().into_data().convert::<f32>().try_into_vec().unwrap());
        }
    }
    let model = rechroma::run::Model::load(run, &Device::flex()).unwrap();
    let mut c = Collect(Vec::new());
    match model.network {
        rechroma::model::Network::Mleu(m) => m.visit(&mut c),
        rechroma::model::Network::ChromaGan(g) => g.visit(&mut c),
    }
    c.0
}

/// Every saved tensor of run `b` is that of run `a` (to 1e-5).
fn assert_same_tensors(a: &std::path::Path, b: &std::path::Path) {
    let worst = tensor_distance(a, b, 0.0);
    assert!(
        worst <= 1e-5,
        "saved tensors of {} and {} differ by {worst}",
        a.display(),
        b.display()
    );
}

/// The largest difference between the saved tensors of two model folders, each difference less
/// `relative` × the magnitude (half precision rounds to 2⁻¹¹ relative).
fn tensor_distance(a: &std::path::Path, b: &std::path::Path, relative: f32) -> f32 {
    let (a, b) = (saved_tensors(a), saved_tensors(b));
    assert_eq!(a.len(), b.len());
    let mut worst = 0f32;
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.len(), y.len());
        for (p, q) in x.iter().zip(y) {
            worst = worst.max((p - q).abs() - relative * p.abs());
        }
    }
    worst
}

#[test]
fn a_stopped_training_run_resumes_where_it_stopped() {
    let dir = scratch("train");
    let straight = train_run(&dir.join("straight"), 8, false);
    let first = train_run(&dir.join("resumed"), 4, false);
    assert_eq!(first.len(), 4);
    let resumed = train_run(&dir.join("resumed"), 8, true);
    assert_eq!(
        resumed.iter().map(|l| l.0).collect::<Vec<_>>(),
        (1..=8).collect::<Vec<_>>(),
        "steps continue"
    );
    assert_eq!(&resumed[..4], &first[..], "the history is kept");
    // Same data (step-indexed), same weights and optimiser state: the curve continues as if never stopped.
    for (a, b) in straight.iter().zip(&resumed) {
        assert!(
            (a.1 - b.1).abs() <= 1e-4 * a.1.abs().max(1.0),
            "step {}: {} vs {}",
            a.0,
            a.1,
            b.1
        );
    }
    // Every saved tensor, BatchNorm running statistics included, is what the uninterrupted run saved.
    assert_same_tensors(&dir.join("straight"), &dir.join("resumed"));
    for f in [
        "config.json",
        "model.safetensors",
        "log.csv",
        "checkpoint/optim.bpk",
        "val.csv",
        "sheet.png",
        "curves.png",
    ] {
        assert!(dir.join("resumed").join(f).is_file(), "{f}");
    }
    // Validations at steps 4 and 8, the first kept across the resume; each scores model and gray baseline.
    let val = std::fs::read_to_string(dir.join("resumed/val.csv")).unwrap();
    let rows: Vec<&str> = val.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{val}");
    assert!(rows[0].starts_with("4,") && rows[1].starts_with("8,"), "{val}");
    // The sheet: 2 validation photos (64² crops) × (gray | model | truth), 4-pixel gutters.
    let sheet = image::open(dir.join("resumed/sheet.png")).unwrap();
    assert_eq!((sheet.width(), sheet.height()), (3 * 64 + 16, 2 * 64 + 12));
    // Each validation keeps the model it scored, in the exported form (half precision), as a model
    // folder: the checkpoint can be chosen afterwards. The one of step 8 is the run's final model, the
    // one of step 4 is the same in the resumed run as in the uninterrupted one, and differs from step 8.
    let kept = |run: &str, step: u32| dir.join(run).join(format!("validated/step-{step:06}"));
    for run in ["straight", "resumed"] {
        let names: Vec<String> = std::fs::read_dir(dir.join(run).join("validated"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
        for step in [4, 8] {
            assert!(kept(run, step).join("config.json").is_file());
            let bytes = std::fs::read(kept(run, step).join("model.safetensors")).unwrap();
            let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
            assert!(st.tensors().iter().all(|(_, t)| t.dtype() == safetensors::Dtype::F16));
        }
    }
    assert!(tensor_distance(&dir.join("resumed"), &kept("resumed", 8), 1e-3) <= 1e-6);
    assert!(tensor_distance(&kept("straight", 4), &kept("resumed", 4), 1e-3) <= 1e-5);
    assert!(tensor_distance(&kept("resumed", 4), &kept("resumed", 8), 1e-3) > 1e-3);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_resumed_run_saves_every_tensor_the_uninterrupted_run_saves() {
    // Without validation nothing else brings BatchNorm's running statistics up to date before a
    // checkpoint: the resume point must still hold the latest ones. With a moving average, the saved
    // model is the average, whose running statistics must keep following the trained ones after a
    // resume (they once froze: burn gives a loaded running state a fresh id, and the average matched
    // tensors by id).
    let dir = scratch("exact-resume");
    let go = |run: &str, steps: &str, resume: bool| {
        let mut cmd = tiny_train(&dir.join(run));
        cmd.args(["--steps", steps, "--ema", "0.5"]);
        if resume {
            cmd.arg("--resume");
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    };
    go("straight", "6", false);
    go("resumed", "4", false);
    go("resumed", "6", true);
    assert_same_tensors(&dir.join("straight"), &dir.join("resumed"));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Every `.tmp` file or folder under `dir`.
fn temp_files(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.to_string_lossy().ends_with(".tmp") {
            out.push(path.clone());
        }
        if path.is_dir() {
            out.extend(temp_files(&path));
        }
    }
    out
}

fn rechroma(args: &[&std::ffi::OsStr]) -> (bool, String, String) {
    let run = Command::new(env!("CARGO_BIN_EXE_rechroma"))
        .args(args)
        .output()
        .unwrap();
    (
        run.status.success(),
        String::from_utf8_lossy(&run.stdout).into_owned(),
        String::from_utf8_lossy(&run.stderr).into_owned(),
    )
}

macro_rules! args {
    ($($a:expr),* $(,)?) => { &[$(std::ffi::OsStr::new(&$a)),*] };
}

#[test]
fn colorizing_a_folder_with_a_corrupt_file_finishes_the_rest_and_reports_the_failure() {
    let dir = scratch("batch");
    let photos = dir.join("in");
    std::fs::create_dir_all(photos.join("sub")).unwrap();
    std::fs::copy(
        fixtures().join("photos/gray/chelsea_gray.png"),
        photos.join("chelsea.png"),
    )
    .unwrap();
    std::fs::copy(fixtures().join("types/gray16_48x32.png"), photos.join("sub/gray16.png")).unwrap();
    std::fs::copy(fixtures().join("types/rgba_48x32.png"), photos.join("sub/rgba.png")).unwrap();
    std::fs::copy(fixtures().join("bad/truncated.jpg"), photos.join("sub/truncated.jpg")).unwrap();
    let out = dir.join("out");
    let (ok, _, stderr) = rechroma(args![
        "colorize",
        photos,
        "--out-dir",
        out,
        "--size",
        "64",
        "--confidence"
    ]);
    assert!(!ok, "one file failed, so the exit status says so");
    assert!(stderr.contains("truncated.jpg"), "{stderr}");
    assert!(stderr.contains("colorized 3 of 4 photos"), "{stderr}");
    // The rest is written, relative paths kept, at full size, with 16 bits and alpha kept.
    let chelsea = image::open(out.join("chelsea.png")).unwrap();
    assert_eq!(
        (chelsea.width(), chelsea.height(), chelsea.color()),
        (128, 96, image::ColorType::Rgb8)
    );
    assert_eq!(
        image::open(out.join("sub/gray16.png")).unwrap().color(),
        image::ColorType::Rgb16
    );
    assert_eq!(
        image::open(out.join("sub/rgba.png")).unwrap().color(),
        image::ColorType::Rgba8
    );
    assert!(out.join("sub/rgba.confidence.png").is_file());
    assert!(!out.join("sub/truncated.jpg").exists(), "no output for the bad file");
    let names: Vec<String> = std::fs::read_dir(out.join("sub"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().all(|n| !n.ends_with(".tmp")),
        "no temporary files left: {names:?}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn colorize_never_overwrites_an_input_nor_an_existing_output_without_force() {
    let dir = scratch("force");
    let input = dir.join("photo.png");
    std::fs::copy(fixtures().join("photos/gray/chelsea_gray.png"), &input).unwrap();
    let before = std::fs::read(&input).unwrap();
    // Onto itself: refused even with --force.
    let (ok, _, stderr) = rechroma(args!["colorize", input, "-o", input, "--force", "--size", "64"]);
    assert!(!ok && stderr.contains("input"), "{stderr}");
    assert_eq!(std::fs::read(&input).unwrap(), before);
    // An existing output: refused without --force, replaced with it. The format follows the extension.
    let output = dir.join("colour.jpg");
    std::fs::write(&output, b"keep me").unwrap();
    let (ok, _, stderr) = rechroma(args!["colorize", input, "-o", output, "--size", "64"]);
    assert!(!ok && stderr.contains("already exists"), "{stderr}");
    assert_eq!(std::fs::read(&output).unwrap(), b"keep me");
    let (ok, _, stderr) = rechroma(args!["colorize", input, "-o", output, "--size", "64", "--force"]);
    assert!(ok, "{stderr}");
    let written = image::open(&output).unwrap();
    assert_eq!((written.width(), written.height()), (128, 96));
    assert_eq!(
        image::ImageFormat::from_path(&output).unwrap(),
        image::ImageFormat::Jpeg
    );
    // -o with several inputs is a usage error.
    let (ok, _, stderr) = rechroma(args!["colorize", input, input, "-o", output]);
    assert!(!ok && stderr.contains("-o"), "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_folder_batch_plans_every_output_first_and_never_recolorizes_its_own_results() {
    let dir = scratch("plan");
    let photos = dir.join("photos");
    std::fs::create_dir_all(&photos).unwrap();
    let gray = fixtures().join("photos/gray/chelsea_gray.png");
    // `a.png`'s confidence map would be `a.confidence.png`, which is also another photo's output.
    std::fs::copy(&gray, photos.join("a.png")).unwrap();
    std::fs::copy(&gray, photos.join("a.confidence.png")).unwrap();
    std::fs::write(photos.join("notes.txt"), b"not a photo").unwrap();
    std::fs::write(photos.join("anim.gif"), b"GIF89a").unwrap();
    let out = photos.join("col"); // the output folder inside the input folder
    let (ok, _, stderr) = rechroma(args![
        "colorize",
        photos,
        "--out-dir",
        out,
        "--confidence",
        "--size",
        "64"
    ]);
    assert!(!ok, "one job must be refused: {stderr}");
    assert!(stderr.contains("another input already writes"), "{stderr}");
    assert!(stderr.contains("skipped 2 file(s) that are not photos"), "{stderr}");
    assert!(stderr.contains("1 .gif") && stderr.contains("1 .txt"), "{stderr}");
    // Sorted, `a.confidence.png` comes first and claims its output; `a.png` would write its confidence
    // map over it, so `a.png` is the job refused, and the colorized photo stays a colorized photo.
    assert!(stderr.contains("a.png: another input"), "{stderr}");
    assert!(!out.join("a.png").exists());
    let written = image::open(out.join("a.confidence.png")).unwrap();
    let map = image::open(out.join("a.confidence.confidence.png")).unwrap();
    assert_eq!((written.width(), written.height()), (128, 96));
    let lab = rechroma::color::LabImage::from_rgb8(&written.to_rgb8());
    let lab_map = rechroma::color::LabImage::from_rgb8(&map.to_rgb8());
    assert_ne!(lab.l(), lab_map.l(), "the photo is not the heat map");
    // Run again: the results under photos/col are not inputs (no photos/col/col/…).
    let (_, _, stderr) = rechroma(args!["colorize", photos, "--out-dir", out, "--size", "64", "--force"]);
    assert!(
        stderr.contains("left out") && stderr.contains("inside the output folder"),
        "{stderr}"
    );
    assert!(!out.join("col").exists(), "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn eval_scores_the_model_and_the_gray_baseline_and_draws_the_sheet() {
    let dir = scratch("eval");
    let sheet = dir.join("sheet.png");
    let photos = fixtures().join("photos");
    let (ok, stdout, stderr) = rechroma(args![
        "eval", "--data", photos, "--crop", "64", "--json", "--sheet", sheet
    ]);
    assert!(ok, "{stderr}");
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    // The grayscale chelsea has no colour to score: left out and named (it scored 100 dB for gray before).
    assert_eq!(json["photos"], 3);
    assert_eq!(json["skipped_gray"], serde_json::json!(["gray/chelsea_gray.png"]));
    assert_eq!(json["photo_scores"].as_array().unwrap().len(), 3);
    assert!(json["gray_scores"]["psnr"].as_f64().unwrap() < 60.0, "{json}");
    assert_eq!(json["model"], "embedded");
    // The gray baseline's colorfulness is that of three grayed colour photos: ≈ 0.
    assert!(json["gray_scores"]["colorfulness"].as_f64().unwrap() < 1.0, "{json}");
    for key in ["psnr", "ssim", "colorfulness", "auc"] {
        assert!(json["model_scores"][key].as_f64().is_some(), "{key}: {json}");
    }
    let img = image::open(&sheet).unwrap();
    // A 260-pixel label column (file name, gain over gray) beside the 3 crops of each row, under a
    // 28-pixel band of column headings (gray | model | truth) with dark text over each column.
    assert_eq!((img.width(), img.height()), (260 + 3 * 64 + 16, 28 + 3 * 64 + 4 * 4));
    let rgb = img.to_rgb8();
    for c in 0..3u32 {
        let x0 = 260 + 4 + c * (64 + 4);
        let dark = (x0..x0 + 64)
            .flat_map(|x| (0..28).map(move |y| (x, y)))
            .filter(|&(x, y)| rgb.get_pixel(x, y)[0] < 128)
            .count();
        assert!(dark > 10, "column {c} has no heading");
    }
    let (ok, stdout, _) = rechroma(args!["eval", photos, "--crop", "64"]);
    assert!(ok && stdout.contains("gray") && stdout.contains("truth"), "{stdout}");
    assert!(stdout.contains("skipped 1 grayscale photo"), "{stdout}");
    // A folder of grayscale photos only: nothing to score, said in one line.
    let (ok, _, stderr) = rechroma(args!["eval", "--data", photos.join("gray"), "--crop", "64"]);
    assert!(!ok && stderr.contains("all 1 photos are grayscale"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_chromagan_run_trains_resumes_and_colorizes() {
    let dir = scratch("gan");
    let run = dir.join("run");
    let photos = fixtures().join("photos");
    let train = |steps: &str, resume: bool| {
        let mut a: Vec<std::ffi::OsString> = [
            "train",
            "--arch",
            "chromagan",
            "--random-init",
            "--crop",
            "64",
            "--gan-width",
            "8",
            "--gan-fc",
            "16,8",
            "--gan-class-fc",
            "16,16",
            "--batch-size",
            "2",
            "--checkpoint-every",
            "2",
            "--validate-every",
            "2",
            "--no-keep-validated",
            "--steps",
            steps,
        ]
        .iter()
        .map(Into::into)
        .collect();
        a.extend([
            "--data".into(),
            photos.clone().into(),
            "--val".into(),
            fixtures().join("metrics").into(),
        ]);
        a.extend(["--out".into(), run.clone().into()]);
        if resume {
            a.push("--resume".into());
        }
        let refs: Vec<&std::ffi::OsStr> = a.iter().map(|s| s.as_os_str()).collect();
        rechroma(&refs)
    };
    let (ok, _, stderr) = train("2", false);
    assert!(ok, "{stderr}");
    let (ok, _, stderr) = train("4", true);
    assert!(ok, "{stderr}");
    for f in [
        "checkpoint/model.bpk",
        "checkpoint/optim.bpk",
        "checkpoint/critic.bpk",
        "checkpoint/critic_optim.bpk",
    ] {
        assert!(
            run.join(f).is_file(),
            "{f}: both networks and both optimisers are checkpointed"
        );
    }
    let log = std::fs::read_to_string(run.join("log.csv")).unwrap();
    assert!(
        log.starts_with("step,loss,mse,kl,critic_fake,critic_loss,wasserstein,gp"),
        "{log}"
    );
    assert_eq!(log.lines().count(), 5, "4 steps, continued across the resume: {log}");
    assert!(
        run.join("val.csv").is_file() && !run.join("validated").exists(),
        "validated, but only the latest model kept (--no-keep-validated)"
    );
    // The run colorizes at full resolution (ChromaGAN works at its fixed 64² here) and evaluates.
    let out = dir.join("cat.png");
    let input = fixtures().join("photos/gray/chelsea_gray.png");
    let (ok, _, stderr) = rechroma(args!["colorize", input, "-o", out, "--model", run]);
    assert!(ok, "{stderr}");
    let img = image::open(&out).unwrap();
    assert_eq!((img.width(), img.height()), (128, 96));
    let (ok, stdout, stderr) = rechroma(args![
        "eval",
        "--data",
        photos,
        "--model",
        run.join("model.safetensors"),
        "--crop",
        "96",
        "--json"
    ]);
    assert!(ok, "{stderr}");
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["head"], serde_json::Value::Null, "ChromaGAN has no MLEU head");
    assert_eq!(json["architecture"], "ChromaGAN");
    // The 96² crops are scored, but the generator ran at its own fixed side, and no decoding applies.
    assert_eq!(
        (json["crop"].as_u64(), json["working_size"].as_u64()),
        (Some(96), Some(64))
    );
    assert_eq!(json["decoding"], serde_json::Value::Null);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_training_run_is_never_replaced_silently_and_resume_keeps_its_settings() {
    let dir = scratch("train-safety");
    let run = dir.join("run");
    let train = |extra: &[&str]| {
        let out = tiny_train(&run).args(extra).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr,
        )
    };
    let steps_done = || -> usize {
        let state: serde_json::Value =
            serde_json::from_slice(&std::fs::read(run.join("checkpoint/state.json")).unwrap()).unwrap();
        state["losses"].as_array().unwrap().len()
    };
    // --resume where nothing was trained: refused, nothing written.
    let (ok, _, stderr) = train(&["--resume"]);
    assert!(!ok && stderr.contains("nothing to resume"), "{stderr}");
    assert!(!run.join("config.json").exists());
    let (ok, _, stderr) = train(&["--steps", "2"]);
    assert!(ok, "{stderr}");
    assert_eq!(steps_done(), 2);
    // The same command again would have replaced the run: refused unless --force.
    let (ok, _, stderr) = train(&["--steps", "2"]);
    assert!(!ok && stderr.contains("already holds a training run"), "{stderr}");
    assert_eq!(steps_done(), 2, "the run is untouched");
    // --resume without --steps keeps the run's own 2 steps (it used to become 10000).
    let (ok, _, stderr) = train(&["--resume"]);
    assert!(ok && stderr.contains("with its saved settings"), "{stderr}");
    assert_eq!(steps_done(), 2);
    let saved: serde_json::Value = serde_json::from_slice(&std::fs::read(run.join("config.json")).unwrap()).unwrap();
    assert_eq!(saved["train"]["steps"], 2);
    // An explicit --steps extends it, and says so.
    let (ok, _, stderr) = train(&["--resume", "--steps", "4"]);
    assert!(ok && stderr.contains("steps 2 → 4"), "{stderr}");
    assert_eq!(steps_done(), 4);
    // --force starts over, and the models kept at the old run's validations go with it.
    std::fs::create_dir_all(run.join("validated/step-000099")).unwrap();
    let (ok, _, stderr) = train(&["--steps", "2", "--force"]);
    assert!(ok, "{stderr}");
    assert_eq!(steps_done(), 2);
    assert!(!run.join("validated").exists(), "an old run's kept models are removed");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn nonsense_values_are_refused_at_parse_time_with_the_allowed_range() {
    let photo = fixtures().join("photos/astronaut_64x64.webp");
    let out = scratch("nonsense").join("out.png");
    let cases: [(&[&str], &str); 8] = [
        (&["--temperature", "NaN"], "finite number above 0"),
        (&["--prior-correction=-5"], "0 to 1"),
        (&["--vividness", "2.5"], "0 to 2"),
        (&["--max-pixels", "0"], "0"),
        (&["--batch-size", "0"], "at least 1"),
        (&["--lr", "NaN"], "finite number above 0"),
        (&["--steps", "0"], "at least 1"),
        (&["--widths", "0,0,0,0,0"], "at least 1"),
    ];
    for (flags, want) in cases {
        let command = if ["--batch-size", "--lr", "--steps", "--widths"].contains(&flags[0]) {
            vec!["train".into(), "--out".into(), out.clone().into_os_string()]
        } else {
            vec![
                "colorize".into(),
                photo.clone().into_os_string(),
                "-o".into(),
                out.clone().into_os_string(),
            ]
        };
        let mut args: Vec<std::ffi::OsString> = command;
        args.extend(flags.iter().map(Into::into));
        let refs: Vec<&std::ffi::OsStr> = args.iter().map(|s| s.as_os_str()).collect();
        let (ok, _, stderr) = rechroma(&refs);
        assert!(!ok && stderr.contains(want), "{flags:?}: {stderr}");
        assert!(!out.exists(), "{flags:?} wrote an output");
    }
}

#[test]
fn prior_and_eval_never_replace_an_existing_file_without_force() {
    let dir = scratch("no-overwrite");
    std::fs::create_dir_all(&dir).unwrap();
    let photos = fixtures().join("photos");
    let sheet = dir.join("sheet.png");
    let prior = dir.join("prior.json");
    for path in [&sheet, &prior] {
        std::fs::write(path, b"precious").unwrap();
    }
    // Before: both were silently replaced.
    let (ok, _, stderr) = rechroma(args!["eval", "--data", photos, "--crop", "64", "--sheet", sheet]);
    assert!(
        !ok && stderr.contains("already exists") && stderr.contains("--force"),
        "{stderr}"
    );
    let (ok, _, stderr) = rechroma(args!["prior", "--data", photos, "-o", prior]);
    assert!(!ok && stderr.contains("already exists"), "{stderr}");
    for path in [&sheet, &prior] {
        assert_eq!(std::fs::read(path).unwrap(), b"precious", "{}", path.display());
    }
    // `--out` is kept as the old spelling of `-o/--output`.
    let (ok, _, stderr) = rechroma(args!["prior", "--data", photos, "--out", prior, "--force"]);
    assert!(ok, "{stderr}");
    assert_ne!(std::fs::read(&prior).unwrap(), b"precious");
    // Missing folders of an output file are created (it used to fail).
    let nested = dir.join("new/folder/prior.json");
    let (ok, _, stderr) = rechroma(args!["prior", "--data", photos, "-o", nested]);
    assert!(ok && nested.is_file(), "{stderr}");
    // export: --model names the run, --out-dir the destination; a model already there needs --force.
    let exported = dir.join("exported");
    let embedded = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../rechroma/models/default");
    let (ok, _, stderr) = rechroma(args!["export", "--model", embedded, "--out-dir", exported]);
    assert!(ok, "{stderr}");
    let (ok, _, stderr) = rechroma(args!["export", "--model", embedded, "--out-dir", exported]);
    assert!(!ok && stderr.contains("already exists"), "{stderr}");
    let (ok, _, stderr) = rechroma(args!["export", embedded, "--out", exported, "--force"]);
    assert!(ok, "the old spelling still works with --force: {stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[cfg(unix)]
#[test]
fn a_stopped_process_leaves_no_temporary_files_and_stale_ones_are_removed() {
    let dir = scratch("signals");
    let run = dir.join("run");
    // A training run that checkpoints every other step (so a write is often in flight), stopped by SIGTERM.
    let mut child = tiny_train(&run)
        .args(["--steps", "100000"])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !run.join("checkpoint/state.json").is_file() && std::time::Instant::now() < deadline {
        assert!(child.try_wait().unwrap().is_none(), "the run stopped by itself");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    // SAFETY: sending a signal to our own child process.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(128 + libc::SIGTERM), "{status:?}");
    assert_eq!(temp_files(&run), Vec::<PathBuf>::new());
    assert!(
        run.join("checkpoint/state.json").is_file(),
        "the last checkpoint is whole"
    );
    // A temporary file left by a killed process (SIGKILL cannot be caught) goes with the next write.
    let out = dir.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let stale = out.join(".photo.png.4194303.tmp"); // above Linux's largest pid: never running
    std::fs::write(&stale, b"half a photo").unwrap();
    let input = fixtures().join("photos/gray/chelsea_gray.png");
    let (ok, _, stderr) = rechroma(args!["colorize", input, "-o", out.join("photo.png"), "--size", "64"]);
    assert!(ok, "{stderr}");
    assert!(!stale.exists(), "the stale temporary file is removed");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[cfg(unix)]
#[test]
fn an_interrupted_batch_is_finished_with_skip_existing_and_a_read_only_destination_fails_first() {
    use std::os::unix::fs::PermissionsExt;
    let dir = scratch("skip");
    let photos = dir.join("photos");
    std::fs::create_dir_all(&photos).unwrap();
    for name in ["a.png", "b.png", "c.png"] {
        std::fs::copy(fixtures().join("photos/gray/chelsea_gray.png"), photos.join(name)).unwrap();
    }
    let out = dir.join("out");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("b.png"), b"done before the interruption").unwrap();
    let (ok, _, stderr) = rechroma(args![
        "colorize",
        photos,
        "--out-dir",
        out,
        "--size",
        "64",
        "--skip-existing"
    ]);
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains("colorized 2 of 2") && stderr.contains("1 already done"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read(out.join("b.png")).unwrap(),
        b"done before the interruption"
    );
    assert!(out.join("a.png").is_file() && out.join("c.png").is_file());
    // Everything there: nothing to do, exit 0.
    let (ok, _, stderr) = rechroma(args![
        "colorize",
        photos,
        "--out-dir",
        out,
        "--size",
        "64",
        "--skip-existing"
    ]);
    assert!(ok && stderr.contains("3 already done"), "{stderr}");
    // A destination that cannot be written fails before any photo is colorized, in one line.
    let locked = dir.join("locked");
    std::fs::create_dir_all(&locked).unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o555)).unwrap();
    let writable = std::fs::write(locked.join("probe"), b"").is_ok(); // root ignores permissions
    if !writable {
        let (ok, _, stderr) = rechroma(args!["colorize", photos, "--out-dir", locked, "--size", "64"]);
        assert!(!ok && stderr.contains("cannot write in the output folder"), "{stderr}");
        assert!(!stderr.contains("colorized"), "no work was done: {stderr}");
    }
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).unwrap();
    // As root the permissions do not stop a write; a destination under a plain file does, for anyone.
    let blocked = dir.join("a-file");
    std::fs::write(&blocked, b"").unwrap();
    let (ok, _, stderr) = rechroma(args![
        "colorize",
        photos,
        "--out-dir",
        blocked.join("sub"),
        "--size",
        "64"
    ]);
    assert!(!ok && stderr.contains("cannot create the output folder"), "{stderr}");
    assert!(!stderr.contains("colorized"), "no work was done: {stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn training_needs_no_weights_file_and_can_fine_tune_the_shipped_model() {
    use burn::tensor::Device;
    let dir = scratch("init");
    let photos = fixtures().join("photos");
    let device = Device::flex();
    let default = rechroma::run::embedded_model(&device).unwrap();
    let rechroma::model::Network::Mleu(default_net) = default.network else {
        panic!("the embedded model is an MLEU")
    };
    let stem = |m: &rechroma::model::mleu::Mleu| -> Vec<f32> {
        let w = m.backbone.as_ref().unwrap().conv_stem.conv.weight.val();
        w.into_data().convert::<f32>().try_into_vec().unwrap()
    };
    // No weights file in the working folder (the tests run in the crate's folder, which has no data/):
    // the backbone is the embedded model's, and it says so.
    let scratch_run = dir.join("scratch");
    let (ok, _, stderr) = rechroma(args![
        "train",
        "--arch",
        "mleu-reg",
        "--widths",
        "8,8,8,8,8",
        "--crop",
        "64",
        "--batch-size",
        "2",
        "--steps",
        "1",
        "--data",
        photos,
        "--out",
        scratch_run
    ]);
    assert!(ok, "{stderr}");
    assert!(stderr.contains("comes from the embedded model"), "{stderr}");
    let run = rechroma::run::Model::load(&scratch_run, &device).unwrap();
    assert_eq!(run.config.train.init, rechroma::run::Init::DefaultBackbone);
    assert_eq!(
        run.config.decode, default.config.decode,
        "a user's run decodes like the shipped model"
    );
    let rechroma::model::Network::Mleu(net) = run.network else {
        panic!()
    };
    assert_eq!(
        stem(&net),
        stem(&default_net),
        "the frozen backbone is the embedded model's"
    );
    // --init default: the shipped network and every weight of it, then trained further (here by a step
    // too small to move anything), with its own prior.
    let tuned = dir.join("tuned");
    let (ok, _, stderr) = rechroma(args![
        "train",
        "--init",
        "default",
        "--crop",
        "64",
        "--batch-size",
        "2",
        "--steps",
        "1",
        "--lr",
        "1e-12",
        "--data",
        photos,
        "--out",
        tuned
    ]);
    assert!(ok, "{stderr}");
    let run = rechroma::run::Model::load(&tuned, &device).unwrap();
    assert_eq!(run.config.model, default.config.model);
    assert_eq!(run.config.train.init, rechroma::run::Init::Default);
    assert!(
        tuned.join("prior.json").is_file(),
        "the embedded prior travels with the run"
    );
    let rechroma::model::Network::Mleu(net) = run.network else {
        panic!()
    };
    let (a, b) = (net.out.weight.val(), default_net.out.weight.val());
    let diff: f32 = (a - b).abs().max().into_scalar();
    assert!(diff < 1e-6, "the output conv starts from the shipped weights: {diff}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn outputs_keep_the_photos_metadata_and_quality_is_a_flag() {
    use image::{ImageDecoder, ImageEncoder, ImageReader};
    let dir = scratch("metadata");
    let decoder = |path: &std::path::Path| {
        ImageReader::open(path)
            .unwrap()
            .with_guessed_format()
            .unwrap()
            .into_decoder()
            .unwrap()
    };
    // EXIF orientation 6: applied to the pixels, so the output's tag says "normal"; the block is kept.
    let rotated = fixtures().join("types/exif_orientation6_48x32.jpg");
    let exif_in = decoder(&rotated)
        .exif_metadata()
        .unwrap()
        .expect("the fixture has EXIF");
    for ext in ["jpg", "png", "webp"] {
        let out = dir.join(format!("rotated.{ext}"));
        let (ok, _, stderr) = rechroma(args!["colorize", rotated, "-o", out, "--size", "64"]);
        assert!(ok, "{stderr}");
        let mut d = decoder(&out);
        assert_eq!(d.dimensions(), (32, 48), "{ext}");
        let exif = d
            .exif_metadata()
            .unwrap()
            .unwrap_or_else(|| panic!("{ext} keeps the EXIF block"));
        assert_eq!(exif.len(), exif_in.len(), "{ext}");
        assert_eq!(
            image::metadata::Orientation::from_exif_chunk(&exif),
            Some(image::metadata::Orientation::NoTransforms),
            "{ext}"
        );
    }
    // An ICC profile travels from input to output.
    let profiled = dir.join("profiled.png");
    let gray = image::open(fixtures().join("photos/gray/chelsea_gray.png"))
        .unwrap()
        .to_luma8();
    let mut bytes = Vec::new();
    let mut encoder = image::codecs::png::PngEncoder::new(&mut bytes);
    // An RGB profile (its header's colour space "RGB "; a gray one is dropped, see the gray-ICC test).
    let mut icc = b"an ICC profile's bytes, carried as they are".to_vec();
    icc.resize(132, 0);
    icc[16..20].copy_from_slice(b"RGB ");
    encoder.set_icc_profile(icc.clone()).unwrap();
    encoder
        .write_image(gray.as_raw(), gray.width(), gray.height(), image::ExtendedColorType::L8)
        .unwrap();
    std::fs::write(&profiled, bytes).unwrap();
    for ext in ["png", "jpg"] {
        let out = dir.join(format!("profiled-out.{ext}"));
        let (ok, _, stderr) = rechroma(args!["colorize", profiled, "-o", out, "--size", "64"]);
        assert!(ok, "{stderr}");
        assert_eq!(decoder(&out).icc_profile().unwrap(), Some(icc.clone()), "{ext}");
    }
    // --quality sets the JPEG quality; a colour photo gets a one-line notice that its colours are replaced.
    let colour = fixtures().join("photos/coffee_128x128.jpg");
    let size = |q: &str| {
        let out = dir.join(format!("q{q}.jpg"));
        let (ok, _, stderr) = rechroma(args!["colorize", colour, "-o", out, "--size", "64", "--quality", q]);
        assert!(ok && stderr.contains("a colour photo"), "{stderr}");
        std::fs::metadata(&out).unwrap().len()
    };
    assert!(size("30") < size("95"));
    let (ok, _, stderr) = rechroma(args!["colorize", colour, "-o", dir.join("x.jpg"), "--quality", "0"]);
    assert!(!ok && stderr.contains("1..=100"), "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[cfg(unix)]
#[test]
fn messages_name_a_link_loop_and_carry_no_colour_codes_off_a_terminal() {
    let dir = scratch("messages");
    std::fs::create_dir_all(&dir).unwrap();
    let (a, b) = (dir.join("a.jpg"), dir.join("b.jpg"));
    std::os::unix::fs::symlink(&b, &a).unwrap();
    std::os::unix::fs::symlink(&a, &b).unwrap();
    // -v turns on the log lines, which are where colour codes came from.
    let (ok, _, stderr) = rechroma(args!["-v", "colorize", a, "-o", dir.join("out.png")]);
    assert!(!ok && stderr.contains("a symbolic link that leads nowhere"), "{stderr}");
    assert!(
        !stderr.contains('\u{1b}'),
        "no ANSI escape codes when stderr is not a terminal: {stderr:?}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn colour_hints_are_checked_before_any_work_and_need_a_model_that_takes_them() {
    let dir = scratch("hints");
    let photo = fixtures().join("photos/chelsea_128x96.png");
    // A tiny model without hints, and the same trained with --hints.
    let plain = dir.join("plain");
    let run = tiny_train(&plain).args(["--steps", "1"]).output().unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let hinted = dir.join("hinted");
    let run = tiny_train(&hinted).args(["--steps", "2", "--hints"]).output().unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(hinted.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["model"]["mleu"]["hints"], true);
    assert_eq!(config["format_version"], 2);

    let out = dir.join("out.png");
    // Refusals, each one line, each before anything is written.
    let cases: Vec<(&std::path::Path, &str, &str)> = vec![
        (&plain, "10,10,#ff0000", "takes no colour hints"),
        (&hinted, "128,10,#ff0000", "outside the 128×96 photo"),
        (&hinted, "10,10,red", "colour \"red\" is not #RRGGBB"),
        (&hinted, "10,10", "not X,Y,#RRGGBB"),
    ];
    for (model, hint, says) in cases {
        let (ok, _, stderr) = rechroma(args!["colorize", photo, "-o", out, "--model", model, "--hint", hint]);
        assert!(!ok, "{hint}");
        let first = stderr.lines().find(|l| l.starts_with("error")).unwrap_or_default();
        assert!(first.contains(says), "{hint}: {stderr}");
        assert!(!out.exists(), "nothing written for {hint}");
    }
    let bad_file = dir.join("bad.json");
    std::fs::write(&bad_file, r##"[{"x": 10, "y": 10, "color": "#12"}]"##).unwrap();
    let (ok, _, stderr) = rechroma(args![
        "colorize", photo, "-o", out, "--model", hinted, "--hints", bad_file
    ]);
    assert!(
        !ok && stderr.contains("bad.json") && stderr.contains("hint 0"),
        "{stderr}"
    );
    // A folder's hints file names its photos; a name that matches none is refused.
    let map = dir.join("map.json");
    std::fs::write(&map, r##"{"nosuch.png": [{"x": 1, "y": 1, "color": "#ff0000"}]}"##).unwrap();
    let (ok, _, stderr) = rechroma(args![
        "colorize",
        fixtures().join("photos"),
        "--out-dir",
        dir.join("batch"),
        "--model",
        hinted,
        "--hints",
        map
    ]);
    assert!(
        !ok && stderr.contains("\"nosuch.png\" names none of the input photos"),
        "{stderr}"
    );
    // Good hints colorize (from the file and the flag together).
    let good = dir.join("good.json");
    std::fs::write(&good, r##"[{"x": 20, "y": 30, "color": "#3a5f2a", "radius": 4}]"##).unwrap();
    let (ok, _, stderr) = rechroma(args![
        "colorize",
        photo,
        "-o",
        out,
        "--model",
        hinted,
        "--hints",
        good,
        "--hint",
        "100,50,#b03030"
    ]);
    assert!(ok, "{stderr}");
    assert_eq!(image::image_dimensions(&out).unwrap(), (128, 96));
    // eval --hints needs a hint model too.
    let (ok, _, stderr) = rechroma(args![
        "eval",
        fixtures().join("metrics"),
        "--model",
        plain,
        "--hints",
        "5"
    ]);
    assert!(!ok && stderr.contains("takes no colour hints"), "{stderr}");
    let (ok, stdout, stderr) = rechroma(args![
        "eval",
        fixtures().join("metrics"),
        "--model",
        hinted,
        "--hints",
        "5",
        "--crop",
        "64"
    ]);
    assert!(ok && stdout.contains("5 true colours revealed"), "{stdout}{stderr}");
    // Suggestions need a colour distribution: the regression model has none; the default model lists
    // distinct colours with probabilities.
    let (ok, _, stderr) = rechroma(args!["suggest", photo, "--at", "10,10", "--model", plain]);
    assert!(!ok && stderr.contains("no colour distribution"), "{stderr}");
    let (ok, stdout, stderr) = rechroma(args!["suggest", photo, "--at", "64,40", "--json"]);
    assert!(ok, "{stderr}");
    let list: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 6);
    let p: Vec<f64> = list.iter().map(|s| s["probability"].as_f64().unwrap()).collect();
    assert!(
        p.windows(2).all(|w| w[0] >= w[1]) && p.iter().sum::<f64>() <= 1.0 + 1e-6,
        "{p:?}"
    );
    let (ok, _, stderr) = rechroma(args!["suggest", photo, "--at", "500,10"]);
    assert!(!ok && stderr.contains("outside the 128×96 photo"), "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_diverging_run_stops_keeps_its_last_finite_checkpoint_and_nan_weights_are_refused() {
    let dir = scratch("nan");
    let run = dir.join("run");
    // Two good steps (a checkpoint every 2), then --lr 1e30 from the resumed run diverges.
    let ok = tiny_train(&run).args(["--steps", "2"]).output().unwrap();
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    let before = std::fs::read(run.join("model.safetensors")).unwrap();
    let bad = dir.join("bad");
    let out = tiny_train(&bad)
        .args(["--steps", "6", "--lr", "1e30"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a NaN loss is an error: {stderr}");
    assert!(
        stderr.contains("the loss became") && stderr.contains("stopped"),
        "{stderr}"
    );
    if bad.join("model.safetensors").exists() {
        // Whatever was saved before the loss went bad loads and colorizes.
        let (ok, _, stderr) = rechroma(args![
            "colorize",
            fixtures().join("photos/chelsea_128x96.png"),
            "-o",
            dir.join("c.png"),
            "--model",
            bad
        ]);
        assert!(ok, "{stderr}");
    }
    // A weights file holding NaN (written by hand here) is refused at load, naming the tensor.
    let mut poisoned = before.clone();
    let n = u64::from_le_bytes(poisoned[..8].try_into().unwrap()) as usize;
    let at = 8 + n + 16;
    poisoned[at..at + 4].copy_from_slice(&f32::NAN.to_le_bytes());
    std::fs::write(run.join("model.safetensors"), &poisoned).unwrap();
    let (ok, _, stderr) = rechroma(args![
        "colorize",
        fixtures().join("photos/chelsea_128x96.png"),
        "-o",
        dir.join("d.png"),
        "--model",
        run
    ]);
    assert!(!ok && stderr.contains("NaN or infinite"), "{stderr}");
    assert!(!dir.join("d.png").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn small_mishaps_of_training_and_export_are_handled() {
    let dir = scratch("mishaps");
    // A failed start (no photos) leaves no "run" that blocks the retry.
    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let run = dir.join("run");
    let mut cmd = tiny_train(&run);
    let out = cmd.args(["--steps", "1", "--data"]).arg(&empty).output().unwrap();
    assert!(!out.status.success());
    let out = tiny_train(&run).args(["--steps", "1"]).output().unwrap();
    assert!(
        out.status.success(),
        "the retry trains: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A fine-tune has its own learning rate unless one is given.
    let tuned = dir.join("tuned");
    let (ok, _, stderr) = rechroma(args![
        "train",
        "--init",
        "default",
        "--crop",
        "64",
        "--batch-size",
        "2",
        "--steps",
        "1",
        "--data",
        fixtures().join("photos"),
        "--out",
        tuned
    ]);
    assert!(ok, "{stderr}");
    let config: serde_json::Value = serde_json::from_slice(&std::fs::read(tuned.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["train"]["lr"], 1e-4);
    // `export --model default` writes the embedded model.
    let exported = dir.join("exported");
    let (ok, _, stderr) = rechroma(args!["export", "--model", "default", "--out-dir", exported]);
    assert!(ok, "{stderr}");
    assert_eq!(
        std::fs::read(exported.join("model.safetensors")).unwrap().len(),
        rechroma::run::embedded::WEIGHTS.len()
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_gray_icc_profile_is_not_copied_into_the_colour_output_and_missing_maps_are_work() {
    let dir = scratch("icc");
    std::fs::create_dir_all(&dir).unwrap();
    // A grayscale JPEG carrying a gray ICC profile (a 132-byte profile whose header says "GRAY").
    let mut icc = vec![0u8; 132];
    icc[..4].copy_from_slice(&132u32.to_be_bytes());
    icc[12..16].copy_from_slice(b"mntr");
    icc[16..20].copy_from_slice(b"GRAY");
    icc[20..24].copy_from_slice(b"XYZ ");
    icc[36..40].copy_from_slice(b"acsp");
    let gray = image::GrayImage::from_fn(64, 48, |x, y| image::Luma([(x * 3 + y) as u8]));
    let input = dir.join("scan.jpg");
    let mut bytes = Vec::new();
    let mut encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 90);
    image::ImageEncoder::set_icc_profile(&mut encoder, icc).unwrap();
    image::ImageEncoder::write_image(encoder, gray.as_raw(), 64, 48, image::ExtendedColorType::L8).unwrap();
    std::fs::write(&input, &bytes).unwrap();
    let output = dir.join("out.jpg");
    let (ok, _, stderr) = rechroma(args!["colorize", input, "-o", output]);
    assert!(ok, "{stderr}");
    assert!(stderr.contains("not an RGB one"), "said so: {stderr}");
    let mut decoder =
        image::codecs::jpeg::JpegDecoder::new(std::io::Cursor::new(std::fs::read(&output).unwrap())).unwrap();
    assert_eq!(image::ImageDecoder::icc_profile(&mut decoder).unwrap(), None);
    // --skip-existing --confidence after a run without maps: the maps are still to do.
    let out_dir = dir.join("batch");
    let inputs = dir.join("in");
    std::fs::create_dir_all(&inputs).unwrap();
    std::fs::copy(&input, inputs.join("scan.jpg")).unwrap();
    let (ok, _, stderr) = rechroma(args!["colorize", inputs, "--out-dir", out_dir]);
    assert!(ok, "{stderr}");
    let before = std::fs::read(out_dir.join("scan.jpg")).unwrap();
    let (ok, _, stderr) = rechroma(args![
        "colorize",
        inputs,
        "--out-dir",
        out_dir,
        "--skip-existing",
        "--confidence"
    ]);
    assert!(ok, "{stderr}");
    assert_eq!(
        std::fs::read(out_dir.join("scan.jpg")).unwrap(),
        before,
        "the photo is left as it was"
    );
    assert!(
        out_dir.join("scan.confidence.png").exists(),
        "the missing map was made: {stderr}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn eval_checks_its_outputs_before_scoring_and_never_replaces_an_input() {
    let dir = scratch("eval-outputs");
    let photos = dir.join("photos");
    std::fs::create_dir_all(&photos).unwrap();
    std::fs::copy(fixtures().join("photos/coffee_128x128.jpg"), photos.join("coffee.jpg")).unwrap();
    // A sheet in a folder that does not exist: refused at once, nothing scored.
    let (ok, stdout, stderr) = rechroma(args![
        "eval",
        photos,
        "--crop",
        "64",
        "--sheet",
        dir.join("nosuch/s.png")
    ]);
    assert!(
        !ok && stderr.contains("does not exist") && stdout.is_empty(),
        "{stdout}{stderr}"
    );
    // --force never lets the sheet replace a photo it reads.
    let input = photos.join("coffee.jpg");
    let before = std::fs::read(&input).unwrap();
    let (ok, _, stderr) = rechroma(args!["eval", photos, "--crop", "64", "--sheet", input, "--force"]);
    assert!(!ok && stderr.contains("refusing to overwrite an input"), "{stderr}");
    assert_eq!(std::fs::read(&input).unwrap(), before);
    // A working size out of range is refused when parsed, once, before any photo.
    let (ok, _, stderr) = rechroma(args!["colorize", input, "-o", dir.join("x.png"), "--size", "4000"]);
    assert!(!ok && stderr.contains("32..=2048"), "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn training_refuses_a_folder_of_grayscale_photos_and_a_fine_tune_keeps_its_runs_prior() {
    let dir = scratch("gray-train");
    let gray = dir.join("gray");
    std::fs::create_dir_all(&gray).unwrap();
    std::fs::copy(fixtures().join("photos/gray/chelsea_gray.png"), gray.join("a.png")).unwrap();
    let (ok, _, stderr) = rechroma(args![
        "train",
        "--arch",
        "mleu-reg",
        "--no-backbone",
        "--widths",
        "8,8,8,8,8",
        "--crop",
        "64",
        "--batch-size",
        "2",
        "--steps",
        "1",
        "--data",
        gray,
        "--out",
        dir.join("run")
    ]);
    assert!(!ok && stderr.contains("all 1 photos are grayscale"), "{stderr}");
    // A joint run with its prior, then fine-tuned from its folder without --prior: it keeps that prior.
    let prior = dir.join("prior.json");
    let (ok, _, stderr) = rechroma(args!["prior", "--data", fixtures().join("photos"), "-o", prior]);
    assert!(ok, "{stderr}");
    let joint = dir.join("joint");
    let (ok, _, stderr) = rechroma(args![
        "train",
        "--arch",
        "mleu-joint",
        "--no-backbone",
        "--widths",
        "8,8,8,8,8",
        "--crop",
        "64",
        "--batch-size",
        "2",
        "--steps",
        "1",
        "--prior",
        prior,
        "--data",
        fixtures().join("photos"),
        "--out",
        joint
    ]);
    assert!(ok, "{stderr}");
    let tuned = dir.join("tuned");
    let (ok, _, stderr) = rechroma(args![
        "train",
        "--init",
        joint,
        "--crop",
        "64",
        "--batch-size",
        "2",
        "--steps",
        "1",
        "--data",
        fixtures().join("photos"),
        "--out",
        tuned
    ]);
    assert!(ok, "{stderr}");
    assert_eq!(
        std::fs::read(tuned.join("prior.json")).unwrap(),
        std::fs::read(joint.join("prior.json")).unwrap()
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_resume_applies_what_can_change_and_refuses_what_cannot() {
    let dir = scratch("resume-flags");
    let run = dir.join("run");
    let out = tiny_train(&run).args(["--steps", "4"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let resume = |extra: &[&str]| {
        let out = tiny_train(&run).arg("--resume").args(extra).output().unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    // Fewer steps than done: refused, naming the flag and the step.
    let (ok, stderr) = resume(&["--steps", "2"]);
    assert!(!ok && stderr.contains("--steps 2 is below the 4 steps"), "{stderr}");
    // Another seed (data order) or head: refused, naming the flag and what would differ.
    let (ok, stderr) = resume(&["--steps", "6", "--seed", "7"]);
    assert!(!ok && stderr.contains("--seed cannot change when resuming"), "{stderr}");
    assert!(stderr.contains("train.dataset.seed"), "{stderr}");
    let (ok, stderr) = resume(&["--steps", "6", "--class-stride", "4"]);
    assert!(
        !ok && stderr.contains("--class-stride") && stderr.contains("class_stride"),
        "{stderr}"
    );
    // The flags it was started with, repeated as they were (tiny_train's), are accepted.
    // A new learning rate and batch size: applied and said; the saved config records them.
    let out = Command::new(env!("CARGO_BIN_EXE_rechroma"))
        .args([
            "train",
            "--resume",
            "--steps",
            "6",
            "--lr",
            "0.002",
            "--batch-size",
            "3",
            "--out",
        ])
        .arg(&run)
        .output()
        .unwrap();
    let (ok, stderr) = (out.status.success(), String::from_utf8_lossy(&out.stderr));
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains("learning rate") && stderr.contains("→ 0.002") && stderr.contains("batch size 2 → 3"),
        "{stderr}"
    );
    let config: serde_json::Value = serde_json::from_slice(&std::fs::read(run.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["train"]["lr"], serde_json::json!(0.002));
    assert_eq!(config["train"]["batch_size"], serde_json::json!(3));
    assert_eq!(config["train"]["steps"], serde_json::json!(6));
    // The photo folder is stored resolved: the run resumes from another working folder.
    let data = config["train"]["data"].as_str().unwrap();
    assert!(std::path::Path::new(data).is_absolute(), "{data}");
    let elsewhere = Command::new(env!("CARGO_BIN_EXE_rechroma"))
        .current_dir(std::env::temp_dir())
        .args(["train", "--resume", "--steps", "8", "--out"])
        .arg(&run)
        .output()
        .unwrap();
    assert!(
        elsewhere.status.success(),
        "{}",
        String::from_utf8_lossy(&elsewhere.stderr)
    );
}

#[test]
fn a_rerun_over_existing_outputs_says_so_once_and_progress_is_printed_without_a_terminal() {
    let dir = scratch("rerun");
    let photos = dir.join("photos");
    std::fs::create_dir_all(&photos).unwrap();
    for name in ["a.webp", "b.webp"] {
        std::fs::copy(fixtures().join("photos/astronaut_64x64.webp"), photos.join(name)).unwrap();
    }
    let colorize = |extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_rechroma"))
            .arg("colorize")
            .arg(&photos)
            .arg("--out-dir")
            .arg(dir.join("out"))
            .args(["--size", "64"])
            .args(extra)
            .output()
            .unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (ok, stderr) = colorize(&[]);
    assert!(ok, "{stderr}");
    // stderr is a pipe here: the bar is hidden, so a plain progress line reports the batch.
    assert!(stderr.contains("colorizing: 2/2 photos"), "{stderr}");
    let (ok, stderr) = colorize(&[]);
    assert!(!ok);
    assert_eq!(stderr.matches("error:").count(), 1, "{stderr}");
    assert!(
        stderr.contains("2 of the outputs already exist")
            && stderr.contains("--skip-existing")
            && stderr.contains("--force"),
        "{stderr}"
    );
    // A flag that changes nothing is warned about: --quality without a JPEG output.
    let (ok, stderr) = colorize(&["--skip-existing", "--quality", "80"]);
    assert!(ok && stderr.contains("warning: --quality changes nothing"), "{stderr}");
    // The input folder as the output folder: refused up front.
    let out = Command::new(env!("CARGO_BIN_EXE_rechroma"))
        .arg("colorize")
        .arg(&photos)
        .arg("--out-dir")
        .arg(&photos)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("is this input folder itself"),
        "{stderr}"
    );
    // A temporary file a killed run left in the output folder is swept at the next start.
    let stale = dir.join("out/.a.webp.999999999.tmp");
    std::fs::write(&stale, b"half a photo").unwrap();
    let (ok, stderr) = colorize(&["--force"]);
    assert!(
        ok && !stale.exists() && stderr.contains("removed 1 temporary file"),
        "{stderr}"
    );
}

#[test]
fn a_fine_tune_is_validated_at_step_0_and_contradictory_flags_are_refused() {
    let dir = scratch("finetune-val");
    let base = dir.join("base");
    let out = tiny_train(&base).args(["--steps", "2"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // A fine-tune of it: validated before its first step (the baseline to beat), then as asked.
    let tuned = dir.join("tuned");
    let out = Command::new(env!("CARGO_BIN_EXE_rechroma"))
        .args(["train", "--init"])
        .arg(&base)
        .args([
            "--steps",
            "2",
            "--validate-every",
            "2",
            "--val-crop",
            "64",
            "--batch-size",
            "2",
            "--data",
        ])
        .arg(fixtures().join("photos"))
        .arg("--val")
        .arg(fixtures().join("metrics"))
        .arg("--out")
        .arg(&tuned)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let val = std::fs::read_to_string(tuned.join("val.csv")).unwrap();
    let steps: Vec<&str> = val.lines().skip(1).map(|l| l.split(',').next().unwrap()).collect();
    assert_eq!(steps, ["0", "2"], "{val}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("step 0: PSNR"), "{stdout}");
    // --init with --no-backbone: refused, saying why (it once asked for a prior file).
    let (ok, _, stderr) = rechroma(args![
        "train",
        "--init",
        "default",
        "--no-backbone",
        "--out",
        dir.join("x")
    ]);
    assert!(
        !ok && stderr.contains("--no-backbone") && stderr.contains("--init default"),
        "{stderr}"
    );
    // A crop far too large for memory: refused by the parser, not an allocation abort.
    let (ok, _, stderr) = rechroma(args!["train", "--crop", "4096", "--out", dir.join("y")]);
    assert!(!ok && stderr.contains("4096"), "{stderr}");
}

#[test]
fn earlier_outputs_inside_the_input_folder_are_not_colorized_again() {
    let dir = scratch("nest");
    let nest = dir.join("nest");
    std::fs::create_dir_all(&nest).unwrap();
    for name in ["a.webp", "b.webp"] {
        std::fs::copy(fixtures().join("photos/astronaut_64x64.webp"), nest.join(name)).unwrap();
    }
    let colorize = |out: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_rechroma"))
            .arg("colorize")
            .arg(&nest)
            .arg("--out-dir")
            .arg(nest.join(out))
            .args(["--size", "64"])
            .output()
            .unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (ok, stderr) = colorize("out");
    assert!(ok, "{stderr}");
    // A second run into another folder: nest/out/*.webp are rechroma's results, left out and said.
    let (ok, stderr) = colorize("out2");
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains("left out 2 photo(s) an earlier `rechroma colorize` wrote"),
        "{stderr}"
    );
    assert!(stderr.contains("colorized 2 of 2 photos"), "{stderr}");
    assert!(
        !nest.join("out2/out").exists(),
        "the earlier outputs were colorized again"
    );
    assert!(!stderr.contains("not photos"), "the list itself is no news: {stderr}");
}

#[test]
fn export_writes_an_onnx_graph_and_refuses_to_overwrite_it() {
    let dir = scratch("onnx");
    let out = dir.join("model.onnx");
    let (ok, stdout, stderr) = rechroma(args!["export", "--model", "default", "--format", "onnx", "-o", out]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("ONNX opset 17"), "{stdout}");
    let bytes = std::fs::read(&out).unwrap();
    assert!(
        bytes.len() > 10_000_000,
        "the weights are inside: {} bytes",
        bytes.len()
    );
    let (ok, _, stderr) = rechroma(args!["export", "--model", "default", "--format", "onnx", "-o", out]);
    assert!(!ok && stderr.contains("already exists"), "{stderr}");
    let (ok, _, stderr) = rechroma(args!["export", "--model", "default", "--format", "onnx"]);
    assert!(!ok && stderr.contains("-o"), "{stderr}");
}
