//! `devkit inspect-cert FILE [--against FILE2] [--json]`: read a RIoT alias or DeviceID
//! certificate leniently (OpenSSL refuses alias certificates) and, with `--against`, say which
//! input differs between two of them: the diagnosis for DPS error 401002 "Invalid certificate".
//! The task is `tasks::identity::inspection` (the daemon's `devkit/inspectCert` too); `--json`
//! prints its report.

use super::{CliError, CliResult};
use std::path::{Path, PathBuf};
use tasks::identity::inspection::{self, CertInput};
use tasks::identity::{CertInfo, IdentityError};

#[derive(clap::Args)]
pub struct Args {
    /// Certificate file (PEM or DER).
    file: PathBuf,
    /// A second certificate (e.g. the one enrolled in DPS) to compare with.
    #[arg(long, value_name = "FILE2")]
    against: Option<PathBuf>,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

/// One certificate through the task's reader, a refusal named by the argument it came from.
fn read_cert(path: &Path, name: &str) -> Result<CertInfo, CliError> {
    let label = format!("{name} {:?}", path.display().to_string());
    inspection::read_cert(&CertInput::File(path.to_path_buf())).map_err(|e| match e {
        // A file that cannot be read is the caller's input (exit 2), named as given.
        IdentityError::Io { reason, .. } => CliError::from(
            tasks::error::InvalidInput::new(tasks::error::Input::Cert, reason).named(label),
        ),
        e => e.named_as(label).into(),
    })
}

fn print_info(title: &str, path: &Path, c: &CertInfo) {
    println!("{title}: {}", path.display());
    let kind = if c.is_alias {
        "RIoT alias certificate"
    } else {
        "DeviceID (or other) certificate"
    };
    println!("  Kind:               {kind}");
    println!("  Subject CN:         {}", c.subject_cn);
    println!("  Issuer CN:          {}", c.issuer_cn);
    println!("  Public key:         {}", c.public_key);
    if let Some(k) = &c.device_id_public_key {
        println!("  DeviceID key:       {k}");
    }
    if let Some(f) = &c.fwid {
        println!("  FWID:               {f}");
    }
    let signer = if c.is_alias {
        "the embedded DeviceID key"
    } else {
        "its own key"
    };
    let verdict = if c.signature_valid {
        "valid"
    } else {
        "INVALID"
    };
    println!("  Signature:          {verdict} (checked with {signer})");
    println!("  SHA-1 thumbprint:   {}", c.sha1_thumbprint);
    println!("  SHA-256 thumbprint: {}", c.sha256_thumbprint);
}

pub fn run(args: Args) -> CliResult {
    let cert = read_cert(&args.file, "certificate")?;
    let against = match &args.against {
        Some(p) => Some(read_cert(p, "--against")?),
        None => None,
    };
    let report = inspection::report(cert, against);
    if args.json {
        println!(
            "{}",
            serde_json::to_string(&report).map_err(anyhow::Error::from)?
        );
        return Ok(());
    }
    print_info("Certificate", &args.file, &report.cert);
    if let (Some(c), Some(p)) = (&report.against, &args.against) {
        print_info("Against", p, &c.cert);
        if c.differences.len() > 1 {
            println!("Diagnosis (several inputs differ):");
            for d in &c.differences {
                println!("  - {}", d.explanation());
            }
        } else {
            println!("Diagnosis: {}", c.explanation);
        }
    }
    if let Some(note) = &report.note {
        println!("Note: {note}");
    }
    Ok(())
}
