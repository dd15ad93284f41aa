//! Progress counters and the cancel flag of one archive job, shared between the thread doing
//! the work and any thread (the NIF, a CLI progress bar) watching it.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// Shareable job state: wrap it in an `Arc` and hand `&*arc` to the worker. All fields are
/// atomics, so reading progress or cancelling is lock-free from any thread at any time.
#[derive(Debug, Default)]
pub struct JobControl {
    /// Shared with the job's own threads (`stop_signal`).
    cancel: Arc<AtomicBool>,
    /// Set by `jobs::spawn` when the work has returned.
    finished: AtomicBool,
    /// When set, the job stops with `Error::Timeout` at its first check past this instant.
    deadline: OnceLock<Instant>,
    files_done: AtomicU64,
    files_total: AtomicU64,
    bytes_done: AtomicU64,
    bytes_total: AtomicU64,
}

/// A snapshot of the counters. `*_total` are known after the walk (archive) or are the archive
/// size in compressed bytes (verify/extract: `bytes_*` count compressed input then).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "nif", derive(rustler::NifMap), rustler(encode))]
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

    /// A control whose job stops with `Error::Timeout` once `timeout` has passed.
    pub fn with_timeout(timeout: Duration) -> Self {
        let ctl = Self::default();
        ctl.set_deadline(Instant::now() + timeout);
        ctl
    }

    /// Asks the job to stop; it returns `Error::Cancelled` at its next check (at least once per
    /// buffer of data) and removes its partial output.
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::Relaxed);
    }

    /// Sets the deadline (only the first call counts): at its first check past it the job
    /// stops with `Error::Timeout`, as if cancelled.
    pub fn set_deadline(&self, at: Instant) {
        let _ = self.deadline.set(at);
    }

    /// True once `cancel` was called or the deadline passed.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
            || self.deadline.get().is_some_and(|d| Instant::now() >= *d)
    }

    /// `Err(Cancelled)` once `cancel` was called, `Err(Timeout)` once the deadline passed.
    pub fn check(&self) -> crate::Result<()> {
        match self.stop_reason() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// The error a stopped job returns, or `None` while it may go on.
    pub fn stop_reason(&self) -> Option<crate::Error> {
        if self.cancel.load(Ordering::Relaxed) {
            Some(crate::Error::Cancelled)
        } else if self.deadline.get().is_some_and(|d| Instant::now() >= *d) {
            Some(crate::Error::Timeout)
        } else {
            None
        }
    }

    /// What a thread of the job's own checks to see the job stopped, without borrowing this
    /// control: the cancel flag, and the deadline as set now (it is set before the work starts).
    pub(crate) fn stop_signal(&self) -> StopSignal {
        StopSignal {
            cancel: Arc::clone(&self.cancel),
            deadline: self.deadline.get().copied(),
        }
    }

    /// True once the job's work has returned (see `jobs::spawn`).
    pub fn is_finished(&self) -> bool {
        self.finished.load(Ordering::Acquire)
    }

    pub(crate) fn finish(&self) {
        self.finished.store(true, Ordering::Release);
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

    /// The progress hook of work that reads `input` `passes` times and reports how many bytes
    /// it has read so far (the `crypto` functions): one file of `passes` times its size in all,
    /// the bytes published as they come, and the work stopped once the job is.
    pub fn reading(&self, input: &Path, passes: u64) -> impl FnMut(u64) -> crate::Result<()> + '_ {
        let size = std::fs::metadata(input).map(|m| m.len()).unwrap_or(0);
        self.set_totals(1, size * passes);
        let mut reported = 0u64;
        move |done| {
            self.add_bytes(done.saturating_sub(reported));
            reported = reported.max(done);
            self.check()
        }
    }

    /// Sets the done counters back to `p`'s (a pass over an archive is started again).
    pub(crate) fn rewind(&self, p: Progress) {
        self.files_done.store(p.files_done, Ordering::Relaxed);
        self.bytes_done.store(p.bytes_done, Ordering::Relaxed);
    }
}

/// A job's stop as its own threads see it (`JobControl::stop_signal`).
#[derive(Debug, Clone)]
pub(crate) struct StopSignal {
    cancel: Arc<AtomicBool>,
    deadline: Option<Instant>,
}

impl StopSignal {
    /// True once the job was cancelled or its deadline passed.
    pub(crate) fn is_set(&self) -> bool {
        self.cancel.load(Ordering::Relaxed) || self.deadline.is_some_and(|d| Instant::now() >= d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reading_counts_every_pass_over_the_input_and_stops_once_cancelled() {
        let f = tempfile::NamedTempFile::new().expect("tmp");
        std::fs::write(f.path(), [0u8; 1000]).expect("write");
        let ctl = JobControl::new();
        let mut hook = ctl.reading(f.path(), 2);
        hook(600).expect("running");
        hook(1500).expect("running");
        ctl.cancel();
        assert!(matches!(hook(2000), Err(crate::Error::Cancelled)));
        let p = ctl.progress();
        assert_eq!(
            (p.files_total, p.bytes_total, p.bytes_done),
            (1, 2000, 2000)
        );
    }
}
