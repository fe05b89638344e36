//! The virtual DevKit on a pseudo-terminal. (Skeleton; filled in by the serial issue.)
//!
//! CONTRACT used by other modules (keep these names):
//! - `control::load_image(state_dir, bin, map, dps)`: what "flashing" the virtual DevKit means.
//! - `control::reset(state_dir, config_mode)`: reset a running virtual DevKit.

pub mod control;
