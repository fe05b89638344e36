//! CLI: `devkit enroll --batch` against a running `devkit dps-emulator` with injected 429s:
//! killed mid-way, resumed, then re-run with nothing changed.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const DEVKIT: &str = env!("CARGO_BIN_EXE_devkit");
const ROWS: usize = 60;

fn sample(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tasks/assets/sample-firmware")
        .join(name)
}

struct Emulator(Child, String, String);

impl Emulator {
    /// `(process, connection string, ca.pem)`.
    fn start(state: &Path) -> Emulator {
        let mut child = Command::new(DEVKIT)
            .args([
                "dps-emulator",
                "--listen",
                "127.0.0.1:0",
                "--inject-429",
                "3",
            ])
            .args(["--retry-after", "0", "--emulator-dir"])
            .arg(state)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let (mut cs, mut ca) = (String::new(), String::new());
        for _ in 0..5 {
            let mut l = String::new();
            out.read_line(&mut l).unwrap();
            if let Some(v) = l.trim_end().strip_prefix("connection string: ") {
                cs = v.to_string();
            }
            if let Some(v) = l.trim_end().strip_prefix("ca certificate: ") {
                ca = v.to_string();
            }
        }
        Emulator(child, cs, ca)
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn enroll(dir: &Path, ca: &str, extra: &[&str]) -> Command {
    let mut c = Command::new(DEVKIT);
    c.current_dir(dir)
        .args(["enroll", "--batch", "line.csv", "--cert-dir", "certs"])
        .args(["--connection-string-file", "dps.cs", "--ca-file", ca])
        .args(extra)
        .stdin(Stdio::null());
    c
}

fn output(mut c: Command) -> (Output, String) {
    let o = c.output().unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    (o, stdout)
}

fn journal_lines(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("line.csv.enroll-journal"))
        .map(|t| t.lines().count())
        .unwrap_or(0)
}

#[test]
fn a_killed_batch_resumes_and_a_rerun_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut manifest = String::from("uds_file,registration_id\n");
    for i in 0..ROWS {
        std::fs::write(d.join(format!("{i}.uds")), format!("{:064x}", i + 1)).unwrap();
        manifest.push_str(&format!("{i}.uds,batch-dev-{i:03}\n"));
    }
    std::fs::write(d.join("line.csv"), manifest).unwrap();
    let o = Command::new(DEVKIT)
        .current_dir(d)
        .args(["generate-cert", "--bin"])
        .arg(sample("sample.bin"))
        .arg("--map")
        .arg(sample("sample.map"))
        .args(["--batch", "line.csv", "--out-dir", "certs"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let state = tempfile::tempdir().unwrap();
    let emu = Emulator::start(state.path());
    std::fs::write(d.join("dps.cs"), &emu.1).unwrap();

    // Paced to 300 requests a minute (one bulk request per 200 ms): killed once DPS confirmed
    // the first chunks, long before the sixth.
    let mut child = enroll(d, &emu.2, &["--requests-per-minute", "300"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while journal_lines(d) < 10 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let done = journal_lines(d);
    assert!(
        (10..ROWS).contains(&done),
        "killed mid-way: {done} journaled"
    );
    assert!(!d.join("line.csv.enroll-report.csv").exists());

    // Resumed: what DPS confirmed is skipped and said.
    let (o, stdout) = output(enroll(d, &emu.2, &["--requests-per-minute", "0"]));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stdout}\n{stderr}");
    assert!(stderr.contains(&format!("{done} rows skipped")), "{stderr}");
    // A chunk in flight at the kill may be in DPS without its journal record: unchanged.
    let summary = stdout.lines().next().unwrap_or_default().to_string();
    assert!(summary.starts_with(&format!("{ROWS} rows: ")), "{summary}");
    assert!(summary.contains(&format!("{done} skipped")), "{summary}");
    assert!(summary.contains(" 0 failed"), "{summary}");
    let csv = std::fs::read_to_string(d.join("line.csv.enroll-report.csv")).unwrap();
    assert_eq!(csv.lines().count(), ROWS + 1);
    assert_eq!(journal_lines(d), ROWS);

    // Nothing changed: no request at all, every row skipped.
    let (o, stdout) = output(enroll(d, &emu.2, &["--json"]));
    assert!(o.status.success());
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(v["skipped"], ROWS);
    assert_eq!(v["requests"], 0);
    assert_eq!(v["created"], 0);
    assert!(v["reportCsv"]
        .as_str()
        .unwrap()
        .ends_with("line.csv.enroll-report.csv"));
    // The secret never shows.
    assert!(!stdout.contains("SharedAccessKey="));
}
