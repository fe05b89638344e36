//! `devkit enroll (--connection-string-file F | --connection-string-stdin) [--cert FILE]
//! [--device-id ID] [--iot-hub HOST] [--disabled] [--ca-file F] [--backend rest|az]`:
//! create or update the DPS individual enrollment for the device's alias certificate
//! (default: the one `generate-cert` last wrote for this project), print the enrollment,
//! its thumbprint and ETag, and record it in the project state.

use super::{CliError, CliResult};
use anyhow::Context;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use tasks::dps::az::{self, AzEnrollment, AzTarget};
use tasks::dps::{ClientOptions, ConnectionString, DpsError, IndividualEnrollment, ProvisioningStatus, ServiceClient};
use tasks::identity::{self, RegistrationId};
use tasks::project::{IdentityRecord, IdentitySource, ProjectState};
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
    #[arg(long, value_name = "DIR", default_value = ".")]
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
    /// Create the enrollment disabled.
    #[arg(long)]
    pub disabled: bool,
}

impl EnrollmentArgs {
    /// Validate `--iot-hub` and `--device-id`.
    pub fn validate(&self) -> Result<(), CliError> {
        if let Some(hub) = &self.iot_hub {
            if hub.is_empty() || !hub.split('.').all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')) {
                return Err(CliError::invalid(format!("invalid --iot-hub {hub:?}: expected a host name such as myhub.azure-devices.net")));
            }
        }
        if let Some(d) = &self.device_id {
            if d.is_empty() || d.len() > 128 || d.chars().any(|c| c.is_control() || c == '/' || c == ' ') {
                return Err(CliError::invalid(format!("invalid --device-id {d:?}: 1 to 128 printable characters without '/' or spaces")));
            }
        }
        Ok(())
    }
}

/// Read a connection string from a file or stdin (never from argv). Errors name the input,
/// never the content.
pub fn read_connection_string(file: Option<&Path>, stdin: bool, input: &str) -> Result<Option<ConnectionString>, CliError> {
    let (text, source) = match (file, stdin) {
        (Some(path), _) => {
            let source = format!("--{input}-file {}", path.display());
            let text = std::fs::read_to_string(path).map_err(|e| CliError::invalid(format!("invalid {source}: cannot read it ({e})")))?;
            (Zeroizing::new(text), source)
        }
        (None, true) => {
            let source = format!("--{input}-stdin");
            let mut line = Zeroizing::new(String::new());
            std::io::stdin().lock().read_line(&mut line).map_err(|e| CliError::invalid(format!("invalid {source}: {e}")))?;
            (line, source)
        }
        (None, false) => return Ok(None),
    };
    let first = text.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or_default();
    ConnectionString::parse(first).map(Some).map_err(|e| CliError::invalid(format!("invalid {source}: {e}")))
}

/// Read a CA file for `--ca-file`.
pub fn read_ca(path: Option<&Path>) -> Result<Option<String>, CliError> {
    path.map(|p| std::fs::read_to_string(p).map_err(|e| CliError::invalid(format!("invalid --ca-file {}: cannot read it ({e})", p.display())))).transpose()
}

pub fn classify(e: DpsError) -> CliError {
    if e.is_invalid_input() {
        CliError::Invalid(e.into())
    } else {
        let hint = e.service_error().and_then(|s| s.error_code).and_then(tasks::dps::hint_for_error_code);
        match hint {
            Some(h) => CliError::Failed(anyhow::Error::new(e).context(format!("hint: {h}"))),
            None => CliError::Failed(e.into()),
        }
    }
}

