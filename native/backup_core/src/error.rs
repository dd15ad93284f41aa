//! Typed errors of the core. Each maps to one stable, lower-case reason (`Error::reason`) that the
//! NIF turns into an atom and the CLI prints, so callers match on reasons, never on messages.

use std::io;
use std::path::{Path, PathBuf};

pub type Result<T> = std::result::Result<T, Error>;

/// A path in a message: escaped, so a name from an archive cannot put control characters on
/// a terminal.
fn shown(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    crate::fsutil::display_name(path.as_os_str().as_bytes())
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An I/O error on a known path.
    #[error("{}: {source}", shown(path))]
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
    /// Stored revision data (keyframe or delta) is damaged, of an unknown format version, or
    /// applied to a base it was not made from.
    #[error("bad revision: {0}")]
    BadRevision(String),
    /// A revision row needs a site dictionary that is not loaded (or not in the database).
    #[error("revision dictionary {0} is missing")]
    MissingDictionary(u32),
    /// A site dictionary whose stored bytes zstd cannot use.
    #[error("revision dictionary {id} is damaged: {reason}")]
    BadDictionary { id: u32, reason: String },
    /// A save's base props are not the revision the resource's newest stored row ends at, so a
    /// delta from them would not follow that row; the caller rebuilds the base from the chain.
    #[error("stale base: {0}")]
    StaleBase(String),
    /// A database dump that a restore would refuse: not a complete gzip stream, empty, not
    /// pg_dump's SQL, or unfinished (see `dump::check`).
    #[error("bad dump: {0}")]
    BadDump(String),
    /// A database dump that names no schema to restore into (no `CREATE SCHEMA`).
    #[error("no schema: {0}")]
    NoSchema(String),
    /// An external command (pg_dump, psql) exited with an error.
    #[error("{program} failed with status {status:?}: {stderr}")]
    CommandFailed {
        program: String,
        status: Option<i32>,
        stderr: String,
    },
    /// A file's sha256 differs from the one its index recorded.
    #[error("{}: sha256 is {actual}, the index says {expected}", shown(path))]
    HashMismatch {
        path: PathBuf,
        expected: String,
        actual: String,
    },
    /// Too many jobs, or another job is writing the same output file.
    #[error("busy: {0}")]
    Busy(String),
    /// A panic was caught in a worker; the job failed but nothing else is affected.
    #[error("internal error: {0}")]
    Panicked(String),
    /// A Z1 encrypted file whose password check does not match the given password.
    #[error("wrong password")]
    WrongPassword,
    /// Not a readable Z1 encrypted file: bad magic, truncated header, iteration count out of range.
    #[error("bad encrypted file: {0}")]
    BadEncryptedFile(String),
    /// Encryption or decryption asked for with an empty password.
    #[error("no password given")]
    NoPassword,
    /// A file claims more than a reader will hold or do (a name, a PAX record, a sparse map, the
    /// bookkeeping of its entries): refused before anything is allocated for it.
    #[error("limit exceeded: {0}")]
    LimitExceeded(String),
    /// A name (or one of its components) is too long to be created on this system.
    #[error("name too long: {0}")]
    NameTooLong(String),
    /// A path that must be a regular file is a FIFO, a device, a socket or a directory; it is
    /// never read (reading a FIFO or a device could block or never end).
    #[error("{}: not a regular file ({what})", shown(path))]
    NotRegularFile { path: PathBuf, what: &'static str },
    /// The HMAC-SHA256 of a stored encrypted file differs from the one its index recorded: the
    /// file was altered, or belongs to another set, or the password differs.
    #[error(
        "{}: HMAC-SHA256 does not match the one recorded in the index",
        shown(path)
    )]
    HmacMismatch { path: PathBuf },
    /// A job's deadline passed before it finished.
    #[error("deadline passed")]
    Timeout,
}

impl Error {
    /// Wraps an I/O error with the path it happened on. A typed `Error` that a `Read`/`Write`
    /// adaptor carried inside the `io::Error` (see `Error::into_io`) comes back out as itself.
    pub fn io(path: impl AsRef<Path>, source: io::Error) -> Self {
        if source.get_ref().is_some_and(|inner| inner.is::<Error>()) {
            let kind = source.kind();
            if let Some(inner) = source.into_inner() {
                return match inner.downcast::<Error>() {
                    Ok(typed) => *typed,
                    Err(other) => Error::io(path, io::Error::new(kind, other)),
                };
            }
            return Error::io(path, io::Error::from(kind));
        }
        Error::Io {
            path: path.as_ref().to_path_buf(),
            source,
        }
    }

