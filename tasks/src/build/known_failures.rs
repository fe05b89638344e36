//! Known failures of the vendor's AZ3166 platform with current toolchains, recognised in the
//! build output and answered with the fix.
//!
//! The vendor platform (`AZ3166:stm32f4`, last released as 2.0.0) was made for
//! arm-none-eabi-gcc 5.4 (2016q3) and newlib 2. Built with a current GCC and newlib (Debian's
//! arm-none-eabi-gcc 12 and newlib 3, or a newer Arduino toolchain) it fails in ways whose
//! messages do not point at the cause:
//!
//! - its link recipe (`recipe.c.combine.pattern`) passes `-gcc` where `-lgcc` was meant; GCC 8
//!   and newer read that as `-g` with debug level `cc` and stop
//!   (microsoft/devkit-sdk#1079: `arm-none-eabi-gcc: error: unrecognized debug output level 'cc'`);
//! - its prebuilt libraries were compiled against newlib 2, whose `<ctype.h>` macros call
//!   `__locale_ctype_ptr()`; newlib 3 removed that function, so the link reports it undefined
//!   (Azure/azure-iot-device-ecosystem#417: `libwifi.a(StringUtils.o): In function
//!   'formatMACAddr': ... undefined reference to '__locale_ctype_ptr'`);
//! - its link recipe names `-lstsafe` (the secure element library), which an incomplete install
//!   or a copied Arduino15 folder may lack (`cannot find -lstsafe`). Where it belongs is read
//!   from the recipe's own `-L` folders (2.0.0: `system/az3166-driver`), not assumed.

use serde::Serialize;
use std::path::Path;

/// One recognised failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum KnownFailure {
    /// `-gcc` in the vendor's link recipe, rejected by GCC 8+.
    GccFlagInLinkRecipe,
    /// `__locale_ctype_ptr` undefined: newlib 3 against the platform's newlib-2 libraries.
    LocaleCtypePtr,
    /// `libstsafe.a` missing from the platform.
    MissingStsafe,
}

/// The compatibility source that defines what newlib 3 removed, for the sketch directory.
pub const LOCALE_SHIM_FILE: &str = "newlib_locale_compat.c";
/// Its content: newlib 2's `__locale_ctype_ptr()` returned the C locale's ctype table, which
/// newlib 3 still exports as `_ctype_` (same layout: one leading padding entry). newlib 3's
/// `<ctype.h>` defines `__locale_ctype_ptr()` as a macro for `_ctype_`, hence the `#undef`.
pub const LOCALE_SHIM_SOURCE: &str = "/* newlib 2 compatibility for the AZ3166 platform's prebuilt libraries (see devkit build). */\n#include <ctype.h>\n#undef __locale_ctype_ptr\nconst char *__locale_ctype_ptr(void) { return _ctype_; }\n";

impl KnownFailure {
    /// The failure a line of build output shows, if any.
    pub fn detect(line: &str) -> Option<KnownFailure> {
        // GCC quotes with ' in the C locale and with ‘ ’ in UTF-8 locales.
        if line.contains("unrecognized debug output level")
            && (line.contains("'cc'") || line.contains("‘cc’"))
        {
            return Some(KnownFailure::GccFlagInLinkRecipe);
        }
        if line.contains("__locale_ctype_ptr") && line.contains("undefined reference") {
            return Some(KnownFailure::LocaleCtypePtr);
        }
        if line.contains("cannot find -lstsafe")
            || (line.contains("libstsafe.a") && line.contains("No such file"))
        {
            return Some(KnownFailure::MissingStsafe);
        }
        None
    }

    /// Every distinct failure in a block of output, in order of first appearance.
    pub fn detect_all(text: &str) -> Vec<KnownFailure> {
        let mut found = Vec::new();
        for f in text.lines().filter_map(KnownFailure::detect) {
            if !found.contains(&f) {
                found.push(f);
            }
        }
        found
    }

