//! probe-rs backend: the on-board ST-LINK/V2-1, in process.
//!
//! Everything here blocks (USB), so [`flash`] runs it on `spawn_blocking`. The steps follow
//! probe-rs' own `download`: list probes, open the selected one, attach the STM32F412RGTx
//! (under reset when a plain attach fails: a sketch that reconfigured the SWD pins or sleeps
//! can refuse a plain attach), program with verify, reset.

use super::{guard, FlashError, UDEV_HINT};
use crate::error::Input;
use crate::progress::Progress;
use probe_rs::flashing::{
    DownloadOptions, FlashProgress, ProgressEvent as PrEvent, ProgressOperation,
};
use probe_rs::probe::list::{Accessibility, Lister};
use probe_rs::probe::stlink::StlinkError;
use probe_rs::probe::{DebugProbeError, DebugProbeInfo, DebugProbeSelector, ProbeCreationError};
use probe_rs::Permissions;

/// The probe-rs target of the DevKit's MCU.
pub const TARGET: &str = "STM32F412RGTx";
/// The DevKit's on-board ST-LINK/V2-1.
pub const DEVKIT_PROBE: &str = "0483:374b";

/// Parse a `VID:PID[:serial]` selector (hex VID/PID).
pub fn parse_selector(text: &str) -> Result<DebugProbeSelector, FlashError> {
    text.parse::<DebugProbeSelector>().map_err(|e| {
        FlashError::invalid(
            Input::Probe,
            format!(
                "{text:?}: {e}; expected VID:PID or VID:PID:SERIAL in hex, e.g. {DEVKIT_PROBE}"
            ),
        )
    })
}

fn describe(info: &DebugProbeInfo) -> String {
    format!(
        "{} ({:04x}:{:04x}{})",
        info.identifier,
        info.vendor_id,
        info.product_id,
        info.serial_number
            .as_deref()
            .map(|s| format!(":{s}"))
            .unwrap_or_default()
    )
}

/// Pick the probe to open from what the lister found.
fn choose(
    found: Vec<probe_rs::probe::list::ProbeListItem>,
    selector: &DebugProbeSelector,
    explicit: bool,
) -> Result<DebugProbeInfo, FlashError> {
    let all: Vec<String> = found.iter().map(|i| describe(&i.info)).collect();
    let matching: Vec<_> = found
        .into_iter()
        .filter(|i| selector.matches_probe(&i.info))
        .collect();
    let wanted = if explicit {
        format!("Probe {selector}")
    } else {
        format!("The DevKit's ST-LINK/V2-1 ({DEVKIT_PROBE})")
    };
    match matching.len() {
        0 => Err(FlashError::NoProbe {
            wanted,
            found: all,
            detail: "Connect the DevKit with a data-capable USB cable (its LED lights and a DevKit drive appears), or select another probe by VID:PID[:SERIAL].".into(),
        }),
        1 => {
            let item = matching.into_iter().next().ok_or_else(|| FlashError::Backend("probe list changed".into()))?;
            if item.accessibility == Accessibility::PermissionDenied {
                return Err(FlashError::PermissionDenied { detail: format!("{} was found but this user may not open it", describe(&item.info)), hint: UDEV_HINT.into() });
            }
            Ok(item.info)
        }
        _ => Err(FlashError::invalid(
            Input::Probe,
            format!("{wanted} matches {} probes: {}; add its serial number (VID:PID:SERIAL)", matching.len(), matching.iter().map(|i| describe(&i.info)).collect::<Vec<_>>().join(", ")),
        )),
    }
}

