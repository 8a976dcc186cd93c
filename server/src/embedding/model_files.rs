//! Reading the model's folder: the JSON settings files and the weights.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use safetensors::{Dtype, SafeTensors};
use serde::de::DeserializeOwned;

use super::EmbedError;

/// Reads a file whole, naming it in the error.
pub(super) fn read(path: &Path) -> Result<Vec<u8>, EmbedError> {
    std::fs::read(path).map_err(|source| EmbedError::Read {
        path: path.to_owned(),
        source,
    })
}

/// Reads and parses a JSON file into `T`.
pub(super) fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T, EmbedError> {
    serde_json::from_slice(&read(path)?).map_err(|e| EmbedError::invalid(path, format!("not the expected JSON: {e}")))
}

/// The single-precision tensors of a `.safetensors` file, by name, with the
/// `bert.` prefix some exports add removed.
pub(super) struct Tensors {
    path: PathBuf,
    tensors: HashMap<String, (Vec<usize>, Vec<f32>)>,
}

impl Tensors {
    /// Loads every F32 tensor of the file (other dtypes, such as the int64
    /// `position_ids` buffer, are not weights and are skipped).
    pub(super) fn load(path: &Path) -> Result<Self, EmbedError> {
        let bytes = read(path)?;
        let file = SafeTensors::deserialize(&bytes).map_err(|e| EmbedError::invalid(path, e.to_string()))?;
        let tensors = file
            .iter()
            .filter(|(_, view)| view.dtype() == Dtype::F32)
            .map(|(name, view)| {
                let values = view
                    .data()
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect();
                (
                    name.strip_prefix("bert.").unwrap_or(name).to_owned(),
                    (view.shape().to_vec(), values),
                )
            })
            .collect();
        Ok(Self {
            path: path.to_owned(),
            tensors,
        })
    }

    /// Takes the tensor `name` out, checking that its shape is `shape`.
    pub(super) fn take(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>, EmbedError> {
        match self.tensors.remove(name) {
            Some((actual, values)) if actual == shape => Ok(values),
            Some((actual, _)) => Err(EmbedError::invalid(
                &self.path,
                format!("tensor {name} has shape {actual:?}, expected {shape:?}"),
            )),
            None => Err(EmbedError::invalid(&self.path, format!("no F32 tensor named {name}"))),
        }
    }
}