    /// What went wrong and how to fix it. `platform_dir` (the installed
    /// `packages/AZ3166/hardware/stm32f4/<version>` folder), when known, makes the fix exact.
    pub fn explain(&self, platform_dir: Option<&Path>) -> String {
        let platform = platform_dir
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "<Arduino15>/packages/AZ3166/hardware/stm32f4/<version>".into());
        match self {
            KnownFailure::GccFlagInLinkRecipe => {
                let line = platform_dir.and_then(fixed_combine_pattern);
                let add = match line {
                    Some(l) => format!("add this line to {platform}/platform.local.txt (it overrides platform.txt):\n  {l}\n"),
                    None => format!(
                        "copy the `recipe.c.combine.pattern=` line of {platform}/platform.txt into {platform}/platform.local.txt (which overrides it) with ` -gcc ` replaced by ` -lgcc `.\n"
                    ),
                };
                format!(
                    "The AZ3166 platform's link recipe passes `-gcc` where `-lgcc` was meant, and GCC 8 and newer reject it (\"unrecognized debug output level 'cc'\"). Fix: {add}\
                     (With arduino-cli the same line can instead be given as `--build-property`; or build with the toolchain the platform ships, arm-none-eabi-gcc 5.4.)"
                )
            }
            KnownFailure::LocaleCtypePtr => format!(
                "The AZ3166 platform's prebuilt libraries were compiled against newlib 2 and call `__locale_ctype_ptr`, which newlib 3 (current toolchains) removed. \
                 Fix: build with the toolchain the platform ships (arm-none-eabi-gcc 5.4 with its newlib), or add a compatibility source to the sketch directory, \
                 e.g. `{LOCALE_SHIM_FILE}` containing:\n{LOCALE_SHIM_SOURCE}"
            ),
            KnownFailure::MissingStsafe => {
                let dirs: Vec<String> = platform_dir
                    .map(link_search_dirs)
                    .unwrap_or_default()
                    .iter()
                    .map(|d| d.display().to_string())
                    .collect();
                let (where_, restore) = match dirs.as_slice() {
                    [] => (
                        format!("in one of the folders its link recipe (`recipe.c.combine.pattern` in {platform}/platform.txt) names with `-L`"),
                        "that folder".to_string(),
                    ),
                    [one] => (format!("in {one}, the folder its link recipe searches"), one.clone()),
                    many => (
                        format!("in one of the folders its link recipe searches: {}", many.join(", ")),
                        "the platform's libraries".to_string(),
                    ),
                };
                format!(
                    "The AZ3166 platform's link recipe needs `libstsafe.a` (the secure element library), {where_}, and it is missing: the platform install is incomplete \
                     (an interrupted download, a quarantined file, or an Arduino15 folder copied without its .a files). Fix: reinstall that platform version, or restore \
                     {restore} from a complete install of the same version."
                )
            }
        }
    }
}

/// The platform's `recipe.c.combine.pattern=` line with the `-gcc` typo corrected, when the
/// platform's `platform.txt` has it.
pub fn fixed_combine_pattern(platform_dir: &Path) -> Option<String> {
    let bytes = crate::fsutil::read_internal(
        &platform_dir.join("platform.txt"),
        crate::fsutil::limits::TOOL_FILE,
    )
    .ok()??;
    let text = String::from_utf8(bytes).ok()?;
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("recipe.c.combine.pattern="))?;
    let fixed = replace_flag(line.trim(), "-gcc", "-lgcc");
    (fixed != line.trim()).then_some(fixed)
}

/// The folders the platform's link recipe searches for libraries (its `-L` arguments), with the
/// platform's path placeholders resolved as the Arduino builders resolve them; the build
/// folder (`{build.path}`) and anything unresolvable are left out.
pub fn link_search_dirs(platform_dir: &Path) -> Vec<std::path::PathBuf> {
    let props = super::reproducible::platform_properties(platform_dir);
    let Some(pattern) = props.get("recipe.c.combine.pattern") else {
        return Vec::new();
    };
    // `cores/<core>` and `variants/<variant>`: the one folder there, when there is one.
    let only_child = |dir: &str| -> Option<String> {
        let mut names = std::fs::read_dir(platform_dir.join(dir))
            .ok()?
            .filter_map(Result::ok)
            .filter(|e| e.path().is_dir())
            .map(|e| e.path().display().to_string());
        let first = names.next()?;
        names.next().is_none().then_some(first)
    };
    let platform = platform_dir.display().to_string();
    let known: Vec<(&str, Option<String>)> = vec![
        ("{build.system.path}", Some(format!("{platform}/system"))),
        ("{runtime.platform.path}", Some(platform.clone())),
        ("{build.core.path}", only_child("cores")),
        ("{build.variant.path}", only_child("variants")),
    ];
    let mut dirs = Vec::new();
    for word in split_recipe(pattern) {
        let Some(dir) = word.strip_prefix("-L") else {
            continue;
        };
        let mut dir = dir.to_string();
        for (placeholder, value) in &known {
            if dir.contains(placeholder) {
                match value {
                    Some(v) => dir = dir.replace(placeholder, v),
                    None => dir.clear(),
                }
            }
        }
        if !dir.is_empty() && !dir.contains('{') {
            let path = std::path::PathBuf::from(dir);
            if !dirs.contains(&path) {
                dirs.push(path);
            }
        }
    }
    dirs
}

