//! Documents as a JSON Lines file for `fathom import`: one
//! `{"id", "vector", "text", "metadata"}` object per line (the format of
//! `cli/src/jsonl.rs`).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use crate::dataset::Dataset;

/// Writes documents `0..count` to `path`; returns the bytes written.
pub fn write(dataset: &Dataset, count: usize, path: &Path) -> std::io::Result<u64> {
    let mut out = BufWriter::with_capacity(1 << 20, File::create(path)?);
    let mut line = String::new();
    for index in 0..count {
        line.clear();
        push_line(&mut line, dataset, index);
        out.write_all(line.as_bytes())?;
    }
    let file = out.into_inner().map_err(std::io::IntoInnerError::into_error)?;
    file.sync_all()?;
    Ok(file.metadata()?.len())
}

/// Document `index` as one line, newline included. An f32 prints in its
/// shortest form that reads back bit for bit.
fn push_line(line: &mut String, dataset: &Dataset, index: usize) {
    use std::fmt::Write as _;
    let quoted = |text: &str| serde_json::Value::from(text).to_string();
    let _ = write!(line, "{{\"id\":{},\"vector\":[", quoted(&Dataset::id(index)));
    for (i, component) in dataset.vector(index).iter().enumerate() {
        if i > 0 {
            line.push(',');
        }
        let _ = write!(line, "{component}");
    }
    let _ = writeln!(
        line,
        "],\"text\":{},\"metadata\":{}}}",
        quoted(&dataset.text(index)),
        dataset.metadata_json(index)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_reads_back_as_the_document() {
        let dataset = Dataset::generate(3);
        let mut line = String::new();
        push_line(&mut line, &dataset, 2);
        assert!(line.ends_with('\n'));
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["id"], Dataset::id(2));
        assert_eq!(value["text"], dataset.text(2));
        assert_eq!(value["metadata"]["bucket"], 2);
        let vector: Vec<f32> = value["vector"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap() as f32)
            .collect();
        assert_eq!(vector, dataset.vector(2));
    }
}
