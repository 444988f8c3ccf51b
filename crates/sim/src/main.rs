//! `custody-sim`: load a Custody server with simulated devices, or measure this machine's
//! ceiling with a do-nothing MDM server. Each run prints one line of JSON.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use custody_sim::ceiling::{self, CeilingConfig, CeilingCounters};
use custody_sim::{LoadConfig, LoadTarget, run_load};

#[derive(Parser)]
#[command(name = "custody-sim", about = "Simulated iPhones and iPads for Custody", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Enroll devices with a Custody server, then run idle connects; prints a JSON report.
    Load {
        /// The server's base URL, e.g. http://127.0.0.1:8080.
        #[arg(long, env = "CUSTODY_SIM_URL")]
        url: String,
        /// An API token allowed to download the agency's enrollment profile.
        #[arg(long, env = "CUSTODY_SIM_TOKEN")]
        token: String,
        /// The agency's code.
        #[arg(long)]
        agency: String,
        /// Fetch the CMS-signed enrollment profile.
        #[arg(long)]
        signed_profile: bool,
        /// Queue this many DeviceInformation commands per device through the API before the
        /// timed phase (the token needs the admin, infosec or euc role).
        #[arg(long, default_value_t = 0)]
        commands_per_device: usize,
        /// Queue one inventory of every device (five commands each) through the API before the
        /// timed phase (run with --iterations 1 to time one refresh).
        #[arg(long, conflicts_with = "commands_per_device")]
        inventory_refresh: bool,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Enroll devices, then run device sessions, API calls and console pages together (see
    /// `custody_sim::mixed`), as fast as the workers go or at --rate; prints a JSON report.
    Mixed {
        #[arg(long, env = "CUSTODY_SIM_URL")]
        url: String,
        /// An admin API token.
        #[arg(long, env = "CUSTODY_SIM_TOKEN")]
        token: String,
        #[arg(long)]
        agency: String,
        /// The console user signed in for the pages.
        #[arg(long)]
        email: String,
        /// Its password (read from CUSTODY_SIM_PASSWORD when not given).
        #[arg(long, env = "CUSTODY_SIM_PASSWORD")]
        password: String,
        #[arg(long, default_value_t = 64)]
        devices: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Operations at once at most (without --rate: the number of tasks).
        #[arg(long, default_value_t = 16)]
        workers: usize,
        /// Operations per second (open loop); without it, as fast as the workers go.
        #[arg(long)]
        rate: Option<f64>,
        #[arg(long, default_value_t = 30)]
        seconds: u64,
        #[arg(long, default_value_t = 10)]
        window_seconds: u64,
    },
    /// Serve the ceiling endpoints (PUT /checkin, PUT anything else) until interrupted.
    Ceiling {
        /// Where to listen; port 0 picks a free port (printed on start).
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: String,
        /// Answer every n-th Idle with a DeviceInformation command (0: never).
        #[arg(long, default_value_t = 0)]
        command_every: u64,
        /// Verify each message's Mdm-Signature (403 when it does not verify).
        #[arg(long)]
        verify: bool,
    },
    /// Run the load loop against an in-process ceiling server (devices enroll locally, without
    /// SCEP); prints a JSON report.
    CeilingLoad {
        /// Answer every n-th Idle with a DeviceInformation command (0: never).
        #[arg(long, default_value_t = 0)]
        command_every: u64,
        /// The server verifies each message's Mdm-Signature.
        #[arg(long)]
        verify: bool,
        /// Devices do not sign their messages (to see the client's signing cost).
        #[arg(long, conflicts_with = "verify")]
        unsigned: bool,
        #[command(flatten)]
        run: RunArgs,
    },
}

#[derive(Args)]
struct RunArgs {
    /// How many devices.
    #[arg(long, default_value_t = 100)]
    devices: usize,
    /// How many concurrent tasks.
    #[arg(long, default_value_t = 16)]
    workers: usize,
    /// Command sessions per device.
    #[arg(long, default_value_t = 10)]
    iterations: usize,
    /// Derive device identifiers from this seed (the same seed gives the same devices).
    #[arg(long)]
    seed: Option<u64>,
    /// Give all devices one RSA key (each still gets its own certificate).
    #[arg(long)]
    share_key: bool,
    /// Per-request timeout in seconds.
    #[arg(long, default_value_t = 30)]
    timeout: u64,
}

impl RunArgs {
    fn config(&self, target: LoadTarget) -> LoadConfig {
        LoadConfig {
            seed: self.seed,
            share_key: self.share_key,
            timeout: Duration::from_secs(self.timeout),
            ..LoadConfig::new(target, self.devices, self.workers, self.iterations)
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Load { url, token, agency, signed_profile, commands_per_device, inventory_refresh, run } => {
            let target = LoadTarget::Server { base_url: url, token, agency, signed_profile };
            let config = LoadConfig { commands_per_device, inventory_refresh, ..run.config(target) };
            let report = run_load(&config).await.context("load run")?;
            println!("{}", serde_json::to_string(&report)?);
        }
        Command::Mixed {
            url,
            token,
            agency,
            email,
            password,
            devices,
            seed,
            workers,
            rate,
            seconds,
            window_seconds,
        } => {
            let config = custody_sim::mixed::MixedConfig {
                base_url: url,
                token,
                agency,
                console_user: (email, password),
                devices,
                seed,
                workers,
                rate,
                seconds,
                window_seconds,
                timeout: Duration::from_secs(30),
            };
            let report = custody_sim::mixed::run_mixed(config).await.context("mixed run")?;
            println!("{}", serde_json::to_string(&report)?);
        }
        Command::Ceiling { listen, command_every, verify } => {
            let listener =
                tokio::net::TcpListener::bind(&listen).await.with_context(|| format!("listening on {listen}"))?;
            let addr = listener.local_addr()?;
            println!(
                "{}",
                serde_json::json!({ "listening": addr.to_string(), "checkin": format!("http://{addr}/checkin"), "connect": format!("http://{addr}/connect") })
            );
            let counters = Arc::new(CeilingCounters::default());
            tokio::select! {
                served = ceiling::serve(listener, CeilingConfig { command_every, verify_signatures: verify }, counters) => served?,
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Command::CeilingLoad { command_every, verify, unsigned, run } => {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            let addr = listener.local_addr()?;
            let counters = Arc::new(CeilingCounters::default());
            let config = CeilingConfig { command_every, verify_signatures: verify };
            let server = tokio::spawn(ceiling::serve(listener, config, counters));
            let mut endpoints = ceiling::endpoints(addr);
            endpoints.sign_message = !unsigned;
            let target = LoadTarget::Local { endpoints };
            let report = run_load(&run.config(target)).await.context("ceiling load run")?;
            server.abort();
            println!("{}", serde_json::to_string(&report)?);
        }
    }
    Ok(())
}
