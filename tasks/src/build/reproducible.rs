//! Reproducible builds: the same sketch, platform version and compiler give the same image, and
//! so the same FWID and DeviceID, wherever Arduino15, the sketch and the build folder live.
//!
//! The vendor's core and the libraries it ships (the Azure IoT C SDK's `xlogging.h`, mbed's
//! `mbed_assert.h`, mbedTLS's `debug.h`, the MiCO drivers) expand `__FILE__`, so the absolute
//! install path of every such source ends up in the image's read-only data. A different path
//! length moves everything linked after it, the RIoT regions included: another user's build of
//! the same sketch got another identity. GCC 8 and newer rewrite those paths with
//! `-ffile-prefix-map=OLD=NEW` (which implies `-fmacro-prefix-map` for `__FILE__` and
//! `-fdebug-prefix-map` for the debug info).
//!
//! The flags go in through the platform's own extra-flags properties: the ones its compile
//! recipes (`recipe.c.o.pattern`, `recipe.cpp.o.pattern`, `recipe.S.o.pattern`) reference, read
//! from its `platform.txt` (and `platform.local.txt`, which overrides it), appended to the value
//! the platform gives them. Nothing about a platform version's layout is assumed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The recipes that compile sources (each gets the flags once).
const COMPILE_RECIPES: [&str; 3] = [
    "recipe.c.o.pattern",
    "recipe.cpp.o.pattern",
    "recipe.S.o.pattern",
];

/// The oldest GCC that knows `-ffile-prefix-map` (and `-fmacro-prefix-map`).
pub const MIN_GCC_MAJOR: u32 = 8;

