//! `devkit generate-cert`: the device's alias certificate from the build and its UDS.
//!
//! Contract (later tooling depends on it):
//! `devkit generate-cert (--bin FILE --map FILE | --build-dir DIR) (--uds-file FILE | --uds-stdin)
//! (--registration-id ID | --mac HEX12 --firmware-version X.Y.Z) [--out-dir DIR] [--device-cert]
//! [--alias-key] [--json] [--allow-sample-uds] [--project-dir DIR]`, or `--batch MANIFEST.csv`
//! instead of the UDS and ID options. Every input is validated before anything is written;
//! exit 2 names the bad input. Existing files with different content are kept as
//! `<name>.<UTC timestamp>.bak` (said in the output); identical content is left untouched
//! (`tasks::identity::files`).

use super::{CliError, CliResult};
use anyhow::Context;
use std::path::{Path, PathBuf};
use tasks::error::Input;
use tasks::fsutil::limits;
use tasks::identity::batch::{self, ManifestRow};
use tasks::identity::files::{self, FileAction, FileKind, FileOptions};
use tasks::identity::{self, FirmwareImage, IdentityError, RegistrationId, Uds, UdsSource};

#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("image").required(true).args(["bin", "build_dir"])))]
#[command(group(clap::ArgGroup::new("uds_source").args(["uds_file", "uds_stdin"])))]
pub struct Args {
    /// The sketch's firmware image (`<sketch>.ino.bin`).
    #[arg(long, value_name = "FILE", requires = "map")]
    bin: Option<PathBuf>,
    /// The linker map of the same build (`<sketch>.ino.map`).
    #[arg(long, value_name = "FILE", requires = "bin")]
    map: Option<PathBuf>,
    /// A build directory holding exactly one `*.ino.bin` + `*.ino.map` pair.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["bin", "map"])]
    build_dir: Option<PathBuf>,
    /// File holding the device's UDS (64 hex digits). The UDS is never taken on the command line.
    #[arg(long, value_name = "FILE")]
    uds_file: Option<PathBuf>,
    /// Read the UDS from the first line of standard input.
    #[arg(long)]
    uds_stdin: bool,
    /// Never accepted: catches `--uds <hex>` to refuse it without echoing the secret.
    #[arg(long, hide = true, value_name = "NEVER")]
    uds: Option<zeroize::Zeroizing<String>>,
    /// Registration ID (1 to 64 characters of a-z, 0-9 and -).
    #[arg(long, value_name = "ID", conflicts_with_all = ["mac", "firmware_version"])]
    registration_id: Option<String>,
    /// Device MAC (12 hex digits, `:`/`-` allowed) for the automatic ID `az-<mac>v<x>v<y>v<z>`.
    #[arg(long, value_name = "HEX12", requires = "firmware_version")]
    mac: Option<String>,
    /// DevKit firmware (SDK) version `X.Y.Z` for the automatic ID.
    #[arg(long, value_name = "X.Y.Z", requires = "mac")]
    firmware_version: Option<String>,
    /// Factory batch: CSV `uds_file,registration_id` or `uds_file,mac,firmware_version`.
    #[arg(long, value_name = "MANIFEST.csv", conflicts_with_all = ["uds_file", "uds_stdin", "registration_id", "mac", "firmware_version"])]
    batch: Option<PathBuf>,
    /// Where to write the certificates (default: current directory).
    #[arg(long, value_name = "DIR", default_value = ".")]
    out_dir: PathBuf,
    /// Also write `device-cert.pem` and `device-id-pub.pem`.
    #[arg(long)]
    device_cert: bool,
    /// Also write the alias private key `alias-key.pem` (mode 0600).
    #[arg(long)]
    alias_key: bool,
    /// Print one JSON object instead of the human summary.
    #[arg(long)]
    json: bool,
    /// Accept the published sample UDS (tests only: its keys are public).
    #[arg(long)]
    allow_sample_uds: bool,
    /// Project whose state records the generated identity (`<DIR>/.devkit/state.json`).
    #[arg(
        long = "project-dir",
        alias = "project",
        value_name = "DIR",
        default_value = "."
    )]
    project: PathBuf,
}

