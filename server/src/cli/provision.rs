//! `devkit provision`: the main job, end to end, with progress as it goes.
//!
//! - `devkit provision --simulate [--work-dir DIR] [--hub HOST] [--transport pty|tcp]`: an in-process DPS emulator
//!   and virtual DevKit, the built-in sample image; exit 0 only when the device is assigned
//!   (and found in the hub's registry).
//! - `devkit provision --port P --bin F (--connection-string-file F | --connection-string-stdin)
//!   [--backend probe-rs|openocd|sim ...] [--wifi-ssid S --wifi-password-file F]
//!   [--uds-file F | --save-uds-to F] [--registration-id ID | --mac HEX12] [--iot-hub HOST]
//!   [--device-id ID] [--disabled] [--ca-file F] [--hub-connection-string-file F]`: the same
//!   steps against a DevKit on a serial port, flashed through its probe.
//!
//! Output: progress on stderr, a summary on stdout ending with `assigned hub: <host>` (or one
//! JSON object with --json). On failure: the error and a `hint:` line, exit 1 (2 for bad input).

use super::enroll::{read_connection_string_text, EnrollmentArgs};
use super::upload::FlashArgs;
use super::{CliError, CliResult};
use std::path::PathBuf;
use std::time::Duration;
use tasks::fsutil::SecretSource;
use tasks::identity::UdsSource;
use tasks::progress::{CancellationToken, Progress};
use tasks::provision::{
    self, Fault, ProvisionPlan, ProvisionReport, ProvisionRequest, SimulateOptions,
};

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FaultArg {
    /// Enroll a certificate from another UDS (the device gets 401002).
    WrongUds,
    /// Enroll the certificate disabled.
    Disabled,
    /// The emulator answers the first requests with 429.
    Throttle,
}

#[derive(clap::Args)]
pub struct Args {
    /// Run everything locally: a DPS emulator, a virtual DevKit and the built-in sample image.
    #[arg(long, conflicts_with_all = ["port", "bin", "connection_string_file", "connection_string_stdin"])]
    simulate: bool,
    /// With --simulate: keep the emulator's and virtual DevKit's state and the certificate here.
    #[arg(long, value_name = "DIR", requires = "simulate")]
    work_dir: Option<PathBuf>,
    /// With --simulate: the hub the emulator assigns to.
    #[arg(long, value_name = "HOST", requires = "simulate")]
    hub: Option<String>,
    /// With --simulate: inject a failure (demos and tests of the failure paths).
    #[arg(long, value_enum, requires = "simulate", hide = true)]
    fault: Option<FaultArg>,
    /// With --simulate: how the virtual DevKit's console is reached (`pty`, default on Unix, or `tcp`).
    #[arg(long, value_enum, requires = "simulate")]
    transport: Option<super::sim::TransportArg>,

    /// The DevKit's serial port.
    #[arg(long, value_name = "PORT")]
    port: Option<PathBuf>,
    /// The sketch image (`<sketch>.ino.bin`; its `.map` and the build's dps_config.json next to it).
    #[arg(long, value_name = "FILE")]
    bin: Option<PathBuf>,
    #[command(flatten)]
    flash: FlashArgs,
    /// File holding the DPS service connection string.
    #[arg(long, value_name = "FILE")]
    connection_string_file: Option<PathBuf>,
    /// Read the DPS service connection string from standard input.
    #[arg(long)]
    connection_string_stdin: bool,
    /// CA certificate to trust for the DPS service [default: public roots].
    #[arg(long, value_name = "FILE")]
    ca_file: Option<PathBuf>,
    /// File holding an IoT Hub connection string: check the device appears in that hub.
    #[arg(long, value_name = "FILE")]
    hub_connection_string_file: Option<PathBuf>,
    /// Wi-Fi network to store on the DevKit (without --wifi-password-file: an open network).
    #[arg(long, value_name = "SSID")]
    wifi_ssid: Option<String>,
    /// File holding the Wi-Fi password (empty file: open network).
    #[arg(long, value_name = "FILE", requires = "wifi_ssid")]
    wifi_password_file: Option<PathBuf>,
    /// Use this UDS (file with 64 hex digits) instead of generating one.
    #[arg(long, value_name = "FILE", conflicts_with = "save_uds_to")]
    uds_file: Option<PathBuf>,
    /// Save the generated UDS here (mode 0600): needed to regenerate the certificate later.
    #[arg(long, value_name = "FILE")]
    save_uds_to: Option<PathBuf>,
    /// Registration ID [default: az-<mac>v<x>v<y>v<z>, needs --mac].
    #[arg(long, value_name = "ID", conflicts_with = "mac")]
    registration_id: Option<String>,
    /// The DevKit's MAC address (shown on its screen), for the automatic registration ID.
    #[arg(long, value_name = "HEX12")]
    mac: Option<String>,
    #[command(flatten)]
    enrollment: EnrollmentArgs,
    /// Where the alias certificate is written [default: the project directory].
    #[arg(long, value_name = "DIR")]
    out_dir: Option<PathBuf>,
    /// Project whose state records the identity.
    #[arg(
        long = "project-dir",
        alias = "project",
        value_name = "DIR",
        default_value = "."
    )]
    project: PathBuf,
    /// Seconds to wait for the device's registration result.
    #[arg(long, value_name = "SECS", default_value_t = tasks::provision::DEFAULT_REGISTRATION_TIMEOUT.as_secs())]
    timeout: u64,
    /// Print the summary as one JSON object.
    #[arg(long)]
    json: bool,
}

