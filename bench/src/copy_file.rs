//! Documents as a PostgreSQL binary COPY file, for the server-side
//! `COPY … FROM 'file' (FORMAT BINARY)` ceiling.
//!
//! The format: the signature `PGCOPY\n\377\r\n\0`, int32 flags (0), int32
//! header extension length (0); per tuple an int16 field count and per field
//! an int32 length and the bytes of the type's binary form; an int16 -1
//! trailer. Every integer is big-endian.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::dataset::{DIMENSION, Dataset};

/// The columns a COPY file fills, in order.
pub const COLUMNS: &str = "tenant, id, embedding, body, metadata";

const SIGNATURE: &[u8; 11] = b"PGCOPY\n\xff\r\n\0";
/// jsonb's binary form: a version byte, then the JSON text.
const JSONB_VERSION: u8 = 1;

/// Writes documents `0..count` to `path`, readable by every user (the
/// cluster runs as `nobody` when the bench runs as root). Returns the bytes written.
pub fn write(dataset: &Dataset, count: usize, path: &Path) -> std::io::Result<u64> {
    let mut out = BufWriter::with_capacity(1 << 20, File::create(path)?);
    out.write_all(SIGNATURE)?;
    out.write_all(&0i32.to_be_bytes())?;
    out.write_all(&0i32.to_be_bytes())?;
    for index in 0..count {
        out.write_all(&5i16.to_be_bytes())?;
        write_field(&mut out, b"")?; // tenant: none
        write_field(&mut out, Dataset::id(index).as_bytes())?;
        write_field(&mut out, &vector_binary(dataset.vector(index)))?;
        write_field(&mut out, dataset.text(index).as_bytes())?;
        let mut jsonb = vec![JSONB_VERSION];
        jsonb.extend_from_slice(dataset.metadata_json(index).as_bytes());
        write_field(&mut out, &jsonb)?;
    }
    out.write_all(&(-1i16).to_be_bytes())?;
    let file = out.into_inner().map_err(std::io::IntoInnerError::into_error)?;
    file.sync_all()?;
    let bytes = file.metadata()?.len();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644))?;
    Ok(bytes)
}

fn write_field(out: &mut impl Write, bytes: &[u8]) -> std::io::Result<()> {
    let length = i32::try_from(bytes.len()).map_err(std::io::Error::other)?;
    out.write_all(&length.to_be_bytes())?;
    out.write_all(bytes)
}

/// pgvector's binary `vector`: int16 dimension, int16 unused (0), then the
/// components as big-endian float4.
pub fn vector_binary(vector: &[f32]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(4 + 4 * DIMENSION);
    bytes.extend_from_slice(&(vector.len() as i16).to_be_bytes());
    bytes.extend_from_slice(&0i16.to_be_bytes());
    for component in vector {
        bytes.extend_from_slice(&component.to_be_bytes());
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vector_is_dimension_then_big_endian_floats() {
        assert_eq!(
            vector_binary(&[1.0, -2.0]),
            [0, 2, 0, 0, 0x3f, 0x80, 0, 0, 0xc0, 0, 0, 0]
        );
    }
}
