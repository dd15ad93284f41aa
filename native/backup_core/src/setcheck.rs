//! Offline checks of one backup-set file, the way a restore would read it: the sha256 the index
//! recorded, decryptability of `.enc` files, and the integrity of the content (`.sql.gz`: the
//! restore's own rule, `dump::check`; archives: gzip/zstd stream, tar structure and per-file
//! crc32s).
//! Nothing is written except a decrypted temporary copy, removed when the check ends.

use crate::archive::{self, JobControl};
use crate::crypto;
use crate::error::{Error, Result};
use crate::fsutil::open_regular;
use std::io::Read;
use std::path::Path;

/// What kind of file a set holds, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// `<name>.sql.gz`: pg_dump output, gzipped.
    Database,
    /// `<name>.tar.gz` / `config-<name>.tar.gz` / `.tar.zst`.
    Archive,
    Unknown,
}

impl FileKind {
    /// The kind of `name`, after any `.enc` is taken off.
    pub fn of(name: &str) -> FileKind {
        let name = name.strip_suffix(".enc").unwrap_or(name);
        if name.ends_with(".sql.gz") {
            FileKind::Database
        } else if name.ends_with(".tar.gz") || name.ends_with(".tar.zst") || name.ends_with(".tgz")
        {
            FileKind::Archive
        } else {
            FileKind::Unknown
        }
    }
}

/// What became of the HMAC check of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HmacCheck {
    /// Not an encrypted file: there is no HMAC.
    NotApplicable,
    /// The index has none (a set made before HMACs were recorded, or by the stock module).
    NotRecorded,
    /// Recorded, but there was no password to check it with.
    NoPassword,
    /// Recorded and matching.
    Verified,
}

impl HmacCheck {
    pub fn describe(self) -> &'static str {
        match self {
            HmacCheck::NotApplicable => "",
            HmacCheck::NotRecorded => "HMAC not recorded (not checked)",
            HmacCheck::NoPassword => "HMAC not checked (no password)",
            HmacCheck::Verified => "HMAC-SHA256 verified",
        }
    }
}

/// The outcome of a passing check, for the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileReport {
    pub sha256: String,
    pub size: u64,
    /// Whether the sha256 was compared with the index's.
    pub hash_checked: bool,
    pub hmac: HmacCheck,
    /// Whether the content was read (false for a `.enc` file checked without a password).
    pub content_checked: bool,
    /// What was found, for a person: "pg_dump SQL, 1234 bytes", "12 entries, crc32s checked".
    pub detail: String,
}

