//! `devkit generate-cert`: the device's alias certificate from the build and its UDS.
//!
//! Contract (later tooling depends on it):
//! `devkit generate-cert (--bin FILE --map FILE | --build-dir DIR) (--uds-file FILE | --uds-stdin)
//! (--registration-id ID | --mac HEX12 --firmware-version X.Y.Z) [--out-dir DIR] [--device-cert]
//! [--alias-key] [--json] [--allow-sample-uds] [--project DIR]`, or `--batch MANIFEST.csv`
//! instead of the UDS and ID options. Every input is validated before anything is written;
//! exit 2 names the bad input. Existing files with different content are kept as
//! `<name>.<UTC timestamp>.bak` (said in the output); identical content is left untouched.

use super::{CliError, CliResult};
use anyhow::Context;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use tasks::fsutil::{self, Mode};
use tasks::identity::batch::{self, ManifestRow};
use tasks::identity::{self, DeviceIdentity, FirmwareImage, IdentityError, RegistrationId, Uds};
use zeroize::Zeroizing;

#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("image").required(true).args(["bin", "build_dir"])))]
#[command(group(clap::ArgGroup::new("uds").args(["uds_file", "uds_stdin"])))]
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
    #[arg(long, value_name = "DIR", default_value = ".")]
    project: PathBuf,
}

/// `--flag "value"` as error messages name inputs.
fn flag(name: &str, value: &impl std::fmt::Display) -> String {
    format!("{name} {:?}", value.to_string())
}

/// Re-label an invalid-input error with the command-line input it came from.
fn relabel(e: IdentityError, input: String) -> IdentityError {
    match e {
        IdentityError::Invalid { reason, .. } => IdentityError::Invalid { input, reason },
        other => other,
    }
}

fn invalid(input: String, reason: impl Into<String>) -> CliError {
    IdentityError::Invalid { input, reason: reason.into() }.into()
}

