//! `devkit sim`: run a virtual DevKit until killed, on a pseudo-terminal (Unix default) or a
//! loopback TCP port (`--transport tcp`, the only choice on Windows).

use super::{CliError, CliResult};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use tasks::sim::{EepromFault, SimOptions, SimTransport, VirtualDevKit};

/// How clients reach the virtual DevKit's console.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TransportArg {
    /// A pseudo-terminal, opened like a serial port (Unix).
    Pty,
    /// A loopback TCP port, opened as the port `tcp://127.0.0.1:PORT`.
    Tcp,
}

/// The transport asked for (default: a pty on Unix, TCP elsewhere); `tcp_port` only with TCP.
pub fn transport(
    arg: Option<TransportArg>,
    tcp_port: Option<u16>,
) -> Result<SimTransport, CliError> {
    let chosen = match arg {
        None => SimTransport::default(),
        Some(TransportArg::Pty) => SimTransport::parse("pty", 0)
            .map_err(|r| CliError::invalid(format!("--transport {r}")))?,
        Some(TransportArg::Tcp) => SimTransport::Tcp { port: 0 },
    };
    match (chosen, tcp_port) {
        (SimTransport::Tcp { .. }, Some(port)) => Ok(SimTransport::Tcp { port }),
        (SimTransport::Pty, Some(_)) => Err(CliError::invalid("--tcp-port needs --transport tcp")),
        (t, None) => Ok(t),
    }
}

#[derive(clap::Args)]
pub struct Args {
    /// Where the virtual DevKit keeps its EEPROM, firmware image and control socket (the
    /// directory `devkit upload --backend sim --sim-dir` flashes).
    // `--state-dir`: the old name, kept as a hidden alias.
    #[arg(long = "sim-dir", alias = "state-dir", value_name = "DIR")]
    pub sim_dir: PathBuf,
    /// Boot into configuration mode (as if button A were held during reset).
    #[arg(long)]
    pub config_mode: bool,
    /// MAC address, 12 hex digits (default: kept in the state directory, first time random).
    #[arg(long)]
    pub mac: Option<String>,
    /// Console transport: `pty` (default on Unix) or `tcp` (loopback; the only one on Windows).
    #[arg(long, value_enum)]
    pub transport: Option<TransportArg>,
    /// With `--transport tcp`: the TCP port to listen on (default: any free port).
    #[arg(long, value_name = "PORT")]
    pub tcp_port: Option<u16>,
    /// Symlink to create pointing at the pty (replaced atomically when the sim restarts; Unix).
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
    let mut opts = SimOptions::new(&args.sim_dir);
    opts.config_mode = args.config_mode;
    opts.mac = args.mac;
    opts.transport = transport(args.transport, args.tcp_port)?;
    opts.link = args.link;
    opts.firmware_version = args.firmware_version;
    opts.command_delay = std::time::Duration::from_millis(args.command_delay_ms);
    opts.eeprom_fault = match args.eeprom_fault.as_deref() {
        None => None,
        Some("write") => Some(EepromFault::WriteFails),
        Some("verify") => Some(EepromFault::VerifyFails),
        Some(other) => {
            return Err(CliError::invalid(format!(
                "--eeprom-fault `{other}`: expected `write` or `verify`"
            )))
        }
    };
    opts.on_event = Some(Arc::new(|e| eprintln!("virtual DevKit: {e}")));
    let sim = VirtualDevKit::start(opts).map_err(CliError::from)?;
    println!("virtual DevKit on {}", sim.device_port().display());
    if sim.port_path() != sim.device_port() {
        println!("linked at {}", sim.port_path().display());
    }
    println!(
        "MAC address {}; state in {}",
        sim.mac(),
        sim.state_dir().display()
    );
    let _ = std::io::stdout().flush();
    // Run until interrupted or terminated; then turn the device off cleanly.
    super::runtime().block_on(super::wait_for_shutdown());
    drop(sim);
    Ok(())
}
