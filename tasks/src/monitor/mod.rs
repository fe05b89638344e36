//! monitor (in progress)
pub mod framing;
