//! `devkit generate-cert` / `devkit inspect-cert` through the real binary: the device-verified
//! vectors byte for byte, every rejection of the contract (exit 2, input named, nothing
//! written), backups, batches, the --against diagnosis, and that the UDS never leaks.

mod json_casing;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const DEVKIT: &str = env!("CARGO_BIN_EXE_devkit");
const SAMPLE_UDS: &str = "19e25a259d0c2be03a02d416c05c48ccd0cc7d1743458aae1cb488b074993eae";
/// A UDS that must never appear in any output.
const CANARY_UDS: &str = "c4a7a2c4a7a2c4a7a2c4a7a2c4a7a2c4a7a2c4a7a2c4a7a2c4a7a2c4a7a2beef";

fn vectors() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tasks/tests/fixtures/dice-vectors")
}

fn small() -> PathBuf {
    vectors().join("explicit-id-small")
}

fn run(args: &[&str], cwd: &Path, stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(DEVKIT);
    cmd.args(args).current_dir(cwd).stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn devkit");
    if let Some(text) = stdin {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    child.wait_with_output().unwrap()
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn write_uds(dir: &Path, name: &str, uds: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, format!("{uds}\n")).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    p
}

fn pem_der(path: &Path) -> Vec<u8> {
    tasks::identity::pem::decode(&std::fs::read_to_string(path).unwrap(), None).unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn every_vector_byte_for_byte_through_the_cli() {
    let mut count = 0;
    for entry in std::fs::read_dir(vectors()).unwrap() {
        let dir = entry.unwrap().path();
        let Ok(case) = std::fs::read(dir.join("case.json")) else {
            continue;
        };
        count += 1;
        let case: serde_json::Value = serde_json::from_slice(&case).unwrap();
        let inputs = &case["inputs"];
        let expected = &case["expected"];
        let tmp = tempfile::tempdir().unwrap();
        let uds = write_uds(tmp.path(), "uds.txt", inputs["uds"].as_str().unwrap());
        let out = tmp.path().join("out");
        let bin = dir.join("DevKitDPS.ino.bin");
        let map = dir.join("DevKitDPS.ino.map");
        let mut args = vec![
            "generate-cert",
            "--bin",
            s(&bin),
            "--map",
            s(&map),
            "--uds-file",
            s(&uds),
            "--out-dir",
            s(&out),
        ];
        args.extend([
            "--device-cert",
            "--alias-key",
            "--json",
            "--allow-sample-uds",
            "--project",
            s(tmp.path()),
        ]);
        let (mac, fw);
        match inputs["registration_id"].as_str() {
            Some(id) => args.extend(["--registration-id", id]),
            None => {
                mac = inputs["mac"].as_str().unwrap().to_uppercase();
                fw = inputs["firmware_version"].as_str().unwrap().to_string();
                args.extend(["--mac", &mac, "--firmware-version", &fw]);
            }
        }
        let o = run(&args, tmp.path(), None);
        let (stdout, stderr) = text(&o);
        assert_eq!(o.status.code(), Some(0), "{dir:?}: {stderr}");
        let json: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
        json_casing::assert_camel_case(&json, "generate-cert --json");
        let reg_id = expected["registration_id"].as_str().unwrap();
        assert_eq!(json["registrationId"], reg_id);
        assert_eq!(json["fwid"], expected["riot_fw_sha256"]);
        let alias_file = expected["alias_cert_file"].as_str().unwrap();
        for name in [
            alias_file,
            "device-cert.pem",
            "device-id-pub.pem",
            "alias-key.pem",
        ] {
            assert_eq!(
                pem_der(&out.join(name)),
                pem_der(&dir.join(name)),
                "{dir:?} {name}"
            );
        }
        let alias_der = pem_der(&out.join(alias_file));
        assert_eq!(
            json["sha256Thumbprint"],
            tasks::identity::sha256_thumbprint(&alias_der)
        );
        assert_eq!(
            json["sha1Thumbprint"],
            tasks::identity::sha1_thumbprint(&alias_der)
        );
        assert!(json["sha1Thumbprint"]
            .as_str()
            .unwrap()
            .chars()
            .all(|c| !c.is_ascii_lowercase()));
        assert_eq!(
            Path::new(json["aliasCert"].as_str().unwrap()),
            out.join(alias_file)
        );
        assert_eq!(
            Path::new(json["deviceCert"].as_str().unwrap()),
            out.join("device-cert.pem")
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(out.join("alias-key.pem"))
                .unwrap()
                .permissions()
                .mode()
                & 0o777;
            assert_eq!(mode, 0o600, "alias key must be private");
        }
        let state = tasks::project::ProjectState::load(tmp.path()).unwrap();
        let rec = state
            .last_generated
            .expect("identity recorded in the project state");
        assert_eq!(rec.registration_id, reg_id);
        assert_eq!(rec.alias_cert, out.join(alias_file));
        assert_eq!(
            rec.sha256_thumbprint,
            json["sha256Thumbprint"].as_str().unwrap()
        );
        assert_eq!(
            rec.fwid,
            expected["riot_fw_sha256"].as_str().unwrap(),
            "FWID recorded lower-case, as --json prints it"
        );
    }
    assert_eq!(count, 5);
}

#[test]
fn build_dir_and_uds_stdin_and_human_output() {
    let tmp = tempfile::tempdir().unwrap();
    let build = tmp.path().join("build");
    std::fs::create_dir(&build).unwrap();
    std::fs::copy(
        small().join("DevKitDPS.ino.bin"),
        build.join("DevKitDPS.ino.bin"),
    )
    .unwrap();
    std::fs::copy(
        small().join("DevKitDPS.ino.map"),
        build.join("DevKitDPS.ino.map"),
    )
    .unwrap();
    let o = run(
        &[
            "generate-cert",
            "--build-dir",
            "build",
            "--uds-stdin",
            "--registration-id",
            "my-devkit-01",
            "--allow-sample-uds",
        ],
        tmp.path(),
        Some(&format!("{SAMPLE_UDS}\nsecond line ignored\n")),
    );
    let (stdout, stderr) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{stderr}");
    assert_eq!(
        pem_der(&tmp.path().join("my-devkit-01.pem")),
        pem_der(&small().join("my-devkit-01.pem"))
    );
    assert!(
        stdout.contains("my-devkit-01")
            && stdout.contains("5332329D73CABEB8389370E051B968B0E87C548A"),
        "{stdout}"
    );
    assert!(
        stdout.contains("never use the DeviceID certificate as a CA"),
        "{stdout}"
    );
    assert!(
        stderr.contains("sample UDS"),
        "the sample-UDS warning is shown: {stderr}"
    );
    assert!(
        !tmp.path().join("alias-key.pem").exists(),
        "keys only on request"
    );
    assert!(
        tmp.path().join(".devkit/state.json").exists(),
        "project defaults to the current directory"
    );

    // Two pairs in the build directory: refused, naming --build-dir.
    std::fs::copy(
        small().join("DevKitDPS.ino.bin"),
        build.join("Other.ino.bin"),
    )
    .unwrap();
    let o = run(
        &[
            "generate-cert",
            "--build-dir",
            "build",
            "--uds-stdin",
            "--registration-id",
            "x",
            "--allow-sample-uds",
        ],
        tmp.path(),
        Some(SAMPLE_UDS),
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).1.contains("--build-dir"), "{}", text(&o).1);
}

/// A bad-input case: extra arguments, and replacement image/map contents.
struct Bad {
    name: &'static str,
    args: Vec<String>,
    bin: Option<Vec<u8>>,
    map: Option<String>,
    uds: String,
    names: &'static str,
}

fn bad(name: &'static str, names: &'static str) -> Bad {
    Bad {
        name,
        args: vec!["--registration-id".into(), "good-id".into()],
        bin: None,
        map: None,
        uds: CANARY_UDS.into(),
        names,
    }
}

fn replace_addr(map: &str, symbol: &str, new_addr: &str) -> String {
    map.lines()
        .map(|l| {
            if l.contains(symbol) && l.contains("0x") {
                format!("                {new_addr}                        {symbol} = .")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn every_rejection_exits_2_names_the_input_and_writes_nothing() {
    let map = std::fs::read_to_string(small().join("DevKitDPS.ino.map")).unwrap();
    let bin = std::fs::read(small().join("DevKitDPS.ino.bin")).unwrap();
    let with_id = |name, id: &str, names| Bad {
        args: vec!["--registration-id".into(), id.into()],
        ..bad(name, names)
    };
    let with_auto = |name, mac: &str, fw: &str, names| Bad {
        args: vec![
            "--mac".into(),
            mac.into(),
            "--firmware-version".into(),
            fw.into(),
        ],
        ..bad(name, names)
    };
    let mut cases = vec![
        with_id("id too long", &"a".repeat(65), "--registration-id"),
        with_id("id upper case", "My-dev", "--registration-id"),
        with_id("id underscore", "my_dev", "--registration-id"),
        with_id("id empty", "", "--registration-id"),
        Bad {
            uds: CANARY_UDS[..63].into(),
            ..bad("uds 63", "--uds-file")
        },
        Bad {
            uds: format!("{CANARY_UDS}0"),
            ..bad("uds 65", "--uds-file")
        },
        Bad {
            uds: format!("{}g", &CANARY_UDS[..63]),
            ..bad("uds non-hex", "--uds-file")
        },
        Bad {
            uds: SAMPLE_UDS.into(),
            ..bad("sample uds", "--uds-file")
        },
        with_auto("mac 11", "a0b1c2d3e4f", "1.6.2", "--mac"),
        with_auto("mac 13", "a0b1c2d3e4f5a", "1.6.2", "--mac"),
        with_auto("mac non-hex", "a0b1c2d3e4fz", "1.6.2", "--mac"),
        with_auto("version 1.6", "a0b1c2d3e4f5", "1.6", "--firmware-version"),
        with_auto("version 1..6", "a0b1c2d3e4f5", "1..6", "--firmware-version"),
        with_auto(
            "version a.b.c",
            "a0b1c2d3e4f5",
            "a.b.c",
            "--firmware-version",
        ),
        Bad {
            map: Some(map.replace("__stop_riot_fw", "__stop_riot_xx")),
            ..bad("missing symbol", "--map")
        },
        Bad {
            map: Some(map.replace("FLASH            0x", "FLESH            0x")),
            ..bad("missing FLASH", "--map")
        },
        Bad {
            map: Some(replace_addr(&map, "__stop_riot_core", "0x0800d000")),
            ..bad("stop before start", "--map")
        },
        Bad {
            map: Some(replace_addr(&map, "__stop_riot_fw", "0x0810d5dc")),
            ..bad("region outside", "--bin")
        },
        Bad {
            map: Some(map.replace("FLASH            0x0800c000", "FLASH            0x0800e000")),
            ..bad("region before origin", "--bin")
        },
        Bad {
            bin: Some(Vec::new()),
            ..bad("empty image", "--bin")
        },
        Bad {
            bin: Some(bin[..0x1500].to_vec()),
            ..bad("truncated image", "--bin")
        },
        Bad {
            map: Some(replace_addr(&map, "__stop_riot_core", "0x0800d4a8")),
            ..bad("core < 8 bytes", "--map")
        },
    ];
    // The missing-symbol case must hold for each of the four symbols.
    for sym in ["__start_riot_core", "__stop_riot_core", "__start_riot_fw"] {
        cases.push(Bad {
            map: Some(map.replace(sym, "__other_symbol")),
            ..bad("missing symbol (each)", "--map")
        });
    }
    for case in cases {
        let tmp = tempfile::tempdir().unwrap();
        let uds = write_uds(tmp.path(), "uds.txt", &case.uds);
        let bin_path = tmp.path().join("fw.bin");
        let map_path = tmp.path().join("fw.map");
        std::fs::write(&bin_path, case.bin.as_deref().unwrap_or(&bin)).unwrap();
        std::fs::write(&map_path, case.map.as_deref().unwrap_or(&map)).unwrap();
        let out = tmp.path().join("out");
        std::fs::create_dir(&out).unwrap();
        let mut args: Vec<String> = [
            "generate-cert",
            "--bin",
            s(&bin_path),
            "--map",
            s(&map_path),
            "--uds-file",
            s(&uds),
            "--out-dir",
            s(&out),
        ]
        .iter()
        .map(|a| a.to_string())
        .collect();
        args.extend(["--device-cert".into(), "--alias-key".into()]);
        args.extend(case.args.iter().cloned());
        for json in [false, true] {
            let mut a = args.clone();
            if json {
                a.push("--json".into());
            }
            let a: Vec<&str> = a.iter().map(String::as_str).collect();
            let o = run(&a, tmp.path(), None);
            let (stdout, stderr) = text(&o);
            assert_eq!(o.status.code(), Some(2), "{}: {stderr}", case.name);
            assert!(
                stderr.contains(case.names),
                "{}: the message must name {}: {stderr}",
                case.name,
                case.names
            );
            assert!(
                stderr.contains("allowed") || stderr.len() > 40,
                "{}: says what is allowed: {stderr}",
                case.name
            );
            assert!(
                std::fs::read_dir(&out).unwrap().next().is_none(),
                "{}: nothing written",
                case.name
            );
            assert!(
                !tmp.path().join(".devkit").exists(),
                "{}: no project state written",
                case.name
            );
            for secret in [CANARY_UDS, &CANARY_UDS[..32], &CANARY_UDS[32..]] {
                assert!(
                    !stdout.to_lowercase().contains(secret)
                        && !stderr.to_lowercase().contains(secret),
                    "{}: UDS leaked",
                    case.name
                );
            }
        }
    }
}

#[test]
fn valid_edge_inputs_are_accepted() {
    let tmp = tempfile::tempdir().unwrap();
    let uds = write_uds(tmp.path(), "uds.txt", &CANARY_UDS.to_uppercase());
    let (bin, map) = (
        small().join("DevKitDPS.ino.bin"),
        small().join("DevKitDPS.ino.map"),
    );
    let long = "a".repeat(64);
    for extra in [
        vec!["--mac", "A0:B1:C2:D3:E4:F5", "--firmware-version", "2.0.10"],
        vec!["--mac", "a0-b1-c2-d3-e4-f5", "--firmware-version", "1.6.2"],
        vec!["--registration-id", long.as_str()],
    ] {
        let mut args = vec![
            "generate-cert",
            "--bin",
            s(&bin),
            "--map",
            s(&map),
            "--uds-file",
            s(&uds),
            "--json",
        ];
        args.extend(extra.iter().copied());
        let o = run(&args, tmp.path(), None);
        assert_eq!(o.status.code(), Some(0), "{extra:?}: {}", text(&o).1);
    }
    assert!(tmp.path().join("az-a0b1c2d3e4f5v2v0v10.pem").exists());
    assert!(tmp.path().join(format!("{long}.pem")).exists());
}

#[test]
fn the_uds_never_appears_in_any_output() {
    let tmp = tempfile::tempdir().unwrap();
    let uds = write_uds(tmp.path(), "uds.txt", CANARY_UDS);
    let (bin, map) = (
        small().join("DevKitDPS.ino.bin"),
        small().join("DevKitDPS.ino.map"),
    );
    let base = ["generate-cert", "--bin", s(&bin), "--map", s(&map)];
    let runs: Vec<(Vec<&str>, Option<String>)> = vec![
        (
            vec![
                "--uds-file",
                s(&uds),
                "--registration-id",
                "canary",
                "--device-cert",
                "--alias-key",
            ],
            None,
        ),
        (
            vec![
                "--uds-file",
                s(&uds),
                "--registration-id",
                "canary",
                "--json",
            ],
            None,
        ),
        (
            vec!["--uds-stdin", "--registration-id", "canary", "--json"],
            Some(CANARY_UDS.to_uppercase()),
        ),
        (
            vec!["--uds-file", s(&uds), "--registration-id", "Bad_Id"],
            None,
        ),
        (
            vec!["--uds-stdin", "--registration-id", "canary"],
            Some(format!("{CANARY_UDS}x")),
        ),
        (
            vec!["--uds-stdin", "--registration-id", "canary", "--json"],
            Some(format!("  {} ", &CANARY_UDS[1..])),
        ),
        // On argv it is refused (exit 2) without being echoed.
        (
            vec!["--uds", CANARY_UDS, "--registration-id", "canary"],
            None,
        ),
    ];
    for (extra, stdin) in runs {
        let mut args = base.to_vec();
        args.extend(extra.iter().copied());
        let o = run(&args, tmp.path(), stdin.as_deref());
        let (stdout, stderr) = text(&o);
        let all = format!("{stdout}{stderr}").to_lowercase();
        if extra[0] == "--uds" {
            assert_eq!(o.status.code(), Some(2), "{stderr}");
            assert!(
                stderr.contains("never taken on the command line"),
                "{stderr}"
            );
        }
        for window in [&CANARY_UDS[..16], &CANARY_UDS[24..40], &CANARY_UDS[48..]] {
            assert!(
                !all.contains(window),
                "UDS fragment leaked with {extra:?}: {all}"
            );
        }
    }
}

#[test]
fn a_different_identity_is_backed_up_and_an_identical_one_is_left_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let a = write_uds(tmp.path(), "a.uds", CANARY_UDS);
    let b = write_uds(tmp.path(), "b.uds", &"7".repeat(64));
    let (bin, map) = (
        small().join("DevKitDPS.ino.bin"),
        small().join("DevKitDPS.ino.map"),
    );
    let gen = |uds: &Path| {
        let o = run(
            &[
                "generate-cert",
                "--bin",
                s(&bin),
                "--map",
                s(&map),
                "--uds-file",
                s(uds),
                "--registration-id",
                "dev",
                "--alias-key",
                "--json",
                "--out-dir",
                "out",
            ],
            tmp.path(),
            None,
        );
        assert_eq!(o.status.code(), Some(0), "{}", text(&o).1);
        let v = serde_json::from_str::<serde_json::Value>(text(&o).0.trim()).unwrap();
        json_casing::assert_camel_case(&v, "inspect-cert --json");
        v
    };
    let first = gen(&a);
    let cert_a = std::fs::read(tmp.path().join("out/dev.pem")).unwrap();
    let again = gen(&a);
    assert!(
        again["files"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["action"] == "unchanged"),
        "{again}"
    );
    assert_eq!(again["warnings"].as_array().unwrap().len(), 0, "{again}");
    let second = gen(&b);
    assert_ne!(first["sha256Thumbprint"], second["sha256Thumbprint"]);
    let backups: Vec<PathBuf> = std::fs::read_dir(tmp.path().join("out"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".bak"))
        .collect();
    assert_eq!(
        backups.len(),
        2,
        "certificate and key backed up: {backups:?}"
    );
    let cert_backup = backups
        .iter()
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("dev.pem.")
        })
        .unwrap();
    assert_eq!(
        std::fs::read(cert_backup).unwrap(),
        cert_a,
        "the old identity is kept intact"
    );
    let warnings = second["warnings"].to_string();
    assert!(
        warnings.contains(".bak") && warnings.contains("dev.pem"),
        "the backup is reported: {warnings}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let key_backup = backups
            .iter()
            .find(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("alias-key.pem.")
            })
            .unwrap();
        assert_eq!(
            std::fs::metadata(key_backup).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}

#[test]
fn batch_writes_good_rows_and_reports_bad_ones() {
    let tmp = tempfile::tempdir().unwrap();
    write_uds(tmp.path(), "a.uds", CANARY_UDS);
    write_uds(tmp.path(), "b.uds", &"7".repeat(64));
    write_uds(tmp.path(), "bad.uds", "123");
    std::fs::write(
        tmp.path().join("m.csv"),
        "uds_file,mac,firmware_version\na.uds,a0b1c2d3e4f5,2.0.9\nbad.uds,a0b1c2d3e4f6,2.0.9\nb.uds,A0:B1:C2:D3:E4:F7,2.0.10\nb.uds,a0b1c2d3e4f8,1.6\n",
    )
    .unwrap();
    let (bin, map) = (
        small().join("DevKitDPS.ino.bin"),
        small().join("DevKitDPS.ino.map"),
    );
    let o = run(
        &[
            "generate-cert",
            "--bin",
            s(&bin),
            "--map",
            s(&map),
            "--batch",
            "m.csv",
            "--out-dir",
            "out",
            "--json",
        ],
        tmp.path(),
        None,
    );
    let (stdout, stderr) = text(&o);
    assert_eq!(o.status.code(), Some(1), "some rows failed: {stderr}");
    let json: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    json_casing::assert_camel_case(&json, "generate-cert --batch --json");
    assert_eq!(json["ok"], 2);
    assert_eq!(json["failed"], 2);
    // One document: the summary and the JSON error object of the failed run.
    assert_eq!(json["error"]["kind"], "taskFailed", "{json}");
    let results = json["results"].as_array().unwrap();
    // A failed row carries a typed error object (kind, input, message), not a bare string.
    assert!(
        results[1]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("line 3"),
        "{}",
        results[1]
    );
    assert_eq!(results[1]["error"]["kind"], "invalidParams");
    assert_eq!(results[1]["error"]["input"], "uds");
    assert!(
        results[3]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("firmware version"),
        "{}",
        results[3]
    );
    assert_eq!(results[3]["error"]["input"], "firmwareVersion");
    assert_eq!(results[0]["registrationId"], "az-a0b1c2d3e4f5v2v0v9");
    // The output is the task's report type.
    let report: tasks::identity::BatchReport = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!((report.ok, report.failed), (2, 2));
    assert!(tmp.path().join("out/az-a0b1c2d3e4f5v2v0v9.pem").exists());
    assert!(tmp.path().join("out/az-a0b1c2d3e4f7v2v0v10.pem").exists());
    assert!(!stdout.contains(CANARY_UDS) && !stderr.contains(CANARY_UDS));
    // The batch certificate equals the single-device one.
    let single = run(
        &[
            "generate-cert",
            "--bin",
            s(&bin),
            "--map",
            s(&map),
            "--uds-file",
            "a.uds",
            "--mac",
            "a0b1c2d3e4f5",
            "--firmware-version",
            "2.0.9",
            "--out-dir",
            "single",
        ],
        tmp.path(),
        None,
    );
    assert_eq!(single.status.code(), Some(0));
    assert_eq!(
        std::fs::read(tmp.path().join("single/az-a0b1c2d3e4f5v2v0v9.pem")).unwrap(),
        std::fs::read(tmp.path().join("out/az-a0b1c2d3e4f5v2v0v9.pem")).unwrap()
    );
    // An invalid manifest writes nothing and exits 2.
    std::fs::write(tmp.path().join("bad.csv"), "uds_file,colour\na.uds,red\n").unwrap();
    let o = run(
        &[
            "generate-cert",
            "--bin",
            s(&bin),
            "--map",
            s(&map),
            "--batch",
            "bad.csv",
            "--out-dir",
            "out2",
        ],
        tmp.path(),
        None,
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).1.contains("--batch"));
    assert!(!tmp.path().join("out2").exists());
}

#[test]
fn inspect_cert_diagnoses_which_input_differs() {
    let tmp = tempfile::tempdir().unwrap();
    let a = write_uds(tmp.path(), "a.uds", CANARY_UDS);
    let b = write_uds(tmp.path(), "b.uds", &"7".repeat(64));
    let map = small().join("DevKitDPS.ino.map");
    let bin = small().join("DevKitDPS.ino.bin");
    // Same image with one byte of .riot_fw changed (0x800d574 - 0x800c000 = 0x1574).
    let mut changed = std::fs::read(&bin).unwrap();
    changed[0x1580] ^= 0xff;
    let bin2 = tmp.path().join("changed.bin");
    std::fs::write(&bin2, changed).unwrap();
    let gen = |bin: &Path, uds: &Path, id: &str, out: &str| {
        let o = run(
            &[
                "generate-cert",
                "--bin",
                s(bin),
                "--map",
                s(&map),
                "--uds-file",
                s(uds),
                "--registration-id",
                id,
                "--out-dir",
                out,
            ],
            tmp.path(),
            None,
        );
        assert_eq!(o.status.code(), Some(0), "{}", text(&o).1);
        tmp.path().join(out).join(format!("{id}.pem"))
    };
    let base = gen(&bin, &a, "dev", "base");
    let fw = gen(&bin2, &a, "dev", "fw");
    let uds = gen(&bin, &b, "dev", "uds");
    let cn = gen(&bin, &a, "other", "cn");
    let inspect = |other: &Path| {
        let o = run(
            &["inspect-cert", s(&base), "--against", s(other), "--json"],
            tmp.path(),
            None,
        );
        assert_eq!(o.status.code(), Some(0), "{}", text(&o).1);
        serde_json::from_str::<serde_json::Value>(text(&o).0.trim()).unwrap()
    };
    // `--json` prints the daemon's `devkit/inspectCert` result: the certificate's fields, the
    // comparison under `against`.
    assert_eq!(inspect(&base)["against"]["difference"], "identical");
    assert_eq!(inspect(&fw)["against"]["difference"], "fwid");
    assert_eq!(inspect(&uds)["against"]["difference"], "deviceId");
    assert_eq!(inspect(&cn)["against"]["difference"], "registrationId");
    let j = inspect(&fw);
    assert_eq!(j["signatureValid"], true);
    assert_eq!(j["isAlias"], true);
    assert_eq!(j["subjectCn"], "dev");
    assert_eq!(j["against"]["differences"], serde_json::json!(["fwid"]));
    serde_json::from_value::<tasks::identity::inspection::InspectReport>(j).unwrap();

    // Human output explains, and a DER file works as well as PEM.
    let der = tmp.path().join("cert.der");
    std::fs::write(&der, pem_der(&fw)).unwrap();
    let o = run(
        &["inspect-cert", s(&base), "--against", s(&der)],
        tmp.path(),
        None,
    );
    let (stdout, _) = text(&o);
    assert!(stdout.contains(".riot_fw code changed"), "{stdout}");
    assert!(stdout.contains("Signature:          valid"), "{stdout}");

    // Garbage is invalid input naming the file.
    let junk = tmp.path().join("junk.pem");
    std::fs::write(
        &junk,
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let o = run(&["inspect-cert", s(&junk)], tmp.path(), None);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).1.contains("junk.pem"));
}

#[test]
fn help_lists_the_contract_flags() {
    let tmp = tempfile::tempdir().unwrap();
    let o = run(&["generate-cert", "--help"], tmp.path(), None);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o).1);
    let help = text(&o).0;
    for flag in [
        "--bin",
        "--map",
        "--build-dir",
        "--uds-file",
        "--uds-stdin",
        "--registration-id",
        "--mac",
        "--firmware-version",
        "--out-dir",
        "--device-cert",
        "--alias-key",
        "--json",
        "--allow-sample-uds",
        "--batch",
        "--project",
    ] {
        assert!(help.contains(flag), "{flag} missing from help");
    }
    assert!(!help.contains("--uds <"), "the argv trap stays hidden");
    let o = run(&["inspect-cert", "--help"], tmp.path(), None);
    assert_eq!(o.status.code(), Some(0));
    assert!(text(&o).0.contains("--against"));
}

