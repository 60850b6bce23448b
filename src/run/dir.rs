//! Creating and checking run directories, and the files a run keeps open while it trains.

use super::lock::{busy, holder, RunLock};
use super::metrics::MetricsLog;
use super::RunOptions;
use crate::config::RunConfig;
use crate::error::{Error, Result};
use crate::fsutil::write_atomic;
use crate::layout::{SpectraSink, CHECKPOINTS_DIR, CONFIG_FILE, METRICS_FILE};
use std::fs::File;
use std::path::{Path, PathBuf};
use time::OffsetDateTime;

/// A fresh, unused directory name `runs/<label>-<UTC timestamp>[-N]` (under `root`).
pub fn default_out_dir(root: &Path, label: &str) -> PathBuf {
    let base = root.join(format!("{label}-{}", stamp(OffsetDateTime::now_utc())));
    let mut path = base.clone();
    let mut n = 2;
    while path.exists() {
        path = PathBuf::from(format!("{}-{n}", base.display()));
        n += 1;
    }
    path
}

/// `YYYYMMDD-HHMMSS` of a UTC time (sorts like the times it names).
fn stamp(t: OffsetDateTime) -> String {
    format!(
        "{:04}{:02}{:02}-{:02}{:02}{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Refuses an output path that holds anything but an empty directory, unless `force`
/// and it is a run directory.
pub(super) fn check_out_dir(out: &Path, force: bool) -> Result<()> {
    if out.file_name().is_none() {
        return Err(Error::BadFile {
            path: out.into(),
            reason: "not usable as a run directory name".into(),
        });
    }
    if !out.exists() {
        return Ok(());
    }
    if !out.is_dir() {
        return Err(Error::BadFile {
            path: out.into(),
            reason: "exists and is not a directory".into(),
        });
    }
    if !is_nonempty_dir(out)? {
        return Ok(());
    }
    if !force {
        return Err(occupied(out));
    }
    if !out.join(CONFIG_FILE).is_file() {
        return Err(Error::BadFile {
            path: out.into(),
            reason: format!(
                "refusing to replace it: not a run directory (no {CONFIG_FILE}), and --force only replaces run directories"
            ),
        });
    }
    Ok(())
}

fn is_nonempty_dir(dir: &Path) -> Result<bool> {
    if !dir.is_dir() {
        return Ok(false);
    }
    Ok(std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .next()
        .is_some())
}

/// Why a new run may not go into the non-empty directory `out`: someone trains there, or
/// it just holds something.
fn occupied(out: &Path) -> Error {
    match holder(out) {
        Some(pid) => busy(out, &pid),
        None => Error::BadFile {
            path: out.into(),
            reason: "already exists and is not empty (pass --force to replace it, or \
                     --resume to continue it)"
                .into(),
        },
    }
}

/// The text of a run's `config.toml`.
pub(super) fn config_file_text(config: &RunConfig) -> String {
    format!(
        "# Resolved configuration of this run (written by clockwork's train).\n\
         # Continue it with: train --resume <this directory> [--steps N]\n\n{}",
        config.to_toml()
    )
}

/// Creates `out` with its config, an empty metrics file and a checkpoint folder, under a
/// temporary name renamed into place at the end, and returns its lock, taken before the
/// directory appears under its name (so a `--resume` can never slip in before the run's
/// first step). Under `force` an existing run directory (vetted by [`check_out_dir`]) is
/// replaced, unless some process still trains it.
///
/// The final rename is what makes two processes creating the same `out` safe: renaming a
/// directory onto an empty one replaces it atomically and onto a non-empty one fails, so
/// exactly one of them publishes its directory; the other removes its own temporary one
/// and reports the winner as holding `out`.
pub(super) fn create_run_dir(out: &Path, config: &RunConfig, force: bool) -> Result<RunLock> {
    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let pid = std::process::id();
    let tmp = parent.join(format!(".{name}.partial-{pid}"));
    let old = parent.join(format!(".{name}.replaced-{pid}"));
    let result = build_and_publish(&tmp, &old, out, config, force);
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
        if old.exists() && !out.exists() {
            let _ = std::fs::rename(&old, out);
        }
    }
    if old.exists() {
        std::fs::remove_dir_all(&old).map_err(|e| Error::io(&old, e))?;
    }
    result
}

/// [`create_run_dir`]'s steps up to the rename; the caller cleans up after a failure.
fn build_and_publish(
    tmp: &Path,
    old: &Path,
    out: &Path,
    config: &RunConfig,
    force: bool,
) -> Result<RunLock> {
    std::fs::create_dir(tmp).map_err(|e| Error::io(tmp, e))?;
    let lock = RunLock::acquire(tmp)?;
    write_atomic(&tmp.join(CONFIG_FILE), config_file_text(config).as_bytes())?;
    File::create(tmp.join(METRICS_FILE)).map_err(|e| Error::io(tmp.join(METRICS_FILE), e))?;
    let ck = tmp.join(CHECKPOINTS_DIR);
    std::fs::create_dir(&ck).map_err(|e| Error::io(&ck, e))?;
    // An empty `out` is replaced by the rename itself; a run directory (under --force)
    // is moved aside first, holding its lock so a run still training there stays put.
    let _replaced = if is_nonempty_dir(out)? {
        if !force {
            return Err(occupied(out));
        }
        let replaced = RunLock::acquire(out)?;
        std::fs::rename(out, old).map_err(|e| Error::io(out, e))?;
        Some(replaced)
    } else {
        None
    };
    std::fs::rename(tmp, out).map_err(|e| {
        if is_nonempty_dir(out).unwrap_or(false) {
            // Another process published its run directory here first.
            occupied(out)
        } else {
            Error::io(out, e)
        }
    })?;
    Ok(lock)
}

/// What a training session writes to: the run directory, its lock (held until the
/// session ends), `metrics.jsonl` and, when the config records spectra, the spectra
/// writer.
pub(super) struct RunFiles {
    /// The run directory.
    pub dir: PathBuf,
    /// One writer per run directory: held as long as these files are.
    pub _lock: RunLock,
    /// `metrics.jsonl`, appended to.
    pub metrics: MetricsLog,
    /// `spectra.jsonl`, when `train.spectra_every > 0`.
    pub spectra: Option<Box<dyn SpectraSink>>,
}

impl RunFiles {
    /// Opens the files of the run directory `dir`, whose lock is `lock`.
    pub(super) fn open(
        dir: &Path,
        lock: RunLock,
        config: &RunConfig,
        options: &RunOptions,
    ) -> Result<RunFiles> {
        let spectra = match options.spectra {
            // The recorded spectra are DFTs over Z_p: none for a group table or bit
            // strings, nor for seed 002's table, whose labels are not an operation on Z_p.
            Some(open)
                if config.train.spectra_every > 0
                    && config.task.group.is_none()
                    && config.task.bits.is_none()
                    && !config.is_base_p_task() =>
            {
                Some(open(dir, config.task.p)?)
            }
            _ => None,
        };
        Ok(RunFiles {
            dir: dir.into(),
            _lock: lock,
            metrics: MetricsLog::open(dir)?,
            spectra,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_are_utc_dates_and_times() {
        let at = |days: i64, secs: i64| {
            stamp(OffsetDateTime::from_unix_timestamp(days * 86_400 + secs).unwrap())
        };
        assert_eq!(at(0, 0), "19700101-000000");
        assert_eq!(at(19_723, 0), "20240101-000000");
        assert_eq!(at(19_782, 3723), "20240229-010203");
    }
}
