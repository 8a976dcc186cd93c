//! `fathom import --from-chroma PATH`: copies a Chroma store by running the
//! Python SDK's migration (`python -m fathom.migrate chroma`), which reads
//! the store with Chroma's own client. Chroma keeps its vectors in files
//! only its library reads, so there is no Rust reader.

use std::path::Path;
use std::process::Command;

use super::import::ImportArgs;
use crate::connection::ConnectionArgs;

/// The Python that runs the migration when `FATHOM_PYTHON` is not set.
const DEFAULT_PYTHON: &str = "python3";

/// Runs the migration of the Chroma store at `store` into the server of
/// `connection`, with the progress and the count report of the Python
/// helper; fails unless every collection's counts match. The API key goes
/// to the helper in its environment, not its arguments (`ps` shows those).
pub fn import(connection: &ConnectionArgs, store: &Path, args: &ImportArgs) -> anyhow::Result<()> {
    let python = std::env::var("FATHOM_PYTHON").unwrap_or_else(|_| DEFAULT_PYTHON.to_owned());
    let mut command = Command::new(&python);
    command.args(["-m", "fathom.migrate", "chroma"]).arg(store).args([
        "--server",
        &connection.url(),
        "--batch-size",
        &args.batch_size.to_string(),
    ]);
    if let Some(key) = &connection.api_key {
        command.env("FATHOM_API_KEY", key);
    }
    for (flag, path) in [
        ("--tls-ca", &connection.tls_ca),
        ("--tls-client-cert", &connection.tls_client_cert),
        ("--tls-client-key", &connection.tls_client_key),
    ] {
        if let Some(path) = path {
            command.arg(flag).arg(path);
        }
    }
    if let Some(collection) = &args.collection {
        command.args(["--collection", collection]);
    }
    if let Some(stream_id) = &args.stream_id {
        command.args(["--stream-id", stream_id]);
    }
    let status = command.status().map_err(|e| {
        anyhow::anyhow!(
            "cannot run {python} (set FATHOM_PYTHON to a Python where `pip install \"./client/python[chroma]\"` was \
             run in a clone of fathom): {e}"
        )
    })?;
    if !status.success() {
        anyhow::bail!(
            "the Chroma migration failed ({python} -m fathom.migrate chroma; it needs the Python SDK with its chroma \
             extra in that Python: `pip install \"./client/python[chroma]\"` in a clone of fathom, see FATHOM_PYTHON)"
        );
    }
    Ok(())
}
