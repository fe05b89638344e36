//! OpenOCD fallback: the vendor's exact upload command, run as an external `openocd`.
//!
//! The vendor's package ran `program <bin> verify reset 0x800C000` with
//! `interface/stlink-v2-1.cfg` and `target/stm32f4x.cfg`; we run the same, followed by
//! `shutdown` so that OpenOCD exits instead of staying up as a debug server.

use super::{guard, FlashError};
use crate::error::Input;
use crate::progress::{CancellationToken, Progress};
use std::path::{Path, PathBuf};

/// The arguments for `openocd` that program `bin` at `address`.
pub fn args(bin: &Path, address: u32) -> Result<Vec<String>, FlashError> {
    let path = bin.to_str().ok_or_else(|| {
        FlashError::invalid(Input::Bin, format!("{} is not valid UTF-8", bin.display()))
    })?;
    // The path goes into a Tcl word in braces: braces inside it cannot be quoted safely.
    if path.contains(['{', '}']) || path.contains('\n') {
        return Err(FlashError::invalid(Input::Bin, format!("{path} contains braces or a newline, which OpenOCD's command line cannot carry; copy the image elsewhere")));
    }
    Ok(vec![
        "-f".into(),
        "interface/stlink-v2-1.cfg".into(),
        "-f".into(),
        "target/stm32f4x.cfg".into(),
        "-c".into(),
        format!("program {{{path}}} verify reset {address:#x}"),
        "-c".into(),
        "shutdown".into(),
    ])
}

/// `openocd` on PATH, or the explicit one.
pub fn find(explicit: Option<&Path>) -> Result<PathBuf, FlashError> {
    match explicit {
        Some(p) if p.is_file() => Ok(p.to_path_buf()),
        Some(p) => Err(FlashError::ToolNotFound {
            configured: Some(p.to_path_buf()),
        }),
        None => which::which("openocd").map_err(|_| FlashError::ToolNotFound { configured: None }),
    }
}

/// Turn OpenOCD's output into an error that says what to do.
pub fn classify_failure(output: &str) -> FlashError {
    let tail: String = output
        .lines()
        .filter(|l| l.starts_with("Error") || l.contains("**"))
        .collect::<Vec<_>>()
        .join("\n");
    let detail = if tail.is_empty() {
        output.trim().to_string()
    } else {
        tail
    };
    if output.contains("LIBUSB_ERROR_ACCESS") {
        return FlashError::PermissionDenied {
            detail,
            hint: super::UDEV_HINT.into(),
        };
    }
    if output.contains("open failed")
        || output.contains("LIBUSB_ERROR_NOT_FOUND")
        || output.contains("unable to find a matching CMSIS-DAP device")
    {
        return FlashError::NoProbe {
            wanted: "An ST-LINK/V2-1 (0483:374b) reachable by OpenOCD".into(),
            found: vec![],
            detail: format!("OpenOCD could not open an ST-LINK ({detail}). Connect the DevKit with a data-capable USB cable and check that no other program (a monitor, another OpenOCD) holds the probe."),
        };
    }
    FlashError::Backend(format!("openocd failed:\n{detail}"))
}

/// Program `bin` (already on disk) with OpenOCD.
pub async fn flash(
    openocd: &Path,
    bin: &Path,
    len: usize,
    address: u32,
    progress: &Progress,
    cancel: &CancellationToken,
) -> Result<(), FlashError> {
    guard::check(address, len)?;
    let bin = std::path::absolute(bin)
        .map_err(|e| FlashError::invalid(Input::Bin, format!("{}: {e}", bin.display())))?;
    let args = args(&bin, address)?;
    progress.report(
        format!("Running {} {}", openocd.display(), args.join(" ")),
        None,
    );
    let child = tokio::process::Command::new(openocd)
        .args(&args)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::select! {
        _ = cancel.cancelled() => return Err(FlashError::Cancelled),
        out = child => out.map_err(|e| FlashError::Backend(format!("cannot run {}: {e}", openocd.display())))?,
    };
    // OpenOCD logs to stderr.
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success()
        && !text.contains("** Programming Failed **")
        && !text.contains("** Verify Failed **")
    {
        Ok(())
    } else {
        Err(classify_failure(&text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[allow(unused_imports)]
    use crate::error::DomainError;

    #[test]
    fn vendor_command() {
        let a = args(
            Path::new("/tmp/my build/DevKitDPS.ino.bin"),
            guard::APP_BASE,
        )
        .unwrap();
        assert_eq!(
            a,
            [
                "-f",
                "interface/stlink-v2-1.cfg",
                "-f",
                "target/stm32f4x.cfg",
                "-c",
                "program {/tmp/my build/DevKitDPS.ino.bin} verify reset 0x800c000",
                "-c",
                "shutdown"
            ]
        );
        assert!(args(Path::new("/tmp/a}b.bin"), guard::APP_BASE)
            .unwrap_err()
            .is_invalid_input());
    }

    #[test]
    fn classifies_openocd_output() {
        let no_probe = "Info : clock speed 2000 kHz\nError: open failed\nin procedure 'program'\n** OpenOCD init failed **\n";
        assert!(matches!(
            classify_failure(no_probe),
            FlashError::NoProbe { .. }
        ));
        assert!(matches!(
            classify_failure(
                "Error: libusb_open() failed with LIBUSB_ERROR_ACCESS\nError: open failed"
            ),
            FlashError::PermissionDenied { .. }
        ));
        assert!(matches!(
            classify_failure("** Verify Failed **"),
            FlashError::Backend(_)
        ));
    }
}
