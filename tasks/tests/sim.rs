//! The virtual DevKit over a real pty: boot timing, console line discipline (devkit-facts.md
//! §2), EEPROM persistence, user-mode boot with identity, control channel.

#[path = "sim_support/mod.rs"]
mod support;

use support::{fixture, Sim, Term};
use tasks::logs::{EventParser, LogEvent};
use tasks::sim::control;

const PROMPT: &[u8] = b"\r\n# ";

#[test]
fn boots_only_once_a_reader_opens_the_port_so_nothing_is_lost() {
    let sim = Sim::start(true);
    sim.wait_event(|e| *e == tasks::sim::SimEvent::WaitingForReader);
    let mut t = Term::open(&sim.port());
    let boot = t.until(PROMPT);
    assert!(boot.starts_with("\r\n************************************************\r\n** MXChip - Microsoft IoT Developer Kit **\r\n"), "{boot:?}");
    assert!(boot.contains("Configuration console:\r\n - help: Help document.\r\n"));
    assert!(boot.contains(" - set_dps_uds: "));
}

#[test]
fn console_line_discipline_matches_the_firmware() {
    let sim = Sim::start(true);
    let mut t = Term::open(&sim.port());
    t.until(PROMPT);

    // Masked echo once the line is a masked command plus a space; the value is stored.
    t.send(b"set_wifipwd hunter2\r");
    let out = t.until(PROMPT);
    assert_eq!(
        out,
        "set_wifipwd *******\r\nINFO: Set Wi-Fi password successfully.\r\n\r\n# "
    );
    assert_eq!(sim.eeprom()["wifi_pwd"], "hunter2");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(sim.dir.path().join("eeprom.json"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "eeprom.json holds secrets");
    }

    // Quotes, escapes, TAB, BS/DEL, dropped control characters.
    t.send(b"set_wifissid\t\"My Net\"\r");
    let out = t.until(PROMPT);
    assert_eq!(
        out,
        "set_wifissid \"My Net\"\r\nINFO: Set Wi-Fi SSID successfully.\r\n\r\n# "
    );
    assert_eq!(sim.eeprom()["wifi_ssid"], "My Net");
    t.send(b"set_wifissid Caf\\ \\\"X\\\"x\x08\x01\n\r");
    let out = t.until(PROMPT);
    assert!(
        out.starts_with("set_wifissid Caf\\ \\\"X\\\"x\x08 \x08\r\n"),
        "{out:?}"
    );
    assert_eq!(sim.eeprom()["wifi_ssid"], "Caf \"X\"");

    // Errors.
    t.send(b"set_wifissid \"open\r");
    assert_eq!(
        t.until(PROMPT),
        "set_wifissid \"openError:Syntax error\r\n\r\n# "
    );
    t.send(b"frobnicate now\r");
    assert_eq!(
        t.until(PROMPT),
        "frobnicate now\r\nError:Invalid command: frobnicate\r\n\r\n# "
    );
    t.send(b"set_wifissid\r");
    assert!(t.until(PROMPT).contains("Usage: set_wifissid <SSID>."));
    t.send(&vec![b'a'; 1024]);
    assert!(t
        .until(PROMPT)
        .ends_with("a\r\nError: input buffer overflow\r\n\r\n# "));
    t.send(b"\r");
    assert_eq!(
        t.until(PROMPT),
        "\r\n# ",
        "an empty line just prints the prompt"
    );

    // The store-anyway quirk of set_dps_uds.
    t.send(b"set_dps_uds abc\r");
    assert_eq!(
        t.until(PROMPT),
        "set_dps_uds ***\r\nInvalid UDS.\r\nINFO: Set DPS UDS successfully.\r\n\r\n# "
    );
    assert_eq!(sim.eeprom()["dps_uds"], "abc");

    t.send(b"version\r");
    assert!(t.until(PROMPT).contains("DevKitSDK version: 1.6.2\r\n"));
}

#[test]
fn user_mode_without_a_sketch_prints_banner_and_identity_lines() {
    let sim = Sim::start(false);
    let mut t = Term::open(&sim.port());
    let out = t.until(b"Firmware Version: 1.6.2\r\n");
    assert!(out.contains("You can 1. press Button A and reset to enter configuration mode.\r\n"));
    assert!(out.contains("Info: DevKit MAC Address: c0bdd1a2b3c4\r\n"));
}

