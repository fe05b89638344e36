//! Upload to the virtual DevKit: a build flashed with the sim backend is what the virtual
//! DevKit boots next, and the alias certificate thumbprint it prints equals the host's
//! computation (`identity::derive`, what `devkit generate-cert` prints) for the same image,
//! UDS and registration ID.
//!
//! Unix-only: the arduino-cli stand-in is a shell script.
#![cfg(unix)]

#[path = "fixtures/arduino-cli-standin/project.rs"]
mod standin;

use standin::{next_thumbprint, open_port, vector, Project};
use std::path::Path;
use tasks::build::{build, DpsSettings};
use tasks::flash::{flash, Backend, FlashImage};
use tasks::identity::{self, FirmwareImage, RegistrationId, Uds};
use tasks::progress::{CancellationToken, Progress};
use tasks::sim::{SimOptions, VirtualDevKit};

fn case_inputs(case: &str) -> (Uds, RegistrationId) {
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(vector(case).join("case.json")).unwrap()).unwrap();
    (
        Uds::parse(json["inputs"]["uds"].as_str().unwrap()).unwrap(),
        RegistrationId::parse(json["inputs"]["registration_id"].as_str().unwrap()).unwrap(),
    )
}

fn host_thumbprint(bin: &Path, map: &Path, uds: &Uds, reg: &RegistrationId) -> String {
    identity::derive(uds, &FirmwareImage::load(bin, map).unwrap(), reg)
        .unwrap()
        .sha256_thumbprint()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn virtual_devkit_boots_the_uploaded_image_with_the_hosts_thumbprint() {
    let p = Project::new(true);
    let (uds, reg) = case_inputs("explicit-id-medium-crlf");
    let (dps, _) = DpsSettings::new("127.0.0.1:9", "0ne0001A2B3", Some(reg.as_str())).unwrap();
    let mut opts = p.options("0ne0001A2B3");
    opts.dps = dps;

    // Build (stand-in "compiles" the small vector image), flash it into a virtual DevKit that
    // is not running yet.
    let out = build(&opts, &Progress::none(), &CancellationToken::new())
        .await
        .unwrap();
    let state = tempfile::tempdir().unwrap();
    let backend = Backend::Sim {
        state_dir: state.path().to_path_buf(),
        trusted_ca_pem: None,
    };
    let image = FlashImage::from_build_dir(&p.build_path()).unwrap();
    assert!(
        image.dps.is_some(),
        "the build's DPS settings travel with the image"
    );
    flash(
        &image,
        &backend,
        &Progress::none(),
        &CancellationToken::new(),
    )
    .await
    .unwrap();

    let mut eeprom = tasks::sim::eeprom::Eeprom::load(state.path()).unwrap();
    eeprom.set("dps_uds", &uds.to_hex()).unwrap();

    // Started afterwards, it boots the uploaded image.
    let devkit = VirtualDevKit::start(SimOptions::new(state.path())).unwrap();
    let mut port = open_port(devkit.device_port());
    let mut pending = String::new();
    let printed = tokio::task::block_in_place(|| next_thumbprint(port.as_mut(), &mut pending));
    assert_eq!(printed, host_thumbprint(&out.bin, &out.map, &uds, &reg));

    // A new upload while it runs resets it into the new image (a different .riot_fw).
    p.wrapper("1.2.2", "explicit-id-medium-crlf");
    std::fs::write(
        p.sketch().join("DevKitDPS.ino"),
        "#include \"dps_config.h\"\nvoid setup() { /* changed */ }\nvoid loop() {}\n",
    )
    .unwrap();
    let out2 = build(&opts, &Progress::none(), &CancellationToken::new())
        .await
        .unwrap();
    assert!(!out2.skipped);
    let image2 = FlashImage::from_build_dir(&p.build_path()).unwrap();
    flash(
        &image2,
        &backend,
        &Progress::none(),
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    let printed2 = tokio::task::block_in_place(|| next_thumbprint(port.as_mut(), &mut pending));
    let expected2 = host_thumbprint(&out2.bin, &out2.map, &uds, &reg);
    assert_eq!(printed2, expected2);
    assert_ne!(
        printed2, printed,
        "a different .riot_fw is a different identity"
    );
    drop(port);
    devkit.stop();
}