/// A batch killed while it writes leaves only complete certificates (each chunk lands whole or
/// not at all; a temporary file is all a kill can leave, and the next run removes it), and the
/// next run finishes the batch, leaving what was written unchanged. `--json` streams one
/// document whatever the manifest's length.
#[test]
fn a_killed_batch_leaves_only_complete_certificates() {
    let tmp = tempfile::tempdir().unwrap();
    let n = 3000;
    let mut manifest = String::from("uds_file,registration_id\n");
    for i in 0..n {
        write_uds(tmp.path(), &format!("{i}.uds"), &format!("{:064x}", i + 77));
        manifest.push_str(&format!("{i}.uds,dev-{i}\n"));
    }
    std::fs::write(tmp.path().join("m.csv"), manifest).unwrap();
    let (bin, map) = (
        small().join("DevKitDPS.ino.bin"),
        small().join("DevKitDPS.ino.map"),
    );
    let args = [
        "generate-cert",
        "--bin",
        s(&bin),
        "--map",
        s(&map),
        "--batch",
        "m.csv",
        "--out-dir",
        "out",
        "--json",
    ];
    let out = tmp.path().join("out");
    let pems = || -> Vec<PathBuf> {
        std::fs::read_dir(&out)
            .map(|d| {
                d.map(|e| e.unwrap().path())
                    .filter(|p| p.extension().is_some_and(|x| x == "pem"))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut child = Command::new(DEVKIT)
        .args(args)
        .current_dir(tmp.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while pems().is_empty() && start.elapsed() < std::time::Duration::from_secs(60) {
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    let pid = child.id();
    child.kill().unwrap();
    child.wait().unwrap();
    let written = pems();
    assert!(
        !written.is_empty() && written.len() < n,
        "killed mid-batch: {} of {n} written",
        written.len()
    );
    for p in &written {
        let text = std::fs::read_to_string(p).unwrap();
        assert!(
            text.starts_with("-----BEGIN CERTIFICATE-----\n")
                && text.ends_with("-----END CERTIFICATE-----\n"),
            "{} is incomplete",
            p.display()
        );
        pem_der(p);
    }
    let o = run(&args, tmp.path(), None);
    let (stdout, stderr) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{stderr}");
    let report: tasks::identity::BatchReport = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!((report.ok, report.failed, report.results.len()), (n, 0, n));
    let lines: Vec<usize> = report.results.iter().map(|r| r.line).collect();
    assert_eq!(lines, (2..n + 2).collect::<Vec<_>>(), "manifest order");
    let unchanged = report
        .results
        .iter()
        .filter(|r| {
            r.certificate.as_ref().unwrap().files[0].action
                == tasks::identity::files::FileAction::Unchanged
        })
        .count();
    assert_eq!(
        unchanged,
        written.len(),
        "what the killed run wrote is kept"
    );
    let names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.iter().filter(|n| n.ends_with(".pem")).count(), n);
    // Besides the certificates, at most the killed run's temporary files (removed by a run a
    // minute later, once they are stale), and on Windows the directory's lock file (Unix locks
    // the directory itself).
    let killed = format!(".devkit-tmp-{pid}-");
    assert!(
        names.iter().all(|n| n.ends_with(".pem")
            || n.starts_with(&killed)
            || (cfg!(windows) && n == ".devkit.lock")),
        "{:?}",
        names
            .iter()
            .filter(|n| !n.ends_with(".pem"))
            .collect::<Vec<_>>()
    );
}
