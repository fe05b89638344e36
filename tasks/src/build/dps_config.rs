//! The DPS settings a build compiles in: the generated `dps_config.h` in the sketch and the
//! `dps_config.json` next to the outputs.

use super::{read_state, BuildError, DpsSettings};
use crate::fsutil::{self, Mode};
use std::path::Path;

/// Name of the settings file written next to the outputs (read by the sim flash backend).
pub const DPS_CONFIG_JSON: &str = "dps_config.json";
/// Name of the generated header in the sketch directory.
pub const DPS_CONFIG_HEADER: &str = "dps_config.h";

/// Write `dps_config.h` into the sketch when its content differs (an unchanged header keeps
/// its timestamp, so arduino-cli's own caching is not disturbed).
pub fn write_header(sketch_dir: &Path, dps: &DpsSettings) -> Result<(), BuildError> {
    let path = sketch_dir.join(DPS_CONFIG_HEADER);
    let text = dps.render_header();
    if read_state(&path).as_deref() == Some(text.as_bytes()) {
        return Ok(());
    }
    fsutil::write_atomic(&path, text.as_bytes(), Mode::Public)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::DEFAULT_GLOBAL_ENDPOINT;

    #[test]
    fn header_is_rewritten_only_when_different() {
        let dir = tempfile::tempdir().unwrap();
        let (dps, _) = DpsSettings::new(DEFAULT_GLOBAL_ENDPOINT, "0ne0001A2B3", None).unwrap();
        write_header(dir.path(), &dps).unwrap();
        let p = dir.path().join(DPS_CONFIG_HEADER);
        let t1 = std::fs::metadata(&p).unwrap().modified().unwrap();
        write_header(dir.path(), &dps).unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().modified().unwrap(), t1);
        assert!(std::fs::read_to_string(&p).unwrap().contains("0ne0001A2B3"));
    }
}
