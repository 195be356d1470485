//! `rotor-sandbox`: runs the stand-ins until interrupted, printing the address on stdout.

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
}

fn main() -> ExitCode {
    let args = Args::parse();
    let running = match rotor_sandbox::start(args.listen) {
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
