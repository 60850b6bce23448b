//! Reading the append-only JSON-lines files of a run directory.
//!
//! The writers append one whole line per record, so the only damage a crash can do is a
//! cut-off last line; that line is skipped. Any other unparsable line is an error naming
//! the file and line, because it means the file is not what it claims to be.

use crate::error::{Error, Result};
use serde::de::DeserializeOwned;
use std::path::Path;

/// Parses every line of `path` as a `T`.
pub fn read<T: DeserializeOwned>(path: &Path) -> Result<Vec<T>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    parse(path, &text)
}

/// Like [`read`], on text already in memory (`path` only names it in errors).
pub fn parse<T: DeserializeOwned>(path: &Path, text: &str) -> Result<Vec<T>> {
    let complete = text.ends_with('\n');
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::with_capacity(lines.len());
    for (n, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str(line) {
            Ok(x) => out.push(x),
            Err(_) if n + 1 == lines.len() && !complete => break, // cut off by a crash
            Err(e) => {
                return Err(Error::BadFile {
                    path: path.into(),
                    reason: format!("line {}: not a valid record ({e})", n + 1),
                })
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skips_cut_last_line_only() {
        let p = Path::new("x.jsonl");
        let v: Vec<serde_json::Value> = parse(p, "{\"a\":1}\n{\"a\":2}\n{\"a\"").unwrap();
        assert_eq!(v.len(), 2);
        let e = parse::<serde_json::Value>(p, "{\"a\":1}\nnope\n{\"a\":2}\n").unwrap_err();
        assert!(e.to_string().contains("x.jsonl: line 2"), "{e}");
        let e = parse::<serde_json::Value>(p, "{\"a\":1}\n{\"a\"\n").unwrap_err();
        assert!(e.to_string().contains("line 2"), "{e}");
    }
}
