//! The virtual DevKit's firmware: boot, configuration console, user-mode sketch.

use super::console::{self, Fed, LineDiscipline, PROMPT};
use super::control::{self, Reply, Request, SimDpsConfig};
use super::eeprom::{Eeprom, EepromFault, ZONES};
use super::transport::{Link, Readiness};
use super::{SimEvent, SimOptions};
use crate::identity::{self, FirmwareImage, RegistrationId, Uds};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

pub(crate) const BANNER: &str = "\r\n************************************************\r\n** MXChip - Microsoft IoT Developer Kit **\r\n************************************************\r\n";

/// The commands of the configuration console, with their help texts.
const COMMANDS: [(&str, &str); 10] = [
    ("help", "Help document"),
    ("version", "System version"),
    ("exit", "Exit and reboot"),
    ("scan", "Scan Wi-Fi AP"),
    ("set_wifissid", "Set Wi-Fi SSID"),
    ("set_wifipwd", "Set Wi-Fi password"),
    ("set_az_iothub", "Set IoT Hub device connection string"),
    ("set_dps_uds", "Set DPS Unique Device Secret (UDS) for X.509 certificates"),
    ("set_az_iotdps", "Set DPS Symmetric Key. Format: \"DPSEndpoint=global.azure-devices-provisioning.net;IdScope=XXX;DeviceId=XXX;SymmetricKey=XXX\""),
    ("enable_secure", "Enable secure channel between AZ3166 and secure chip"),
];

/// A message from the control socket to the device thread.
pub(crate) struct ControlMsg {
    pub request: Request,
    pub reply: mpsc::Sender<Reply>,
}

/// State the control thread answers `status` from.
pub(crate) struct Shared {
    pub config_mode: bool,
}

enum Next {
    Stop,
    Reset(bool),
}

pub(crate) struct Device {
    /// The console: a pty or a TCP port.
    pub link: Link,
    pub opts: SimOptions,
    pub mac: String,
    pub config_mode: bool,
    pub control: mpsc::Receiver<ControlMsg>,
    pub stop: Arc<AtomicBool>,
    pub shared: Arc<Mutex<Shared>>,
}

impl Device {
    pub fn run(mut self) {
        loop {
            self.set_mode(self.config_mode);
            self.event(SimEvent::WaitingForReader);
            match self.wait_for_reader() {
                Next::Stop => return,
                Next::Reset(_) => {}
            }
            self.event(SimEvent::Booted {
                config_mode: self.config_mode,
            });
            let next = if self.config_mode {
                self.config_console()
            } else {
                self.user_mode()
            };
            match next {
                Next::Stop => return,
                Next::Reset(config_mode) => {
                    self.event(SimEvent::Reset { config_mode });
                    self.config_mode = config_mode;
                }
            }
        }
    }

    fn event(&self, e: SimEvent) {
        if let Some(f) = &self.opts.on_event {
            f(&e)
        }
    }

    fn set_mode(&self, config_mode: bool) {
        if let Ok(mut s) = self.shared.lock() {
            s.config_mode = config_mode;
        }
    }

    fn say(&self, text: &str) {
        self.link.write_all(text.as_bytes());
    }

    /// Handle pending control requests; a reset ends the current run.
    fn control(&mut self) -> Option<Next> {
        if self.stop.load(Ordering::Relaxed) {
            return Some(Next::Stop);
        }
        while let Ok(msg) = self.control.try_recv() {
            let mut reply = Reply {
                ok: true,
                ..Reply::default()
            };
            match msg.request {
                Request::Reset { config_mode } => {
                    self.set_mode(config_mode);
                    let _ = msg.reply.send(reply);
                    return Some(Next::Reset(config_mode));
                }
                Request::Status => {
                    reply.pty = Some(self.link.port_name());
                    reply.config_mode = Some(self.config_mode);
                    let _ = msg.reply.send(reply);
                }
            }
        }
        None
    }

