//! `devkit enroll (--connection-string-file F | --connection-string-stdin) [--cert FILE]
//! [--device-id ID] [--iot-hub HOST] [--disabled | --enable] [--ca-file F] [--backend rest|az]`:
//! flags to a [`tasks::dps::enroll::EnrollRequest`], the task's report rendered for a terminal
//! (`--json`: the report itself, the daemon's `devkit/enroll` result). The task creates or
//! updates the enrollment and records it in the project state.

use super::vocab::Hint;
use super::{CliError, CliResult};
use std::path::{Path, PathBuf};
use tasks::dps::enroll::{self, EnrollBackend, EnrollReport, EnrollRequest, EnrollmentSettings};
use tasks::fsutil::SecretSource;
use zeroize::Zeroizing;

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendArg {
    /// The DPS REST API (SAS from the connection string).
    Rest,
    /// `az iot dps enrollment create|update` (Azure CLI with the IoT extension).
    Az,
}

#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("cs").args(["connection_string_file", "connection_string_stdin"])))]
pub struct Args {
    /// File holding the DPS service connection string (HostName=...;SharedAccessKeyName=...;SharedAccessKey=...).
    #[arg(long, value_name = "FILE")]
    pub connection_string_file: Option<PathBuf>,
    /// Read the connection string from the first line of standard input.
    #[arg(long)]
    pub connection_string_stdin: bool,
    /// Alias certificate PEM [default: the last one `devkit generate-cert` wrote for the project].
    #[arg(long, value_name = "FILE")]
    cert: Option<PathBuf>,
    #[command(flatten)]
    enrollment: EnrollmentArgs,
    /// CA certificate to trust for the DPS service (e.g. the emulator's ca.pem) [default: public roots].
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "rest")]
    backend: BackendArg,
    /// az backend: DPS name (uses your `az login` session; else the connection string is passed to az).
    #[arg(long, value_name = "NAME")]
    dps_name: Option<String>,
    /// az backend: resource group of --dps-name.
    #[arg(long, value_name = "RG", requires = "dps_name")]
    resource_group: Option<String>,
    /// Project whose state gives the default certificate and records the enrollment.
    #[arg(
        long = "project-dir",
        alias = "project",
        value_name = "DIR",
        default_value = "."
    )]
    project: PathBuf,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    batch: super::enroll_batch::BatchArgs,
}

/// What the enrollment says besides the certificate. Shared with `provision`.
#[derive(clap::Args)]
pub struct EnrollmentArgs {
    /// IoT Hub device ID [default: the registration ID].
    #[arg(long, value_name = "ID")]
    pub device_id: Option<String>,
    /// Assign to this IoT hub (static allocation), e.g. myhub.azure-devices.net.
    #[arg(long, value_name = "HOST")]
    pub iot_hub: Option<String>,
    /// Disable the enrollment.
    #[arg(long, conflicts_with = "enable")]
    pub disabled: bool,
    /// Enable an enrollment that is disabled (re-enrolling otherwise keeps a disabled state).
    #[arg(long)]
    pub enable: bool,
}

impl EnrollmentArgs {
    /// The settings as given; the task validates them.
    pub fn settings(&self) -> EnrollmentSettings {
        EnrollmentSettings {
            device_id: self.device_id.clone(),
            iot_hub: self.iot_hub.clone(),
            disabled: self.disabled,
            enable: self.enable,
        }
    }
}

impl From<BackendArg> for EnrollBackend {
    fn from(b: BackendArg) -> Self {
        match b {
            BackendArg::Rest => EnrollBackend::Rest,
            BackendArg::Az => EnrollBackend::Az,
        }
    }
}

/// The text of a connection string file or stdin line, and how to name its source.
pub fn read_connection_string_text(
    file: Option<&Path>,
    stdin: bool,
    input: &str,
) -> Result<Option<(Zeroizing<String>, String)>, CliError> {
    let (text, source) = match (file, stdin) {
        (Some(path), _) => {
            let source = format!("--{input}-file {:?}", path.display().to_string());
            (
                super::read_secret_text(SecretSource::File(path), &source)?,
                source,
            )
        }
        (None, true) => {
            let source = format!("--{input}-stdin");
            (
                super::read_secret_text(SecretSource::Stdin, &source)?,
                source,
            )
        }
        (None, false) => return Ok(None),
    };
    Ok(Some((text, source)))
}

pub fn run(args: Args) -> CliResult {
    let connection_string = read_connection_string_text(
        args.connection_string_file.as_deref(),
        args.connection_string_stdin,
        "connection-string",
    )?
    .map(|(text, _)| text);
    if let Some(manifest) = args.batch.batch.clone() {
        if args.backend == BackendArg::Az || args.dps_name.is_some() {
            return Err(CliError::invalid(
                "--batch enrolls through the DPS REST API in bulk requests: give the connection string, not --backend az or --dps-name",
            ));
        }
        return super::enroll_batch::run(super::enroll_batch::Batch {
            manifest,
            args: args.batch,
            connection_string,
            ca_file: args.ca_file,
            settings: args.enrollment.settings(),
            json: args.json,
        });
    }
    let request = EnrollRequest {
        connection_string,
        ca_file: args.ca_file,
        cert: args.cert,
        project_dir: args.project,
        settings: args.enrollment.settings(),
        backend: args.backend.into(),
        dps_name: args.dps_name,
        resource_group: args.resource_group,
    };
    let plan = request.plan()?;
    let report = super::provision::run_cancellable(|progress, cancel| async move {
        enroll::run(plan, &progress, &cancel).await
    })?;
    if args.json {
        println!("{}", serde_json::to_string(&report).unwrap_or_default());
    } else {
        print_report(&report);
    }
    Ok(())
}

/// The report for a terminal: warnings and next steps on stderr, the enrollment on stdout.
fn print_report(r: &EnrollReport) {
    for w in &r.warnings {
        eprintln!("warning: {w}");
    }
    if !r.next_actions.is_empty() {
        let next: Vec<String> = r.next_actions.iter().map(|step| step.hint()).collect();
        eprintln!("next: {}", next.join("; or "));
    }
    let status = match r.provisioning_status {
        tasks::dps::ProvisioningStatus::Enabled => "enabled",
        tasks::dps::ProvisioningStatus::Disabled => "disabled",
    };
    let hubs = r
        .iot_hubs
        .as_ref()
        .map(|h| format!(", hub {}", h.join(" ")))
        .unwrap_or_default();
    println!("enrollment: {} ({status}{hubs})", r.registration_id);
    println!(
        "thumbprint: {} (SHA-256; SHA-1 {})",
        r.sha256_thumbprint, r.sha1_thumbprint
    );
    // Quoted, as HTTP headers carry it (the JSON has it bare, as DPS's JSON does).
    match &r.etag {
        Some(etag) => println!("etag: \"{etag}\""),
        None => println!("etag: -"),
    }
}
