//! One writer per run directory: an exclusive OS lock (`flock` on Unix, through
//! [`File::try_lock`]) on the directory's [`LOCK_FILE`], held for as long as a process
//! trains the run.
//!
//! The lock file holds the holder's pid, only so the refusal can name it; whether a run
//! is busy is the lock alone. The OS drops the lock when the holder's process ends, by a
//! clean exit, a panic or `kill -9` alike, so no stale lock is ever left to clean up, and
//! the file itself stays (removing it would race with a process that just opened it).

use crate::error::{Error, Result};
use crate::layout::LOCK_FILE;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::Path;
use std::time::Duration;

/// The held lock of a run directory; dropping it (or the process ending) releases it.
#[derive(Debug)]
pub(super) struct RunLock {
    /// Kept open: the lock lives as long as this handle.
    _file: File,
}

impl RunLock {
    /// Takes the lock of the run directory `dir` (creating its lock file if needed) and
    /// writes this process's pid into it, or refuses, naming `dir` and the holder's pid.
    pub(super) fn acquire(dir: &Path) -> Result<RunLock> {
        let path = dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Err(busy(dir, &holder_pid(&path))),
            Err(TryLockError::Error(e)) => return Err(Error::io(&path, e)),
        }
        // Truncated only now: the file is ours, and the previous holder's pid is stale.
        file.set_len(0)
            .and_then(|_| writeln!(file, "{}", std::process::id()))
            .and_then(|_| file.flush())
            .map_err(|e| Error::io(&path, e))?;
        Ok(RunLock { _file: file })
    }
}

/// Whether someone holds `dir`'s lock (None: nobody, or no lock file), with the holder's
/// pid when it could be read. Probes with a shared lock that is dropped at once, so it never blocks
/// the holder; only a writer trying to take the lock in that same instant is refused.
pub(super) fn holder(dir: &Path) -> Option<Option<String>> {
    let path = dir.join(LOCK_FILE);
    let file = File::open(&path).ok()?;
    match file.try_lock_shared() {
        Err(TryLockError::WouldBlock) => Some(holder_pid(&path)),
        Ok(()) | Err(TryLockError::Error(_)) => None,
    }
}

/// The refusal of a second writer.
pub(super) fn busy(dir: &Path, pid: &Option<String>) -> Error {
    let who = match pid {
        Some(pid) => format!("process {pid}"),
        None => "another process (its pid could not be read)".into(),
    };
    Error::BadFile {
        path: dir.into(),
        reason: format!(
            "in use: {who} is training this run directory (it holds {}); one writer \
             per run directory, so wait for it to finish or stop it",
            dir.join(LOCK_FILE).display()
        ),
    }
}

/// The pid written in a held lock file. The holder writes it right after taking the lock,
/// so an empty file is a holder that is just starting: it is read again a few times.
fn holder_pid(path: &Path) -> Option<String> {
    for _ in 0..20 {
        if let Ok(text) = std::fs::read_to_string(path) {
            let pid = text.trim();
            if !pid.is_empty() {
                return Some(pid.to_string());
            }
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_with_the_holders_pid_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let first = RunLock::acquire(dir.path()).unwrap();
        let pid = std::process::id().to_string();
        assert_eq!(holder(dir.path()), Some(Some(pid.clone())));
        let refused = RunLock::acquire(dir.path()).unwrap_err().to_string();
        assert!(refused.contains(&pid), "{refused}");
        assert!(
            refused.contains(&dir.path().display().to_string()),
            "{refused}"
        );
        drop(first);
        assert_eq!(holder(dir.path()), None);
        let _again = RunLock::acquire(dir.path()).unwrap();
    }
}