pub fn run(args: Args) -> CliResult {
    // 1. Validate every input; nothing is written before all of them are good.
    if let Some(manifest) = &args.batch {
        let image = load_image(&args)?;
        return run_batch(&args, manifest, &image);
    }
    let id = registration_id(&args)?;
    let mut warnings = Vec::new();
    let uds = read_uds(&args, &mut warnings)?;
    let image = load_image(&args)?;
    let derived = identity::derive(&uds, &image, &id)?;
    drop(uds);

    // 2. Write the files (atomically, backing up a different identity's file).
    let files = identity_files(&derived, &args.out_dir, "", args.device_cert, args.alias_key);
    let outcomes = write_files(&files)?;
    for o in &outcomes {
        if let Some(w) = o.warning() {
            warnings.push(w);
        }
    }
    let alias_path = outcomes[0].path.clone();
    let device_path = args.device_cert.then(|| outcomes[1].path.clone());
    let key_path = args.alias_key.then(|| outcomes[outcomes.len() - 1].path.clone());

    // 3. Record the identity in the project state (public data only).
    let record = tasks::project::IdentityRecord {
        registration_id: derived.registration_id.to_string(),
        fwid: hex::encode_upper(derived.fwid),
        sha256_thumbprint: derived.sha256_thumbprint(),
        alias_cert: alias_path.clone(),
        source: tasks::project::IdentitySource::Generated,
    };
    let unchanged = tasks::project::ProjectState::load(&args.project)
        .is_ok_and(|s| s.last_generated.as_ref() == Some(&record));
    if !unchanged {
        if let Err(e) = tasks::project::ProjectState::update(&args.project, |s| s.last_generated = Some(record)) {
            warnings.push(format!("the certificate was written but the project state was not updated: {e}"));
        }
    }

    if args.json {
        let out = serde_json::json!({
            "registration_id": derived.registration_id.as_str(),
            "alias_cert": alias_path,
            "device_cert": device_path,
            "device_id_public_key": args.device_cert.then(|| outcomes[2].path.clone()),
            "alias_key": key_path,
            "sha1_thumbprint": derived.sha1_thumbprint(),
            "sha256_thumbprint": derived.sha256_thumbprint(),
            "fwid": derived.fwid_hex(),
            "files": outcomes.iter().map(|o| serde_json::json!({"path": o.path, "action": o.action.as_str(), "backup": o.backup})).collect::<Vec<_>>(),
            "warnings": warnings,
            "note": identity::FIXED_NONCE_WARNING,
        });
        println!("{out}");
    } else {
        println!("Registration ID:    {}", derived.registration_id);
        println!("SHA-1 thumbprint:   {}", derived.sha1_thumbprint());
        println!("SHA-256 thumbprint: {}", derived.sha256_thumbprint());
        println!("FWID:               {}", derived.fwid_hex());
        for o in &outcomes {
            println!("{:<19} {} ({})", format!("{}:", o.what), o.path.display(), o.action.as_str());
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
        (Some(bin), Some(map), _) => (bin.clone(), map.clone(), flag("--bin", &bin.display()), flag("--map", &map.display())),
        (_, _, Some(dir)) => {
            let (bin, map) = find_build_pair(dir)?;
            let (b, m) = (flag("firmware image", &bin.display()), flag("map file", &map.display()));
            (bin, map, b, m)
        }
        _ => return Err(CliError::invalid("give --bin FILE --map FILE, or --build-dir DIR")),
    };
    let bin_bytes = std::fs::read(&bin).map_err(|e| invalid(bin_name.clone(), format!("cannot be read: {e}")))?;
    let map_bytes = std::fs::read(&map).map_err(|e| invalid(map_name.clone(), format!("cannot be read: {e}")))?;
    Ok(FirmwareImage::from_parts_named(bin_bytes, &String::from_utf8_lossy(&map_bytes), &bin_name, &map_name)?)
}

/// The single `*.ino.bin` + `*.ino.map` pair in `dir`.
fn find_build_pair(dir: &Path) -> Result<(PathBuf, PathBuf), CliError> {
    let name = flag("--build-dir", &dir.display());
    let entries = std::fs::read_dir(dir).map_err(|e| invalid(name.clone(), format!("cannot be read: {e}")))?;
    let mut bins: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.ends_with(".ino.bin")))
        .collect();
    bins.sort();
    match bins.len() {
        0 => Err(invalid(name, "holds no *.ino.bin; expected exactly one *.ino.bin + *.ino.map pair (build the sketch first)")),
        1 => {
            let bin = bins.remove(0);
            let map = bin.with_extension("map");
            if !map.is_file() {
                return Err(invalid(name, format!("has {} but no matching {}", file_name(&bin), file_name(&map))));
            }
            Ok((bin, map))
        }
        n => Err(invalid(
            name,
            format!(
                "holds {n} *.ino.bin files ({}); expected exactly one: pass --bin and --map instead",
                bins.iter().map(|b| file_name(b)).collect::<Vec<_>>().join(", ")
            ),
        )),
    }
}

fn file_name(p: &Path) -> String {
    p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

fn registration_id(args: &Args) -> Result<RegistrationId, CliError> {
    if let Some(id) = &args.registration_id {
        return Ok(RegistrationId::parse(id).map_err(|e| relabel(e, flag("--registration-id", id)))?);
    }
    match (&args.mac, &args.firmware_version) {
        (Some(mac), Some(version)) => {
            identity::normalize_mac(mac).map_err(|e| relabel(e, flag("--mac", mac)))?;
            identity::validate_firmware_version(version).map_err(|e| relabel(e, flag("--firmware-version", version)))?;
            Ok(RegistrationId::from_mac_and_version(mac, version).map_err(|e| relabel(e, flag("--firmware-version", version)))?)
        }
        _ => Err(CliError::invalid("give --registration-id ID, or --mac HEX12 with --firmware-version X.Y.Z")),
    }
}

/// The UDS from `--uds-file` or one line of stdin, checked against the published sample.
fn read_uds(args: &Args, warnings: &mut Vec<String>) -> Result<Uds, CliError> {
    let (uds, input) = if let Some(path) = &args.uds_file {
        let input = flag("--uds-file", &path.display());
        warn_if_readable_by_others(path, warnings);
        (batch::read_uds_file(path, &input)?, input)
    } else if args.uds_stdin {
        let mut line = Zeroizing::new(String::new());
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| invalid("--uds-stdin".into(), format!("cannot be read: {e}")))?;
        (Uds::parse(&line).map_err(|e| relabel(e, "--uds-stdin".into()))?, "--uds-stdin".to_string())
    } else {
        return Err(CliError::invalid("give the UDS with --uds-file FILE or --uds-stdin (never on the command line)"));
    };
    if uds.is_published_sample() {
        if !args.allow_sample_uds {
            return Err(invalid(input, identity::SAMPLE_UDS_REFUSAL));
        }
        warnings.push("using the published sample UDS (--allow-sample-uds): this identity's keys are public".into());
    }
    Ok(uds)
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path, warnings: &mut Vec<String>) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path) {
        if meta.permissions().mode() & 0o077 != 0 {
            warnings.push(format!("{} is readable by other users; a UDS file should be mode 0600", path.display()));
        }
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path, _warnings: &mut Vec<String>) {}