pub fn run(args: Args) -> CliResult {
    // 1. Inputs, all validated before anything is sent or written.
    let cs = read_connection_string(args.connection_string_file.as_deref(), args.connection_string_stdin, "connection-string")?;
    let ca_pem = read_ca(args.ca_file.as_deref())?;
    let (cert_path, from_state) = match &args.cert {
        Some(p) => (p.clone(), false),
        None => {
            let state = ProjectState::load(&args.project).map_err(|e| CliError::Failed(e.into()))?;
            let rec = state.last_generated.ok_or_else(|| {
                CliError::invalid(format!("no --cert given and the project at {} has no generated certificate; run `devkit generate-cert` first or pass --cert FILE", args.project.display()))
            })?;
            (rec.alias_cert, true)
        }
    };
    let pem = std::fs::read_to_string(&cert_path).map_err(|e| CliError::invalid(format!("invalid --cert {}: cannot read it ({e})", cert_path.display())))?;
    let der = identity::pem::decode(&pem, Some("CERTIFICATE")).map_err(|e| CliError::invalid(format!("invalid --cert {}: {e}", cert_path.display())))?;
    let info = identity::inspect(&der).map_err(|e| CliError::invalid(format!("invalid --cert {}: {e}", cert_path.display())))?;
    if !info.is_alias {
        return Err(CliError::invalid(format!(
            "invalid --cert {}: this is the DeviceID certificate (CN={}); enroll the alias certificate `<registration id>.pem` instead",
            cert_path.display(),
            info.subject_cn
        )));
    }
    let id = RegistrationId::parse(&info.subject_cn).map_err(|e| CliError::invalid(format!("invalid --cert {}: its CN is not a valid registration ID ({e})", cert_path.display())))?;
    args.enrollment.validate()?;
    let status = if args.enrollment.disabled { ProvisioningStatus::Disabled } else { ProvisioningStatus::Enabled };

    // 2. Enroll.
    let enrolled = match args.backend {
        BackendArg::Rest => {
            let cs = cs.ok_or_else(|| CliError::invalid("missing connection string: give --connection-string-file FILE or --connection-string-stdin"))?;
            let mut e = IndividualEnrollment::x509(id.as_str(), &der);
            e.device_id = args.enrollment.device_id.clone();
            e.provisioning_status = Some(status);
            if let Some(hub) = &args.enrollment.iot_hub {
                e.iot_hubs = Some(vec![hub.clone()]);
                e.allocation_policy = Some("static".into());
            }
            super::runtime().block_on(async {
                let client = ServiceClient::new(cs, ClientOptions { ca_pem, ..Default::default() }).map_err(classify)?;
                client.upsert(&e).await.map_err(classify)
            })?
        }
        BackendArg::Az => {
            let az = az::find_az().ok_or_else(|| CliError::Failed(anyhow::anyhow!("`az` (Azure CLI) is not on PATH; install it with the azure-iot extension, or use --backend rest")))?;
            let target = match (&args.dps_name, cs) {
                (Some(name), _) => AzTarget::Named { dps_name: name.clone(), resource_group: args.resource_group.clone() },
                (None, Some(cs)) => AzTarget::Login(cs),
                (None, None) => return Err(CliError::invalid("--backend az needs --dps-name NAME (with your az login) or a connection string")),
            };
            let request = AzEnrollment {
                target,
                registration_id: id.to_string(),
                certificate_path: cert_path.clone(),
                device_id: args.enrollment.device_id.clone(),
                status,
                iot_hubs: args.enrollment.iot_hub.iter().cloned().collect(),
            };
            super::runtime().block_on(az::enroll(&az, &request)).map_err(classify)?
        }
    };

    // 3. Record and print.
    let abs = std::path::absolute(&cert_path).unwrap_or(cert_path.clone());
    let record = IdentityRecord {
        registration_id: id.to_string(),
        fwid: info.fwid.clone().unwrap_or_default(),
        sha256_thumbprint: info.sha256_thumbprint.clone(),
        alias_cert: abs.clone(),
        source: IdentitySource::Enrolled,
    };
    ProjectState::update(&args.project, |s| s.last_enrolled = Some(record)).context("recording the enrollment in the project state")?;
    let thumbprint = enrolled.sha256_thumbprint().unwrap_or(info.sha256_thumbprint.clone());
    let etag = enrolled.etag.clone().unwrap_or_else(|| "-".into());
    let status_text = if enrolled.is_enabled() { "enabled" } else { "disabled" };
    if args.json {
        let v = serde_json::json!({
            "registrationId": id.as_str(),
            "deviceId": enrolled.device_id,
            "provisioningStatus": status_text,
            "iotHubs": enrolled.iot_hubs,
            "sha256Thumbprint": thumbprint,
            "sha1Thumbprint": info.sha1_thumbprint,
            "etag": enrolled.etag,
            "certificate": abs,
        });
        println!("{v}");
    } else {
        if from_state {
            eprintln!("using {} (last generated for this project)", cert_path.display());
        }
        println!("enrollment: {id} ({status_text}{})", enrolled.iot_hubs.as_ref().map(|h| format!(", hub {}", h.join(" "))).unwrap_or_default());
        println!("thumbprint: {thumbprint} (SHA-256; SHA-1 {})", info.sha1_thumbprint);
        println!("etag: {etag}");
    }
    Ok(())
}