    /// After a start or reset: wait until someone opens the port, like a board that boots when
    /// the monitor connects, so no boot output is lost.
    fn wait_for_reader(&mut self) -> Next {
        loop {
            match self.control() {
                Some(Next::Stop) => return Next::Stop,
                Some(Next::Reset(c)) => self.config_mode = c,
                None => {}
            }
            match self.link.poll(20) {
                Ok(Readiness::NoReader) => std::thread::sleep(Duration::from_millis(20)),
                Ok(_) => {
                    self.event(SimEvent::ReaderConnected);
                    return Next::Reset(self.config_mode);
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }

    /// Read input (discarding it unless `console` is given) until a reset or stop.
    fn serve(&mut self, mut console: Option<(&mut LineDiscipline, &mut Eeprom)>) -> Next {
        let mut buf = [0u8; 4096];
        loop {
            if let Some(next) = self.control() {
                return next;
            }
            match self.link.poll(20) {
                Ok(Readiness::Readable) => {
                    let n = self.link.read(&mut buf);
                    if let Some((disc, eeprom)) = console.as_mut() {
                        for &b in &buf[..n] {
                            match disc.feed(b) {
                                Fed::Echo(e) | Fed::Overflow(e) => {
                                    self.link.write_all(&e);
                                }
                                Fed::Line(line) => {
                                    if let Some(next) = self.run_line(&line, eeprom) {
                                        return next;
                                    }
                                }
                            }
                        }
                    }
                }
                Ok(Readiness::NoReader) | Err(_) => std::thread::sleep(Duration::from_millis(20)),
                Ok(Readiness::Idle) => {}
            }
        }
    }

    fn config_console(&mut self) -> Next {
        let mut eeprom = match Eeprom::load(&self.opts.state_dir) {
            Ok(e) => e,
            Err(e) => {
                self.say(&format!(
                    "{BANNER}ERROR: cannot read the secure chip: {e}\r\n"
                ));
                return self.serve(None);
            }
        };
        self.say(BANNER);
        self.say(&help_text());
        self.link.write_all(PROMPT);
        let mut disc = LineDiscipline::new();
        self.serve(Some((&mut disc, &mut eeprom)))
    }

    /// Run one input line; `Some` when the command reboots the device.
    fn run_line(&mut self, line: &[u8], eeprom: &mut Eeprom) -> Option<Next> {
        let args = match console::parse_args(line) {
            Ok(a) => a,
            Err(console::SyntaxError) => {
                self.say("Error:Syntax error\r\n");
                self.link.write_all(PROMPT);
                return None;
            }
        };
        if args.is_empty() {
            self.link.write_all(PROMPT);
            return None;
        }
        self.say("\r\n");
        let name = String::from_utf8_lossy(&args[0]).into_owned();
        let known = COMMANDS.iter().any(|(n, _)| *n == name);
        if known {
            self.event(SimEvent::Command { name: name.clone() });
            // A slow EEPROM; turning the device off interrupts it, like pulling the plug.
            let until = std::time::Instant::now() + self.opts.command_delay;
            while std::time::Instant::now() < until {
                if self.stop.load(Ordering::Relaxed) {
                    return Some(Next::Stop);
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        let arg1 = args.get(1).map(|a| String::from_utf8_lossy(a).into_owned());
        let arg1 = zeroize::Zeroizing::new(arg1);
        let out = match name.as_str() {
            "help" => help_text(),
            "version" => format!(
                "DevKitSDK version: {}\r\nMico version: 31621002.042\r\nmbed-os version: 5.4.3\r\nmbed TLS version: 2.4.2\r\nWIFI version: wl0: Nov  7 2016 16:45:33 version 7.15.168.135 (r633813) FWID 01-f5e6e7c3\r\n",
                self.opts.firmware_version
            ),
            "exit" => {
                self.say("Reboot\r\n");
                return Some(Next::Reset(false));
            }
            "scan" => "Available networks:\r\n  DevKit-Lab\r\n  Guest Wi-Fi\r\n".to_string(),
            "set_wifissid" => match arg1.as_deref() {
                None => "Usage: set_wifissid <SSID>. Please provide the SSID of the Wi-Fi.\r\n".into(),
                Some(v) if v.len() + 1 > zone_max("wifi_ssid") => "Invalid Wi-Fi SSID.\r\n".into(),
                Some(v) => self.write_zone(eeprom, "wifi_ssid", v, "INFO: Set Wi-Fi SSID successfully.\r\n"),
            },
            "set_wifipwd" => {
                let v = arg1.as_deref().unwrap_or("");
                // The firmware reports an over-long password but stores it anyway.
                let mut out = if v.len() + 1 > zone_max("wifi_pwd") { "Invalid Wi-Fi password.\r\n".to_string() } else { String::new() };
                out += &self.write_zone(eeprom, "wifi_pwd", v, "INFO: Set Wi-Fi password successfully.\r\n");
                out
            }
            "set_az_iothub" => match arg1.as_deref() {
                None => "Usage: set_az_iothub <connection string>. Please provide the connection string of the Azure IoT hub.\r\n".into(),
                Some(v) if v.len() + 1 > zone_max("az_iothub") => "Invalid Azure IoT hub connection string.\r\n".into(),
                Some(v) => self.write_zone(eeprom, "az_iothub", v, "INFO: Set Azure Iot hub connection string successfully.\r\n"),
            },
            "set_dps_uds" => match arg1.as_deref() {
                None => "Usage: set_dps_uds [uds]. Please provide the UDS for DPS.\r\n".into(),
                Some(v) => {
                    // The firmware's quirk: a wrong length is reported, then stored anyway.
                    let mut out = if v.len() + 1 != zone_max("dps_uds") { "Invalid UDS.\r\n".to_string() } else { String::new() };
                    out += &self.write_zone(eeprom, "dps_uds", v, "INFO: Set DPS UDS successfully.\r\n");
                    out
                }
            },
            "set_az_iotdps" => match arg1.as_deref() {
                None => "Usage: set_az_iotdps <connection string>. Please provide the connection string of DPS.\r\n".into(),
                Some(v) if v.len() + 1 > zone_max("az_iotdps") => "Invalid DPS connection string.\r\n".into(),
                Some(v) => self.write_zone(eeprom, "az_iotdps", v, "INFO: Set DPS connection string successfully.\r\n"),
            },
            "enable_secure" => match arg1.as_deref() {
                Some("1") => "INFO: Enable secure channel successfully.\r\n".into(),
                _ => "Usage: enable_secure <secure level> <provided key>. 64-characters key is only needed for level 2.\r\n".into(),
            },
            _ => format!("Error:Invalid command: {name}\r\n"),
        };
        self.say(&out);
        self.link.write_all(PROMPT);
        None
    }

    fn write_zone(&self, eeprom: &mut Eeprom, zone: &str, value: &str, ok: &str) -> String {
        let idx = ZONES.iter().find(|z| z.0 == zone).map_or(0, |z| z.1);
        match self.opts.eeprom_fault {
            Some(EepromFault::WriteFails) => {
                return format!("ERROR: Failed to write EEPROM: 0x{idx:02x}.\r\n")
            }
            Some(EepromFault::VerifyFails) => return "ERROR: Verify failed.\r\n".into(),
            None => {}
        }
        match eeprom.set(zone, value) {
            Ok(()) if eeprom.get(zone) == value => ok.to_string(),
            Ok(()) => "ERROR: Verify failed.\r\n".into(),
            Err(_) => format!("ERROR: Failed to write EEPROM: 0x{idx:02x}.\r\n"),
        }
    }

    /// User mode: banner, identity lines, then the sketch (identity, Wi-Fi, DPS registration).
    fn user_mode(&mut self) -> Next {
        self.say(BANNER);
        self.say("You can 1. press Button A and reset to enter configuration mode.\r\n        2. press Button B and reset to enter AP mode.\r\n");
        self.say(&format!("Info: DevKit MAC Address: {}\r\n", self.mac));
        self.say(&format!(
            "Info: DevKit Firmware Version: {}\r\n",
            self.opts.firmware_version
        ));
        self.sketch();
        self.serve(None)
    }

    fn sketch(&mut self) {
        let dir = self.opts.state_dir.clone();
        let (bin, map) = (control::image_bin_path(&dir), control::image_map_path(&dir));
        if !bin.exists() {
            // No sketch loaded: the device sits idle after the SDK's own lines.
            return;
        }
        let image = match FirmwareImage::load(&bin, &map) {
            Ok(i) => i,
            Err(e) => return self.error_line("main", &format!("cannot start the sketch: {e}")),
        };
        let eeprom = match Eeprom::load(&dir) {
            Ok(e) => e,
            Err(e) => return self.error_line("main", &format!("cannot read the secure chip: {e}")),
        };
        let uds_text = zeroize::Zeroizing::new(eeprom.get("dps_uds").to_string());
        if uds_text.is_empty() {
            self.say("The DPS UDS string is empty.\r\n");
            self.say("DiceInit failed! Check UDS string provided or set on configuration mode\r\n");
            return;
        }
        let Ok(uds) = Uds::parse(&uds_text) else {
            self.say("DiceInit failed! Check UDS string provided or set on configuration mode\r\n");
            return;
        };
        let dps: Option<SimDpsConfig> = crate::fsutil::read_internal(
            &control::dps_config_path(&dir),
            crate::fsutil::limits::STATE_FILE,
        )
        .ok()
        .flatten()
        .and_then(|b| serde_json::from_slice(&b).ok());
        let rid = match dps.as_ref().and_then(|d| d.registration_id.clone()) {
            Some(id) => RegistrationId::parse(&id),
            None => RegistrationId::from_mac_and_version(&self.mac, &self.opts.firmware_version),
        };
        let rid = match rid {
            Ok(r) => r,
            Err(e) => {
                return self.error_line("DevkitDPSClientStart", &format!("registration ID: {e}"))
            }
        };
        let id = match identity::derive(&uds, &image, &rid) {
            Ok(i) => i,
            Err(e) => return self.error_line("RiotStart", &format!("DICE/RIoT failed: {e}")),
        };
        self.say(&format!(
            "DevKit alias certificate SHA-256: {}\r\n",
            id.sha256_thumbprint()
        ));
        let ssid = eeprom.get("wifi_ssid").to_string();
        if ssid.is_empty() {
            self.error_line(
                "InitSystemWiFi",
                "Wi-Fi SSID is not set: Wi-Fi connection failed",
            );
            self.say("No Wi-Fi\r\n");
            return;
        }
        self.say(&format!("Info: Wi-Fi {ssid} connected.\r\n"));
        self.say("Info: IP address: 192.168.1.42\r\n");
        let Some(dps) = dps else {
            self.say("Info:    DPS Version: 1.3.9\r\n");
            self.error_line(
                "DevkitDPSClientStart",
                "no DPS global endpoint or ID scope compiled into the sketch (dps_config.h)",
            );
            self.say("Failure encountered on registration!\r\nregistration failed!\r\n");
            return;
        };
        // A real DevKit resolves the endpoint as a host name, dials 443 and trusts Azure's roots.
        if !dps.emulator && dps.global_endpoint.contains(':') {
            self.say("Info:    DPS Version: 1.3.9\r\n");
            self.error_line("DevkitDPSClientStart", &format!("cannot resolve the global endpoint {}: a DevKit dials port 443 of a host name (no port)", dps.global_endpoint));
            self.say("Failure encountered on registration!\r\nregistration failed!\r\n");
            return;
        }
        let config = crate::dps::device::DeviceRegistrationConfig {
            global_endpoint: dps.global_endpoint.clone(),
            id_scope: dps.id_scope.clone(),
            registration_id: rid.as_str().to_string(),
            alias_cert_der: id.alias_cert_der.clone(),
            alias_key_pkcs8: id.alias_key_pkcs8_der(),
            trusted_ca_pem: if dps.emulator {
                dps.trusted_ca_pem.clone()
            } else {
                None
            },
        };
        let link = &self.link;
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            let mut log = |line: String| {
                link.write_all(format!("{}\r\n", line.trim_end_matches(['\r', '\n'])).as_bytes());
            };
            Some(rt.block_on(crate::dps::device::register_like_device(config, &mut log)))
        }));
        match outcome {
            Ok(Some(Ok(crate::dps::device::RegistrationOutcome::Assigned { .. }))) => {}
            Ok(Some(Ok(crate::dps::device::RegistrationOutcome::Failed { .. }))) => {
                self.say("registration failed!\r\n")
            }
            Ok(Some(Err(e))) => {
                self.error_line("DevkitDPSClientStart", &e.to_string());
                self.say("registration failed!\r\n");
            }
            Ok(None) | Err(_) => self.say("registration failed!\r\n"),
        }
    }

    /// An SDK-style error line.
    fn error_line(&self, func: &str, text: &str) {
        let fmt = time::macros::format_description!("[weekday repr:short] [month repr:short] [day padding:space] [hour]:[minute]:[second] [year]");
        let now = time::OffsetDateTime::now_utc()
            .format(&fmt)
            .unwrap_or_default();
        self.say(&format!(
            "Error: Time:{now} File:/devkit/sketch/DevKitDPS.ino Func:{func} Line:1 {text}\r\n"
        ));
    }
}

fn zone_max(zone: &str) -> usize {
    ZONES.iter().find(|z| z.0 == zone).map_or(0, |z| z.2)
}

fn help_text() -> String {
    let mut s = String::from("Configuration console:\r\n");
    for (name, help) in COMMANDS {
        s += &format!(" - {name}: {help}.\r\n");
    }
    s
}