#[test]
fn user_mode_computes_the_identity_from_the_loaded_image() {
    let case = "auto-id-small";
    let sim = Sim::start(true);
    let state = sim.dir.path().to_path_buf();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let bin = std::fs::read(fixture(case, "DevKitDPS.ino.bin")).unwrap();
    let map = std::fs::read_to_string(fixture(case, "DevKitDPS.ino.map")).unwrap();
    let vector: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture(case, "case.json")).unwrap()).unwrap();
    let uds = vector["inputs"]["uds"].as_str().unwrap().to_string();

    let mut t = Term::open(&sim.port());
    t.until(PROMPT);
    t.send(format!("set_dps_uds {uds}\r").as_bytes());
    assert!(t.until(PROMPT).contains("INFO: Set DPS UDS successfully."));
    // Loading an image resets the device into user mode; the reader is there, so it boots.
    rt.block_on(control::load_image(&state, &bin, &map, None))
        .unwrap();
    let out = t.until(b"No Wi-Fi\r\n");
    let pem = std::fs::read_to_string(fixture(
        case,
        vector["expected"]["alias_cert_file"].as_str().unwrap(),
    ))
    .unwrap();
    let expected =
        tasks::identity::sha256_thumbprint(&tasks::identity::pem::decode(&pem, None).unwrap());
    assert!(
        out.contains(&format!("DevKit alias certificate SHA-256: {expected}\r\n")),
        "{out}"
    );
    assert!(!out.contains(&uds), "the UDS never leaves the device");

    // Wi-Fi set, no DPS settings compiled in: a realistic registration failure.
    rt.block_on(control::reset(&state, true)).unwrap();
    t.until(PROMPT);
    t.send(b"set_wifissid Lab\r");
    t.until(PROMPT);
    t.send(b"exit\r");
    let out = t.until(b"registration failed!\r\n");
    let events = EventParser::parse_all(out.as_bytes());
    assert!(events.iter().any(|e| matches!(e, LogEvent::Identity { alias_cert_sha256: Some(h), mac: Some(m), firmware_version: Some(v) } if *h == expected && m == "c0bdd1a2b3c4" && v == "1.6.2")), "{events:?}");
    assert!(events.contains(&LogEvent::Status {
        status: "wifiConnected".into(),
        detail: None
    }));
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, LogEvent::Failed { .. }))
            .count(),
        1,
        "{events:?}"
    );

    // Without a UDS the sketch reports it missing.
    std::fs::write(state.join("eeprom.json"), "{}").unwrap();
    rt.block_on(control::reset(&state, false)).unwrap();
    let out =
        t.until(b"DiceInit failed! Check UDS string provided or set on configuration mode\r\n");
    let events = EventParser::parse_all(out.as_bytes());
    assert!(
        events
            .iter()
            .any(|e| matches!(e, LogEvent::UdsMissing { .. })),
        "{events:?}"
    );
}

#[test]
fn control_channel_resets_into_configuration_mode() {
    let sim = Sim::start(false);
    let state = sim.dir.path().to_path_buf();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut t = Term::open(&sim.port());
    t.until(b"Firmware Version");
    rt.block_on(control::reset(&state, true)).unwrap();
    let out = t.until(PROMPT);
    assert!(out.contains("Configuration console:"), "{out:?}");
    let status = rt.block_on(control::status(&state)).unwrap();
    assert!(status.config_mode);
    assert_eq!(status.pty, sim.sim.as_ref().unwrap().device_port());
    // `exit` reboots into user mode.
    t.send(b"exit\r");
    let out = t.until(b"Firmware Version");
    assert!(out.contains("Reboot\r\n"));
    assert!(out.contains("press Button A"));
    drop(sim);
    assert!(matches!(
        rt.block_on(control::reset(&state, true)),
        Err(control::ControlError::NotRunning(_))
    ));
}

#[cfg(unix)]
#[test]
fn a_running_virtual_devkit_is_listed_as_a_virtual_port_by_its_link() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let linked = Sim::start_with(false, |o| o.link = Some(o.state_dir.join("devkit.tty")));
    let info = rt
        .block_on(control::port_info(linked.dir.path()))
        .expect("listed");
    assert_eq!(
        info.port,
        linked.dir.path().join("devkit.tty").display().to_string()
    );
    assert_eq!(info.kind, tasks::monitor::ports::VIRTUAL_KIND);
    assert!(info.is_devkit);
    assert_eq!(info.description.as_deref(), Some("Virtual DevKit"));
    // Without a link: its pty.
    let mut bare = Sim::start(false);
    let info = rt
        .block_on(control::port_info(bare.dir.path()))
        .expect("listed");
    assert_eq!(
        std::path::Path::new(&info.port),
        bare.sim.as_ref().unwrap().device_port()
    );
    // Turned off: not listed.
    let dir = bare.dir.path().to_path_buf();
    drop(bare.sim.take());
    assert_eq!(rt.block_on(control::port_info(&dir)), None);
}

#[test]
fn one_virtual_devkit_per_state_directory() {
    let sim = Sim::start(false);
    let err = tasks::sim::VirtualDevKit::start(tasks::sim::SimOptions::new(sim.dir.path()))
        .err()
        .expect("second sim refused");
    assert!(matches!(err, tasks::sim::SimError::AlreadyRunning(_)));
}