/// A file to write: what it is, where, its bytes, its mode.
struct OutFile {
    what: &'static str,
    path: PathBuf,
    contents: Zeroizing<Vec<u8>>,
    mode: Mode,
}

/// The files of one identity: alias certificate first, then the optional ones in a fixed
/// order (device certificate, DeviceID public key, alias key last). `prefix` prefixes the
/// optional files' names (batch mode puts them in a per-device directory).
fn identity_files(d: &DeviceIdentity, out_dir: &Path, prefix: &str, device_cert: bool, alias_key: bool) -> Vec<OutFile> {
    let dir = std::path::absolute(out_dir).unwrap_or_else(|_| out_dir.to_path_buf());
    let file = |what, name: String, contents: Vec<u8>, mode| OutFile { what, path: dir.join(name), contents: Zeroizing::new(contents), mode };
    let mut files = vec![file("Alias certificate", format!("{}.pem", d.registration_id), d.alias_cert_pem().into_bytes(), Mode::Public)];
    if device_cert {
        files.push(file("DeviceID cert", format!("{prefix}device-cert.pem"), d.device_cert_pem().into_bytes(), Mode::Public));
        files.push(file("DeviceID key", format!("{prefix}device-id-pub.pem"), d.device_id_public_pem().into_bytes(), Mode::Public));
    }
    if alias_key {
        let pem = d.alias_key_pem();
        files.push(OutFile { what: "Alias key", path: dir.join(format!("{prefix}alias-key.pem")), contents: Zeroizing::new(pem.as_bytes().to_vec()), mode: Mode::Private });
    }
    files
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Action {
    Written,
    Unchanged,
    Replaced,
}

impl Action {
    fn as_str(self) -> &'static str {
        match self {
            Action::Written => "written",
            Action::Unchanged => "unchanged",
            Action::Replaced => "replaced, previous file backed up",
        }
    }
}

struct Outcome {
    what: &'static str,
    path: PathBuf,
    action: Action,
    backup: Option<PathBuf>,
}

impl Outcome {
    fn warning(&self) -> Option<String> {
        self.backup.as_ref().map(|b| {
            format!("{} held a different identity; it was kept as {} and replaced", self.path.display(), b.display())
        })
    }
}

