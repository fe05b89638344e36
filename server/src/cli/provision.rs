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

use super::enroll::{read_ca, read_connection_string, EnrollmentArgs};
use super::upload::FlashArgs;
use super::{CliError, CliResult};
use std::path::PathBuf;
use std::time::Duration;
use tasks::flash::FlashImage;
use tasks::fsutil::SecretSource;
use tasks::identity::uds::check_new_uds_file;
use tasks::identity::{RegistrationId, UdsSource};
use tasks::progress::{CancellationToken, Progress};
use tasks::provision::{self, Fault, HubCheck, ProvisionError, ProvisionPlan, ProvisionReport, SimulateOptions, Upload, WifiSettings};

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
    /// Wi-Fi network to store on the DevKit.
    #[arg(long, value_name = "SSID", requires = "wifi_password_file")]
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
    #[arg(long, value_name = "DIR", default_value = ".")]
    project: PathBuf,
    /// Seconds to wait for the device's registration result.
    #[arg(long, value_name = "SECS", default_value_t = 90)]
    timeout: u64,
    /// Print the summary as one JSON object.
    #[arg(long)]
    json: bool,
}

fn classify(e: ProvisionError) -> CliError {
    let invalid = e.is_invalid_input();
    let hint = e.hint();
    let err = match hint {
        Some(h) => anyhow::anyhow!("{e}\nhint: {h}"),
        None => anyhow::Error::new(e),
    };
    if invalid {
        CliError::Invalid(err)
    } else {
        CliError::Failed(err)
    }
}

fn print_report(r: &ProvisionReport, json: bool, temporary: bool) {
    if json {
        println!("{}", serde_json::to_string(r).unwrap_or_default());
        return;
    }
    println!("Provisioned.");
    println!("registration ID: {}", r.registration_id);
    println!("device ID: {}", r.device_id);
    println!("certificate: {} (SHA-256 {}){}", r.alias_cert.display(), r.sha256_thumbprint, if temporary { " [temporary: --work-dir DIR keeps it]" } else { "" });
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

/// Run `job` with Ctrl-C cancelling it.
fn run_cancellable<F, Fut>(job: F) -> Result<ProvisionReport, ProvisionError>
where
    F: FnOnce(Progress, CancellationToken) -> Fut,
    Fut: std::future::Future<Output = Result<ProvisionReport, ProvisionError>>,
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
        };
        run_cancellable(|p, c| async move { provision::simulate(opts, &p, &c).await })
    } else {
        let plan = real_plan(&args)?;
        run_cancellable(|p, c| async move { provision::provision(plan, &p, &c).await })
    }
    .map_err(classify)?;
    print_report(&report, args.json, args.simulate && args.work_dir.is_none());
    Ok(())
}

/// Validate every input of a run against a DevKit on a port; nothing is sent before.
fn real_plan(args: &Args) -> Result<ProvisionPlan, CliError> {
    let port = args.port.clone().ok_or_else(|| CliError::invalid("missing --port PORT (the DevKit's serial port; `devkit ports` lists them), or use --simulate"))?;
    let bin = args.bin.clone().ok_or_else(|| CliError::invalid("missing --bin FILE (the sketch image; its .map must be next to it)"))?;
    let dps = read_connection_string(args.connection_string_file.as_deref(), args.connection_string_stdin, "connection-string")?
        .ok_or_else(|| CliError::invalid("missing DPS connection string: give --connection-string-file FILE or --connection-string-stdin"))?;
    let ca_pem = read_ca(args.ca_file.as_deref())?;
    let hub_cs = read_connection_string(args.hub_connection_string_file.as_deref(), false, "hub-connection-string")?;
    let enrollment = args.enrollment.settings()?;
    let backend = args.flash.backend()?;
    let image = FlashImage::load(&bin).map_err(|e| if e.is_invalid_input() { CliError::Invalid(e.into()) } else { CliError::Failed(e.into()) })?;
    let map = image.map.clone().ok_or_else(|| CliError::invalid(format!("invalid --bin {}: no .map next to it (the identity is computed from the image and its map)", bin.display())))?;
    let wifi = match (&args.wifi_ssid, &args.wifi_password_file) {
        (Some(ssid), Some(file)) => {
            let password = super::read_secret_text(SecretSource::File(file), &format!("--wifi-password-file {:?}", file.display().to_string()))?;
            Some(WifiSettings { ssid: ssid.clone(), password })
        }
        _ => None,
    };
    let uds = match &args.uds_file {
        Some(f) => {
            let input = format!("--uds-file {:?}", f.display().to_string());
            Some(super::read_uds(UdsSource::File(f), &input, false, "omit --uds-file to generate one")?)
        }
        None => None,
    };
    let registration_id = args.registration_id.as_deref().map(|r| RegistrationId::parse(r).map_err(|e| CliError::invalid(format!("invalid --registration-id: {e}")))).transpose()?;
    let registration_id = registration_id.or_else(|| image.dps.as_ref().and_then(|d| d.registration_id.as_ref()).and_then(|r| RegistrationId::parse(r.as_str()).ok()));
    let mac = args.mac.as_deref().map(|m| tasks::identity::normalize_mac(m).map_err(|e| CliError::invalid(format!("invalid --mac: {e}")))).transpose()?;
    if registration_id.is_none() && mac.is_none() {
        return Err(CliError::invalid("give --registration-id ID, or --mac HEX12 (on the DevKit's screen) for the automatic az-<mac>v<x>v<y>v<z>"));
    }
    if let Some(path) = &args.save_uds_to {
        check_new_uds_file(path, "--save-uds-to")?;
    }
    if uds.is_none() && args.save_uds_to.is_none() {
        eprintln!("warning: the generated UDS is not saved (--save-uds-to FILE): you will not be able to regenerate this certificate");
    }
    Ok(ProvisionPlan {
        port,
        image_bin: image.bin.clone(),
        image_map: map,
        upload: Upload::Flash { backend, image },
        dps,
        client: tasks::dps::ClientOptions { ca_pem, ..Default::default() },
        hub_check: hub_cs.map(HubCheck::ConnectionString),
        wifi,
        uds,
        save_uds_to: args.save_uds_to.clone(),
        registration_id,
        mac,
        cert_dir: args.out_dir.clone().unwrap_or_else(|| args.project.clone()),
        project_root: Some(args.project.clone()),
        enrollment,
        fault: None,
        console_timeout: Duration::from_secs(60),
        registration_timeout: Duration::from_secs(args.timeout),
    })
}