/// Map probe-rs' errors to ones that say what to do.
fn probe_error(e: DebugProbeError) -> FlashError {
    let stlink = match &e {
        DebugProbeError::ProbeSpecific(b) => b.downcast_ref::<StlinkError>(),
        DebugProbeError::ProbeCouldNotBeCreated(ProbeCreationError::ProbeSpecific(b)) => {
            b.downcast_ref::<StlinkError>()
        }
        _ => None,
    };
    if let Some(StlinkError::ProbeFirmwareOutdated(min)) = stlink {
        return FlashError::ProbeFirmwareTooOld(format!(
            "the ST-LINK firmware is older than probe-rs supports (minimum version {min}). Update it with ST's ST-LINK upgrade tool (STSW-LINK007), or use the OpenOCD backend"
        ));
    }
    let io = match &e {
        DebugProbeError::Usb(io)
        | DebugProbeError::ProbeCouldNotBeCreated(ProbeCreationError::Usb(io)) => Some(io),
        _ => None,
    };
    if io.is_some_and(|io| io.kind() == std::io::ErrorKind::PermissionDenied) {
        return FlashError::PermissionDenied {
            detail: e.to_string(),
            hint: UDEV_HINT.into(),
        };
    }
    if matches!(
        e,
        DebugProbeError::ProbeCouldNotBeCreated(
            ProbeCreationError::NotFound | ProbeCreationError::CouldNotOpen
        )
    ) {
        return FlashError::Backend(format!("{e}: the probe was listed but could not be opened; check that no other program (OpenOCD, another flasher) holds it, and the USB permissions ({UDEV_HINT})"));
    }
    FlashError::Backend(format!("probe: {e}"))
}

fn session_error(e: probe_rs::Error) -> FlashError {
    match e {
        probe_rs::Error::Probe(p) => probe_error(p),
        other => FlashError::Backend(format!("attaching to {TARGET}: {other}")),
    }
}

/// Program `image` at `address` with probe-rs, verify, and reset. Blocking.
pub fn flash_blocking(
    image: &[u8],
    address: u32,
    selector: Option<&str>,
    progress: &Progress,
) -> Result<(), FlashError> {
    guard::check(address, image.len())?;
    let (sel, explicit) = match selector {
        Some(s) => (parse_selector(s)?, true),
        None => (parse_selector(DEVKIT_PROBE)?, false),
    };
    let lister = Lister::new();
    progress.report("Looking for the probe", None);
    let info = choose(lister.list_all_with_access(), &sel, explicit)?;
    progress.report(format!("Opening {}", describe(&info)), None);
    let probe = info.open().map_err(probe_error)?;
    let mut session = match probe.attach(TARGET, Permissions::default()) {
        Ok(s) => s,
        Err(first) => {
            progress.warn(format!(
                "plain attach failed ({first}); retrying under reset"
            ));
            let probe = info.open().map_err(probe_error)?;
            probe
                .attach_under_reset(TARGET, Permissions::default())
                .map_err(session_error)?
        }
    };
    let mut loader = session.target().flash_loader();
    loader
        .add_data(address as u64, image)
        .map_err(|e| FlashError::Backend(format!("preparing the image: {e}")))?;

    let mut totals = std::collections::HashMap::<&'static str, (u64, u64)>::new();
    let p = progress.clone();
    let mut options = DownloadOptions::default();
    options.verify = true;
    options.progress = FlashProgress::new(move |ev| {
        let name = |op: ProgressOperation| match op {
            ProgressOperation::Fill => "Reading back",
            ProgressOperation::Erase => "Erasing",
            ProgressOperation::Program => "Programming",
            ProgressOperation::Verify => "Verifying",
        };
        match ev {
            PrEvent::AddProgressBar { operation, total } => {
                let e = totals.entry(name(operation)).or_insert((0, 0));
                e.1 += total.unwrap_or(0);
            }
            PrEvent::Started(op) => p.report(name(op), Some(0)),
            PrEvent::Progress {
                operation, size, ..
            } => {
                let e = totals.entry(name(operation)).or_insert((0, 0));
                e.0 += size;
                let pct =
                    e.0.saturating_mul(100)
                        .checked_div(e.1)
                        .map_or(0, |v| v.min(100) as u32);
                p.report(name(operation), Some(pct));
            }
            PrEvent::Finished(op) => p.report(format!("{} done", name(op)), Some(100)),
            PrEvent::Failed(op) => p.warn(format!("{} failed", name(op))),
            PrEvent::DiagnosticMessage { message } => p.report(message, None),
            _ => {}
        }
    });
    loader
        .commit(&mut session, options)
        .map_err(|e| FlashError::Backend(format!("programming {TARGET}: {e}")))?;
    progress.report("Resetting", None);
    session
        .core(0)
        .and_then(|mut c| c.reset())
        .map_err(|e| FlashError::Backend(format!("the image is written and verified, but resetting failed ({e}); press the DevKit's RESET button")))?;
    Ok(())
}

