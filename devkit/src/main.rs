//! `erp-dev`: the demo, the Ponto sandbox, the benchmark and the sandbox's consent filler, for
//! development. The ERP itself is `erp`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use host_harness::cli::render::clean;
use host_harness::erp::errors::ErpError;

#[derive(Parser, Debug)]
#[command(
    name = "erp-dev",
    version,
    about = "Development tools for the ERP: the demo, the Ponto sandbox, the benchmark, the sandbox's consent filler"
)]
struct Cli {
    /// The ERP database of the demo (default: a fresh temporary file).
    #[arg(long, global = true, env = "ERP_DB")]
    db: Option<PathBuf>,
    /// ERP settings (TOML), as for `erp --config`.
    #[arg(long, global = true, env = "ERP_CONFIG")]
    config: Option<PathBuf>,
    /// Print machine-readable JSON (bench).
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Everything end to end against an embedded Ponto sandbox, in a fresh database.
    Demo {
        /// Booked transactions on the demo's main account.
        #[arg(long, default_value_t = 120)]
        transactions: u64,
    },
    /// Serve the Ponto sandbox on 127.0.0.1 until killed.
    Sandbox {
        #[arg(long, default_value_t = 0)]
        port: u16,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Booked transactions on the first account.
        #[arg(long)]
        transactions: Option<u64>,
    },
    /// Fill a sandbox consent page (ticking every account) and print the callback URL, for
    /// `erp connect finish --callback-url`.
    Consent { authorization_url: String },
    /// Measure sync speed, wasm overhead, start-up and memory (build with --release).
    Bench(erp_devkit::bench::BenchArgs),
}

fn main() {
    let cli = Cli::parse();
    host_harness::cli::init_tracing();
    let code = match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("erp-dev: {}", clean(&e.to_string()));
            // The ERP's own errors keep their exit codes (2 usage, 3 locked); the tool's are 1.
            e.downcast_ref::<ErpError>().map_or(1, ErpError::exit_code)
        }
    };
    std::process::exit(code);
}

fn run(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        Command::Demo { transactions } => {
            let settings = erp_devkit::settings(cli.config.as_deref())?;
            erp_devkit::demo::run(settings, cli.db.as_deref(), transactions)
        }
        Command::Sandbox {
            port,
            seed,
            transactions,
        } => {
            let mut cfg = ponto_sandbox::SandboxConfig {
                seed,
                ..Default::default()
            };
            if let Some(t) = transactions {
                cfg.transactions = t;
            }
            ponto_sandbox::serve_forever(cfg, port)
                .map_err(|e| anyhow::anyhow!(format!("the sandbox stopped: {e:#}")))?;
            Ok(0)
        }
        Command::Consent { authorization_url } => {
            let callback = ponto_sandbox::consent::auto_consent(&authorization_url)
                .map_err(|e| ErpError::Usage(format!("automatic consent failed: {e}")))?;
            println!("{callback}");
            Ok(0)
        }
        Command::Bench(args) => erp_devkit::bench::run(args, cli.config.as_deref(), cli.json),
    }
}