fn print_report(r: &ProvisionReport, json: bool, temporary: bool) {
    if json {
        println!("{}", serde_json::to_string(r).unwrap_or_default());
        return;
    }
    println!("Provisioned.");
    println!("registration ID: {}", r.registration_id);
    println!("device ID: {}", r.device_id);
    println!(
        "certificate: {} (SHA-256 {}){}",
        r.alias_cert.display(),
        r.sha256_thumbprint,
        if temporary {
            " [temporary: --work-dir DIR keeps it]"
        } else {
            ""
        }
    );
    if let Some(etag) = &r.enrollment_etag {
        println!("enrollment etag: {etag}");
    }
    if let Some(p) = &r.uds_saved_to {
        println!("UDS saved to: {}", p.display());
    }
    match r.in_hub_registry {
        Some(true) => println!("hub registry: {} found", r.device_id),
        Some(false) => println!("hub registry: {} NOT found", r.device_id),
        None => println!("hub registry: not checked (give --hub-connection-string-file to check)"),
    }
    println!("assigned hub: {}", r.assigned_hub);
}

/// Run `job` with Ctrl-C cancelling it, its progress on stderr (shared with `enroll`).
pub fn run_cancellable<T, E, F, Fut>(job: F) -> Result<T, E>
where
    F: FnOnce(Progress, CancellationToken) -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let cancel = CancellationToken::new();
    let progress = super::build::progress_printer();
    super::runtime().block_on(async {
        let watcher = {
            let cancel = cancel.clone();
            tokio::spawn(async move {
                super::wait_for_shutdown().await;
                eprintln!("cancelling...");
                cancel.cancel();
            })
        };
        let r = job(progress, cancel).await;
        watcher.abort();
        r
    })
}

pub fn run(args: Args) -> CliResult {
    let report = if args.simulate {
        let opts = SimulateOptions {
            work_dir: args.work_dir.clone(),
            hub: args.hub.clone(),
            fault: args.fault.map(|f| match f {
                FaultArg::WrongUds => Fault::WrongUds,
                FaultArg::Disabled => Fault::DisabledEnrollment,
                FaultArg::Throttle => Fault::Throttle,
            }),
            registration_timeout: Duration::from_secs(args.timeout),
            transport: super::sim::transport(args.transport, None)?,
            save_uds_to: args.save_uds_to.clone(),
        };
        run_cancellable(|p, c| async move { provision::simulate(opts, &p, &c).await })
    } else {
        let plan = real_plan(&args)?;
        run_cancellable(|p, c| async move { provision::provision(plan, &p, &c).await })
    }
    .map_err(CliError::from)?;
    print_report(&report, args.json, args.simulate && args.work_dir.is_none());
    Ok(())
}

/// Map the flags to the run's inputs (read from files here); `tasks` validates them.
fn real_plan(args: &Args) -> Result<ProvisionPlan, CliError> {
    let read = |file: &Option<PathBuf>, stdin: bool, input: &str| {
        read_connection_string_text(file.as_deref(), stdin, input).map(|t| t.map(|(text, _)| text))
    };
    let wifi_password = match &args.wifi_password_file {
        Some(file) => Some(super::read_secret_text(
            SecretSource::File(file),
            &format!("--wifi-password-file {:?}", file.display().to_string()),
        )?),
        None => None,
    };
    let uds = match &args.uds_file {
        Some(f) => {
            let input = format!("--uds-file {:?}", f.display().to_string());
            Some(super::read_uds(
                UdsSource::File(f),
                &input,
                false,
                "omit --uds-file to generate one",
            )?)
        }
        None => None,
    };
    let request = ProvisionRequest {
        port: args.port.as_ref().map(|p| p.display().to_string()),
        bin: args.bin.clone(),
        build_dir: None,
        flash: args.flash.request(),
        connection_string: read(
            &args.connection_string_file,
            args.connection_string_stdin,
            "connection-string",
        )?,
        hub_connection_string: read(
            &args.hub_connection_string_file,
            false,
            "hub-connection-string",
        )?,
        ca_file: args.ca_file.clone(),
        wifi_ssid: args.wifi_ssid.clone(),
        wifi_password,
        uds,
        save_uds_to: args.save_uds_to.clone(),
        registration_id: args.registration_id.clone(),
        mac: args.mac.clone(),
        project_dir: Some(args.project.clone()),
        cert_dir: args.out_dir.clone(),
        enrollment: args.enrollment.settings(),
        registration_timeout: Some(Duration::from_secs(args.timeout)),
    };
    let run = request.plan()?;
    for w in &run.warnings {
        eprintln!("warning: {w}");
    }
    Ok(run.plan)
}
