//! `devkit logs --events` over the corpus of realistic device logs
//! (`tasks/tests/fixtures/device-logs`): the last event printed is the one `expected.json`
//! names for each log, and no event line is longer than the parser's bound.

use std::path::Path;
use std::process::Command;

const DEVKIT: &str = env!("CARGO_BIN_EXE_devkit");

#[test]
fn the_last_event_of_each_real_log() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tasks/tests/fixtures/device-logs");
    let expected: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("expected.json")).unwrap()).unwrap();
    for (name, want) in expected.as_object().unwrap() {
        let out = Command::new(DEVKIT)
            .args(["logs", "--events"])
            .arg(dir.join(name))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8(out.stdout).unwrap();
        let events: Vec<serde_json::Value> = stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let last = events.last().unwrap_or_else(|| panic!("{name}: no events"));
        for (key, value) in want["final"].as_object().unwrap() {
            assert_eq!(&last[key], value, "{name}: {key} of {last}");
        }
        for (key, field) in [("hintContains", "hint"), ("reasonContains", "reason")] {
            if let Some(part) = want[key].as_str() {
                let text = last[field].as_str().unwrap_or_default();
                assert!(
                    text.contains(part),
                    "{name}: {field} {text:?} lacks {part:?}"
                );
            }
        }
        assert!(
            stdout
                .lines()
                .all(|l| l.len() <= 4 * tasks::logs::MAX_EVENT_TEXT),
            "{name}"
        );
    }
}
