//! The console client against the virtual DevKit over a real pty.

#[path = "sim_support/mod.rs"]
mod support;

use std::time::Duration;
use support::{Sim, UDS};
use tasks::console::{Console, ConsoleError, ReplyKind};
use tasks::error::DomainError;
use tasks::identity::Uds;
use tasks::sim::{EepromFault, SimEvent};

const T: Duration = Duration::from_secs(5);

fn console(sim: &Sim) -> Console<tasks::console::SerialTransport> {
    let mut c = Console::open(&sim.port(), 115_200).unwrap();
    c.enter_config_mode(T, &mut |g| panic!("unexpected guidance: {g}"))
        .unwrap();
    c
}

#[test]
fn detects_configuration_mode_and_sets_the_uds() {
    let sim = Sim::start(true);
    let mut c = console(&sim);
    let uds = Uds::parse(UDS).unwrap();
    let reply = c.set_uds(&uds, T).unwrap();
    assert_eq!(reply.kind, ReplyKind::Success);
    assert_eq!(reply.text, "INFO: Set DPS UDS successfully.\r\n");
    assert!(!reply.text.contains(UDS));
    assert_eq!(sim.eeprom()["dps_uds"], UDS);
    assert_eq!(c.version(T).unwrap().devkit_sdk, "1.6.2");
}

#[test]
fn detects_configuration_mode_when_connecting_after_boot() {
    let sim = Sim::start(true);
    // Someone else saw the boot banner; we arrive later and must still find the prompt.
    let mut t = support::Term::open(&sim.port());
    t.until(b"\r\n# ");
    drop(t);
    let mut c = console(&sim);
    assert!(c.version(T).is_ok());
}

#[test]
fn wifi_ssid_with_spaces_and_quotes_lands_exactly() {
    let sim = Sim::start(true);
    let mut c = console(&sim);
    let ssid = "Joe's \"Fast\" Net\\";
    c.set_wifi(ssid, "p@ss word \"x\"", T).unwrap();
    let ee = sim.eeprom();
    assert_eq!(ee["wifi_ssid"], ssid);
    assert_eq!(ee["wifi_pwd"], "p@ss word \"x\"");
    // An empty password clears it.
    c.set_wifi("Open", "", T).unwrap();
    assert_eq!(sim.eeprom()["wifi_pwd"], "");
}

#[test]
fn invalid_values_are_refused_before_sending() {
    let sim = Sim::start(true);
    let mut c = console(&sim);
    let err = c.set_wifi(&"s".repeat(40), "pw", T).unwrap_err();
    assert!(err.is_invalid_input(), "{err}");
    let err = c.set_wifi("ok", "bad\npassword", T).unwrap_err();
    assert!(err.is_invalid_input());
    assert!(
        !err.to_string().contains("password\n") && !err.to_string().contains("bad"),
        "{err}"
    );
    assert!(
        !sim.dir.path().join("eeprom.json").exists(),
        "nothing was stored"
    );
}

