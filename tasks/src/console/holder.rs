//! Which program holds a port that would not open because it is in use.
//!
//! "Device or resource busy" alone sends users looking for another port, while the DevKit's
//! port is the right one and a serial monitor (a terminal program, another `devkit monitor`,
//! the editor's daemon) has it open. On Linux `/proc` tells who: the processes with the
//! device open, or, for a `tcp://` virtual DevKit, with a connection to its address. Elsewhere
//! (and for processes of other users, which `/proc` does not show) nobody is named.

use std::path::Path;

/// `name (pid N)` of each process holding `port` (at most three), or `None` when unknown.
pub fn describe(port: &Path) -> Option<String> {
    #[cfg(target_os = "linux")]
    {
        linux::holders(port)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = port;
        None
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use std::collections::HashSet;
    use std::path::Path;

    /// What an open descriptor of the port reads as in `/proc/PID/fd`.
    fn targets(port: &Path) -> HashSet<String> {
        let name = port.to_string_lossy();
        match super::super::tcp::tcp_address(&name) {
            Some(address) => connections_to(address),
            None => std::fs::canonicalize(port)
                .map(|p| HashSet::from([p.to_string_lossy().into_owned()]))
                .unwrap_or_default(),
        }
    }

    /// `socket:[INODE]` of every established loopback connection to `address`'s port.
    fn connections_to(address: &str) -> HashSet<String> {
        let Some(port) = address
            .rsplit_once(':')
            .and_then(|(_, p)| p.parse::<u16>().ok())
        else {
            return HashSet::new();
        };
        let remote_port = format!(":{port:04X}");
        let mut found = HashSet::new();
        for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
            let Ok(text) = std::fs::read_to_string(table) else {
                continue;
            };
            for line in text.lines().skip(1) {
                let f: Vec<&str> = line.split_whitespace().collect();
                // sl local rem st ... inode (10th field); 01 = ESTABLISHED.
                if f.len() > 9 && f[2].ends_with(&remote_port) && f[3] == "01" {
                    found.insert(format!("socket:[{}]", f[9]));
                }
            }
        }
        found
    }

    pub(super) fn holders(port: &Path) -> Option<String> {
        let targets = targets(port);
        if targets.is_empty() {
            return None;
        }
        let mut named = Vec::new();
        for entry in std::fs::read_dir("/proc").ok()?.flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
                continue;
            };
            let holds = fds.flatten().any(|fd| {
                std::fs::read_link(fd.path())
                    .is_ok_and(|t| targets.contains(t.to_string_lossy().as_ref()))
            });
            if holds {
                let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
                named.push(format!("{} (pid {pid})", comm.trim()));
                if named.len() == 3 {
                    break;
                }
            }
        }
        (!named.is_empty()).then(|| named.join(", "))
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    #[test]
    fn the_process_holding_a_device_or_a_tcp_port_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let device = dir.path().join("ttyFAKE");
        std::fs::write(&device, "").unwrap();
        assert_eq!(super::describe(&device), None, "nobody has it open");
        let _open = std::fs::File::open(&device).unwrap();
        let me = format!("(pid {})", std::process::id());
        let held = super::describe(&device).expect("held");
        assert!(held.contains(&me), "{held}");

        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let name = format!("tcp://{}", listener.local_addr().unwrap());
        let _client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let held = super::describe(Path::new(&name)).expect("held");
        assert!(held.contains(&me), "{held}");
    }

    use std::path::Path;
}
