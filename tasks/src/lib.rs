//! DevKit DPS domain library.
//!
//! Everything the `devkit` binary (CLI and `devkit lsp` daemon) can do lives here, as plain
//! Rust APIs with typed errors (`thiserror`) and progress reported as events. This crate knows
//! nothing of LSP, JSON-RPC or the command line: the server is a thin adapter over it, the way
//! espflash keeps its domain modules apart from its CLI and monitor.
//!
//! Modules, one per capability:
//! - [`identity`]: DICE/RIoT derivation, certificates, registration IDs, UDS (issue: identity).
//! - [`console`]: the DevKit configuration-mode console client.
//! - [`monitor`]: the serial monitor (one owner per port, subscribers, pause/resume).
//! - [`logs`]: device log lines turned into structured log events.
//! - [`sim`]: the virtual DevKit on a pseudo-terminal.
//! - [`build`]: arduino-cli builds of the sketch.
//! - [`flash`]: probe-rs / OpenOCD / virtual-DevKit flashing.
//! - [`upload`]: `device-upload` orchestration (build, pause monitor, flash, resume).
//! - [`doctor`]: is this machine ready (arduino-cli, platform, probe, udev rule)?
//! - [`dps`]: DPS service client, device client and the local DPS emulator.
//! - [`provision`]: the end-to-end provisioning job.
//! - [`project`]: per-project state (the identity last generated or enrolled).
//! - [`error`]: the one error model (invalid input, error kind, next actions).
//! - [`progress`]: progress events and cancellation shared by long operations.
//! - [`fsutil`]: atomic, identity-safe file writes.

pub mod build;
pub mod console;
pub mod doctor;
pub mod dps;
pub mod error;
pub mod flash;
pub mod fsutil;
pub mod identity;
pub mod logs;
pub mod monitor;
pub mod progress;
pub mod project;
pub mod provision;
pub mod sim;
pub mod text;
pub mod upload;