/// A virtual DevKit in configuration mode given a UDS and Wi-Fi, then flashed with a sketch
/// compiled with `dps`: what it prints up to `registration failed!`.
fn registration_failure_output(dps: &control::SimDpsConfig) -> (String, Sim) {
    let case = "auto-id-small";
    let sim = Sim::start(true);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut t = Term::open(&sim.port());
    t.until(PROMPT);
    t.send(b"set_dps_uds 4b8e2f0c9a7d61e3b5c4a29f8d7e6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b\r");
    t.until(PROMPT);
    t.send(b"set_wifissid Lab\r");
    t.until(PROMPT);
    let bin = std::fs::read(fixture(case, "DevKitDPS.ino.bin")).unwrap();
    let map = std::fs::read_to_string(fixture(case, "DevKitDPS.ino.map")).unwrap();
    rt.block_on(control::load_image(sim.dir.path(), &bin, &map, Some(dps)))
        .unwrap();
    (t.until(b"registration failed!\r\n"), sim)
}

#[test]
fn a_dps_config_makes_the_sketch_register_and_failures_become_events() {
    // Nothing listens on port 1: the device cannot reach DPS.
    let dps = control::SimDpsConfig {
        global_endpoint: "127.0.0.1:1".into(),
        id_scope: "0ne00000001".into(),
        registration_id: Some("lab-device-7".into()),
        trusted_ca_pem: None,
        emulator: true,
    };
    let (out, sim) = registration_failure_output(&dps);
    let events = EventParser::parse_all(out.as_bytes());
    let failed: Vec<_> = events
        .iter()
        .filter(|e| matches!(e, LogEvent::Failed { .. }))
        .collect();
    assert_eq!(failed.len(), 1, "{out}\n{events:?}");
    assert!(
        std::fs::read_to_string(control::dps_config_path(sim.dir.path()))
            .unwrap()
            .contains("lab-device-7")
    );
}

/// Like a real DevKit, the virtual one dials port 443 of a host name unless it is told it talks
/// to the emulator: a `host:port` endpoint fails before any connection.
#[test]
fn without_the_emulator_a_host_port_endpoint_fails_like_a_real_devkit() {
    let dps = control::SimDpsConfig {
        global_endpoint: "127.0.0.1:8443".into(),
        id_scope: "0ne00000001".into(),
        registration_id: Some("lab-device-8".into()),
        trusted_ca_pem: None,
        emulator: false,
    };
    let (out, _sim) = registration_failure_output(&dps);
    assert!(out.contains("dials port 443"), "{out}");
    assert!(!out.contains("PUT /"), "no request is sent: {out}");
}

#[test]
fn tcp_transport_serves_the_console_and_the_control_channel_on_loopback() {
    let mut sim = Sim::start_with(false, |o| {
        o.transport = tasks::sim::SimTransport::Tcp { port: 0 }
    });
    let state = sim.dir.path().to_path_buf();
    let port = sim.port();
    assert!(
        port.to_string_lossy().starts_with("tcp://127.0.0.1:"),
        "{}",
        port.display()
    );
    let endpoint = std::fs::read_to_string(control::tcp_endpoint_path(&state)).unwrap();
    assert!(endpoint.starts_with("127.0.0.1:"), "{endpoint}");
    assert!(
        !control::socket_path(&state).exists(),
        "no Unix socket next to a TCP console"
    );

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut t = Term::open(&port);
    assert!(t
        .until(b"Firmware Version: 1.6.2\r\n")
        .contains("Info: DevKit MAC Address: c0bdd1a2b3c4\r\n"));
    rt.block_on(control::reset(&state, true)).unwrap();
    assert!(t.until(PROMPT).contains("Configuration console:"));
    t.send(b"set_wifissid Lab\r");
    assert!(t
        .until(PROMPT)
        .contains("INFO: Set Wi-Fi SSID successfully."));
    assert_eq!(sim.eeprom()["wifi_ssid"], "Lab");
    let status = rt.block_on(control::status(&state)).unwrap();
    assert!(status.config_mode);
    assert_eq!(status.pty, port);

    // One virtual DevKit per state directory, whatever the transport.
    let err = tasks::sim::VirtualDevKit::start(tasks::sim::SimOptions::new(&state))
        .err()
        .expect("second sim refused");
    assert!(
        matches!(err, tasks::sim::SimError::AlreadyRunning(_)),
        "{err}"
    );

    drop(t);
    drop(sim.sim.take());
    assert!(
        !control::tcp_endpoint_path(&state).exists(),
        "turned off: the control address is gone"
    );
    assert!(matches!(
        rt.block_on(control::status(&state)),
        Err(control::ControlError::NotRunning(_))
    ));
}