#[test]
fn device_errors_are_classified() {
    let sim = Sim::start_with(true, |o| o.eeprom_fault = Some(EepromFault::WriteFails));
    let mut c = console(&sim);
    match c.set_wifi("Lab", "pw", T).unwrap_err() {
        ConsoleError::Rejected {
            kind: ReplyKind::EepromWrite { zone: Some(3) },
            command,
            ..
        } => assert_eq!(command, "set_wifissid"),
        e => panic!("{e}"),
    }
    let reply = c
        .command(&tasks::console::Command::new("frob", &[]).unwrap(), T)
        .unwrap();
    assert_eq!(
        reply.kind,
        ReplyKind::InvalidCommand {
            name: "frob".into()
        }
    );
    let reply = c
        .command(
            &tasks::console::Command::new("set_az_iothub", &[]).unwrap(),
            T,
        )
        .unwrap();
    assert_eq!(reply.kind, ReplyKind::Usage);

    let sim = Sim::start_with(true, |o| o.eeprom_fault = Some(EepromFault::VerifyFails));
    let mut c = console(&sim);
    let err = c.set_uds(&Uds::parse(UDS).unwrap(), T).unwrap_err();
    assert!(
        matches!(
            err,
            ConsoleError::Rejected {
                kind: ReplyKind::EepromVerify,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn not_in_configuration_mode_gives_guidance_then_times_out() {
    let sim = Sim::start(false);
    let mut c = Console::open(&sim.port(), 115_200).unwrap();
    let mut told = Vec::new();
    let err = c
        .enter_config_mode(Duration::from_secs(2), &mut |g| told.push(g.to_string()))
        .unwrap_err();
    assert_eq!(told.len(), 1);
    assert!(told[0].contains("hold button A") && told[0].contains("reset"));
    assert!(matches!(err, ConsoleError::NotInConfigMode { .. }));
    assert!(err.to_string().contains("hold button A"));
}

#[test]
fn entering_configuration_mode_while_waiting_succeeds() {
    let sim = Sim::start(false);
    let state = sim.dir.path().to_path_buf();
    let mut c = Console::open(&sim.port(), 115_200).unwrap();
    let mut told = 0;
    let handle = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        std::thread::sleep(Duration::from_millis(1200));
        rt.block_on(tasks::sim::control::reset(&state, true))
            .unwrap();
    });
    c.enter_config_mode(Duration::from_secs(10), &mut |_| told += 1)
        .unwrap();
    handle.join().unwrap();
    assert_eq!(told, 1, "guidance given once while waiting");
    assert!(c.version(T).is_ok());
}

#[test]
fn sim_gone_mid_command_is_a_clear_error() {
    let mut sim = Sim::start_with(true, |o| o.command_delay = Duration::from_secs(3));
    let mut c = console(&sim);
    let dk = sim.sim.take().unwrap();
    let events = std::mem::replace(&mut sim.events, std::sync::mpsc::channel().1);
    let killer = std::thread::spawn(move || {
        loop {
            if let Ok(SimEvent::Command { name }) = events.recv_timeout(Duration::from_secs(10)) {
                assert_eq!(name, "set_wifissid");
                break;
            }
        }
        drop(dk);
    });
    let err = c
        .set_wifi("Lab", "pw", Duration::from_secs(20))
        .unwrap_err();
    killer.join().unwrap();
    match &err {
        ConsoleError::PortGone { command, .. } => assert_eq!(command, "set_wifissid"),
        e => panic!("expected PortGone, got {e}"),
    }
    assert!(err.to_string().contains("went away"));
}

#[test]
fn console_runs_over_a_monitored_port_while_the_monitor_is_paused() {
    let sim = Sim::start(true);
    let registry = tasks::monitor::PortRegistry::new();
    let port = sim.port();
    let (monitor, mut rx) = registry.open_subscribed(&port, Default::default()).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let reply = rt
        .block_on(registry.exclusive(&port, 115_200, |p| {
            let mut c = Console::new(p, "sim");
            c.enter_config_mode(T, &mut |_| {})?;
            c.set_uds(&Uds::parse(UDS).unwrap(), T)
        }))
        .unwrap()
        .unwrap();
    assert_eq!(reply.kind, ReplyKind::Success);
    // Subscribers saw the session (masked), then the monitor resumed and reads again.
    let mut lines = Vec::new();
    let mut resumed = false;
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let mut asked = false;
    loop {
        match rx.try_recv() {
            Ok(tasks::monitor::MonitorEvent::Line(l)) => {
                if l.text.starts_with("DevKitSDK version") {
                    break;
                }
                lines.push(l.text);
            }
            Ok(tasks::monitor::MonitorEvent::Status(tasks::monitor::PortStatus::Resumed)) => {
                resumed = true
            }
            Ok(_) => {}
            Err(_) if std::time::Instant::now() > deadline => {
                panic!("no version line after resume; lines {lines:?}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
        if resumed && !asked {
            asked = true;
            monitor.send(b"version\r").unwrap();
        }
    }
    assert!(
        lines.iter().any(|l| l.starts_with("# set_dps_uds ****")),
        "{lines:?}"
    );
    assert!(lines.iter().all(|l| !l.contains(UDS)));
}

#[test]
fn the_console_client_opens_a_virtual_devkit_on_tcp_like_a_serial_port() {
    let sim = Sim::start_with(true, |o| {
        o.transport = tasks::sim::SimTransport::Tcp { port: 0 }
    });
    assert!(
        sim.port().to_string_lossy().starts_with("tcp://127.0.0.1:"),
        "{}",
        sim.port().display()
    );
    let mut c = console(&sim);
    let reply = c.set_uds(&Uds::parse(UDS).unwrap(), T).unwrap();
    assert_eq!(reply.kind, ReplyKind::Success);
    assert_eq!(sim.eeprom()["dps_uds"], UDS);
    // Like an exclusively opened serial port: a second client (a console, a monitor) is told
    // the port is in use, at once, instead of finding a device that "went away".
    let e = Console::open(&sim.port(), 115_200).err().expect("in use");
    assert!(e.to_string().contains("is in use by another client"), "{e}");
    // ... and which program holds it (here: this test), where the OS tells.
    #[cfg(target_os = "linux")]
    assert!(
        e.to_string().contains("held by ")
            && e.to_string()
                .contains(&format!("(pid {})", std::process::id())),
        "{e}"
    );
    let actions: Vec<_> = tasks::error::DomainError::next_actions(&e)
        .iter()
        .map(|s| s.action)
        .collect();
    assert_eq!(
        actions,
        [tasks::error::NextAction::Retry],
        "not another port"
    );
    let e = tasks::monitor::Monitor::open(&sim.port(), Default::default())
        .err()
        .expect("in use");
    assert!(e.to_string().contains("is in use by another client"), "{e}");
    assert_eq!(c.version(T).unwrap().devkit_sdk, "1.6.2");
}
