//! `huella eval ...`: accuracy evaluation (being built; see issue 6).

use anyhow::{bail, Result};
use clap::Subcommand;
use std::path::PathBuf;

/// Evaluation commands.
#[derive(Debug, Subcommand)]
pub enum EvalCommand {
    /// Verification metrics from a score file.
    Scores {
        /// CSV with columns score,mated.
        #[arg(long)]
        input: PathBuf,
    },
}

pub fn run(cmd: EvalCommand) -> Result<()> {
    match cmd {
        EvalCommand::Scores { input } => {
            bail!("eval scores is not built yet ({})", input.display())
        }
    }
}