/// Write `files` as one unit: identical files are left alone, different ones are first kept
/// as `<name>.<UTC timestamp>.bak` (a hard link, so the original never disappears), then all
/// new contents are renamed into place together.
fn write_files(files: &[OutFile]) -> Result<Vec<Outcome>, CliError> {
    let stamp = utc_stamp();
    let mut outcomes = Vec::with_capacity(files.len());
    let mut to_write = Vec::new();
    for f in files {
        let (action, backup) = match std::fs::read(&f.path) {
            Ok(existing) => {
                let existing = Zeroizing::new(existing);
                if *existing == *f.contents {
                    (Action::Unchanged, None)
                } else {
                    (Action::Replaced, Some(backup_file(&f.path, &stamp)?))
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (Action::Written, None),
            Err(e) => return Err(CliError::Failed(anyhow::anyhow!("cannot read existing {}: {e}", f.path.display()))),
        };
        if action != Action::Unchanged {
            to_write.push((f.path.clone(), f.contents.to_vec(), f.mode));
        }
        outcomes.push(Outcome { what: f.what, path: f.path.clone(), action, backup });
    }
    let result = fsutil::write_all_atomic(&to_write);
    for (_, contents, _) in &mut to_write {
        zeroize::Zeroize::zeroize(contents);
    }
    result.context("writing the certificate files")?;
    Ok(outcomes)
}

/// Keep `path` as `<name>.<stamp>.bak` (a fresh name) and return the backup's path.
fn backup_file(path: &Path, stamp: &str) -> Result<PathBuf, CliError> {
    let name = file_name(path);
    let mut n = 0;
    loop {
        let suffix = if n == 0 { String::new() } else { format!("-{n}") };
        let bak = path.with_file_name(format!("{name}.{stamp}{suffix}.bak"));
        match std::fs::hard_link(path, &bak) {
            Ok(()) => return Ok(bak),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < 100 => n += 1,
            Err(_) => {
                // No hard links here: copy (permissions are copied too, so a key stays 0600).
                if bak.exists() && n < 100 {
                    n += 1;
                    continue;
                }
                std::fs::copy(path, &bak).with_context(|| format!("backing up {} to {}", path.display(), bak.display()))?;
                return Ok(bak);
            }
        }
    }
}

fn utc_stamp() -> String {
    let now = time::OffsetDateTime::now_utc();
    let fmt = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    now.format(&fmt).unwrap_or_else(|_| now.unix_timestamp().to_string())
}

/// `--batch`: one identity per manifest row; failing rows are reported, the others written.
fn run_batch(args: &Args, manifest: &Path, image: &FirmwareImage) -> CliResult {
    let name = flag("--batch", &manifest.display());
    let text = std::fs::read_to_string(manifest).map_err(|e| invalid(name.clone(), format!("cannot be read: {e}")))?;
    let base = manifest.parent().unwrap_or(Path::new("."));
    let rows = batch::parse_manifest(&text, base, &name)?;
    let mut seen = std::collections::HashMap::new();
    let mut results = Vec::with_capacity(rows.len());
    let (mut ok, mut failed) = (0usize, 0usize);
    for row in &rows {
        let result = batch_row(args, row, image, &mut seen);
        match &result {
            Ok(_) => ok += 1,
            Err(_) => failed += 1,
        }
        results.push((row, result));
    }
    if args.json {
        let items: Vec<_> = results
            .iter()
            .map(|(row, r)| match r {
                Ok(v) => v.clone(),
                Err(e) => serde_json::json!({"line": row.line, "error": e.to_string(), "invalid_input": e.downcast_ref::<IdentityError>().is_some_and(IdentityError::is_invalid_input)}),
            })
            .collect();
        let out = serde_json::json!({
            "results": items, "ok": ok, "failed": failed,
            "warnings": if args.allow_sample_uds { vec!["--allow-sample-uds: rows using the published sample UDS were accepted; their keys are public"] } else { vec![] },
            "note": identity::FIXED_NONCE_WARNING,
        });
        println!("{out}");
    } else {
        for (row, r) in &results {
            match r {
                Ok(v) => println!("line {}: {} {} {}", row.line, v["registration_id"].as_str().unwrap_or(""), v["sha1_thumbprint"].as_str().unwrap_or(""), v["alias_cert"].as_str().unwrap_or("")),
                Err(e) => eprintln!("line {}: error: {e}", row.line),
            }
        }
        println!("{ok} certificate(s) written, {failed} row(s) failed.");
        println!("Note: {}", identity::FIXED_NONCE_WARNING);
    }
    if failed > 0 {
        return Err(CliError::Failed(anyhow::anyhow!("{failed} of {} manifest rows failed (see above)", rows.len())));
    }
    Ok(())
}

/// One batch row: derive and write. Returns the row's JSON summary.
fn batch_row(
    args: &Args,
    row: &ManifestRow,
    image: &FirmwareImage,
    seen: &mut std::collections::HashMap<String, usize>,
) -> Result<serde_json::Value, anyhow::Error> {
    let id = row.registration_id()?;
    if let Some(first) = seen.get(id.as_str()) {
        anyhow::bail!("{}: registration ID {:?} already used on manifest line {first}", row.label(), id.as_str());
    }
    seen.insert(id.as_str().to_string(), row.line);
    let d = batch::derive_row(row, image, args.allow_sample_uds)?;
    let files = identity_files(&d, &args.out_dir, &format!("{}/", d.registration_id), args.device_cert, args.alias_key);
    let outcomes = write_files(&files).map_err(|e| match e {
        CliError::Invalid(e) | CliError::Failed(e) => e,
    })?;
    Ok(serde_json::json!({
        "line": row.line,
        "registration_id": d.registration_id.as_str(),
        "alias_cert": outcomes[0].path,
        "sha1_thumbprint": d.sha1_thumbprint(),
        "sha256_thumbprint": d.sha256_thumbprint(),
        "fwid": d.fwid_hex(),
        "warnings": outcomes.iter().filter_map(Outcome::warning).collect::<Vec<_>>(),
    }))
}
