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
    /// The largest working size a request may ask for (time and memory grow with its square); larger
    /// is answered 422.
    #[arg(long, default_value_t = ServeConfig::default().max_size, value_parser = clap::value_parser!(u32).range(32..=2048))]
    max_size: u32,
    /// Connections open at once; one more is closed at once.
    #[arg(long, default_value_t = ServeConfig::default().max_connections as u32, value_parser = clap::value_parser!(u32).range(1..=65536))]
    max_connections: u32,
    /// Memory for photos kept decoded for interactive re-runs (hints, settings), in MB.
    #[arg(long, default_value_t = 512, value_parser = clap::value_parser!(u32).range(0..=65536))]
    cache_mb: u32,
    /// Another name this server may be reached by (the Host header), e.g. this machine's name on the
    /// LAN (repeatable); requests naming anything else are refused (DNS-rebinding defence).
    #[arg(long, value_name = "NAME")]
    allow_host: Vec<String>,
    /// With a --bind beyond loopback, serve without an access token (anyone who can reach the address
    /// can use it). By default such a server prints a URL with a token, and every API call needs it.
    #[arg(long)]
    no_token: bool,
}

pub fn run(args: Args) -> Result<()> {
    let colorizer = args.model.colorizer()?;
    let max_upload_bytes = args.max_upload_mb as usize * (1 << 20);
    let exposed = !args.bind.ip().is_loopback();
    let token = (exposed && !args.no_token).then(rechroma::serve::new_token);
    let config = ServeConfig {
        jobs: args.jobs as usize,
        queue: args.queue as usize,
        max_upload_bytes,
        upload_budget_bytes: ServeConfig::default().upload_budget_bytes.max(max_upload_bytes),
        timeout: Duration::from_secs(args.timeout),
        max_size: args.max_size,
        max_connections: args.max_connections as usize,
        cache_bytes: args.cache_mb as usize * (1 << 20),
        token: token.clone(),
        allowed_hosts: args.allow_host.clone(),
        ..ServeConfig::default()
    };
    if exposed {
        eprintln!(
            "warning: listening on {}, which other machines can reach: {}",
            args.bind,
            if token.is_some() {
                "only with the access token in the address below"
            } else {
                "anyone who can reach it can colorize photos with this computer (--no-token)"
            }
        );
    }
    let source = colorizer.source.clone();
    let config_line = config.clone();
    let architecture = colorizer.architecture().name();
    rechroma::serve::run(colorizer, config, args.bind, |addr| {
        // On stdout, one line: scripts (and the tests) read the address from it.
        match &token {
            Some(t) => println!("rechroma serve: http://{addr}/?token={t}"),
            None => println!("rechroma serve: http://{addr}/"),
        }
        eprintln!(
            "serving the {source} model ({architecture}); {} job(s), queue {}, uploads up to {} MB, {} MP; Ctrl-C stops",
            config_line.jobs,
            config_line.queue,
            args.max_upload_mb,
            rechroma::data::max_pixels() / 1_000_000
        );
        use std::io::Write;
        let _ = std::io::stdout().flush();
    })
    .with_context(|| format!("rechroma serve on {}", args.bind))?;
    bail!("the server stopped")
}
