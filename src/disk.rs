//! Free space on the data disk (`DATA_ROOT`: Postgres, Redis's append-only file, git mirrors).
//!
//! A full volume is the one failure an appliance left alone for months is sure to meet. Below
//! `DISK_MIN_FREE_MB` the appliance says so in `/api/health` (503, `down: ["disk"]`) and in its
//! logs, refuses to queue or start scans and lets queued analyses retry later instead of
//! failing half-way through their writes. Every write is transactional, so nothing is ever
//! half-written; what was skipped is picked up by the next scan once there is room.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// One reading of the data disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskReading {
    /// The folder whose file system was measured (the nearest existing ancestor of DATA_ROOT).
    pub path: PathBuf,
    /// Bytes an unprivileged writer may still use.
    pub free_bytes: u64,
    /// Size of the file system.
    pub total_bytes: u64,
    /// The configured minimum.
    pub min_free_bytes: u64,
}

impl DiskReading {
    /// True when free space is below the minimum.
    pub fn is_low(&self) -> bool {
        self.free_bytes < self.min_free_bytes
    }

    /// The sentence shown in health, logs and API errors when the disk is low.
    pub fn problem(&self) -> String {
        format!(
            "data disk nearly full: {} MiB free of {} MiB on {} (DISK_MIN_FREE_MB is {}); \
             scans and analyses stop until space is freed or the volume is extended, \
             and the next scan picks up what was skipped",
            self.free_bytes / MIB,
            self.total_bytes / MIB,
            self.path.display(),
            self.min_free_bytes / MIB
        )
    }
}

const MIB: u64 = 1024 * 1024;

/// Why the disk could not be measured.
#[derive(Debug, thiserror::Error)]
#[error("could not measure free space on {path}: {source}")]
pub struct DiskError {
    path: PathBuf,
    #[source]
    source: std::io::Error,
}

/// Watches the data disk; logs once when it becomes low and once when it recovers.
#[derive(Debug)]
pub struct DiskWatch {
    root: PathBuf,
    min_free_bytes: u64,
    low: AtomicBool,
}

impl DiskWatch {
    /// A watch over the file system holding `root` (which need not exist yet).
    pub fn new(root: &Path, min_free_mb: u64) -> Self {
        DiskWatch {
            root: root.to_path_buf(),
            min_free_bytes: min_free_mb.saturating_mul(MIB),
            low: AtomicBool::new(false),
        }
    }

    /// Measures now. Logs at error level when the disk turns low and at info level when it
    /// recovers; callers decide what to refuse.
    pub fn check(&self) -> Result<DiskReading, DiskError> {
        let path = nearest_existing(&self.root);
        let st = rustix::fs::statvfs(&path).map_err(|e| DiskError {
            path: path.clone(),
            source: e.into(),
        })?;
        let reading = DiskReading {
            free_bytes: st.f_bavail.saturating_mul(st.f_frsize),
            total_bytes: st.f_blocks.saturating_mul(st.f_frsize),
            min_free_bytes: self.min_free_bytes,
            path,
        };
        let low = reading.is_low();
        if self.low.swap(low, Ordering::Relaxed) != low {
            if low {
                tracing::error!(free_mib = reading.free_bytes / MIB, path = %reading.path.display(), "{}", reading.problem());
            } else {
                tracing::info!(free_mib = reading.free_bytes / MIB, path = %reading.path.display(), "data disk has room again; scans resume");
            }
        }
        Ok(reading)
    }

    /// `Err(problem)` when the disk is low; a disk that cannot be measured does not block work
    /// (the error is logged).
    pub fn ensure_room(&self) -> Result<(), String> {
        match self.check() {
            Ok(r) if r.is_low() => Err(r.problem()),
            Ok(_) => Ok(()),
            Err(e) => {
                tracing::warn!(error = %e, "disk check failed");
                Ok(())
            }
        }
    }
}

/// `path` itself or its nearest ancestor that exists (DATA_ROOT may be created later).
fn nearest_existing(path: &Path) -> PathBuf {
    let mut p = path;
    loop {
        if p.exists() {
            return p.to_path_buf();
        }
        match p.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => p = parent,
            _ => return PathBuf::from("."),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_an_existing_folder_and_its_missing_children() {
        let dir = tempfile::tempdir().unwrap();
        let watch = DiskWatch::new(&dir.path().join("not/yet/made"), 0);
        let r = watch.check().unwrap();
        assert_eq!(r.path, dir.path());
        assert!(r.total_bytes > 0 && r.free_bytes <= r.total_bytes);
        assert!(!r.is_low());
        assert!(watch.ensure_room().is_ok());
    }

    #[test]
    fn a_minimum_above_the_disk_size_reads_as_low_with_a_clear_sentence() {
        let dir = tempfile::tempdir().unwrap();
        let watch = DiskWatch::new(dir.path(), u64::MAX / MIB);
        let r = watch.check().unwrap();
        assert!(r.is_low());
        let problem = watch.ensure_room().unwrap_err();
        assert!(problem.starts_with("data disk nearly full: "), "{problem}");
        assert!(
            problem.contains(&dir.path().display().to_string()),
            "{problem}"
        );
        assert!(problem.contains("scans and analyses stop"), "{problem}");
    }

    #[test]
    fn a_relative_missing_root_falls_back_to_the_working_folder() {
        assert_eq!(
            nearest_existing(Path::new("surely-missing-dir/x")),
            PathBuf::from(".")
        );
    }
}