/// A recipe's command line split into words as the Arduino builders split it: on spaces
/// outside double quotes, the quotes removed.
fn split_recipe(pattern: &str) -> Vec<String> {
    let (mut words, mut word, mut quoted) = (Vec::new(), String::new(), false);
    for c in pattern.chars() {
        match c {
            '"' => quoted = !quoted,
            ' ' | '\t' if !quoted => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

/// Replace the whole word `from` (between spaces or at the ends) with `to`.
fn replace_flag(line: &str, from: &str, to: &str) -> String {
    line.split(' ')
        .map(|w| if w == from { to } else { w })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    // The lines as the public reports show them.
    const GCC8: &str = "arm-none-eabi-gcc: error: unrecognized debug output level 'cc'"; // microsoft/devkit-sdk#1079
    const NEWLIB3: &str =
        "StringUtils.c:(.text.formatMACAddr+0xc): undefined reference to `__locale_ctype_ptr'"; // Azure/azure-iot-device-ecosystem#417
    const NEWLIB3_NEW_LD: &str = "/usr/lib/gcc/arm-none-eabi/12.2.1/../../../arm-none-eabi/bin/ld: StringUtils.c:(.text.formatMACAddr+0xc): undefined reference to `__locale_ctype_ptr'";
    const STSAFE: &str = "/usr/lib/gcc/arm-none-eabi/12.2.1/../../../arm-none-eabi/bin/ld: cannot find -lstsafe: No such file or directory";

    #[test]
    fn the_reported_lines_are_recognised() {
        assert_eq!(
            KnownFailure::detect(GCC8),
            Some(KnownFailure::GccFlagInLinkRecipe)
        );
        assert_eq!(
            KnownFailure::detect("arm-none-eabi-gcc: error: unrecognized debug output level ‘cc’"),
            Some(KnownFailure::GccFlagInLinkRecipe)
        );
        assert_eq!(
            KnownFailure::detect(NEWLIB3),
            Some(KnownFailure::LocaleCtypePtr)
        );
        assert_eq!(
            KnownFailure::detect(NEWLIB3_NEW_LD),
            Some(KnownFailure::LocaleCtypePtr)
        );
        assert_eq!(
            KnownFailure::detect(STSAFE),
            Some(KnownFailure::MissingStsafe)
        );
        assert_eq!(
            KnownFailure::detect("ld: cannot find -lstsafe"),
            Some(KnownFailure::MissingStsafe)
        );
        for other in [
            "Sketch uses 620 bytes",
            "x.ino:1:2: error: 'foo' was not declared",
            "ld: cannot find -lwlan",
            "error: unrecognized debug output level 'g3x'",
        ] {
            assert_eq!(KnownFailure::detect(other), None, "{other}");
        }
        let text = format!("noise\n{NEWLIB3}\n{NEWLIB3_NEW_LD}\n{GCC8}\n");
        assert_eq!(
            KnownFailure::detect_all(&text),
            vec![
                KnownFailure::LocaleCtypePtr,
                KnownFailure::GccFlagInLinkRecipe
            ]
        );
    }

    #[test]
    fn the_gcc_fix_is_the_platforms_own_line_corrected() {
        let dir = tempfile::tempdir().unwrap();
        // The vendor's link recipe ends like this (AZ3166 platform.txt).
        std::fs::write(
            dir.path().join("platform.txt"),
            "name=x\nrecipe.c.combine.pattern=\"{compiler.path}{compiler.c.elf.cmd}\" -Wl,--start-group {object_files} -laz_iot \"{build.path}/{archive_file}\" -Wl,--end-group -lwlan -lwifi -lstsafe -lmbed-os -lm -lstdc++ -gcc --specs=nano.specs --specs=nosys.specs -u _printf_float\n",
        )
        .unwrap();
        let fixed = fixed_combine_pattern(dir.path()).unwrap();
        assert!(
            fixed.contains(" -lstdc++ -lgcc --specs=nano.specs") && !fixed.contains(" -gcc "),
            "{fixed}"
        );
        let text = KnownFailure::GccFlagInLinkRecipe.explain(Some(dir.path()));
        assert!(
            text.contains("platform.local.txt") && text.contains(&fixed),
            "{text}"
        );
        // Unknown platform folder: the instruction in words.
        let text = KnownFailure::GccFlagInLinkRecipe.explain(None);
        assert!(text.contains("` -gcc ` replaced by ` -lgcc `"), "{text}");
        // Already fixed: nothing to offer.
        std::fs::write(
            dir.path().join("platform.txt"),
            "recipe.c.combine.pattern=gcc -lgcc -o x\n",
        )
        .unwrap();
        assert_eq!(fixed_combine_pattern(dir.path()), None);
    }

    #[test]
    fn the_other_fixes_name_the_remedy() {
        let t = KnownFailure::LocaleCtypePtr.explain(None);
        assert!(t.contains(LOCALE_SHIM_SOURCE) && t.contains("5.4"), "{t}");
        // No platform.txt to read: the recipe is named, no folder guessed.
        let t = KnownFailure::MissingStsafe
            .explain(Some(Path::new("/a/packages/AZ3166/hardware/stm32f4/2.0.0")));
        assert!(
            t.contains("recipe.c.combine.pattern")
                && t.contains("reinstall")
                && !t.contains("sdk/lib"),
            "{t}"
        );
    }

    /// The vendor's 2.0.0 link recipe (microsoft/devkit-sdk AZ3166/src/platform.txt) searches
    /// `system`, `system/az3166-driver` (where its libstsafe.a is) and the Wi-Fi library's folder.
    #[test]
    fn the_stsafe_fix_names_the_folders_the_platforms_own_link_recipe_searches() {
        let dir = tempfile::tempdir().unwrap();
        let platform = dir.path().join("packages/AZ3166/hardware/stm32f4/2.0.0");
        std::fs::create_dir_all(&platform).unwrap();
        std::fs::write(
            platform.join("platform.txt"),
            "recipe.c.combine.pattern=\"{compiler.path}{compiler.c.elf.cmd}\" -mcpu={build.mcu} -mthumb {compiler.c.elf.flags} \"-T{build.variant.path}/{build.ldscript}\" \"-Wl,-Map,{build.path}/{build.project_name}.map\" -o \"{build.path}/{build.project_name}.elf\" \"-L{build.path}\" \"-L{build.system.path}\" \"-L{build.system.path}/az3166-driver\" \"-L{build.system.path}/az3166-driver/libwlan/TARGET_EMW1062\" -Wl,--start-group {object_files} \"{build.path}/{archive_file}\" -Wl,--end-group -lwlan -lstsafe -ldevkit-sdk-core-lib -lm -lstdc++ -gcc --specs=nano.specs\n",
        )
        .unwrap();
        let p = platform.display().to_string();
        assert_eq!(
            link_search_dirs(&platform),
            vec![
                PathBuf::from(format!("{p}/system")),
                PathBuf::from(format!("{p}/system/az3166-driver")),
                PathBuf::from(format!("{p}/system/az3166-driver/libwlan/TARGET_EMW1062")),
            ]
        );
        let t = KnownFailure::MissingStsafe.explain(Some(&platform));
        assert!(
            t.contains(&format!("{p}/system/az3166-driver")) && !t.contains("sdk/lib"),
            "{t}"
        );
        // A platform.local.txt recipe (the -gcc fix) is the one the builder runs.
        std::fs::write(
            platform.join("platform.local.txt"),
            "recipe.c.combine.pattern=gcc \"-L{runtime.platform.path}/lib\" -lstsafe -lgcc\n",
        )
        .unwrap();
        assert_eq!(
            link_search_dirs(&platform),
            vec![PathBuf::from(format!("{p}/lib"))]
        );
        let t = KnownFailure::MissingStsafe.explain(Some(&platform));
        assert!(
            t.contains(&format!("in {p}/lib, the folder its link recipe searches")),
            "{t}"
        );
    }
}
