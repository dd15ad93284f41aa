//! Typed errors of the core. Each maps to one stable, lower-case reason (`Error::reason`) that the
//! NIF turns into an atom and the CLI prints, so callers match on reasons, never on messages.

use std::io;
use std::path::{Path, PathBuf};

pub type Result<T> = std::result::Result<T, Error>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An I/O error on a known path.
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    /// The archive is damaged: bad checksum, truncated stream, malformed header.
    #[error("bad archive: {0}")]
    BadArchive(String),
    /// An archive entry would be written outside its target.
    #[error("unsafe path in archive: {0}")]
    UnsafePath(String),
    /// The caller asked the job to stop.
    #[error("cancelled")]
    Cancelled,
    /// A caller-supplied value is unusable (bad option, bad name).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

impl Error {
    /// Wraps an I/O error with the path it happened on.
    pub fn io(path: impl AsRef<Path>, source: io::Error) -> Self {
        Error::Io {
            path: path.as_ref().to_path_buf(),
            source,
        }
    }

    /// The stable reason, as Erlang sees it (`enoent`, `bad_archive`, ...).
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Io { source, .. } => io_reason(source),
            Error::BadArchive(_) => "bad_archive",
            Error::UnsafePath(_) => "unsafe_path",
            Error::Cancelled => "cancelled",
            Error::InvalidArgument(_) => "einval",
        }
    }

    /// The path the error is about, when there is one.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Error::Io { path, .. } => Some(path),
            _ => None,
        }
    }
}

/// POSIX-style names, as `file:` functions in Erlang report them.
pub fn io_reason(e: &io::Error) -> &'static str {
    use io::ErrorKind as K;
    match e.kind() {
        K::NotFound => "enoent",
        K::PermissionDenied => "eacces",
        K::AlreadyExists => "eexist",
        K::StorageFull => "enospc",
        K::IsADirectory => "eisdir",
        K::NotADirectory => "enotdir",
        K::DirectoryNotEmpty => "enotempty",
        K::ReadOnlyFilesystem => "erofs",
        K::InvalidInput => "einval",
        K::UnexpectedEof => "bad_archive",
        K::InvalidData => "bad_archive",
        K::Interrupted => "eintr",
        K::OutOfMemory => "enomem",
        _ => "eio",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_map_to_posix_reasons() {
        let e = Error::io("/x", io::Error::from(io::ErrorKind::NotFound));
        assert_eq!(e.reason(), "enoent");
        assert_eq!(e.path(), Some(Path::new("/x")));
        let e = Error::io("/x", io::Error::from(io::ErrorKind::StorageFull));
        assert_eq!(e.reason(), "enospc");
        assert_eq!(Error::Cancelled.reason(), "cancelled");
        assert_eq!(Error::UnsafePath("../x".into()).reason(), "unsafe_path");
    }
}
