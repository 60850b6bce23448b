//! `sweep report DIR`: the outputs of a finished sweep directory written again from what
//! it holds, without training: the finished batches' `result.json` for a sweep (or
//! shard) directory, the shards named in `merge.json` for a merged one. This is how a
//! sweep that has already run gets its `explore.html` (`--explore`), and how a directory
//! gets the pages of a newer version of this program.

use super::merge::{self, MERGE_FILE};
use super::spec::SweepSpec;
use super::{resolved_diagrams, title, write_outputs, Outputs, SweepMeta, META_FILE};
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// What a rewrite wrote.
#[derive(Clone, Debug)]
pub struct RewriteReport {
    /// Models in the tables.
    pub models: usize,
    /// Files written.
    pub written: Vec<PathBuf>,
}

/// Rewrites the tables, diagrams and `index.html` of sweep directory `dir` (with
/// `explore`, `explore.html` too). Refuses a directory that is neither a sweep nor a
/// merge, and a sweep with an unfinished batch, naming it.
pub fn rewrite(dir: &Path, explore: bool) -> Result<RewriteReport> {
    if dir.join(META_FILE).is_file() {
        return rewrite_sweep(dir, explore);
    }
    if dir.join(MERGE_FILE).is_file() {
        let shards = merge::shards_of(dir)?;
        let r = merge::merge(&shards, dir, explore)?;
        return Ok(RewriteReport {
            models: r.models,
            written: r.written,
        });
    }
    Err(Error::BadFile {
        path: dir.into(),
        reason: format!(
            "not a sweep directory (no {META_FILE}) nor a merged one (no {MERGE_FILE})"
        ),
    })
}

fn rewrite_sweep(dir: &Path, explore: bool) -> Result<RewriteReport> {
    let meta = SweepMeta::read(dir)?;
    let spec = SweepSpec::parse(&meta.spec, &meta.name, Path::new("."))?;
    let (rows, history) = meta.read_batches(dir)?;
    let (models, written) = write_outputs(
        dir,
        &Outputs {
            title: &title(&meta.name, meta.shard),
            keys: &spec.swept_keys(),
            diagrams: &resolved_diagrams(&spec)?,
            explore,
        },
        rows,
        history,
    )?;
    Ok(RewriteReport { models, written })
}
