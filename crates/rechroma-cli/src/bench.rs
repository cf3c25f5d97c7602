//! `rechroma bench`: training-step throughput of the MLEU variants on synthetic batches, as a table of
//! ratios against a baseline measured in the same run (the machine may be shared and noisy).

use anyhow::Result;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Distribution, Tensor};
use rechroma::data::ColorBatch;
use rechroma::model::backbone::BackboneConfig;
use rechroma::model::efficientnet::EfficientNetConfig;
use rechroma::model::mleu::{Head, MleuConfig};
use rechroma::quantize::{Q, Quantizer};
use rechroma::train::{ClassLossContext, mleu_loss};
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
}

pub fn run(args: Args) -> Result<()> {
    let Ok(widths) = <[usize; 5]>::try_from(args.widths.clone()) else {
        anyhow::bail!("--widths needs 5 numbers")
    };
    rechroma::model::mleu::check_size(args.crop, args.crop)?;
    let device = Device::flex().autodiff();
    let (b, s) = (args.batch_size, args.crop);
    let batch = ColorBatch {
        l: Tensor::random([b, 1, s, s], Distribution::Uniform(0.0, 100.0), &device),
        ab: Tensor::random([b, 2, s, s], Distribution::Uniform(-60.0, 60.0), &device),
    };
    let quantizer = Quantizer::default();
    let weights = vec![1.0f32; Q];
    let ctx = ClassLossContext {
        quantizer: &quantizer,
        weights: &weights,
    };
    let lite0 = Some(BackboneConfig::EfficientNet(EfficientNetConfig::lite0()));
    let variants = [
        (
            "U-Net, regression (baseline)",
            MleuConfig {
                widths,
                head: Head::Regression,
                backbone: None,
                finetune_backbone: false,
            },
        ),
        (
            "MLEU-Lite0, regression",
            MleuConfig {
                widths,
                head: Head::Regression,
                backbone: lite0.clone(),
                finetune_backbone: false,
            },
        ),
        (
            "MLEU-Lite0, classification",
            MleuConfig {
                widths,
                head: Head::Classification,
                backbone: lite0,
                finetune_backbone: false,
            },
        ),
    ];
    println!(
        "training step, batch {b} × {s}², widths {widths:?}, median of {} steps, flex CPU backend",
        args.steps
    );
    println!("{:<30} {:>10} {:>8} {:>10}", "variant", "s/step", "img/s", "× baseline");
    let mut baseline = None;
    for (name, cfg) in variants {
        let mut model = cfg.init(&device);
        let mut optim = AdamConfig::new().init();
        let mut times = Vec::new();
        for i in 0..=args.steps {
            let t0 = Instant::now();
            let loss = mleu_loss(&model, &batch, Some(&ctx));
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(1e-4, model, grads);
            if i > 0 {
                times.push(t0.elapsed().as_secs_f64());
            }
        }
        times.sort_by(f64::total_cmp);
        let t = times[times.len() / 2];
        let base = *baseline.get_or_insert(t);
        println!("{name:<30} {t:>10.3} {:>8.2} {:>10.2}", b as f64 / t, t / base);
    }
    Ok(())
}
