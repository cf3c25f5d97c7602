//! `rechroma`: colorize grayscale photos, and build what the colorizers need.
//!
//! This binary only parses arguments and dispatches; the work is in the `rechroma` library.

mod bench;
mod colorize;
mod device;
mod eval;
mod export;
mod model_args;
mod outputs;
mod parse;
mod prior;
mod progress;
mod serve;
mod suggest;
mod train;

use clap::{Parser, Subcommand};

/// Automatic colorization of grayscale photos (MLEU, ChromaGAN), offline, on CPU or GPU.
#[derive(Parser)]
#[command(name = "rechroma", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// More log output (repeat for more); RUST_LOG overrides it.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Refuse photos whose header declares more pixels than this (checked before decoding)
    /// [default: 200000000; 50000000 for serve].
    #[arg(long, global = true, value_parser = clap::value_parser!(u64).range(1..))]
    max_pixels: Option<u64>,
}

#[derive(Subcommand)]
enum Command {
    /// Colorize photos (files or folders) at their full resolution.
    ///
    /// The model predicts colour at a working size (about 256² pixels) from the photo's lightness; the
    /// colour is upsampled to the photo's size and recombined with its own full-resolution lightness.
    /// 16-bit and alpha are kept where the output format can store them. A bad file gets a one-line
    /// error and the batch goes on; the exit status says whether anything failed.
    Colorize(colorize::Args),
    /// List the colours the model suggests at a point of a photo, most likely first (to pick a colour
    /// hint from); hints already placed are taken into account.
    Suggest(suggest::Args),
    /// Score a model against the gray baseline on a folder of colour photos (PSNR, SSIM,
    /// colorfulness, AuC), with the fixed protocol: shorter side resized to 256, centre crop 256².
    Eval(eval::Args),
    /// Measure the colour prior of a photo folder over the 313 ab bins, with its rebalancing weights.
    ///
    /// Counts every pixel of every colour photo (grayscale photos are skipped, as Zhang et al. do),
    /// smooths the distribution, computes the class-rebalancing weights w ∝ ((1−λ)·P̃ + λ/Q)^(−α)
    /// normalised so Σ P̃·w = 1, and writes them as JSON (used by training and inference) plus a PNG
    /// picture of the prior and the weights on the ab plane.
    Prior(prior::Args),
    /// Train a colorizer on a photo folder: MLEU (regression or classification head) or ChromaGAN
    /// (generator and PatchGAN critic, WGAN-GP).
    ///
    /// Checkpoints (weights, optimiser states, step) are written to the run folder every
    /// --checkpoint-every steps; --resume continues a stopped run exactly where it stopped.
    Train(train::Args),
    /// Measure training-step throughput of the MLEU (and ChromaGAN) variants (ratios to a plain U-Net).
    Bench(bench::Args),
    /// Write a run's config and weights in half precision, as the embedded default model is stored.
    Export(export::Args),
    /// Serve a local web page (and HTTP API) for colorizing photos: drop photos, compare before and
    /// after, adjust, download full-resolution results.
    ///
    /// The page and API are described in the README ("rechroma serve"). Nothing uploaded is written to
    /// disk; memory is bounded by --jobs, --queue, --max-upload-mb and --max-pixels.
    Serve(serve::Args),
}

/// On SIGTERM or SIGINT, stops every write, removes the temporary files being written (nothing
/// half-written is left in output or run folders; a write about to finish is waited for, at most
/// `fsutil::STOP_WAIT`) and exits with 128 + the signal's number, as shells expect. A watcher thread
/// (signal-hook) does the work, outside the signal handler.
#[cfg(unix)]
fn stop_cleanly_on_signals() {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGTERM, SIGINT]) else {
        return; // without the watcher, a stopped run may leave temporary files, which the next run removes
    };
    std::thread::spawn(move || {
        if let Some(signal) = signals.forever().next() {
            rechroma::fsutil::stop_writing();
            eprintln!();
            std::process::exit(128 + signal);
        }
    });
}

/// Lets glibc's allocator keep freed memory of the network's size for reuse instead of handing it back
/// to the kernel: each forward pass allocates and frees megabytes of activations, and memory handed
/// back must be faulted in and zeroed again by the next one (5-15 % of a forward here, `perf`). Blocks
/// up to 40 MiB (the activations up to a working size of 512) come from the heap, which is trimmed
/// past 256 MiB free (a 512² forward frees ~150 MB); a 12 MP photo's planes (48 MB and more) are still
/// mapped and handed back at once. One arena: per-thread arenas each kept their own freed blocks
/// (+25 MB peak on a 12 MP photo here); the compute threads allocate little, so they hardly contend.
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; called first in main, before any thread starts.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 40 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 256 << 20);
    }
}

/// The ids of the flags given on the command line to the subcommand of `matches`.
fn given_flags(matches: &clap::ArgMatches) -> Vec<String> {
    let Some((_, sub)) = matches.subcommand() else {
        return Vec::new();
    };
    sub.ids()
        .filter(|id| sub.value_source(id.as_str()) == Some(clap::parser::ValueSource::CommandLine))
        .map(|id| id.as_str().to_string())
        .collect()
}

fn main() -> std::process::ExitCode {
    keep_freed_memory();
    let matches = <Cli as clap::CommandFactory>::command().get_matches();
    let cli = match <Cli as clap::FromArgMatches>::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let given = given_flags(&matches);
    // Die quietly when the reader of our output goes away (`rechroma eval … | head`), as command-line
    // tools do, instead of panicking on a failed print: Rust ignores SIGPIPE by default. Not `serve`:
    // there a client that resets its connection would kill the server (its answer written to a dead
    // socket), so it keeps SIGPIPE ignored and a failed write ends that connection only.
    #[cfg(unix)]
    if !matches!(cli.command, Command::Serve(_)) {
        // SAFETY: restoring the default disposition of SIGPIPE before any thread starts.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    #[cfg(unix)]
    stop_cleanly_on_signals();
    let level = match cli.verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level)),
        )
        .with_writer(std::io::stderr)
        // Colour only on a terminal, and never with NO_COLOR set (https://no-color.org).
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()) && std::env::var_os("NO_COLOR").is_none())
        .without_time()
        .with_target(false)
        .init();
    let max_pixels = match cli.command {
        Command::Serve(_) => rechroma::serve::MAX_PIXELS,
        _ => rechroma::data::DEFAULT_MAX_PIXELS,
    };
    rechroma::data::set_max_pixels(cli.max_pixels.unwrap_or(max_pixels));
    let result = match cli.command {
        Command::Colorize(args) => colorize::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Suggest(args) => suggest::run(args),
        Command::Export(args) => export::run(args),
        Command::Prior(args) => prior::run(args),
        Command::Train(args) => train::run(args, &given),
        Command::Bench(args) => bench::run(args),
        Command::Serve(args) => serve::run(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", outputs::one_line(&format!("{e:#}")));
            std::process::ExitCode::FAILURE
        }
    }
}
