//! A REAL build, not the arduino-cli stand-in: `devkit build` drives Debian's `arduino-builder`
//! and `arm-none-eabi-gcc` over a small platform of our own laid out as the vendor's
//! (`tasks/tests/fixtures/az3166-platform/packages/AZ3166/hardware/stm32f4/<version>`, with the
//! vendor's recipe structure and RIoT section layout), then `devkit generate-cert` runs on the
//! real `.bin`/`.map`, and the identity is checked against an independent computation: the RIoT
//! regions located from the ELF's symbol table (`arm-none-eabi-nm`) and their bytes taken from
//! `arm-none-eabi-objcopy`, not from the map file or the builder's `.bin`.
//!
//! Skips (with a message) when the builder or the ARM toolchain is absent; CI installs them
//! (`scripts/deps.sh`) and sets `DEVKIT_REQUIRE_REAL_BUILDER=1`, which turns the skip into a
//! failure.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use tasks::identity::{self, FirmwareImage, RegistrationId, Uds};

const DEVKIT: &str = env!("CARGO_BIN_EXE_devkit");
const TOOLS: [&str; 4] = [
    "arduino-builder",
    "arm-none-eabi-gcc",
    "arm-none-eabi-nm",
    "arm-none-eabi-objcopy",
];

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tasks/tests/fixtures/az3166-platform")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