/// Every probe probe-rs can see, described (for `devkit upload --list-probes` style reports).
pub fn list() -> Vec<String> {
    Lister::new().list_all().iter().map(describe).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    #[allow(unused_imports)]
    use crate::error::DomainError;
    use probe_rs::config::{MemoryRegion, Registry};

    #[test]
    fn target_exists_with_the_devkit_flash() {
        let target = Registry::from_builtin_families()
            .get_target_by_name(TARGET)
            .expect("STM32F412RGTx is a builtin target");
        let covers_app = target.memory_map.iter().any(|r| match r {
            MemoryRegion::Nvm(n) => {
                n.range.start <= guard::APP_BASE as u64 && n.range.end >= guard::FLASH_END as u64
            }
            _ => false,
        });
        assert!(covers_app, "flash region covering the application area");
    }

    #[test]
    fn selectors() {
        let s = parse_selector("0483:374B:066DFF").unwrap();
        assert_eq!(
            (s.vendor_id, s.product_id, s.serial_number.as_deref()),
            (0x0483, 0x374b, Some("066DFF"))
        );
        assert!(parse_selector("stlink").unwrap_err().is_invalid_input());
    }

    #[test]
    fn probe_errors_say_what_to_do() {
        let old = probe_error(DebugProbeError::from(StlinkError::ProbeFirmwareOutdated(
            28,
        )));
        assert!(matches!(old, FlashError::ProbeFirmwareTooOld(_)), "{old}");
        assert!(
            old.to_string().contains("STSW-LINK007") && old.to_string().contains("28"),
            "{old}"
        );
        let denied = probe_error(DebugProbeError::Usb(std::io::Error::from(
            std::io::ErrorKind::PermissionDenied,
        )));
        assert!(
            matches!(denied, FlashError::PermissionDenied { .. }),
            "{denied}"
        );
        assert!(denied.to_string().contains("udev"), "{denied}");
        let busy = probe_error(DebugProbeError::ProbeCouldNotBeCreated(
            ProbeCreationError::CouldNotOpen,
        ));
        assert!(busy.to_string().contains("no other program"), "{busy}");
    }

    fn item(
        vid: u16,
        pid: u16,
        serial: &str,
        access: Accessibility,
    ) -> probe_rs::probe::list::ProbeListItem {
        let info = DebugProbeInfo::new(
            "STLink",
            vid,
            pid,
            Some(serial.into()),
            &probe_rs::probe::stlink::StLinkFactory,
            None,
            false,
        );
        probe_rs::probe::list::ProbeListItem {
            info,
            accessibility: access,
        }
    }

    #[test]
    fn choosing_among_listed_probes() {
        let devkit = parse_selector(DEVKIT_PROBE).unwrap();
        // Only another probe: not found, and the other one is listed.
        let e = choose(
            vec![item(0x0483, 0x3748, "OTHER1", Accessibility::Accessible)],
            &devkit,
            false,
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("OTHER1") && e.to_string().contains("3748"),
            "{e}"
        );
        // The DevKit, but not accessible: the udev hint.
        let e = choose(
            vec![item(0x0483, 0x374b, "A1", Accessibility::PermissionDenied)],
            &devkit,
            false,
        )
        .unwrap_err();
        assert!(
            matches!(e, FlashError::PermissionDenied { .. }) && e.to_string().contains("udev"),
            "{e}"
        );
        // Two DevKits: ask for the serial; with it, the right one.
        let two = || {
            vec![
                item(0x0483, 0x374b, "A1", Accessibility::Accessible),
                item(0x0483, 0x374b, "B2", Accessibility::Accessible),
            ]
        };
        let e = choose(two(), &devkit, false).unwrap_err();
        assert!(
            e.is_invalid_input() && e.to_string().contains("A1") && e.to_string().contains("B2"),
            "{e}"
        );
        let chosen = choose(two(), &parse_selector("0483:374b:B2").unwrap(), true).unwrap();
        assert_eq!(chosen.serial_number.as_deref(), Some("B2"));
    }

    #[test]
    fn nothing_found_lists_nothing_and_says_what_to_do() {
        let e = choose(vec![], &parse_selector(DEVKIT_PROBE).unwrap(), false).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("0483:374b") && msg.contains("none"), "{msg}");
    }
}
