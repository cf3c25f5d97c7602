//! `rechroma serve`: the local web page and HTTP API.

use anyhow::{Context, Result, bail};
use rechroma::serve::ServeConfig;
use std::net::SocketAddr;
use std::time::Duration;

#[derive(clap::Args)]
pub struct Args {
    /// Address to listen on. The default answers this computer only; another address (0.0.0.0, a LAN
    /// address) lets other machines use it, and is printed as a warning. Port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:8080")]
    bind: SocketAddr,
    #[command(flatten)]
    model: crate::model_args::ModelChoice,
    /// Photos colorized at once; each holds one photo and its result in memory.
    #[arg(short, long, default_value_t = ServeConfig::default().jobs as u32, value_parser = clap::value_parser!(u32).range(1..=64))]
    jobs: u32,
    /// Requests that may wait for a job; one more is answered 503 with Retry-After.
    #[arg(long, default_value_t = ServeConfig::default().queue as u32, value_parser = clap::value_parser!(u32).range(0..=1024))]
    queue: u32,
    /// The largest upload accepted, in MB (MiB); a larger one is answered 413.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=4096))]
    max_upload_mb: u32,
    /// Seconds one request may take (upload, wait and colorizing together).
    #[arg(long, default_value_t = 120, value_parser = clap::value_parser!(u64).range(1..=3600))]
    timeout: u64,
}

pub fn run(args: Args) -> Result<()> {
    let colorizer = args.model.colorizer()?;
    let config = ServeConfig {
        jobs: args.jobs as usize,
        queue: args.queue as usize,
        max_upload_bytes: args.max_upload_mb as usize * (1 << 20),
        timeout: Duration::from_secs(args.timeout),
    };
    if !args.bind.ip().is_loopback() {
        eprintln!(
            "warning: listening on {}, which other machines can reach: anyone who can reach it can colorize photos with this computer (no password)",
            args.bind
        );
    }
    let source = colorizer.source.clone();
    let architecture = colorizer.architecture().name();
    rechroma::serve::run(colorizer, config, args.bind, |addr| {
        // On stdout, one line: scripts (and the tests) read the address from it.
        println!("rechroma serve: http://{addr}/");
        eprintln!(
            "serving the {source} model ({architecture}); {} job(s), queue {}, uploads up to {} MB, {} MP; Ctrl-C stops",
            config.jobs,
            config.queue,
            args.max_upload_mb,
            rechroma::data::max_pixels() / 1_000_000
        );
        use std::io::Write;
        let _ = std::io::stdout().flush();
    })
    .with_context(|| format!("rechroma serve on {}", args.bind))?;
    bail!("the server stopped")
}