/// Checks `path`. `expected_sha256` is the index's hash of the file as stored, `hmac` its
/// HMAC (encrypted files); `password` is needed to look inside `.enc` files and to check their
/// HMAC (without it only their header is checked).
pub fn check_file(
    path: &Path,
    expected_sha256: Option<&str>,
    hmac: Option<&str>,
    password: Option<&[u8]>,
    ctl: &JobControl,
) -> Result<FileReport> {
    let digest = crate::file_digest(path)?;
    if let Some(expected) = expected_sha256 {
        if !expected.eq_ignore_ascii_case(&digest.sha256) {
            return Err(Error::HashMismatch {
                path: path.to_path_buf(),
                expected: expected.to_string(),
                actual: digest.sha256,
            });
        }
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut report = FileReport {
        sha256: digest.sha256,
        size: digest.size,
        hash_checked: expected_sha256.is_some(),
        hmac: HmacCheck::NotApplicable,
        content_checked: true,
        detail: String::new(),
    };
    if name.ends_with(".enc") {
        match password {
            None => {
                check_enc_header(path)?;
                report.hmac = if hmac.is_some() {
                    HmacCheck::NoPassword
                } else {
                    HmacCheck::NotRecorded
                };
                report.content_checked = false;
                report.detail =
                    "encrypted (Z1 header ok; content not checked without a password)".to_string();
            }
            Some(pw) => {
                let dir = private_dir(path)?;
                let plain = dir.path().join(name.trim_end_matches(".enc"));
                // the HMAC (when recorded) is verified before anything is decrypted
                crypto::decrypt_file_verified(path, &plain, pw, hmac, |_| ctl.check())?;
                report.hmac = if hmac.is_some() {
                    HmacCheck::Verified
                } else {
                    HmacCheck::NotRecorded
                };
                report.detail = format!("decrypted; {}", check_content(&plain, &name, ctl)?);
            }
        }
    } else {
        report.detail = check_content(path, &name, ctl)?;
    }
    Ok(report)
}

fn check_content(path: &Path, name: &str, ctl: &JobControl) -> Result<String> {
    match FileKind::of(name) {
        FileKind::Database => check_sql_gz(path, ctl),
        FileKind::Archive => {
            let r = archive::verify(path, ctl)?;
            Ok(format!(
                "{} archive, {} entries ({} files, {} bytes){}",
                r.format.as_str(),
                r.entries,
                r.files,
                r.bytes,
                if r.manifest_checked {
                    ", every file's crc32 checked"
                } else {
                    ", no manifest (not made by zbackup)"
                }
            ))
        }
        FileKind::Unknown => Ok("not a backup file kind; hash only".to_string()),
    }
}

/// The dump rule of the restore (`dump::check`): complete gzip, pg_dump's header, a
/// `CREATE SCHEMA`, the "dump complete" line.
fn check_sql_gz(path: &Path, ctl: &JobControl) -> Result<String> {
    let r = crate::dump::check(path, ctl)?;
    Ok(format!(
        "gzip intact, complete pg_dump SQL of {} bytes, schema \"{}\"",
        r.size,
        crate::fsutil::display_name(&r.schema)
    ))
}

fn check_enc_header(path: &Path) -> Result<()> {
    let mut f = open_regular(path)?;
    let mut header = [0u8; crypto::HEADER_LEN];
    f.read_exact(&mut header)
        .map_err(|_| Error::BadEncryptedFile("shorter than the Z1 header".into()))?;
    crypto::Params::parse(&header).map(|_| ())
}

/// A private directory beside `path` (same filesystem: the decrypted copy may be large): made
/// with a random name and mode 0700 by `mkdtemp` (never an existing dir or a planted symlink),
/// removed on drop.
fn private_dir(beside: &Path) -> Result<tempfile::TempDir> {
    let parent = beside
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    tempfile::Builder::new()
        .prefix(".zbackup-check-")
        .tempdir_in(parent)
        .map_err(|e| Error::io(parent, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::{ArchiveOptions, Source};
    use std::fs::File;
    use std::io::Write;
    use std::path::PathBuf;

    fn sql_gz(dir: &Path, name: &str, body: &[u8]) -> PathBuf {
        let p = dir.join(name);
        let f = File::create(&p).expect("create");
        let mut gz = flate2::write::GzEncoder::new(f, flate2::Compression::default());
        gz.write_all(body).expect("write");
        gz.finish().expect("finish");
        p
    }

    const DUMP: &[u8] = b"--\n-- PostgreSQL database dump\n--\nCREATE SCHEMA \"public\";\n\
        CREATE TABLE x (id int);\n--\n-- PostgreSQL database dump complete\n--\n";

    #[test]
    fn intact_dump_with_matching_hash_passes() {
        let d = tempfile::tempdir().expect("tmp");
        let p = sql_gz(d.path(), "site-1.sql.gz", DUMP);
        let sha = crate::file_digest(&p).expect("digest").sha256;
        let r = check_file(&p, Some(&sha), None, None, &JobControl::new()).expect("ok");
        assert!(r.hash_checked && r.content_checked);
        assert!(r.detail.contains("pg_dump SQL"), "{}", r.detail);
        assert!(r.detail.contains("schema \"public\""), "{}", r.detail);
    }

    #[test]
    fn hash_mismatch_is_reported_with_both_hashes() {
        let d = tempfile::tempdir().expect("tmp");
        let p = sql_gz(d.path(), "site-1.sql.gz", DUMP);
        let e = check_file(&p, Some("00"), None, None, &JobControl::new()).expect_err("mismatch");
        assert_eq!(e.reason(), "hash_mismatch");
        assert!(e.to_string().contains("00"));
    }

    #[test]
    fn truncated_dump_is_bad_dump() {
        let d = tempfile::tempdir().expect("tmp");
        let big: Vec<u8> = DUMP
            .iter()
            .copied()
            .chain((0..200_000u32).flat_map(|i| format!("INSERT {i};\n").into_bytes()))
            .collect();
        let p = sql_gz(d.path(), "site-2.sql.gz", &big);
        let len = std::fs::metadata(&p).expect("meta").len();
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&p)
            .expect("open");
        f.set_len(len / 2).expect("truncate");
        let e = check_file(&p, None, None, None, &JobControl::new()).expect_err("truncated");
        assert_eq!(e.reason(), "bad_dump");
    }

    #[test]
    fn gzip_that_is_not_a_dump_is_bad_dump() {
        let d = tempfile::tempdir().expect("tmp");
        let p = sql_gz(d.path(), "site-3.sql.gz", b"hello");
        let e = check_file(&p, None, None, None, &JobControl::new()).expect_err("not a dump");
        assert_eq!(e.reason(), "bad_dump");
    }

    #[test]
    fn encrypted_archive_is_checked_inside_with_the_password_and_header_only_without() {
        let d = tempfile::tempdir().expect("tmp");
        let src = d.path().join("tree");
        std::fs::create_dir_all(src.join("a")).expect("mkdir");
        std::fs::write(src.join("a/x.jpg"), vec![7u8; 100_000]).expect("write");
        let tar = d.path().join("site-4.tar.gz");
        archive::create(
            &Source::Dir(src),
            &tar,
            &ArchiveOptions::default(),
            &JobControl::new(),
        )
        .expect("archive");
        let enc = d.path().join("site-4.tar.gz.enc");
        crypto::encrypt_file(&tar, &enc, b"pw").expect("encrypt");
        let r = check_file(&enc, None, None, Some(b"pw"), &JobControl::new()).expect("ok");
        assert!(
            r.content_checked && r.detail.contains("crc32"),
            "{}",
            r.detail
        );
        let r = check_file(&enc, None, None, None, &JobControl::new()).expect("header ok");
        assert!(!r.content_checked);
        let e =
            check_file(&enc, None, None, Some(b"wrong"), &JobControl::new()).expect_err("wrong");
        assert_eq!(e.reason(), "wrong_password");
        // The decrypted copies are gone.
        let left: Vec<_> = std::fs::read_dir(d.path())
            .expect("ls")
            .filter_map(|e| e.ok())
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with(".zbackup-check")
            })
            .collect();
        assert!(left.is_empty());
    }

    #[test]
    fn kinds_follow_the_names_zotonic_uses() {
        assert_eq!(FileKind::of("site-1.sql.gz"), FileKind::Database);
        assert_eq!(FileKind::of("site-1.sql.gz.enc"), FileKind::Database);
        assert_eq!(FileKind::of("config-site-w2.tar.gz"), FileKind::Archive);
        assert_eq!(FileKind::of("site-1.tar.zst.enc"), FileKind::Archive);
        assert_eq!(FileKind::of("backup.json"), FileKind::Unknown);
    }
}
