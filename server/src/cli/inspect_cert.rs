//! `devkit inspect-cert FILE [--against FILE2] [--json]`: read a RIoT alias or DeviceID
//! certificate leniently (OpenSSL refuses alias certificates) and, with `--against`, say which
//! input differs between two of them: the diagnosis for DPS error 401002 "Invalid certificate".

use super::{CliError, CliResult};
use std::path::{Path, PathBuf};
use tasks::identity::{self, CertInfo, IdentityError};

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

fn read_cert(path: &Path, name: &str) -> Result<CertInfo, CliError> {
    let input = format!("{name} {:?}", path.display().to_string());
    let relabel = |e: IdentityError| match e {
        IdentityError::Invalid(i) => IdentityError::Invalid(i.named(input.clone())),
        other => other,
    };
    let bytes = tasks::fsutil::read_bounded(path, &input, tasks::fsutil::limits::CERT_FILE)
        .map_err(|e| {
            CliError::from(IdentityError::Invalid(
                e.into_invalid(tasks::error::Input::Cert),
            ))
        })?;
    Ok(identity::inspect_bytes(&bytes).map_err(relabel)?)
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
    let info = read_cert(&args.file, "certificate")?;
    let other = match &args.against {
        Some(p) => Some(read_cert(p, "--against")?),
        None => None,
    };
    let difference = other.as_ref().map(|o| identity::compare(&info, o));
    let all = other
        .as_ref()
        .map(|o| identity::differences(&info, o))
        .unwrap_or_default();
    if args.json {
        let mut out = serde_json::json!({ "certificate": info });
        if let (Some(o), Some(d)) = (&other, &difference) {
            out["against"] = serde_json::json!(o);
            out["difference"] = serde_json::json!(d);
            out["differences"] = serde_json::json!(all);
            out["explanation"] = serde_json::json!(d.explanation());
        }
        println!("{out}");
        return Ok(());
    }
    print_info("Certificate", &args.file, &info);
    if let (Some(o), Some(d), Some(p)) = (&other, &difference, &args.against) {
        print_info("Against", p, o);
        if all.len() > 1 {
            println!("Diagnosis (several inputs differ):");
            for d in &all {
                println!("  - {}", d.explanation());
            }
        } else {
            println!("Diagnosis: {}", d.explanation());
        }
    }
    if info.is_alias {
        println!("Note: {}", identity::FIXED_NONCE_WARNING);
    }
    Ok(())
}
