//! provision: the end-to-end provisioning job.

pub mod sample;
