//! What can go wrong when loading the local model.

use std::path::PathBuf;

/// Why [`LocalEmbedder::load`](super::LocalEmbedder::load) failed. Embedding
/// itself cannot fail once a model is loaded.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    /// A file of the model could not be read, most often because the model
    /// is not installed.
    #[error("cannot read {path} (`make models` installs the local model): {source}")]
    Read {
        /// The file that could not be read.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A file of the model was read but is not what this embedder runs: bad
    /// JSON, a missing or misshapen tensor, an unsupported setting.
    #[error("{path}: {reason}")]
    Invalid {
        /// The file at fault.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}

impl EmbedError {
    pub(super) fn invalid(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Self::Invalid {
            path: path.into(),
            reason: reason.into(),
        }
    }
}
