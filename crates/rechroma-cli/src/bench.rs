//! `rechroma bench`: training-step throughput of the MLEU variants on synthetic batches, as a table of
//! ratios against a baseline measured in the same run (the machine may be shared and noisy).

use anyhow::Result;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Distribution, Tensor};
use rechroma::data::ColorBatch;
use rechroma::model::backbone::BackboneConfig;
use rechroma::model::chromagan::ChromaGanConfig;
use rechroma::model::critic::CriticConfig;
use rechroma::model::efficientnet::EfficientNetConfig;
use rechroma::model::mleu::{Head, MleuConfig};
use rechroma::quantize::Q;
use rechroma::run::TrainConfig;
use rechroma::train::trainee::{GanTrainee, MleuTrainee};
use std::time::Instant;

#[derive(clap::Args)]
pub struct Args {
    /// Side of the square crops.
    #[arg(long, default_value_t = 128)]
    crop: usize,
    #[arg(long, default_value_t = 8)]
    batch_size: usize,
    /// Timed steps per variant (after one untimed warm-up step); the median is reported.
    #[arg(long, default_value_t = 3)]
    steps: usize,
    /// Widths of the 5 encoder blocks.
    #[arg(long, value_delimiter = ',', default_value = "32,64,128,256,256")]
    widths: Vec<usize>,
    /// Also time ChromaGAN steps (generator + critic, Lite0 trunk) at the same crop size.
    #[arg(long)]
    chromagan: bool,
    /// Instead of training steps: time the network forward (batch 1, no decoding) of --model (default:
    /// the embedded one) at these square sizes, e.g. 256,512; prints the median milliseconds of --steps.
    #[arg(long, value_delimiter = ',', value_name = "SIDES")]
    forward: Vec<usize>,
    /// Instead of the variants table: time the shipped recipe's training step (the embedded model's
    /// network and training settings, joint head, frozen backbone, Adam, batch --batch-size × --crop²
    /// of random L and ab, no hint planes), and where it goes: the forward pass with the loss, the
    /// rest (backward, optimiser, moving average); with --data, also a batch of real photos.
    #[arg(long)]
    train_step: bool,
    /// With --train-step: a photo folder whose batch loading is timed too.
    #[arg(long, requires = "train_step")]
    data: Option<std::path::PathBuf>,
    /// The model whose forward --forward times (a run folder) [default: the embedded model].
    #[arg(long)]
    model: Option<std::path::PathBuf>,
}

/// `--forward`: the median forward time of the model's network at each size, batch 1, the same input
/// as `scripts/bench-anchors.sh` gives ONNX Runtime (L = 50 everywhere, no hints).
fn forward(args: &Args) -> Result<()> {
    let device = Device::flex();
    // What a colorizing process pays before its first photo: loading the model and compiling it.
    let t0 = Instant::now();
    let load = |device: &Device| match &args.model {
        Some(dir) => rechroma::run::Model::load(dir, device),
        None => rechroma::run::embedded_model(device),
    };
    if let rechroma::model::Network::Mleu(m) = load(&device)?.network {
        let loaded = t0.elapsed().as_secs_f64();
        drop(rechroma::engine::Net::compile(m));
        let compiled = t0.elapsed().as_secs_f64();
        println!(
            "loading the model: {:.0} ms, compiling it for the engine: {:.0} ms",
            1e3 * loaded,
            1e3 * (compiled - loaded)
        );
    }
    let model = match &args.model {
        Some(dir) => rechroma::run::Model::load(dir, &device)?,
        None => rechroma::run::embedded_model(&device)?,
    };
    let rechroma::model::Network::Mleu(m) = model.network else {
        anyhow::bail!("--forward times MLEU networks")
    };
    // What `colorize` runs: the inference engine (RECHROMA_BENCH_BURN=1: the burn network with its
    // BatchNorms folded; RECHROMA_BENCH_UNFOLDED=1: the burn network as stored; to compare).
    let unfolded = std::env::var_os("RECHROMA_BENCH_UNFOLDED").is_some();
    let burn = unfolded || std::env::var_os("RECHROMA_BENCH_BURN").is_some();
    let m = if unfolded { m } else { m.fold_batchnorms() };
    let engine = rechroma::engine::Net::new(&m);
    for &side in &args.forward {
        rechroma::model::mleu::check_size(side, side)?;
        let ms = if burn {
            let l = Tensor::<4>::full([1, 1, side, side], 50.0, &device);
            let hints = m.takes_hints().then(|| Tensor::<4>::zeros([1, 3, side, side], &device));
            1e3 * time(args.steps, || {
                let out = m.forward_hinted(l.clone(), hints.clone());
                // Wait for the result: the backend may run lazily.
                let _ = out.ab.map(|t| t.into_data());
                let _ = out.logits.map(|t| t.into_data());
            })
        } else {
            let l = vec![50.0; side * side];
            1e3 * time(args.steps, || {
                let _ = engine.forward(&l, (side, side), None);
            })
        };
        let what = if burn { "burn network" } else { "engine" };
        println!(
            "rechroma forward {side}x{side}: {ms:.1} ms (median of {}, {what})",
            args.steps
        );
    }
    // The limit: the network's operations at the machine's own rate of large matrix products (the
    // gemm crate's kernels, which the engine uses, on all of rayon's threads).
    let n = 2048;
    let (a, mut c) = (vec![0.5f32; n * n], vec![0f32; n * n]);
    let threads = rayon::current_num_threads();
    let secs = time(5, || {
        // SAFETY: a and c hold n × n values, row-major.
        unsafe {
            gemm::gemm(
                n,
                n,
                n,
                c.as_mut_ptr(),
                1,
                n as isize,
                false,
                a.as_ptr(),
                1,
                n as isize,
                a.as_ptr(),
                1,
                n as isize,
                0.0,
                1.0,
                false,
                false,
                false,
                gemm::Parallelism::Rayon(threads),
            )
        }
    });
    let rate = 2.0 * (n as f64).powi(3) / secs;
    println!(
        "fp32 GEMM rate (gemm crate, {threads} threads): {:.0} GFLOP/s",
        rate / 1e9
    );
    for &side in &args.forward {
        let flops = engine.flops((side, side));
        println!(
            "limit at {side}x{side}: {:.1} GFLOP / that rate = {:.1} ms",
            flops / 1e9,
            1e3 * flops / rate
        );
    }
    Ok(())
}

