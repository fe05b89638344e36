//! `devkit sim`: run a virtual DevKit on a pseudo-terminal until killed.

use super::{CliError, CliResult};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use tasks::sim::{EepromFault, SimOptions, VirtualDevKit};

#[derive(clap::Args)]
pub struct Args {
    /// Where the virtual DevKit keeps its EEPROM, firmware image and control socket.
    #[arg(long)]
    pub state_dir: PathBuf,
    /// Boot into configuration mode (as if button A were held during reset).
    #[arg(long)]
    pub config_mode: bool,
    /// MAC address, 12 hex digits (default: kept in the state directory, first time random).
    #[arg(long)]
    pub mac: Option<String>,
    /// Symlink to create pointing at the pty (replaced atomically when the sim restarts).
    #[arg(long)]
    pub link: Option<PathBuf>,
    /// DevKit SDK version the device reports.
    #[arg(long, default_value = tasks::sim::DEFAULT_FIRMWARE_VERSION)]
    pub firmware_version: String,
    /// Every console command takes this long (a slow EEPROM; for tests).
    #[arg(long, hide = true, default_value_t = 0)]
    pub command_delay_ms: u64,
    /// Make EEPROM writes fail: `write` or `verify` (for tests).
    #[arg(long, hide = true)]
    pub eeprom_fault: Option<String>,
}

pub fn run(args: Args) -> CliResult {
    let mut opts = SimOptions::new(&args.state_dir);
    opts.config_mode = args.config_mode;
    opts.mac = args.mac;
    opts.link = args.link;
    opts.firmware_version = args.firmware_version;
    opts.command_delay = std::time::Duration::from_millis(args.command_delay_ms);
    opts.eeprom_fault = match args.eeprom_fault.as_deref() {
        None => None,
        Some("write") => Some(EepromFault::WriteFails),
        Some("verify") => Some(EepromFault::VerifyFails),
        Some(other) => return Err(CliError::invalid(format!("--eeprom-fault `{other}`: expected `write` or `verify`"))),
    };
    opts.on_event = Some(Arc::new(|e| eprintln!("virtual DevKit: {e}")));
    let sim = VirtualDevKit::start(opts).map_err(CliError::from)?;
    println!("virtual DevKit on {}", sim.pty_path().display());
    if sim.port_path() != sim.pty_path() {
        println!("linked at {}", sim.port_path().display());
    }
    println!("MAC address {}; state in {}", sim.mac(), sim.state_dir().display());
    let _ = std::io::stdout().flush();
    // Run until interrupted or terminated; then turn the device off cleanly.
    super::runtime().block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
        }
    });
    drop(sim);
    Ok(())
}
