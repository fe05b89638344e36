//! The DevKit configuration-mode console client.
//!
//! The firmware's console (devkit-facts.md §2) echoes every character, masks the arguments of
//! `set_wifipwd` and `set_dps_uds` with `*`, splits words on spaces with quotes and
//! backslash escapes, parses at most 4 words and a 1023-character line, and ends every reply
//! with the prompt `"\r\n# "`. The original tools wrote blindly and slept; this client:
//! - detects configuration mode ([`Console::enter_config_mode`]: the prompt answers an empty
//!   line) and, when the device is not in it, tells the user to hold A and press reset, then
//!   keeps waiting up to a timeout;
//! - encodes arguments so the firmware reads back exactly the value ([`Command`]: spaces and
//!   quotes escaped) and refuses, before sending anything, what the firmware would mangle
//!   (more than 4 words, over-long lines, control characters);
//! - consumes the echo (masked for secrets: the secret never comes back), waits for the
//!   prompt and classifies the reply ([`ReplyKind`]);
//! - never logs or formats a secret: [`Command`]'s `Debug` shows the command name only.
//!
//! The client is synchronous over any [`Transport`]: an owned serial port
//! ([`Console::open`]) or a port the monitor lent out for exclusive use
//! ([`crate::monitor::ExclusivePort`], via [`crate::monitor::PortRegistry::exclusive`]).
//! From async code run it on `spawn_blocking` ([`run_on_port`] does that).
//!
//! The module holds one seam per file: [`transport`] (the byte link), [`command`] (encoding
//! and refusals), [`reply`] (classifying the answer), [`session`] (the conversation), and
//! [`configure`] (the set-uds / set-wifi tasks over them).

pub mod command;
pub mod configure;
pub mod error;
pub mod holder;
pub mod reply;
pub mod session;
pub mod tcp;
pub mod transport;

pub use command::{wifi_password_command, wifi_ssid_command, Command};
pub use error::ConsoleError;
pub use reply::{classify, parse_version, ConfirmedBy, DeviceVersion, Reply, ReplyKind};
pub use session::{run_on_port, Console};
pub use transport::{read_port, Cancellable, OpenFailure, SerialTransport, Transport, CANCEL_POLL};

/// The prompt the console prints after every command.
pub const PROMPT: &[u8] = b"\r\n# ";
/// Longest line the firmware accepts (its buffer holds 1024 bytes, the 1024th overflows).
pub const MAX_LINE: usize = 1023;
/// Most words the firmware parses.
pub const MAX_WORDS: usize = 4;
/// Longest Wi-Fi SSID the firmware stores (its zone holds 32 bytes with the NUL).
pub const MAX_SSID: usize = 31;
/// Longest Wi-Fi password the firmware stores (64 bytes with the NUL).
pub const MAX_WIFI_PASSWORD: usize = 63;
/// What the user must do when the DevKit is not in configuration mode.
pub const GUIDANCE: &str = "the DevKit is not in configuration mode: hold button A, press and release the reset button, then release A";
/// Commands whose arguments the firmware echoes as `*`.
pub const MASKED_COMMANDS: [&str; 2] = ["set_wifipwd", "set_dps_uds"];

/// Default serial speed of the DevKit (115200 8N1).
pub const DEFAULT_BAUD: u32 = 115_200;
