//! Errors of the simulator's own inputs: scenario files and injected faults.
//!
//! Graph-level failures are not errors here: they are responses the simulator serves on purpose.

use std::path::PathBuf;

/// Why a scenario (or an injected fault) could not be accepted.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The scenario is not valid YAML, does not match the schema, or fails a cross-check (an
    /// unknown user reference, a duplicate id); `origin` is the file name given by the caller.
    #[error("{origin}:{line}:{column}: {message}")]
    Scenario {
        /// The file (or other source name) the text came from.
        origin: String,
        /// 1-based line of the offending node.
        line: u64,
        /// 1-based column of the offending node.
        column: u64,
        /// What is wrong, lower-case, no trailing period.
        message: String,
    },
    /// A scenario problem the YAML parser could not place on a line (rare: e.g. an empty file).
    #[error("{origin}: {message}")]
    ScenarioUnplaced {
        /// The file (or other source name) the text came from.
        origin: String,
        /// What is wrong.
        message: String,
    },
    /// The scenario file could not be read.
    #[error("cannot read scenario {}: {source}", path.display())]
    Read {
        /// The path as given.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
}
