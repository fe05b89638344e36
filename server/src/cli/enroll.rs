//! `devkit enroll (--connection-string-file F | --connection-string-stdin) [--cert FILE]
//! [--device-id ID] [--iot-hub HOST] [--disabled] [--ca-file F] [--backend rest|az]`:
//! create or update the DPS individual enrollment for the device's alias certificate
//! (default: the one `generate-cert` last wrote for this project), print the enrollment,
//! its thumbprint and ETag, and record it in the project state.

use super::{CliError, CliResult};
use anyhow::Context;
use std::path::{Path, PathBuf};
use tasks::dps::az::{self, AzEnrollment};
use tasks::dps::enroll::{self, EnrollVia, EnrollmentSettings};
use tasks::dps::{ClientOptions, ConnectionString, DpsError, ServiceClient};
use tasks::error::DomainError;
use tasks::fsutil::{limits, SecretSource};
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
    /// The validated settings (`--iot-hub` and `--device-id` checked).
    pub fn settings(&self) -> Result<EnrollmentSettings, CliError> {
        let settings = EnrollmentSettings {
            device_id: self.device_id.clone(),
            iot_hub: self.iot_hub.clone(),
            disabled: self.disabled,
            enable: self.enable,
        };
        settings.validate()?;
        Ok(settings)
    }
}

/// Read a connection string from a file or stdin (never from argv). Errors name the input,
/// never the content.
pub fn read_connection_string(
    file: Option<&Path>,
    stdin: bool,
    input: &str,
) -> Result<Option<ConnectionString>, CliError> {
    let Some((text, source)) = read_connection_string_text(file, stdin, input)? else {
        return Ok(None);
    };
    ConnectionString::parse_file_text(&text)
        .map(Some)
        .map_err(|e| CliError::invalid(format!("invalid {source}: {e}")))
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

/// Read a CA file for `--ca-file` (bounded like every certificate input).
pub fn read_ca(path: Option<&Path>) -> Result<Option<String>, CliError> {
    path.map(|p| {
        super::read_text_file(
            p,
            &format!("--ca-file {:?}", p.display().to_string()),
            limits::CERT_FILE,
        )
    })
    .transpose()
}

pub fn classify(e: DpsError) -> CliError {
    let hint = e
        .service_error()
        .and_then(|s| s.error_code)
        .and_then(tasks::dps::hint_for_error_code);
    match hint {
        Some(h) if !e.is_invalid_input() => {
            CliError::Failed(anyhow::Error::new(e).context(format!("hint: {h}")))
        }
        _ => CliError::from(e),
    }
}

pub fn run(args: Args) -> CliResult {
    // 1. Inputs, all validated before anything is sent or written.
    let cs = read_connection_string(
        args.connection_string_file.as_deref(),
        args.connection_string_stdin,
        "connection-string",
    )?;
    let ca_pem = read_ca(args.ca_file.as_deref())?;
    let cert =
        enroll::resolve_certificate(&args.project, args.cert.as_deref()).map_err(CliError::from)?;
    let settings = args.enrollment.settings()?;
    let id = &cert.registration_id;

    // 2. Enroll.
    let via = enroll::select_target(
        args.backend == BackendArg::Az,
        args.dps_name.clone(),
        args.resource_group.clone(),
        cs,
    )?;
    let enrolled = match via {
        EnrollVia::Rest(cs) => super::runtime().block_on(async {
            let client = ServiceClient::new(
                cs,
                ClientOptions {
                    ca_pem,
                    ..Default::default()
                },
            )
            .map_err(classify)?;
            enroll::enroll_rest(&client, &settings, id.as_str(), &cert.der)
                .await
                .map_err(classify)
        })?,
        EnrollVia::Az(target) => {
            let az = az::find_az()?;
            let request = AzEnrollment {
                target,
                registration_id: id.to_string(),
                certificate_path: cert.path.clone(),
                device_id: settings.device_id.clone(),
                status: settings.status(),
                iot_hubs: settings.iot_hub.iter().cloned().collect(),
            };
            super::runtime()
                .block_on(az::enroll(&az, &request))
                .map_err(classify)?
        }
    };

    // 3. Record and print.
    enroll::record_enrolled(&args.project, &cert)
        .context("recording the enrollment in the project state")?;
    let info = &cert.info;
    let thumbprint = enrolled
        .sha256_thumbprint()
        .unwrap_or(info.sha256_thumbprint.clone());
    // Quoted, as HTTP headers carry it (the JSON output has it bare, as DPS's JSON does).
    let etag = enrolled
        .etag
        .as_deref()
        .map(|e| format!("\"{}\"", e.trim_matches('"')))
        .unwrap_or_else(|| "-".into());
    let status_text = if enrolled.is_enabled() {
        "enabled"
    } else {
        "disabled"
    };
    if args.json {
        let v = serde_json::json!({
            "registrationId": id.as_str(),
            "deviceId": enrolled.device_id,
            "provisioningStatus": status_text,
            "iotHubs": enrolled.iot_hubs,
            "sha256Thumbprint": thumbprint,
            "sha1Thumbprint": info.sha1_thumbprint,
            "etag": enrolled.etag,
            "certificate": cert.path,
        });
        println!("{v}");
    } else {
        if cert.from_project_state {
            eprintln!(
                "using {} (last generated for this project)",
                cert.path.display()
            );
        }
        println!(
            "enrollment: {id} ({status_text}{})",
            enrolled
                .iot_hubs
                .as_ref()
                .map(|h| format!(", hub {}", h.join(" ")))
                .unwrap_or_default()
        );
        println!(
            "thumbprint: {thumbprint} (SHA-256; SHA-1 {})",
            info.sha1_thumbprint
        );
        println!("etag: {etag}");
    }
    Ok(())
}