    /// Carries this error through an `io::Result` (for `Read`/`Write` adaptors); `Error::io`
    /// unwraps it again, so the reason survives.
    pub fn into_io(self) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, self)
    }

    /// The stable reason, as Erlang sees it (`enoent`, `bad_archive`, ...).
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Io { source, .. } => io_reason(source),
            Error::BadArchive(_) => "bad_archive",
            Error::UnsafePath(_) => "unsafe_path",
            Error::Cancelled => "cancelled",
            Error::InvalidArgument(_) => "einval",
            Error::BadRevision(_) => "bad_revision",
            Error::StaleBase(_) => "stale_base",
            Error::MissingDictionary(_) => "missing_dictionary",
            Error::BadDictionary { .. } => "bad_dictionary",
            Error::BadDump(_) => "bad_dump",
            Error::NoSchema(_) => "no_schema",
            Error::CommandFailed { .. } => "command_failed",
            Error::HashMismatch { .. } => "hash_mismatch",
            Error::Busy(_) => "busy",
            Error::Panicked(_) => "nif_panicked",
            Error::WrongPassword => "wrong_password",
            Error::BadEncryptedFile(_) => "bad_encrypted_file",
            Error::NoPassword => "no_password",
            Error::LimitExceeded(_) => "limit_exceeded",
            Error::NameTooLong(_) => "enametoolong",
            Error::NotRegularFile { .. } => "not_regular_file",
            Error::HmacMismatch { .. } => "hmac_mismatch",
            Error::Timeout => "timeout",
        }
    }

    /// The revision dictionary the error is about, when there is one.
    pub fn dictionary(&self) -> Option<u32> {
        match self {
            Error::MissingDictionary(id) | Error::BadDictionary { id, .. } => Some(*id),
            _ => None,
        }
    }

    /// The path the error is about, when there is one.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Error::Io { path, .. }
            | Error::HashMismatch { path, .. }
            | Error::NotRegularFile { path, .. }
            | Error::HmacMismatch { path } => Some(path),
            _ => None,
        }
    }
}

/// POSIX-style names, as `file:` functions in Erlang report them.
pub fn io_reason(e: &io::Error) -> &'static str {
    use io::ErrorKind as K;
    // errnos that have no stable ErrorKind of their own (in Rust 1.85) keep their POSIX name
    // instead of collapsing into `eio`
    match e.raw_os_error() {
        Some(libc::ENAMETOOLONG) => return "enametoolong",
        Some(libc::ELOOP) => return "eloop",
        Some(libc::EXDEV) => return "exdev",
        Some(libc::EBUSY) => return "ebusy",
        Some(libc::EFBIG) => return "efbig",
        Some(libc::EMLINK) => return "emlink",
        Some(libc::EPERM) => return "eperm",
        Some(libc::ENOTEMPTY) => return "enotempty",
        Some(libc::EDQUOT) => return "edquot",
        _ => {}
    }
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

    #[test]
    fn enametoolong_is_its_own_reason_not_eio() {
        let e = Error::io("/x", io::Error::from_raw_os_error(libc::ENAMETOOLONG));
        assert_eq!(e.reason(), "enametoolong");
        let e = Error::io("/x", io::Error::from_raw_os_error(libc::EXDEV));
        assert_eq!(e.reason(), "exdev");
    }

    #[test]
    fn typed_error_carried_through_io_error_keeps_its_reason() {
        let e = Error::io("/x", Error::WrongPassword.into_io());
        assert_eq!(e.reason(), "wrong_password");
        let e = Error::io("/x", Error::BadEncryptedFile("magic".into()).into_io());
        assert_eq!(e.reason(), "bad_encrypted_file");
        let plain = io::Error::new(io::ErrorKind::InvalidData, "some text");
        assert_eq!(Error::io("/x", plain).reason(), "bad_archive");
    }
}
