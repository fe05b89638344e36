//! The build driver against a stand-in for arduino-cli (`tests/fixtures/arduino-cli-standin`),
//! which follows arduino-cli's documented command line and output. No real arduino-cli,
//! AZ3166 platform or ARM compiler is involved.
//!
//! Unix-only: the arduino-cli stand-in is a shell script.
#![cfg(unix)]

use tasks::build::{build, BuildError, BuildOptions, Severity};
use tasks::error::DomainError;
use tasks::progress::{CancellationToken, Progress, ProgressEvent};

#[path = "fixtures/arduino-cli-standin/project.rs"]
mod standin;

use standin::{recorder, Project};

/// Run a build; returns the result and the progress events.
async fn run(
    opts: &BuildOptions,
) -> (
    Result<tasks::build::BuildOutput, BuildError>,
    Vec<ProgressEvent>,
) {
    let (progress, events) = recorder();
    let r = build(opts, &progress, &CancellationToken::new()).await;
    let events = events.lock().unwrap().clone();
    (r, events)
}

#[tokio::test]
async fn success_returns_bin_and_map_then_skips_until_something_changes() {
    let p = Project::new(true);
    let opts = p.options("0ne0001A2B3");
    let (r, events) = run(&opts).await;
    let out = r.unwrap();
    assert!(!out.skipped);
    assert_eq!(
        out.bin,
        p.dir.path().join(".devkit/build/DevKitDPS.ino.bin")
    );
    assert_eq!(
        std::fs::read(&out.bin).unwrap(),
        std::fs::read(standin::vector("explicit-id-small").join("DevKitDPS.ino.bin")).unwrap()
    );
    assert!(out.map.is_file());
    assert_eq!(out.toolchain.arduino_cli_version, "1.2.2");
    assert_eq!(out.toolchain.platform_version, "1.6.2");
    // The compiler's output is streamed as progress.
    assert!(events.iter().any(|e| matches!(e, ProgressEvent::Report { message, .. } if message.starts_with("Sketch uses"))), "{events:?}");
    // dps_config.h generated in the sketch, dps_config.json next to the outputs.
    let header = std::fs::read_to_string(p.sketch().join("dps_config.h")).unwrap();
    assert!(
        header.contains("#define DPS_ID_SCOPE \"0ne0001A2B3\""),
        "{header}"
    );
    let json: serde_json::Value = serde_json::from_slice(
        &std::fs::read(p.dir.path().join(".devkit/build/dps_config.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(json["id_scope"], "0ne0001A2B3");
    assert_eq!(p.compiles(), 1);

    // Nothing changed: skipped.
    let (r, _) = run(&opts).await;
    assert!(r.unwrap().skipped);
    assert_eq!(p.compiles(), 1);

    // A settings change, a source change and a toolchain change each rebuild.
    let (r, _) = run(&p.options("0ne0001A2B4")).await;
    assert!(!r.unwrap().skipped);
    assert_eq!(p.compiles(), 2);
    std::fs::write(p.sketch().join("extra.h"), "#define X 1\n").unwrap();
    let (r, _) = run(&p.options("0ne0001A2B4")).await;
    assert!(!r.unwrap().skipped);
    assert_eq!(p.compiles(), 3);
    std::fs::create_dir_all(
        p.dir
            .path()
            .join("arduino-data/packages/AZ3166/hardware/stm32f4/1.6.3"),
    )
    .unwrap();
    let (r, _) = run(&p.options("0ne0001A2B4")).await;
    let out = r.unwrap();
    assert!(!out.skipped);
    assert_eq!(out.toolchain.platform_version, "1.6.3");
    // A rebuild always compiles.
    let mut forced = p.options("0ne0001A2B4");
    forced.force = true;
    assert!(!run(&forced).await.0.unwrap().skipped);
    assert_eq!(p.compiles(), 5);
}

#[tokio::test]
async fn compile_error_becomes_structured_diagnostics_and_no_stamp() {
    let p = Project::new(true);
    std::fs::write(p.sketch().join("DevKitDPS.ino"), "void setup() {}\n  #error \"DPS settings missing\"\n#warning \"check me\"\nvoid loop() {}\n").unwrap();
    let (r, _) = run(&p.options("0ne0001A2B3")).await;
    let err = r.unwrap_err();
    let BuildError::Compile { diagnostics, .. } = &err else {
        panic!("expected a compile error, got {err}")
    };
    let e = diagnostics
        .iter()
        .find(|d| d.severity == Severity::Error)
        .unwrap();
    assert!(
        e.file.ends_with("firmware/DevKitDPS/DevKitDPS.ino"),
        "{}",
        e.file
    );
    assert_eq!((e.line, e.column), (2, Some(3)));
    assert_eq!(e.message, "#error \"DPS settings missing\"");
    assert!(diagnostics
        .iter()
        .any(|d| d.severity == Severity::Warning && d.line == 3));
    assert!(err.to_string().contains("1 error(s)"), "{err}");
    assert!(!p
        .dir
        .path()
        .join(".devkit/build/devkit-build.json")
        .exists());
}

#[tokio::test]
async fn missing_platform_gives_install_commands() {
    let p = Project::new(false);
    let (r, _) = run(&p.options("0ne0001A2B3")).await;
    let err = r.unwrap_err();
    assert!(matches!(err, BuildError::PlatformMissing { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("arduino-cli core install AZ3166:stm32f4 --additional-urls https://raw.githubusercontent.com/VSChina/azureiotdevkit_tools/master/package_azureboard_index.json"), "{msg}");
    assert!(msg.contains("may no longer be served"), "{msg}");
    assert_eq!(p.compiles(), 0);
    // Installed elsewhere (an Arduino IDE's folder): the fix points the build at it.
    use tasks::error::{DomainError, NextAction};
    let next: Vec<NextAction> = err.next_actions().into_iter().map(|s| s.action).collect();
    assert_eq!(
        next,
        [NextAction::InstallToolchain, NextAction::SetArduinoDataPath]
    );
}

#[tokio::test]
async fn missing_arduino_cli_gives_install_guidance() {
    let p = Project::new(true);
    let mut opts = p.options("0ne0001A2B3");
    opts.arduino_cli = Some(p.dir.path().join("no-such/arduino-cli"));
    let (r, _) = run(&opts).await;
    let msg = r.unwrap_err().to_string();
    assert!(
        msg.contains("arduino-cli not found")
            && msg.contains("no-such/arduino-cli")
            && msg.contains("core install"),
        "{msg}"
    );
}

/// `builder: arduino-builder` with no arduino-builder: the error names arduino-builder and the
/// Debian package, never "arduino-cli not found"; the configured path is the input to fix.
#[tokio::test]
async fn missing_arduino_builder_is_named_with_its_package() {
    let p = Project::new(true);
    let mut opts = p.options("0ne0001A2B3");
    opts.builder.choice = tasks::build::BuilderChoice::ArduinoBuilder;
    opts.builder.arduino_builder = Some(p.dir.path().join("no-such/arduino-builder"));
    let (r, _) = run(&opts).await;
    let e = r.unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.starts_with("arduino-builder not found: the configured arduino-builder")
            && msg.contains("no-such/arduino-builder")
            && msg.contains("apt-get install arduino-builder")
            && !msg.contains("arduino-cli not found")
            && !msg.contains("--"),
        "{msg}"
    );
    assert_eq!(e.input(), Some(tasks::error::Input::ArduinoBuilder));
    assert_eq!(
        e.next_actions(),
        [tasks::error::NextStep::with_detail(
            tasks::error::NextAction::InstallToolchain,
            "arduino-builder"
        )]
    );
    assert_eq!(p.compiles(), 0);
}

#[tokio::test]
async fn old_arduino_cli_is_refused() {
    let p = Project::new(true);
    p.wrapper("0.10.0", "explicit-id-small");
    let r = build(
        &p.options("0ne0001A2B3"),
        &Progress::none(),
        &CancellationToken::new(),
    )
    .await;
    let msg = r.unwrap_err().to_string();
    assert!(msg.contains("0.10.0") && msg.contains("too old"), "{msg}");
}

#[tokio::test]
async fn bad_sketch_and_build_path_are_invalid_input() {
    let p = Project::new(true);
    let mut opts = p.options("0ne0001A2B3");
    opts.build_path = p.sketch().join("build");
    let (r, _) = run(&opts).await;
    let e = r.unwrap_err();
    assert!(
        e.is_invalid_input() && e.to_string().contains("build directory"),
        "{e}"
    );
    let mut opts = p.options("0ne0001A2B3");
    opts.sketch_dir = p.dir.path().join("firmware");
    let (r, _) = run(&opts).await;
    let e = r.unwrap_err();
    assert!(
        e.is_invalid_input() && e.to_string().contains("firmware.ino"),
        "{e}"
    );
}

/// The repository's sketch and the generator agree: the macros it uses are the ones
/// `dps_config.h` defines, it prints the thumbprint line the tools parse, its sketch.yaml names
/// the FQBN the driver compiles for, and it goes through the driver (stand-in compiler: this
/// checks the flow, not that the C++ compiles for the AZ3166).
#[tokio::test]
async fn the_repository_sketch_matches_the_generated_header() {
    let firmware = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../firmware/DevKitDPS");
    let ino = std::fs::read_to_string(firmware.join("DevKitDPS.ino")).unwrap();
    let yaml = std::fs::read_to_string(firmware.join("sketch.yaml")).unwrap();
    assert!(yaml.contains(&format!("default_fqbn: {}", tasks::build::FQBN)));
    assert!(ino.contains("#include \"dps_config.h\""));
    assert!(ino.contains("\"DevKit alias certificate SHA-256: \""));
    assert!(ino.contains(
        "DevkitDPSClientStart(DPS_GLOBAL_DEVICE_ENDPOINT, DPS_ID_SCOPE, DPS_REGISTRATION_ID)"
    ));
    assert!(std::fs::read_to_string(firmware.join(".gitignore"))
        .unwrap()
        .lines()
        .any(|l| l == "dps_config.h"));

    let p = Project::new(true);
    std::fs::write(p.sketch().join("DevKitDPS.ino"), &ino).unwrap();
    let mut opts = p.options("0ne0001A2B3");
    opts.dps = tasks::build::DpsSettings::new(
        "global.azure-devices-provisioning.net",
        "0ne0001A2B3",
        Some("my-devkit-01"),
    )
    .unwrap()
    .0;
    let (r, _) = run(&opts).await;
    r.unwrap();
    let header = std::fs::read_to_string(p.sketch().join("dps_config.h")).unwrap();
    for name in [
        "DPS_GLOBAL_DEVICE_ENDPOINT",
        "DPS_ID_SCOPE",
        "DPS_REGISTRATION_ID",
    ] {
        assert!(
            header.contains(&format!("#define {name} ")),
            "{name}: {header}"
        );
    }
    assert!(header.contains("#define DPS_REGISTRATION_ID \"my-devkit-01\""));
}

#[tokio::test]
async fn cancelling_stops_the_compiler() {
    let p = Project::new(true);
    p.wrapper_with("1.2.2", "explicit-id-small", "DEVKIT_STANDIN_HANG=1");
    let cancel = CancellationToken::new();
    let c = cancel.clone();
    // Cancel as soon as the compile starts (the stand-in then never finishes by itself).
    let progress = Progress::new(move |e| {
        if matches!(&e, ProgressEvent::Report { message, .. } if message.starts_with("Compiling")) {
            c.cancel();
        }
    });
    let r = build(&p.options("0ne0001A2B3"), &progress, &cancel).await;
    assert!(matches!(r, Err(BuildError::Cancelled)), "{r:?}");
    assert!(!p.build_path().join("devkit-build.json").exists());
}
