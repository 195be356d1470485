//! `rotor-sandbox`: runs the stand-ins (or, with `--proxy-to`, a latency proxy) until interrupted,
//! printing the address on stdout.

use std::io::Write as _;
use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Parser;

/// Stand-ins for GitHub, Google Cloud Secret Manager and the tenant application, for trying and
/// testing rotor.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Address to listen on; port 0 picks a free one.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Instead of the stand-ins, run a latency proxy to this base URL (the benchmark's).
    #[arg(long, value_name = "URL")]
    proxy_to: Option<String>,
    /// The latency proxy's delay per request, in milliseconds.
    #[arg(long, default_value_t = 0, requires = "proxy_to")]
    delay_ms: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let started = match &args.proxy_to {
        Some(upstream) => rotor_sandbox::start_latency_proxy(
            args.listen,
            upstream,
            std::time::Duration::from_millis(args.delay_ms),
        ),
        None => rotor_sandbox::start(args.listen),
    };
    let running = match started {
        Ok(r) => r,
        Err(e) => {
            let _ = writeln!(
                std::io::stderr(),
                "rotor-sandbox: cannot listen on {}: {e}",
                args.listen
            );
            return ExitCode::from(1);
        }
    };
    let _ = writeln!(std::io::stdout(), "{}", running.url());
    let _ = std::io::stdout().flush();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(_) => return ExitCode::from(1),
    };
    runtime.block_on(async {
        let _ = tokio::signal::ctrl_c().await;
    });
    drop(running);
    ExitCode::SUCCESS
}
