//! What a reader of archives will hold or do, whatever an archive's headers claim. Every length
//! a file declares is compared with these before anything is allocated for it, and everything
//! a reader keeps per entry is charged to one [`Budget`], so reading any archive stays within a
//! fixed amount of memory (README, "Limits").

use crate::error::{Error, Result};

/// A GNU long name or long link (`L`/`K` entries). Linux paths are at most 4 KiB.
pub const MAX_LONG_NAME: u64 = 64 << 10;
/// The records of one PAX header (`x`/`g` entries). Go's archive/tar uses the same cap.
pub const MAX_PAX: u64 = 1 << 20;
/// Segments of one GNU sparse file (16 bytes each in memory).
pub const MAX_SPARSE_SEGMENTS: usize = 1 << 20;
/// The real size of a GNU sparse file. Its holes cost nothing to read, but a file larger than
/// this could not be created on common file systems (ext4 stops at 16 TiB), so `verify` would
/// pass what `extract` cannot write.
pub const MAX_SPARSE_SIZE: u64 = 1 << 40;
/// A name in the archive after normalisation (`./` and empty components dropped). Extraction
/// writes `DEST/name` through one path, which Linux allows up to 4096 bytes: this leaves ~1 KiB
/// for the destination itself.
pub const MAX_PATH_BYTES: usize = 3072;
/// One component of a name (NAME_MAX on Linux file systems).
pub const MAX_COMPONENT_BYTES: usize = 255;
/// A symlink target (`symlink(2)` refuses PATH_MAX or more).
pub const MAX_LINK_BYTES: usize = 4095;
/// Everything kept per entry while an archive is read (checksums for the manifest check, the
/// names seen so far for link and conflict checks, directories and symlinks whose metadata is
/// applied at the end): about 48 bytes per entry plus the names of directories and symlinks.
pub const BOOKKEEPING_CAP: u64 = 96 << 20;
/// zstd window: 128 MiB, the limit `zstd -d` itself applies without `--memory`.
pub const ZSTD_WINDOW_LOG_MAX: u32 = 27;
/// Entries `list` collects in memory (`list_each` streams any number).
pub const LIST_CAP: u64 = 64 << 20;

/// Memory charged by one read of an archive; `charge` fails once the cap would be passed.
#[derive(Debug)]
pub(crate) struct Budget {
    used: u64,
    cap: u64,
}

impl Budget {
    pub(crate) fn new(cap: u64) -> Self {
        Budget { used: 0, cap }
    }

    pub(crate) fn charge(&mut self, bytes: u64, entries: u64) -> Result<()> {
        self.used = self.used.saturating_add(bytes);
        if self.used > self.cap {
            return Err(Error::LimitExceeded(format!(
                "the archive needs more than {} MiB of bookkeeping (at entry {entries}); \
                 archives of this many entries or directories are not read",
                self.cap >> 20
            )));
        }
        Ok(())
    }
}
