//! The media archive engine: a directory tree (or a list of files) into a `.tar.gz` that every
//! tar reads, fast.
//!
//! * [`create`] walks sorted, writes GNU tar framing into a [`ParallelGzWriter`] (one gzip member,
//!   pigz-style, incompressible chunks stored) or a [`ParallelZstdWriter`] (independent 4 MiB
//!   frames compressed on the same kind of pool), hashes the output
//!   with sha256 while writing, builds the [`ManifestEntry`] list (crc32 per file) and stores it as
//!   a trailer after tar's end-of-archive marker (see [`manifest`] for why that is invisible to
//!   GNU tar, Python's tarfile and erl_tar). Output goes to `OUT.tmp`, renamed on success.
//! * [`verify`] / [`list`] read any `.tar.gz`/`.tar.zst` (ours or not; format by magic), check
//!   the compressed stream's own checksum, tar structure (end-of-archive marker included), the
//!   names, and every field of our manifest when present; within the fixed limits of
//!   [`limits`] whatever an archive's headers claim.
//! * [`extract`] runs the same pass (so it agrees with `verify`), writes into a staging dir
//!   beside the target and swaps it into place as a whole.
//! * `parallel` makes both inflate a `.tar.gz` of ours on all cores, by its unit index, with
//!   the serial pass's result (or falls back to that pass).
//!
//! Long jobs take a [`JobControl`] for progress and cancellation.

mod control;
mod create;
mod extract;
mod hashing;
pub mod limits;
pub mod manifest;
mod parallel;
mod pgzip;
mod plan;
// The zstd writer is the CLI's (`zbackup archive --format zst`); the module never writes zstd,
// so the NIF is built without it. Reading `.tar.zst` stays in the one reader for everyone.
#[cfg(feature = "cli")]
mod pzstd;
mod read;
mod reuse;
mod sha_resume;
mod tarread;
mod tarw;
// Test data shared with the integration suites (their `common` module).
#[cfg(test)]
#[path = "../../tests/common/mod.rs"]
pub(crate) mod testdata;
mod validate;

pub use control::{JobControl, Progress};
pub use create::{
    create, create_reusing, ArchiveOptions, CopyMethod, ReuseSummary, Source, Summary, GROUP, SOLO,
};
pub use extract::{extract, sweep_stale_staging, ExtractOptions, ExtractSummary};
pub use hashing::{OffloadWriter, Sha256Writer, SpliceStats, SpliceTarget};
pub use manifest::{EntryKind, ManifestEntry};
pub use pgzip::{
    default_threads, GzOptions, GzStats, ParallelGzWriter, RawUnit, UnitInfo, DEFAULT_CHUNK,
};
#[cfg(feature = "cli")]
pub use pzstd::{ParallelZstdWriter, ZSTD_CHUNK};
pub use read::{detect_format, list, list_each, verify, EntryInfo, VerifyReport};
pub use tarread::zeros_crc;

use std::path::{Path, PathBuf};

/// Compression of an archive. All are read; zstd is written only with the `cli` feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Gzip,
    Zstd,
}

/// Magic of the skippable frame that starts every `.tar.zst` the engine writes (zstd readers
/// skip it; pzstd starts its files with one too).
pub(crate) const SKIPPABLE_MARKER_MAGIC: u32 = 0x184D_2A5B;
/// Its payload: the archive has a manifest trailer. Frames are independent, so a file cut at a
/// frame boundary is valid zstd; with this marker a reader knows a missing manifest means such
/// a cut, not a foreign archive.
pub(crate) const MANIFEST_MARKER: &[u8] = b"zbackup:manifest-trailer:v1";

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Gzip => "gz",
            Format::Zstd => "zst",
        }
    }
}

/// The skippable frame that starts every `.tar.zst` the engine writes, announcing its manifest
/// (see `read.rs`).
pub fn zstd_marker_frame() -> Vec<u8> {
    let mut f = SKIPPABLE_MARKER_MAGIC.to_le_bytes().to_vec();
    f.extend_from_slice(&(MANIFEST_MARKER.len() as u32).to_le_bytes());
    f.extend_from_slice(MANIFEST_MARKER);
    f
}

/// `OUT.tmp` beside `OUT`.
pub(crate) fn tmp_path(out: &Path) -> PathBuf {
    let mut s = out.as_os_str().to_owned();
    s.push(".tmp");
    PathBuf::from(s)
}

/// Removes a file (or directory tree) on drop unless disarmed. Never panics.
pub(crate) struct TmpFile {
    path: PathBuf,
    armed: bool,
}

impl TmpFile {
    pub(crate) fn new(path: PathBuf) -> Self {
        TmpFile { path, armed: true }
    }

    pub(crate) fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for TmpFile {
    fn drop(&mut self) {
        if self.armed {
            let r = match std::fs::symlink_metadata(&self.path) {
                Ok(m) if m.is_dir() => std::fs::remove_dir_all(&self.path),
                Ok(_) => std::fs::remove_file(&self.path),
                Err(_) => Ok(()),
            };
            // Nothing to do about a failure here; the error that got us here is reported.
            let _ = r;
        }
    }
}