/// Median seconds of `steps` timed calls of `step` after one untimed warm-up.
fn time(steps: usize, mut step: impl FnMut()) -> f64 {
    let mut times = Vec::new();
    for i in 0..=steps {
        let t0 = Instant::now();
        step();
        if i > 0 {
            times.push(t0.elapsed().as_secs_f64());
        }
    }
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

/// `--train-step`: the shipped recipe's step and its parts.
fn train_step(args: &Args) -> Result<()> {
    use rechroma::train::loss::{ClassLossContext, mleu_loss};
    let device = Device::flex().autodiff();
    let shipped = rechroma::run::embedded_model(&Device::flex())?.config;
    let rechroma::model::ModelConfig::Mleu(mc) = shipped.model else {
        anyhow::bail!("the embedded model is an MLEU")
    };
    // The whole U-Net trains (the shipped fine-tune trained only its hint weights; a full step is
    // what a new model costs), without hint planes, as the PyTorch twin's step.
    let mc = MleuConfig { hints: false, ..mc };
    let config = TrainConfig {
        hints_only: false,
        ..shipped.train
    };
    let (b, s) = (args.batch_size, args.crop);
    rechroma::model::mleu::check_size(s, s)?;
    let batch = ColorBatch {
        l: Tensor::random([b, 1, s, s], Distribution::Uniform(0.0, 100.0), &device),
        ab: Tensor::random([b, 2, s, s], Distribution::Uniform(-60.0, 60.0), &device),
        hints: None,
    };
    let weights = vec![1.0; Q];
    let mut trainee = MleuTrainee::new(&config, &mc, Some(weights.clone()), None, &device)?;
    let step = time(args.steps, || drop(trainee.step(&batch, config.lr)));
    // The same step taken apart (Adam, no moving average): each part's median over the steps.
    let mut model = mc.init(&device);
    let mut optim = burn::optim::AdamConfig::new()
        .with_beta_1(config.betas[0])
        .with_beta_2(config.betas[1])
        .init();
    let quantizer = rechroma::quantize::Quantizer::new(Default::default());
    let ctx = ClassLossContext {
        quantizer: &quantizer,
        weights: &weights,
    };
    // The frozen backbone's features from the engine, as the trainee takes them.
    let frozen = rechroma::engine::FrozenBackbone::new(&model);
    let mut parts: Vec<[f64; 3]> = Vec::new();
    for i in 0..=args.steps {
        let t0 = Instant::now();
        let loss = mleu_loss(&model, &batch, Some(&ctx), config.joint_class_weight, frozen.as_ref());
        let _: f32 = loss.clone().into_scalar();
        let t1 = Instant::now();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let t2 = Instant::now();
        model = optim.step(config.lr, model, grads);
        // Wait for the update: the backend may run lazily.
        let _ = model.out.weight.val().into_data();
        let t3 = Instant::now();
        if i > 0 {
            parts.push([t1 - t0, t2 - t1, t3 - t2].map(|d| d.as_secs_f64()));
        }
    }
    let median = |k: usize| {
        let mut v: Vec<f64> = parts.iter().map(|p| p[k]).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!("rechroma train step {b}x{s}: {step:.3} s (median of {})", args.steps);
    println!(
        "  taken apart: forward + loss {:.3} s, backward {:.3} s, Adam {:.3} s",
        median(0),
        median(1),
        median(2)
    );
    // The forward with burn computing the frozen backbone too (before the engine did), to compare.
    let burn_backbone = time(args.steps, || {
        let loss = mleu_loss(&model, &batch, Some(&ctx), config.joint_class_weight, None);
        let _: f32 = loss.into_scalar();
    });
    println!("  forward + loss with burn's frozen backbone: {burn_backbone:.3} s");
    if let Some(dir) = &args.data {
        let dataset = rechroma::data::PhotoDataset::open(dir, config.dataset.clone(), |_, _| {})?;
        let loader = rechroma::data::Loader::new(&dataset, b);
        let mut at = 0;
        let data = time(args.steps, || {
            at += 1;
            drop(loader.batch(at, &device).expect("a batch"));
        });
        println!("  a batch of photos from {}: {data:.3} s", dir.display());
    }
    Ok(())
}

pub fn run(args: Args) -> Result<()> {
    if !args.forward.is_empty() {
        return forward(&args);
    }
    if args.train_step {
        return train_step(&args);
    }
    let Ok(widths) = <[usize; 5]>::try_from(args.widths.clone()) else {
        anyhow::bail!("--widths needs 5 numbers")
    };
    rechroma::model::mleu::check_size(args.crop, args.crop)?;
    let device = Device::flex().autodiff();
    let (b, s) = (args.batch_size, args.crop);
    let batch = ColorBatch {
        l: Tensor::random([b, 1, s, s], Distribution::Uniform(0.0, 100.0), &device),
        ab: Tensor::random([b, 2, s, s], Distribution::Uniform(-60.0, 60.0), &device),
        hints: None,
    };
    let lite0 = Some(BackboneConfig::EfficientNet(EfficientNetConfig::lite0()));
    let mleu = |head, backbone: &Option<BackboneConfig>, class_stride| MleuConfig {
        widths,
        head,
        backbone: backbone.clone(),
        finetune_backbone: false,
        class_stride,
        hints: false,
        hint_scale: rechroma::model::mleu::DEFAULT_HINT_SCALE,
    };
    // (name, network, data-parallel replicas); the first row is the baseline of the ratio column.
    let variants = [
        ("U-Net, regression (baseline)", mleu(Head::Regression, &None, 1), 1),
        ("MLEU-Lite0, regression", mleu(Head::Regression, &lite0, 1), 1),
        ("MLEU-Lite0, classification", mleu(Head::Classification, &lite0, 1), 1),
        (
            "MLEU-Lite0, regression, 2 replicas",
            mleu(Head::Regression, &lite0, 1),
            2,
        ),
        (
            "MLEU-Lite0, classification, 2 replicas",
            mleu(Head::Classification, &lite0, 1),
            2,
        ),
        (
            "MLEU-Lite0, classification /4",
            mleu(Head::Classification, &lite0, 4),
            1,
        ),
        (
            "MLEU-Lite0, classification /4, 2 replicas",
            mleu(Head::Classification, &lite0, 4),
            2,
        ),
        ("MLEU-Lite0, joint, classes /4", mleu(Head::Joint, &lite0, 4), 1),
        (
            "MLEU-Lite0, joint, classes /4, 2 replicas",
            mleu(Head::Joint, &lite0, 4),
            2,
        ),
    ];
    println!(
        "training step, batch {b} × {s}², widths {widths:?}, median of {} steps, flex CPU backend",
        args.steps
    );
    println!("{:<44} {:>8} {:>8} {:>10}", "variant", "s/step", "img/s", "× baseline");
    let mut baseline = None;
    let mut row = |name: &str, t: f64| {
        let base = *baseline.get_or_insert(t);
        println!("{name:<44} {t:>8.3} {:>8.2} {:>10.2}", b as f64 / t, t / base);
    };
    for (name, cfg, replicas) in variants {
        // The training step `rechroma train` takes (Adam, the paper's optimiser), with uniform class weights.
        let config = TrainConfig {
            replicas,
            ..TrainConfig::mleu()
        };
        let mut t = MleuTrainee::new(&config, &cfg, Some(vec![1.0; Q]), None, &device)?;
        row(name, time(args.steps, || drop(t.step(&batch, 1e-4))));
    }
    if args.chromagan {
        let lite0 = BackboneConfig::EfficientNet(EfficientNetConfig::lite0());
        let paper = ChromaGanConfig {
            size: s,
            ..ChromaGanConfig::paper(lite0)
        };
        let small = ChromaGanConfig {
            width: 256,
            global_fc: [512, 256],
            class_fc: [1024, 1024],
            ..paper.clone()
        };
        for (name, gc) in [
            ("ChromaGAN-Lite0, paper sizes", paper),
            ("ChromaGAN-Lite0, small heads", small),
        ] {
            let critic = CriticConfig::default();
            let config = TrainConfig::chromagan();
            let teacher = EfficientNetConfig::lite0().init(&device);
            let mut t = GanTrainee::new(&config, &gc, &critic, config.gan, teacher, None, &device)?;
            row(name, time(args.steps, || drop(t.step(&batch, 2e-5))));
        }
    }
    Ok(())
}