/// The folders whose absolute paths must not reach the image, each with the fixed name it is
/// given instead. Ordered from the most general to the most specific: GCC tries the last
/// `-ffile-prefix-map` first, so a build folder inside the Arduino folder is still mapped as
/// the build folder.
pub fn prefix_maps(
    arduino_data: Option<&Path>,
    platform: Option<&Path>,
    sketch: &Path,
    build: &Path,
) -> Vec<(PathBuf, &'static str)> {
    let mut maps: Vec<(PathBuf, &'static str)> = Vec::new();
    if let Some(d) = arduino_data {
        maps.push((d.to_path_buf(), "/arduino15"));
    }
    if let Some(p) = platform {
        // Inside the Arduino folder it is already mapped with its version in the path.
        if !arduino_data.is_some_and(|d| p.starts_with(d)) {
            maps.push((p.to_path_buf(), "/platform"));
        }
    }
    maps.push((sketch.to_path_buf(), "/sketch"));
    maps.push((build.to_path_buf(), "/build"));
    // A folder inside another has more components: stable-sorting by their count puts every
    // folder after the folders that contain it.
    maps.sort_by_key(|(p, _)| p.components().count());
    maps
}

/// `"-ffile-prefix-map=OLD=NEW"` words, quoted for an Arduino recipe (whose command lines are
/// split on spaces outside double quotes, so a path with a space survives).
pub fn flags(maps: &[(PathBuf, &'static str)]) -> String {
    maps.iter()
        .map(|(from, to)| format!("\"-ffile-prefix-map={}={to}\"", from.display()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The properties of a platform (`platform.txt`, then `platform.local.txt` over it).
pub fn platform_properties(platform_dir: &Path) -> BTreeMap<String, String> {
    let mut props = BTreeMap::new();
    for name in ["platform.txt", "platform.local.txt"] {
        let Ok(Some(bytes)) = crate::fsutil::read_internal(
            &platform_dir.join(name),
            crate::fsutil::limits::TOOL_FILE,
        ) else {
            continue;
        };
        for line in String::from_utf8_lossy(&bytes).lines() {
            let line = line.trim();
            if line.starts_with('#') {
                continue;
            }
            if let Some((k, v)) = line.split_once('=') {
                props.insert(k.trim().to_string(), v.trim().to_string());
            }
        }
    }
    props
}

/// The extra-flags property each compile recipe references (the first `{compiler.*.extra_flags}`
/// placeholder), with the value the platform gives it; `Err` names a recipe that has none, so
/// that the caller can say the build cannot be made reproducible.
pub fn extra_flag_properties(
    props: &BTreeMap<String, String>,
) -> Result<Vec<(String, String)>, String> {
    let mut out: Vec<(String, String)> = Vec::new();
    for recipe in COMPILE_RECIPES {
        let Some(pattern) = props.get(recipe) else {
            return Err(format!("the platform has no `{recipe}`"));
        };
        let prop = placeholders(pattern)
            .find(|p| p.starts_with("compiler.") && p.ends_with(".extra_flags"))
            .ok_or_else(|| format!("`{recipe}` references no `compiler.*.extra_flags` property"))?;
        if !out.iter().any(|(p, _)| p == prop) {
            let value = props.get(prop).cloned().unwrap_or_default();
            out.push((prop.to_string(), value));
        }
    }
    Ok(out)
}

/// `{name}` placeholders of a recipe, in order.
fn placeholders(pattern: &str) -> impl Iterator<Item = &str> {
    pattern
        .split('{')
        .skip(1)
        .filter_map(|s| s.split_once('}').map(|(name, _)| name))
}

/// The `KEY=VALUE` build properties that make the build reproducible: each extra-flags property
/// with the prefix maps appended to the platform's own value.
pub fn build_properties(
    props: &BTreeMap<String, String>,
    maps: &[(PathBuf, &'static str)],
) -> Result<Vec<String>, String> {
    let flags = flags(maps);
    Ok(extra_flag_properties(props)?
        .into_iter()
        .map(|(key, value)| {
            if value.is_empty() {
                format!("{key}={flags}")
            } else {
                format!("{key}={value} {flags}")
            }
        })
        .collect())
}

/// GCC's major version from `gcc -dumpversion` output (`12`, `12.2.1`, `5.4.1`).
pub fn gcc_major(dumpversion: &str) -> Option<u32> {
    dumpversion.trim().split('.').next()?.parse().ok()
}

/// The arm-none-eabi-gcc a build of `arduino_data` compiles with: the one the platform's
/// package installed under `packages/*/tools/arm-none-eabi-gcc/<version>` (the highest, when
/// several are), else `fallback_root` (the toolchain root given to the builder, whose `bin/`
/// holds the compiler).
pub fn compiler_path(arduino_data: Option<&Path>, fallback_root: Option<&Path>) -> Option<PathBuf> {
    let exe = if cfg!(windows) {
        "arm-none-eabi-gcc.exe"
    } else {
        "arm-none-eabi-gcc"
    };
    if let Some(root) = fallback_root {
        return Some(root.join("bin").join(exe));
    }
    let data = arduino_data?;
    let mut found: Vec<PathBuf> = std::fs::read_dir(data.join("packages"))
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|vendor| std::fs::read_dir(vendor.path().join("tools/arm-none-eabi-gcc")).ok())
        .flatten()
        .filter_map(Result::ok)
        .map(|v| v.path().join("bin").join(exe))
        .filter(|p| p.is_file())
        .collect();
    found.sort();
    found.pop()
}

/// What [`plan`] decided.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Reproducibility {
    /// Build properties to pass (`KEY=VALUE`); empty when the build cannot be made reproducible.
    pub properties: Vec<String>,
    /// Why it cannot, for a warning.
    pub warning: Option<String>,
}

/// Decide the properties for a build with `gcc_dumpversion` (the compiler's `-dumpversion`,
/// `None` when it could not be run).
pub fn plan(
    props: &BTreeMap<String, String>,
    maps: &[(PathBuf, &'static str)],
    gcc: Option<&Path>,
    gcc_dumpversion: Option<&str>,
) -> Reproducibility {
    const CONSEQUENCE: &str = "the image embeds this machine's install paths, so the device's identity (FWID, DeviceID) depends on where Arduino15, the sketch and the build folder are";
    let no = |why: String| Reproducibility {
        properties: vec![],
        warning: Some(format!("{why}: {CONSEQUENCE}")),
    };
    let gcc_name = gcc
        .map(|g| g.display().to_string())
        .unwrap_or_else(|| "arm-none-eabi-gcc".into());
    match gcc_dumpversion.and_then(gcc_major) {
        None => return no(format!("the version of {gcc_name} could not be read")),
        Some(major) if major < MIN_GCC_MAJOR => {
            return no(format!(
                "{gcc_name} {} cannot remap source paths (GCC {MIN_GCC_MAJOR} or newer can)",
                gcc_dumpversion.unwrap_or_default().trim()
            ))
        }
        Some(_) => {}
    }
    match build_properties(props, maps) {
        Ok(properties) => Reproducibility {
            properties,
            warning: None,
        },
        Err(why) => no(why),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vendor's 2.0.0 recipes (microsoft/devkit-sdk AZ3166/src/platform.txt), shortened.
    const VENDOR: &str = "compiler.c.extra_flags=\ncompiler.cpp.extra_flags=\ncompiler.S.extra_flags=\nbuild.extra_flags=\n\
recipe.c.o.pattern=\"{compiler.path}{compiler.c.cmd}\" {compiler.c.flags} -mcpu={build.mcu} {compiler.c.extra_flags} {build.extra_flags} {includes} \"{source_file}\" -o \"{object_file}\"\n\
recipe.cpp.o.pattern=\"{compiler.path}{compiler.cpp.cmd}\" {compiler.cpp.flags} -mcpu={build.mcu} {compiler.cpp.extra_flags} {build.extra_flags} {includes} \"{source_file}\" -o \"{object_file}\"\n\
recipe.S.o.pattern=\"{compiler.path}{compiler.S.cmd}\" {compiler.S.flags} -mcpu={build.mcu} {compiler.S.extra_flags} {build.extra_flags} {includes} \"{source_file}\" -o \"{object_file}\"\n";

    fn props(text: &str) -> BTreeMap<String, String> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("platform.txt"), text).unwrap();
        platform_properties(dir.path())
    }

    fn maps() -> Vec<(PathBuf, &'static str)> {
        prefix_maps(
            Some(Path::new("/home/ann/.arduino15")),
            Some(Path::new(
                "/home/ann/.arduino15/packages/AZ3166/hardware/stm32f4/2.0.0",
            )),
            Path::new("/home/ann/work/firmware/DevKitDPS"),
            Path::new("/home/ann/work/.devkit/build"),
        )
    }

    #[test]
    fn the_recipes_own_extra_flags_properties_get_the_maps_appended() {
        let p = props(&format!("{VENDOR}compiler.cpp.extra_flags=-DKEEP_ME\n"));
        let r = plan(&p, &maps(), None, Some("12.2.1"));
        assert_eq!(r.warning, None);
        assert_eq!(r.properties.len(), 3);
        let flags = flags(&maps());
        assert_eq!(r.properties[0], format!("compiler.c.extra_flags={flags}"));
        assert_eq!(
            r.properties[1],
            format!("compiler.cpp.extra_flags=-DKEEP_ME {flags}"),
            "the platform's own value is kept"
        );
        assert!(r.properties[2].starts_with("compiler.S.extra_flags="));
        // build.extra_flags (set per board in boards.txt: -mthumb ...) is never overridden.
        assert!(r.properties.iter().all(|p| !p.starts_with("build.")));
    }

    #[test]
    fn platform_local_txt_overrides_platform_txt() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("platform.txt"), VENDOR).unwrap();
        std::fs::write(
            dir.path().join("platform.local.txt"),
            "compiler.c.extra_flags=-DLOCAL\n",
        )
        .unwrap();
        let p = platform_properties(dir.path());
        assert_eq!(p["compiler.c.extra_flags"], "-DLOCAL");
        assert_eq!(p["compiler.cpp.extra_flags"], "");
    }

    #[test]
    fn specific_folders_are_mapped_last_so_gcc_tries_them_first() {
        let m = maps();
        // The platform is inside the Arduino folder: one map covers it.
        let mut names: Vec<_> = m.iter().map(|(_, to)| *to).collect();
        names.sort();
        assert_eq!(names, ["/arduino15", "/build", "/sketch"]);
        // Folders inside the Arduino folder come after it, the deepest last.
        let inside = prefix_maps(
            Some(Path::new("/a")),
            None,
            Path::new("/a/sketches/deeper/S"),
            Path::new("/a/b"),
        );
        assert_eq!(
            inside.iter().map(|(_, t)| *t).collect::<Vec<_>>(),
            ["/arduino15", "/build", "/sketch"]
        );
        let outside = prefix_maps(
            Some(Path::new("/data/Arduino15")),
            Some(Path::new("/opt/hw/AZ3166")),
            Path::new("/s/S"),
            Path::new("/s/b"),
        );
        assert!(outside
            .iter()
            .any(|(p, t)| *t == "/platform" && p == Path::new("/opt/hw/AZ3166")));
    }

    #[test]
    fn paths_with_spaces_stay_one_word() {
        let f = flags(&[(PathBuf::from("/Users/Ann Lee/Arduino15"), "/arduino15")]);
        assert_eq!(
            f,
            "\"-ffile-prefix-map=/Users/Ann Lee/Arduino15=/arduino15\""
        );
    }

    #[test]
    fn old_or_unknown_compilers_and_recipes_without_extra_flags_are_said() {
        let p = props(VENDOR);
        let old = plan(
            &p,
            &maps(),
            Some(Path::new("/x/bin/arm-none-eabi-gcc")),
            Some("5.4.1\n"),
        );
        assert!(old.properties.is_empty());
        let w = old.warning.unwrap();
        assert!(
            w.contains("5.4.1") && w.contains("GCC 8") && w.contains("identity"),
            "{w}"
        );
        assert!(plan(&p, &maps(), None, None)
            .warning
            .unwrap()
            .contains("could not be read"));
        let bare = props("recipe.c.o.pattern=gcc {build.extra_flags}\nrecipe.cpp.o.pattern=x\nrecipe.S.o.pattern=x\n");
        let w = plan(&bare, &maps(), None, Some("12")).warning.unwrap();
        assert!(
            w.contains("recipe.c.o.pattern") && w.contains("compiler.*.extra_flags"),
            "{w}"
        );
    }

    #[test]
    fn gcc_versions() {
        assert_eq!(gcc_major("12\n"), Some(12));
        assert_eq!(gcc_major("12.2.1"), Some(12));
        assert_eq!(gcc_major("5.4.1"), Some(5));
        assert_eq!(gcc_major("garbage"), None);
    }
}
