//! `devkit enroll (--connection-string-file F | --connection-string-stdin) [--cert FILE]
//! [--device-id ID] [--iot-hub HOST] [--disabled | --enable] [--ca-file F] [--backend rest|az]`:
//! flags to a [`tasks::dps::enroll::EnrollRequest`], the task's report rendered for a terminal
//! (`--json`: the report itself, the daemon's `devkit/enroll` result). The task creates or
//! updates the enrollment and records it in the project state.
//!
//! `devkit enroll --group GROUP_ID --ca-cert FILE` enrolls an X.509 CA enrollment group
//! instead ([`tasks::dps::enroll::GroupEnrollRequest`]; REST only).

use super::vocab::Hint;
use super::{CliError, CliResult};
use std::path::{Path, PathBuf};
use tasks::dps::enroll::{
    self, EnrollBackend, EnrollReport, EnrollRequest, EnrollmentSettings, GroupEnrollReport,
    GroupEnrollRequest,
};
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
    #[arg(long, value_name = "FILE", conflicts_with = "group")]
    cert: Option<PathBuf>,
    /// Enroll an X.509 CA enrollment group with this ID instead of one device (REST only).
    #[arg(long, value_name = "GROUP_ID", requires = "ca_cert")]
    group: Option<String>,
    /// With --group: the group's root or intermediate CA certificate (PEM or DER). RIoT
    /// certificates (the published root key, DeviceID and alias certificates) are refused.
    #[arg(long, value_name = "FILE", requires = "group")]
    ca_cert: Option<PathBuf>,
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
    if let Some(group_id) = args.group {
        let request = GroupEnrollRequest {
            connection_string,
            ca_file: args.ca_file,
            group_id,
            ca_cert: args.ca_cert,
            settings: args.enrollment.settings(),
            backend: args.backend.into(),
        };
        let plan = request.plan()?;
        let report = super::provision::run_cancellable(|progress, cancel| async move {
            enroll::run_group(plan, &progress, &cancel).await
        })?;
        if args.json {
            println!("{}", serde_json::to_string(&report).unwrap_or_default());
        } else {
            print_group_report(&report);
        }
        return Ok(());
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
    print_notes(&r.warnings, &r.next_actions);
    println!(
        "enrollment: {} ({})",
        r.registration_id,
        status_and_hubs(r.provisioning_status, r.iot_hubs.as_deref())
    );
    print_thumbprints_and_etag(&r.sha256_thumbprint, &r.sha1_thumbprint, r.etag.as_deref());
}

/// A group's report for a terminal, shaped like [`print_report`].
fn print_group_report(r: &GroupEnrollReport) {
    print_notes(&r.warnings, &r.next_actions);
    println!(
        "enrollment group: {} ({})",
        r.enrollment_group_id,
        status_and_hubs(r.provisioning_status, r.iot_hubs.as_deref())
    );
    println!(
        "CA: {}{}",
        r.ca_cert.display(),
        r.ca_subject
            .as_deref()
            .map(|cn| format!(" (CN={cn})"))
            .unwrap_or_default()
    );
    print_thumbprints_and_etag(&r.sha256_thumbprint, &r.sha1_thumbprint, r.etag.as_deref());
}

fn print_notes(warnings: &[String], next_actions: &[tasks::error::NextStep]) {
    for w in warnings {
        eprintln!("warning: {w}");
    }
    if !next_actions.is_empty() {
        let next: Vec<String> = next_actions.iter().map(|step| step.hint()).collect();
        eprintln!("next: {}", next.join("; or "));
    }
}

fn status_and_hubs(status: tasks::dps::ProvisioningStatus, hubs: Option<&[String]>) -> String {
    let status = match status {
        tasks::dps::ProvisioningStatus::Enabled => "enabled",
        tasks::dps::ProvisioningStatus::Disabled => "disabled",
    };
    let hubs = hubs
        .map(|h| format!(", hub {}", h.join(" ")))
        .unwrap_or_default();
    format!("{status}{hubs}")
}

fn print_thumbprints_and_etag(sha256: &str, sha1: &str, etag: Option<&str>) {
    println!("thumbprint: {sha256} (SHA-256; SHA-1 {sha1})");
    // Quoted, as HTTP headers carry it (the JSON has it bare, as DPS's JSON does).
    match etag {
        Some(etag) => println!("etag: \"{etag}\""),
        None => println!("etag: -"),
    }
}