/// Run devkit with no arduino-cli in reach (PATH without any directory holding one), so that
/// `--builder auto` must pick arduino-builder.
fn devkit(args: &[&str]) -> Output {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let path = std::env::join_paths(
        std::env::split_paths(&path).filter(|d| !d.join("arduino-cli").exists()),
    )
    .unwrap();
    Command::new(DEVKIT)
        .args(args)
        .env("PATH", path)
        .env_remove("DEVKIT_ARDUINO_CLI")
        .env_remove("DEVKIT_BUILDER")
        .output()
        .expect("run devkit")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The image's RIoT identity inputs recomputed without the map file or the builder's `.bin`:
/// region bounds from the ELF symbol table, bytes from objcopy's dump of `.text`.
fn independent_image(elf: &Path, dir: &Path) -> FirmwareImage {
    let nm = Command::new("arm-none-eabi-nm").arg(elf).output().unwrap();
    assert!(nm.status.success());
    let nm = String::from_utf8(nm.stdout).unwrap();
    let sym = |name: &str| -> u32 {
        let line = nm
            .lines()
            .find(|l| l.split_whitespace().nth(2) == Some(name))
            .unwrap_or_else(|| panic!("{name} not in the ELF"));
        u32::from_str_radix(line.split_whitespace().next().unwrap(), 16).unwrap()
    };
    let text = dir.join("text.bin");
    let st = Command::new("arm-none-eabi-objcopy")
        .args(["-O", "binary", "-j", ".text"])
        .arg(elf)
        .arg(&text)
        .status()
        .unwrap();
    assert!(st.success());
    let bytes = std::fs::read(&text).unwrap();
    let origin = 0x0800_C000u32;
    let (cs, ce, fs, fe) = (
        sym("__start_riot_core"),
        sym("__stop_riot_core"),
        sym("__start_riot_fw"),
        sym("__stop_riot_fw"),
    );
    assert!(
        cs < ce && ce == fs && fs < fe,
        "regions {cs:#x}..{ce:#x} {fs:#x}..{fe:#x}"
    );
    // The regions sit after all .text/.rodata: nothing of the code but them is at or past cs.
    let etext = sym("__etext");
    assert!(fe <= etext);
    // FWID by hand: standard SHA-256 of the .riot_fw bytes.
    use sha2::Digest;
    let fwid = sha2::Sha256::digest(&bytes[(fs - origin) as usize..(fe - origin) as usize]);
    // A map that says only what the symbol table says, to feed the same bytes to the derivation.
    let map = format!(
        "FLASH            0x{origin:08x}         0x000f4000         xr\n                0x{cs:08x}                __start_riot_core = .\n                0x{ce:08x}                __stop_riot_core = .\n                0x{fs:08x}                __start_riot_fw = .\n                0x{fe:08x}                __stop_riot_fw = .\n"
    );
    let image = FirmwareImage::from_parts(bytes, &map).unwrap();
    assert_eq!(image.fwid(), <[u8; 32]>::from(fwid));
    image
}

#[test]
fn devkit_builds_with_the_real_arduino_builder_and_the_identity_matches_the_elf() {
    let missing: Vec<_> = TOOLS.iter().filter(|t| which::which(t).is_err()).collect();
    if !missing.is_empty() {
        let msg = format!("real-builder test skipped: {missing:?} not installed (Debian: arduino-builder arduino-ctags gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib; scripts/deps.sh installs them)");
        assert!(
            std::env::var_os("DEVKIT_REQUIRE_REAL_BUILDER").is_none(),
            "{msg}"
        );
        eprintln!("{msg}");
        return;
    }
    let started = std::time::Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("Arduino15");
    copy_dir(&fixture().join("packages"), &data.join("packages"));
    let sketch = tmp.path().join("Identity");
    copy_dir(&fixture().join("sketch/Identity"), &sketch);
    let project = tmp.path().join("project");
    std::fs::create_dir_all(&project).unwrap();
    let (p, s, d) = (
        project.to_str().unwrap(),
        sketch.to_str().unwrap(),
        data.to_str().unwrap(),
    );
    let build_args = [
        "build",
        "--project",
        p,
        "--sketch",
        s,
        "--arduino-data",
        d,
        "--builder",
        "arduino-builder",
        "--id-scope",
        "0ne0001A2B3",
    ];

    // 1. The vendor's link recipe with current GCC: the known failure, diagnosed with its fix.
    let out = devkit(&build_args);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(
        t.contains("unrecognized debug output level 'cc'")
            && t.contains("`-gcc` where `-lgcc` was meant"),
        "{t}"
    );
    // Apply the fix exactly as printed: the line after "(it overrides platform.txt):".
    let fix_line = t
        .lines()
        .skip_while(|l| !l.contains("(it overrides platform.txt):"))
        .nth(1)
        .expect("the line to add")
        .trim()
        .to_string();
    assert!(
        fix_line.starts_with("recipe.c.combine.pattern=") && fix_line.contains(" -lgcc "),
        "{fix_line}"
    );
    let platform = data.join("packages/AZ3166/hardware/stm32f4/0.1.0");
    assert!(
        t.contains(&platform.join("platform.local.txt").display().to_string()),
        "{t}"
    );
    std::fs::write(platform.join("platform.local.txt"), format!("{fix_line}\n")).unwrap();

    // 2. The real build; without --builder, arduino-builder is chosen because arduino-cli is absent.
    let mut json_args: Vec<&str> = build_args
        .iter()
        .copied()
        .filter(|a| *a != "--builder" && *a != "arduino-builder")
        .collect();
    json_args.push("--json");
    let out = devkit(&json_args);
    assert!(out.status.success(), "{}", text(&out));
    let built: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(built["toolchain"]["builder"], "arduino-builder");
    assert_eq!(built["toolchain"]["platformVersion"], "0.1.0");
    let (bin, map) = (
        built["bin"].as_str().unwrap().to_string(),
        built["map"].as_str().unwrap().to_string(),
    );
    assert!(
        bin.ends_with("Identity.ino.bin") && map.ends_with("Identity.ino.map"),
        "{bin} {map}"
    );
    let elf = Path::new(&bin).with_extension("elf");

    // 3. generate-cert on the real image.
    let uds = Uds::generate();
    let uds_file = tmp.path().join("uds.txt");
    std::fs::write(&uds_file, uds.to_hex().as_bytes()).unwrap();
    let certs = tmp.path().join("certs");
    let out = devkit(&[
        "generate-cert",
        "--bin",
        &bin,
        "--map",
        &map,
        "--uds-file",
        uds_file.to_str().unwrap(),
        "--registration-id",
        "real-build-01",
        "--out-dir",
        certs.to_str().unwrap(),
        "--device-cert",
        "--project",
        p,
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        !text(&out).contains(uds.to_hex().as_str()),
        "the UDS leaked"
    );

    // 4. Against the independent computation from the ELF.
    let image = independent_image(&elf, tmp.path());
    let reg = RegistrationId::parse("real-build-01").unwrap();
    let expected = identity::derive(&uds, &image, &reg).unwrap();
    assert_eq!(
        std::fs::read_to_string(certs.join("real-build-01.pem")).unwrap(),
        expected.alias_cert_pem()
    );
    assert_eq!(
        std::fs::read_to_string(certs.join("device-cert.pem")).unwrap(),
        expected.device_cert_pem()
    );
    let from_map = FirmwareImage::load(Path::new(&bin), Path::new(&map)).unwrap();
    assert_eq!(
        (from_map.fwid(), from_map.core_digest()),
        (image.fwid(), image.core_digest())
    );

    // 5. What changes the identity: a change in the sketch only (nothing in .riot_core or
    //    .riot_fw) moves the RIoT regions, whose code holds absolute addresses: both digests change.
    let ino = sketch.join("Identity.ino");
    let src = std::fs::read_to_string(&ino).unwrap();
    let changed = src.replace("  ticks++;", "  static const char banner[] = \"one more constant string in the sketch\";\n  ticks += banner[ticks % sizeof banner];");
    assert_ne!(src, changed);
    std::fs::write(&ino, changed).unwrap();
    let out = devkit(&json_args);
    assert!(out.status.success(), "{}", text(&out));
    let moved = FirmwareImage::load(Path::new(&bin), Path::new(&map)).unwrap();
    assert_ne!(
        moved.riot_core.start, from_map.riot_core.start,
        "the regions moved"
    );
    assert_ne!(moved.fwid(), from_map.fwid(), "FWID changed");
    assert_ne!(
        moved.core_digest(),
        from_map.core_digest(),
        "the RIoT core digest (hence the DeviceID key) changed"
    );
    let state = tasks::project::ProjectState::load(&project).unwrap();
    let drift =
        tasks::upload::check_drift(&state, &moved, None, Some(&uds)).expect("the guard sees it");
    assert_eq!(
        (drift.fwid_changed, drift.core_digest_changed),
        (true, Some(true))
    );
    assert_eq!(drift.device_id_key_changed, Some(true));

    // 6. The prebuilt-library failure with newlib 3 (a library compiled as the vendor's were
    //    calls __locale_ctype_ptr): diagnosed, and the compatibility source it prints links.
    let src = std::fs::read_to_string(&ino).unwrap();
    let legacy = format!(
        "#include <LegacyCtype.h>\n{}",
        src.replace(
            "void setup() {",
            "void setup() {\n  ticks += legacy_isdigit('7');"
        )
    );
    std::fs::write(&ino, legacy).unwrap();
    let out = devkit(&build_args);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(
        t.contains("undefined reference to `__locale_ctype_ptr'") && t.contains("newlib 3"),
        "{t}"
    );
    use tasks::build::known_failures::{LOCALE_SHIM_FILE, LOCALE_SHIM_SOURCE};
    assert!(
        t.contains(LOCALE_SHIM_FILE) && t.contains(LOCALE_SHIM_SOURCE),
        "{t}"
    );
    std::fs::write(sketch.join(LOCALE_SHIM_FILE), LOCALE_SHIM_SOURCE).unwrap();
    let out = devkit(&build_args);
    assert!(out.status.success(), "{}", text(&out));
    eprintln!(
        "real-builder test took {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// The same sketch, platform version and compiler give the same image wherever Arduino15, the
/// sketch and the build folder are (issue: identity depends on where Arduino15 lives): the
/// core's `__FILE__` is remapped through the platform's extra-flags properties.
#[test]
fn the_same_sketch_built_under_two_install_paths_gives_the_same_image() {
    if TOOLS.iter().any(|t| which::which(t).is_err()) {
        let msg = "reproducible-build test skipped: arduino-builder or the ARM toolchain is not installed";
        assert!(
            std::env::var_os("DEVKIT_REQUIRE_REAL_BUILDER").is_none(),
            "{msg}"
        );
        eprintln!("{msg}");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let build_in = |root: &Path| -> (Vec<u8>, FirmwareImage) {
        let data = root.join("Arduino15");
        copy_dir(&fixture().join("packages"), &data.join("packages"));
        let platform = data.join("packages/AZ3166/hardware/stm32f4/0.1.0");
        let fix = tasks::build::known_failures::fixed_combine_pattern(&platform).unwrap();
        std::fs::write(platform.join("platform.local.txt"), format!("{fix}\n")).unwrap();
        let sketch = root.join("sketches/Identity");
        copy_dir(&fixture().join("sketch/Identity"), &sketch);
        let project = root.join("project");
        std::fs::create_dir_all(&project).unwrap();
        let out = devkit(&[
            "build",
            "--project-dir",
            project.to_str().unwrap(),
            "--sketch",
            sketch.to_str().unwrap(),
            "--arduino-data",
            data.to_str().unwrap(),
            "--builder",
            "arduino-builder",
            "--id-scope",
            "0ne0001A2B3",
            "--json",
        ]);
        assert!(out.status.success(), "{}", text(&out));
        let built: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let (bin, map) = (
            built["bin"].as_str().unwrap(),
            built["map"].as_str().unwrap(),
        );
        let bytes = std::fs::read(bin).unwrap();
        let root_text = root.display().to_string();
        assert!(
            !bytes
                .windows(root_text.len())
                .any(|w| w == root_text.as_bytes()),
            "the install path {root_text} is in the image"
        );
        (
            bytes,
            FirmwareImage::load(Path::new(bin), Path::new(map)).unwrap(),
        )
    };
    let (a, image_a) = build_in(&tmp.path().join("a"));
    let (b, image_b) = build_in(
        &tmp.path()
            .join("a much longer place/for the second install"),
    );
    let mapped = b"/arduino15/packages/AZ3166/hardware/stm32f4/0.1.0/cores/arduino/main.cpp";
    assert!(
        a.windows(mapped.len()).any(|w| w == mapped),
        "the core's __FILE__ is the mapped path"
    );
    assert!(a == b, "the two images differ");
    assert_eq!(
        (image_a.fwid(), image_a.core_digest()),
        (image_b.fwid(), image_b.core_digest())
    );
}