impl Args {
    fn file_options(&self, per_device_dir: bool) -> FileOptions {
        FileOptions {
            device_cert: self.device_cert,
            alias_key: self.alias_key,
            per_device_dir,
        }
    }
}

/// `--flag "value"` as error messages name inputs.
fn flag(name: &str, value: &impl std::fmt::Display) -> String {
    format!("{name} {:?}", value.to_string())
}

/// Re-label an invalid-input error with the command-line input it came from.
fn relabel(e: IdentityError, input: String) -> IdentityError {
    match e {
        IdentityError::Invalid(i) => IdentityError::Invalid(i.named(input)),
        other => other,
    }
}

fn invalid(input: String, reason: impl Into<String>) -> CliError {
    CliError::invalid(format!("invalid {input}: {}", reason.into()))
}

fn input_error(e: tasks::fsutil::InputError) -> CliError {
    invalid(e.input, e.reason)
}

pub fn run(args: Args) -> CliResult {
    // 1. Validate every input; nothing is written before all of them are good.
    if args.uds.is_some() {
        return Err(invalid(
            "--uds".into(),
            "the UDS is never taken on the command line (it would show in the process list and shell history); use --uds-file FILE or --uds-stdin",
        ));
    }
    if let Some(manifest) = &args.batch {
        let image = load_image(&args)?;
        return run_batch(&args, manifest, &image);
    }
    let id = registration_id(&args)?;
    let mut warnings = Vec::new();
    let uds = read_uds(&args)?;
    let image = load_image(&args)?;
    let derived = identity::derive(&uds, &image, &id)?;
    drop(uds);

    // 2. Write the files (atomically, backing up a different identity's file).
    let written = files::write_identity(&derived, &args.out_dir, args.file_options(false))
        .context("writing the certificate files")?;
    warnings.extend(written.iter().filter_map(files::WrittenFile::warning));
    let path_of = |kind| {
        written
            .iter()
            .find(|f| f.kind == kind)
            .map(|f| f.path.clone())
    };
    let alias_path = written[0].path.clone();

    // 3. Record the identity in the project state (public data only).
    if let Err(e) = files::record_generated(&args.project, &derived, &alias_path) {
        warnings.push(format!(
            "the certificate was written but the project state was not updated: {e}"
        ));
    }

    if args.json {
        let out = serde_json::json!({
            "registrationId": derived.registration_id.as_str(),
            "aliasCert": alias_path,
            "deviceCert": path_of(FileKind::DeviceCert),
            "deviceIdPublicKey": path_of(FileKind::DeviceIdPublicKey),
            "aliasKey": path_of(FileKind::AliasKey),
            "sha1Thumbprint": derived.sha1_thumbprint(),
            "sha256Thumbprint": derived.sha256_thumbprint(),
            "fwid": derived.fwid_hex(),
            "files": written,
            "warnings": warnings,
            "note": identity::FIXED_NONCE_WARNING,
        });
        println!("{out}");
    } else {
        println!("Registration ID:    {}", derived.registration_id);
        println!("SHA-1 thumbprint:   {}", derived.sha1_thumbprint());
        println!("SHA-256 thumbprint: {}", derived.sha256_thumbprint());
        println!("FWID:               {}", derived.fwid_hex());
        for f in &written {
            let action = match f.action {
                FileAction::Written => "written",
                FileAction::Unchanged => "unchanged",
                FileAction::Replaced => "replaced; previous file backed up",
            };
            println!(
                "{:<19} {} ({action})",
                format!("{}:", f.kind.label()),
                f.path.display()
            );
        }
        for w in &warnings {
            eprintln!("warning: {w}");
        }
        println!("Note: {}", identity::FIXED_NONCE_WARNING);
    }
    Ok(())
}

