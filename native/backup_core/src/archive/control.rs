//! Progress counters and the cancel flag of one archive job, shared between the thread doing
//! the work and any thread (the NIF, a CLI progress bar) watching it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Shareable job state: wrap it in an `Arc` and hand `&*arc` to the worker. All fields are
/// atomics, so reading progress or cancelling is lock-free from any thread at any time.
#[derive(Debug, Default)]
pub struct JobControl {
    cancel: AtomicBool,
    files_done: AtomicU64,
    files_total: AtomicU64,
    bytes_done: AtomicU64,
    bytes_total: AtomicU64,
}

/// A snapshot of the counters. `*_total` are known after the walk (archive) or are the archive
/// size in compressed bytes (verify/extract: `bytes_*` count compressed input then).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    pub files_done: u64,
    pub files_total: u64,
    pub bytes_done: u64,
    pub bytes_total: u64,
}

impl JobControl {
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks the job to stop; it returns `Error::Cancelled` at its next check (at least once per
    /// buffer of data) and removes its partial output.
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::Relaxed);
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }

    /// `Err(Cancelled)` once `cancel` was called.
    pub fn check(&self) -> crate::Result<()> {
        if self.is_cancelled() {
            Err(crate::Error::Cancelled)
        } else {
            Ok(())
        }
    }

    pub fn progress(&self) -> Progress {
        Progress {
            files_done: self.files_done.load(Ordering::Relaxed),
            files_total: self.files_total.load(Ordering::Relaxed),
            bytes_done: self.bytes_done.load(Ordering::Relaxed),
            bytes_total: self.bytes_total.load(Ordering::Relaxed),
        }
    }

    pub fn set_totals(&self, files: u64, bytes: u64) {
        self.files_total.store(files, Ordering::Relaxed);
        self.bytes_total.store(bytes, Ordering::Relaxed);
    }

    pub fn add_files(&self, n: u64) {
        self.files_done.fetch_add(n, Ordering::Relaxed);
    }

    pub fn add_bytes(&self, n: u64) {
        self.bytes_done.fetch_add(n, Ordering::Relaxed);
    }
}
