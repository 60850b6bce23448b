//! `sweep merge`: joins the directories of the shards of one sweep into one set of
//! tables and diagrams. The shards must be of the same sweep (equal fingerprints), one
//! each of `0/n` … `n−1/n`, and finished; anything else is refused before anything is
//! written, naming the directory and what does not match.

use super::spec::SweepSpec;
use super::{resolved_diagrams, write_outputs, Outputs, SweepMeta};
use crate::error::{Error, Result};
use crate::fsutil::write_atomic;
use std::path::{Path, PathBuf};

/// The file a merged directory describes itself with.
pub const MERGE_FILE: &str = "merge.json";

/// What a merge wrote.
#[derive(Clone, Debug)]
pub struct MergeReport {
    /// Models in the merged table.
    pub models: usize,
    /// Files written.
    pub written: Vec<PathBuf>,
}

/// Merges the shard directories `dirs` into `out` (with `explore`, `explore.html` too).
pub fn merge(dirs: &[PathBuf], out: &Path, explore: bool) -> Result<MergeReport> {
    let Some(first) = dirs.first() else {
        return Err(Error::config(
            "merge",
            "no directories",
            "name the shard directories to merge",
        ));
    };
    let metas: Vec<SweepMeta> = dirs
        .iter()
        .map(|d| SweepMeta::read(d))
        .collect::<Result<_>>()?;
    let base = &metas[0];
    let count = base.shard.count;
    let mut seen = vec![None::<&PathBuf>; count];
    for (dir, meta) in dirs.iter().zip(&metas) {
        if meta.fingerprint != base.fingerprint {
            return Err(Error::BadFile {
                path: dir.clone(),
                reason: format!(
                    "holds sweep fingerprint {} ('{}'), but {} holds {} ('{}'): not shards of one sweep",
                    meta.fingerprint,
                    meta.name,
                    first.display(),
                    base.fingerprint,
                    base.name
                ),
            });
        }
        if meta.shard.count != count {
            return Err(Error::BadFile {
                path: dir.clone(),
                reason: format!(
                    "is shard {} but {} is shard {}: the shard counts differ",
                    meta.shard,
                    first.display(),
                    base.shard
                ),
            });
        }
        if let Some(other) = seen[meta.shard.index] {
            return Err(Error::BadFile {
                path: dir.clone(),
                reason: format!(
                    "is shard {}, like {}: each shard once",
                    meta.shard,
                    other.display()
                ),
            });
        }
        seen[meta.shard.index] = Some(dir);
    }
    if let Some(missing) = seen.iter().position(Option::is_none) {
        return Err(Error::config(
            "merge",
            format!("{missing}/{count}"),
            format!(
                "shard {missing}/{count} is missing: pass the directories of all {count} shards"
            ),
        ));
    }
    let (mut rows, mut history) = (Vec::new(), Vec::new());
    for (dir, meta) in dirs.iter().zip(&metas) {
        let (r, h) = meta.read_batches(dir)?;
        rows.extend(r);
        history.extend(h);
    }
    if rows.len() != base.models {
        return Err(Error::BadFile {
            path: first.clone(),
            reason: format!(
                "the shards hold {} models, the sweep has {}",
                rows.len(),
                base.models
            ),
        });
    }
    let spec = SweepSpec::parse(&base.spec, &base.name, Path::new("."))?;
    let diagrams = resolved_diagrams(&spec)?;
    if out.join(super::META_FILE).exists() {
        return Err(Error::BadFile {
            path: out.into(),
            reason: "is a sweep (or shard) directory; merge into a new directory".into(),
        });
    }
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let note = serde_json::json!({
        "name": base.name,
        "fingerprint": base.fingerprint,
        "shards": dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>(),
    });
    write_atomic(
        &out.join(MERGE_FILE),
        serde_json::to_string_pretty(&note)
            .expect("plain data")
            .as_bytes(),
    )?;
    let (models, written) = write_outputs(
        out,
        &Outputs {
            title: &format!("Sweep {} ({count} shards merged)", base.name),
            keys: &spec.swept_keys(),
            diagrams: &diagrams,
            explore,
        },
        rows,
        history,
    )?;
    Ok(MergeReport { models, written })
}

/// The shard directories a merged directory was made from (its `merge.json`), as they
/// were named to `merge`.
pub fn shards_of(merged: &Path) -> Result<Vec<PathBuf>> {
    let path = merged.join(MERGE_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    #[derive(serde::Deserialize)]
    struct Note {
        shards: Vec<PathBuf>,
    }
    let note: Note = serde_json::from_str(&text).map_err(|e| Error::BadFile {
        path: path.clone(),
        reason: format!("not a merge description: {e}"),
    })?;
    Ok(note.shards)
}