/// The image from `--bin/--map` or `--build-dir`; unreadable or inconsistent inputs are invalid.
fn load_image(args: &Args) -> Result<FirmwareImage, CliError> {
    let (bin, map, bin_name, map_name) = match (&args.bin, &args.map, &args.build_dir) {
        (Some(bin), Some(map), _) => (
            bin.clone(),
            map.clone(),
            flag("--bin", &bin.display()),
            flag("--map", &map.display()),
        ),
        (_, _, Some(dir)) => {
            let (bin, map) = find_build_pair(dir)?;
            let (b, m) = (
                flag("firmware image", &bin.display()),
                flag("map file", &map.display()),
            );
            (bin, map, b, m)
        }
        _ => {
            return Err(CliError::invalid(
                "give --bin FILE --map FILE, or --build-dir DIR",
            ))
        }
    };
    Ok(FirmwareImage::load_named(&bin, &map, &bin_name, &map_name)?)
}

/// The image + map pair in `dir`, by the one rule for build outputs ([`tasks::build::find_outputs`]).
fn find_build_pair(dir: &Path) -> Result<(PathBuf, PathBuf), CliError> {
    let name = flag("--build-dir", &dir.display());
    tasks::build::find_image_and_map(dir).map_err(|e| match e {
        tasks::build::FindOutputError::Invalid(i) => invalid(name, i.reason),
        tasks::build::FindOutputError::Unreadable { source, .. } => {
            invalid(name, format!("cannot be read: {source}"))
        }
        e => invalid(name, e.to_string()),
    })
}

/// [`RegistrationId::from_inputs`] (the one rule), a refused value named by its flag.
fn registration_id(args: &Args) -> Result<RegistrationId, CliError> {
    let (id, mac, version) = (
        args.registration_id.as_deref(),
        args.mac.as_deref(),
        args.firmware_version.as_deref(),
    );
    RegistrationId::from_inputs(id, mac, version).map_err(|e| {
        let value = match &e {
            IdentityError::Invalid(i) => match i.input {
                Input::RegistrationId => id.map(|v| ("--registration-id", v)),
                Input::Mac => mac.map(|v| ("--mac", v)),
                Input::FirmwareVersion => version.map(|v| ("--firmware-version", v)),
                _ => None,
            },
            _ => None,
        };
        match value {
            Some((name, v)) => relabel(e, flag(name, &v)).into(),
            None => e.into(),
        }
    })
}

/// The UDS from `--uds-file` or stdin (`tasks::identity::read_uds`: bounded, the published
/// sample refused unless `--allow-sample-uds`, a file readable by others warned about).
fn read_uds(args: &Args) -> Result<Uds, CliError> {
    const SAMPLE_HINT: &str = "--allow-sample-uds accepts it for a throw-away test";
    if let Some(path) = &args.uds_file {
        super::read_uds(
            UdsSource::File(path),
            &flag("--uds-file", &path.display()),
            args.allow_sample_uds,
            SAMPLE_HINT,
        )
    } else if args.uds_stdin {
        if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
            eprint!("UDS (64 hex digits): ");
        }
        super::read_uds(
            UdsSource::Stdin,
            "--uds-stdin",
            args.allow_sample_uds,
            SAMPLE_HINT,
        )
    } else {
        Err(CliError::invalid(
            "give the UDS with --uds-file FILE or --uds-stdin (never on the command line)",
        ))
    }
}

