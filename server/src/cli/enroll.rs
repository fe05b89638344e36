//! `devkit enroll`. (Skeleton; filled in by its issue.)

use super::CliResult;

#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> CliResult {
    Err(super::CliError::Failed(anyhow::anyhow!("`devkit enroll` is not implemented yet")))
}
