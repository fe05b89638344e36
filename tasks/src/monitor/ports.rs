//! Serial port discovery. DevKits (the on-board ST-LINK's virtual COM port, USB VID:PID
//! 0483:374B) are marked and listed first.

use serde::Serialize;
use serialport::{SerialPortInfo, SerialPortType};

pub const DEVKIT_VID: u16 = 0x0483;
pub const DEVKIT_PID: u16 = 0x374B;

/// One serial port (`devkit ports --json` prints it; the daemon's `devkit/listPorts` adds what
/// it knows of the port's use).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PortInfo {
    /// OS name of the port (`/dev/ttyACM0`, `COM3`), as `--port` and `devkitDps.serial.port` take it.
    pub port: String,
    /// An MXChip AZ3166 DevKit (ST-LINK/V2-1 VCP).
    pub is_devkit: bool,
    /// `usb`, `pci`, `bluetooth` or `unknown`.
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vid: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serial_number: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manufacturer: Option<String>,
    /// USB product string.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

impl From<&SerialPortInfo> for PortInfo {
    fn from(p: &SerialPortInfo) -> Self {
        let mut info = PortInfo {
            port: p.port_name.clone(),
            is_devkit: false,
            kind: "unknown".into(),
            vid: None,
            pid: None,
            serial_number: None,
            manufacturer: None,
            description: None,
        };
        match &p.port_type {
            SerialPortType::UsbPort(u) => {
                info.kind = "usb".into();
                info.is_devkit = u.vid == DEVKIT_VID && u.pid == DEVKIT_PID;
                info.vid = Some(u.vid);
                info.pid = Some(u.pid);
                info.serial_number = u.serial_number.clone();
                info.manufacturer = u.manufacturer.clone();
                info.description = u.product.clone();
            }
            SerialPortType::PciPort => info.kind = "pci".into(),
            SerialPortType::BluetoothPort => info.kind = "bluetooth".into(),
            SerialPortType::Unknown => {}
        }
        info
    }
}

impl PortInfo {
    /// A running virtual DevKit (`devkit sim`) whose console is `port` (its link, or its pty).
    pub fn virtual_devkit(port: String) -> PortInfo {
        PortInfo {
            port,
            is_devkit: true,
            kind: VIRTUAL_KIND.into(),
            vid: None,
            pid: None,
            serial_number: None,
            manufacturer: None,
            description: Some("Virtual DevKit".into()),
        }
    }
}

/// The `kind` of a virtual DevKit's port.
pub const VIRTUAL_KIND: &str = "virtual";

/// DevKits first (real ones before virtual ones), then USB ports, then the rest; by path within
/// each group.
pub fn sort_ports(ports: &mut [PortInfo]) {
    ports.sort_by(port_order);
}

/// The order of [`sort_ports`].
pub fn port_order(a: &PortInfo, b: &PortInfo) -> std::cmp::Ordering {
    (!a.is_devkit, a.kind != "usb", &a.port).cmp(&(!b.is_devkit, b.kind != "usb", &b.port))
}

/// The serial ports of this machine, DevKits first.
pub fn list_ports() -> Result<Vec<PortInfo>, serialport::Error> {
    let mut ports: Vec<PortInfo> = serialport::available_ports()?
        .iter()
        .map(PortInfo::from)
        .collect();
    sort_ports(&mut ports);
    Ok(ports)
}

/// The USB serial number of the port at `path` (symlinks resolved), if it has one.
pub fn usb_serial_of(path: &std::path::Path) -> Option<String> {
    let real = std::fs::canonicalize(path).ok()?;
    serialport::available_ports()
        .ok()?
        .iter()
        .find_map(|p| match &p.port_type {
            SerialPortType::UsbPort(u)
                if std::fs::canonicalize(&p.port_name).ok().as_ref() == Some(&real) =>
            {
                u.serial_number.clone()
            }
            _ => None,
        })
}

/// The path of the port whose USB serial number is `serial` (a re-enumerated DevKit).
pub fn find_by_usb_serial(serial: &str) -> Option<String> {
    serialport::available_ports()
        .ok()?
        .into_iter()
        .find_map(|p| match p.port_type {
            SerialPortType::UsbPort(u) if u.serial_number.as_deref() == Some(serial) => {
                Some(p.port_name)
            }
            _ => None,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serialport::UsbPortInfo;

    fn usb(path: &str, vid: u16, pid: u16) -> SerialPortInfo {
        SerialPortInfo {
            port_name: path.into(),
            port_type: SerialPortType::UsbPort(UsbPortInfo {
                vid,
                pid,
                serial_number: Some("SN".into()),
                manufacturer: None,
                product: None,
                interface: None,
            }),
        }
    }

    #[test]
    fn devkits_are_marked_and_first() {
        let raw = [
            SerialPortInfo {
                port_name: "/dev/ttyS0".into(),
                port_type: SerialPortType::Unknown,
            },
            usb("/dev/ttyUSB0", 0x10c4, 0xea60),
            usb("/dev/ttyACM1", DEVKIT_VID, DEVKIT_PID),
        ];
        let mut ports: Vec<PortInfo> = raw.iter().map(PortInfo::from).collect();
        sort_ports(&mut ports);
        let order: Vec<_> = ports
            .iter()
            .map(|p| (p.port.as_str(), p.is_devkit))
            .collect();
        assert_eq!(
            order,
            [
                ("/dev/ttyACM1", true),
                ("/dev/ttyUSB0", false),
                ("/dev/ttyS0", false)
            ]
        );
    }

    #[test]
    fn virtual_devkits_come_after_real_ones_and_before_other_ports() {
        let mut ports = vec![
            PortInfo::from(&usb("/dev/ttyUSB0", 0x10c4, 0xea60)),
            PortInfo::virtual_devkit("/a/devkit.tty".into()),
            PortInfo::from(&usb("/dev/ttyACM1", DEVKIT_VID, DEVKIT_PID)),
        ];
        sort_ports(&mut ports);
        let order: Vec<_> = ports
            .iter()
            .map(|p| (p.port.as_str(), p.kind.as_str()))
            .collect();
        assert_eq!(
            order,
            [
                ("/dev/ttyACM1", "usb"),
                ("/a/devkit.tty", VIRTUAL_KIND),
                ("/dev/ttyUSB0", "usb")
            ]
        );
        assert_eq!(ports[1].description.as_deref(), Some("Virtual DevKit"));
        assert!(ports[1].is_devkit);
    }
}