/// `--batch`: one identity per manifest row; failing rows are reported, the others written.
fn run_batch(args: &Args, manifest: &Path, image: &FirmwareImage) -> CliResult {
    let name = flag("--batch", &manifest.display());
    let text =
        tasks::fsutil::read_text_bounded(manifest, &name, limits::MANIFEST).map_err(input_error)?;
    let base = manifest.parent().unwrap_or(Path::new("."));
    let rows = batch::parse_manifest(&text, base, &name)?;
    let mut seen = std::collections::HashMap::new();
    let mut results: Vec<(&ManifestRow, Result<BatchRowSummary, anyhow::Error>)> =
        Vec::with_capacity(rows.len());
    // Rows are committed in chunks: one atomic, durable write (one sync) per chunk instead of
    // one fsync per file, which would bound a factory batch by disk latency.
    for chunk in rows.chunks(BATCH_COMMIT_ROWS) {
        let (mut indices, mut plans) = (Vec::new(), Vec::new());
        for row in chunk {
            match batch_row(args, row, image, &mut seen) {
                Ok((summary, plan)) => {
                    indices.push(results.len());
                    plans.push(plan);
                    results.push((row, Ok(summary)));
                }
                Err(e) => results.push((row, Err(e))),
            }
        }
        if let Err(e) = files::commit(&plans) {
            for i in indices {
                results[i].1 = Err(anyhow::anyhow!("writing this row's files failed: {e}"));
            }
        }
    }
    let ok = results.iter().filter(|(_, r)| r.is_ok()).count();
    let failed = results.len() - ok;
    // With --json, one document: printed here, or (rows failed) next to the error object.
    let mut document = None;
    if args.json {
        let items: Vec<_> = results
            .iter()
            .map(|(row, r)| match r {
                Ok(v) => serde_json::to_value(v).unwrap_or_default(),
                Err(e) => serde_json::json!({"line": row.line, "error": e.to_string(), "invalidInput": e.downcast_ref::<IdentityError>().is_some_and(tasks::error::DomainError::is_invalid_input)}),
            })
            .collect();
        let out = serde_json::json!({
            "results": items, "ok": ok, "failed": failed,
            "warnings": if args.allow_sample_uds { vec!["--allow-sample-uds: rows using the published sample UDS were accepted; their keys are public"] } else { vec![] },
            "note": identity::FIXED_NONCE_WARNING,
        });
        if failed == 0 {
            println!("{out}");
        }
        document = Some(out);
    } else {
        for (row, r) in &results {
            match r {
                Ok(v) => println!(
                    "line {}: {} {} {}",
                    row.line,
                    v.registration_id,
                    v.sha1_thumbprint,
                    v.alias_cert.display()
                ),
                Err(e) => eprintln!("line {}: error: {e}", row.line),
            }
        }
        println!("{ok} certificate(s) written, {failed} row(s) failed.");
        println!("Note: {}", identity::FIXED_NONCE_WARNING);
    }
    if failed > 0 {
        let e = CliError::Failed(anyhow::anyhow!(
            "{failed} of {} manifest rows failed (see above)",
            rows.len()
        ));
        return Err(match document {
            Some(doc) => e.with_document(doc),
            None => e,
        });
    }
    Ok(())
}

/// How many manifest rows are written (and synced) together.
const BATCH_COMMIT_ROWS: usize = 256;

/// One batch row's result (an item of `results` in `--batch --json`, and a line of the text).
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct BatchRowSummary {
    line: usize,
    registration_id: String,
    alias_cert: PathBuf,
    sha1_thumbprint: String,
    sha256_thumbprint: String,
    fwid: String,
    warnings: Vec<String>,
}

/// One batch row: derive and plan its files. Returns the row's summary and the plan.
fn batch_row(
    args: &Args,
    row: &ManifestRow,
    image: &FirmwareImage,
    seen: &mut std::collections::HashMap<String, usize>,
) -> Result<(BatchRowSummary, files::PlannedWrite), anyhow::Error> {
    let id = row.registration_id()?;
    if let Some(first) = seen.get(id.as_str()) {
        anyhow::bail!(
            "{}: registration ID {:?} already used on manifest line {first}",
            row.label(),
            id.as_str()
        );
    }
    seen.insert(id.as_str().to_string(), row.line);
    let d = batch::derive_row(row, image, args.allow_sample_uds)?;
    let plan = files::plan_identity(&d, &args.out_dir, args.file_options(true))?;
    let summary = BatchRowSummary {
        line: row.line,
        registration_id: d.registration_id.as_str().to_string(),
        alias_cert: plan.files[0].path.clone(),
        sha1_thumbprint: d.sha1_thumbprint(),
        sha256_thumbprint: d.sha256_thumbprint(),
        fwid: d.fwid_hex(),
        warnings: plan
            .files
            .iter()
            .filter_map(files::WrittenFile::warning)
            .collect(),
    };
    Ok((summary, plan))
}
