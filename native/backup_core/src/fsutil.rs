//! File-system helpers that every reader and writer of the engine shares, so that the rules
//! hold everywhere at once:
//!
//! * [`open_regular`]: inputs are opened with `O_NONBLOCK` and checked with `fstat` before a
//!   byte is read. Opening a FIFO without `O_NONBLOCK` blocks until a writer appears (forever,
//!   for a planted FIFO), and reading `/dev/zero` never ends; both are refused instead.
//! * [`create_new`] / [`create_tmp`]: outputs (`OUT.tmp`, staged files) are created with
//!   `O_CREAT|O_EXCL|O_NOFOLLOW`, so a symlink planted at that name is never followed and a
//!   file someone else holds open is never written into.
//! * [`remove_tree`]: removes a directory tree that this process made, even when its entries
//!   were given modes like 000 (an archive may ask for them).
//! * [`display_name`]: names from archives and indexes, made safe to print: control characters
//!   (NUL, ESC and the rest of C0/C1), bidi overrides and bytes that are not UTF-8 are escaped.
//!
//! * [`splice_range`]: a byte range of one file into another, cloned (`FICLONERANGE`) where
//!   the file system shares extents and the offsets allow, else copied in the kernel
//!   (`copy_file_range`); how a set reuses the previous set's archive.
//!
//! Hand-written because each is a few lines over `std` and `libc`, and no crate offers exactly
//! these checks.

use crate::error::{Error, Result};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// What kind of non-regular file `meta` is, for messages.
fn kind_name(meta: &fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let ft = meta.file_type();
    if ft.is_dir() {
        "a directory"
    } else if ft.is_fifo() {
        "a FIFO"
    } else if ft.is_char_device() || ft.is_block_device() {
        "a device"
    } else if ft.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

/// Opens `path` for reading only if it is a regular file (symlinks to one are followed). The
/// open itself never blocks (`O_NONBLOCK`, which has no effect on reads of a regular file), and
/// FIFOs, devices, sockets and directories are refused with `Error::NotRegularFile`.
pub fn open_regular(path: &Path) -> Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    let meta = file.metadata().map_err(|e| Error::io(path, e))?;
    if !meta.is_file() {
        return Err(Error::NotRegularFile {
            path: path.to_path_buf(),
            what: kind_name(&meta),
        });
    }
    Ok(file)
}

/// Creates `path` as a new file (mode `mode` before the umask), failing with `AlreadyExists`
/// when anything, a symlink included, is there already.
pub fn create_new(path: &Path, mode: u32) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .read(true)
        .create_new(true)
        .mode(mode)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

/// Creates the temporary output `tmp` (an `OUT.tmp`) safely: a leftover from a killed run, or
/// a symlink planted there, is unlinked (never followed or written through) and the name made
/// again with `O_EXCL`; if something appears again in between, the call fails.
pub fn create_tmp(tmp: &Path) -> Result<File> {
    match create_new(tmp, 0o644) {
        Ok(f) => return Ok(f),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(Error::io(tmp, e)),
    }
    let meta = fs::symlink_metadata(tmp).map_err(|e| Error::io(tmp, e))?;
    if meta.is_dir() {
        return Err(Error::io(tmp, io::Error::from(io::ErrorKind::IsADirectory)));
    }
    // unlink removes a symlink itself, never its target
    fs::remove_file(tmp).map_err(|e| Error::io(tmp, e))?;
    create_new(tmp, 0o644).map_err(|e| Error::io(tmp, e))
}

/// Removes `root` and everything below it. When plain removal fails (a directory of mode 000
/// cannot be listed, one of mode 0500 cannot be emptied), directories owned by this user are
/// given `u+rwx` and removal is tried again. Symlinks are removed, never followed.
pub fn remove_tree(root: &Path) -> io::Result<()> {
    let meta = match fs::symlink_metadata(root) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if !meta.is_dir() {
        return fs::remove_file(root);
    }
    match fs::remove_dir_all(root) {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(_) => {}
    }
    make_owned_dirs_writable(root);
    fs::remove_dir_all(root)
}

/// Gives every directory below (and including) `root` that this user owns `u+rwx`, walking
/// with an explicit stack (no recursion limit) and never following symlinks.
fn make_owned_dirs_writable(root: &Path) {
    // SAFETY: geteuid has no arguments and cannot fail.
    let me = unsafe { libc::geteuid() };
    let mut stack: Vec<PathBuf> = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(meta) = fs::symlink_metadata(&dir) else {
            continue;
        };
        if !meta.is_dir() || meta.uid() != me {
            continue;
        }
        let mode = meta.permissions().mode();
        if mode & 0o700 != 0o700 {
            // Failure leaves the dir as it was; remove_dir_all then reports it.
            let _ = fs::set_permissions(&dir, fs::Permissions::from_mode((mode | 0o700) & 0o7777));
        }
        if let Ok(rd) = fs::read_dir(&dir) {
            for entry in rd.flatten() {
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    stack.push(entry.path());
                }
            }
        }
    }
}

/// A name from an archive or an index, safe to print on a terminal: valid UTF-8 is kept except
/// control characters and bidi/zero-width format characters (escaped as `\u{..}`), other
/// bytes become `\xNN`, and a backslash is doubled so the escapes stay unambiguous.
pub fn display_name(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                c if c.is_control() || is_format_char(c) => {
                    out.push_str(&format!("\\u{{{:x}}}", c as u32));
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// Characters that change how the text around them is shown (bidi overrides, zero-width).
fn is_format_char(c: char) -> bool {
    matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
}

/// `FICLONERANGE` (linux/fs.h: `_IOW(0x94, 13, struct file_clone_range)`); not in `libc`.
const FICLONERANGE: libc::c_ulong = 0x4020_940d;

/// `struct file_clone_range` of linux/fs.h.
#[repr(C)]
struct FileCloneRange {
    src_fd: i64,
    src_offset: u64,
    src_length: u64,
    dest_offset: u64,
}

/// Block size for clone alignment: the file system's preferred I/O size (its block size on
/// XFS, btrfs and ext4).
pub fn clone_block(f: &File) -> u64 {
    f.metadata().map(|m| m.blksize()).unwrap_or(4096).max(512)
}

/// Shares `len` bytes of `src` at `src_off` with `dst` at `dst_off`; both offsets and the
/// length must be multiples of the file system block (the kernel checks).
pub fn clone_range(src: &File, src_off: u64, dst: &File, dst_off: u64, len: u64) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let arg = FileCloneRange {
        src_fd: i64::from(src.as_raw_fd()),
        src_offset: src_off,
        src_length: len,
        dest_offset: dst_off,
    };
    // SAFETY: FICLONERANGE reads exactly one `struct file_clone_range` (the repr(C) struct
    // above, same layout: four 64-bit fields) through the pointer, which points to a live
    // local for the duration of the call; it writes nothing to user memory. Both descriptors
    // are owned by live `File`s.
    let r = unsafe { libc::ioctl(dst.as_raw_fd(), FICLONERANGE, &arg as *const FileCloneRange) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Copies `len` bytes of `src` at `src_off` into `dst` at `dst_off`: the block-aligned middle
/// cloned when `try_clone` and the two offsets are congruent modulo the block (cleared when
/// the file system refuses clones), the rest by `copy_file_range` (read and write where that
/// is refused). Says how many bytes went which way.
pub fn splice_range(
    src: &File,
    src_off: u64,
    dst: &File,
    dst_off: u64,
    len: u64,
    try_clone: &mut bool,
) -> io::Result<crate::archive::SpliceStats> {
    let mut stats = crate::archive::SpliceStats::default();
    let mut pieces = vec![(src_off, dst_off, len, false)];
    if *try_clone {
        let bs = clone_block(dst);
        let head = (bs - src_off % bs) % bs;
        if src_off % bs == dst_off % bs && len >= head + bs {
            let mid = (len - head) / bs * bs;
            pieces = vec![
                (src_off, dst_off, head, false),
                (src_off + head, dst_off + head, mid, true),
                (
                    src_off + head + mid,
                    dst_off + head + mid,
                    len - head - mid,
                    false,
                ),
            ];
        }
    }
    for (s, d, n, clone) in pieces {
        if n == 0 {
            continue;
        }
        if clone && *try_clone {
            match clone_range(src, s, dst, d, n) {
                Ok(()) => {
                    stats.cloned += n;
                    continue;
                }
                Err(_) => *try_clone = false,
            }
        }
        copy_range(src, s, dst, d, n)?;
        stats.copied += n;
    }
    Ok(stats)
}

/// `copy_file_range` of the whole range, read and write where the kernel refuses it.
fn copy_range(src: &File, mut s: u64, dst: &File, mut d: u64, mut n: u64) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    while n > 0 {
        let want = n.min(1 << 30) as usize;
        match rustix::fs::copy_file_range(src, Some(&mut s), dst, Some(&mut d), want) {
            Ok(0) => return Err(io::Error::from(io::ErrorKind::UnexpectedEof)),
            Ok(k) => n -= k as u64,
            Err(rustix::io::Errno::INTR) => {}
            Err(_) => {
                let mut buf = vec![0u8; (n.min(1 << 20)) as usize];
                while n > 0 {
                    let k = (n as usize).min(buf.len());
                    src.read_exact_at(&mut buf[..k], s)?;
                    dst.write_all_at(&buf[..k], d)?;
                    s += k as u64;
                    d += k as u64;
                    n -= k as u64;
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn open_regular_refuses_fifos_and_devices_without_blocking() {
        let d = tempfile::tempdir().expect("tmp");
        let fifo = d.path().join("fifo");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).expect("cstr");
        // SAFETY: c is a valid NUL-terminated path for the duration of the call.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let e = open_regular(&fifo).expect_err("fifo");
        assert_eq!(e.reason(), "not_regular_file");
        let e = open_regular(Path::new("/dev/zero")).expect_err("device");
        assert_eq!(e.reason(), "not_regular_file");
        let link = d.path().join("zero");
        symlink("/dev/zero", &link).expect("symlink");
        assert_eq!(
            open_regular(&link).expect_err("link").reason(),
            "not_regular_file"
        );
        assert_eq!(
            open_regular(d.path()).expect_err("dir").reason(),
            "not_regular_file"
        );
    }

    #[test]
    fn create_tmp_never_writes_through_a_planted_symlink() {
        let d = tempfile::tempdir().expect("tmp");
        let victim = d.path().join("victim");
        fs::write(&victim, b"precious").expect("write");
        let tmp = d.path().join("out.tmp");
        symlink(&victim, &tmp).expect("symlink");
        let mut f = create_tmp(&tmp).expect("created");
        io::Write::write_all(&mut f, b"new").expect("write");
        assert_eq!(fs::read(&victim).expect("read"), b"precious");
        assert!(!fs::symlink_metadata(&tmp)
            .expect("meta")
            .file_type()
            .is_symlink());
    }

    #[test]
    fn remove_tree_removes_mode_000_dirs_full_of_data() {
        let d = tempfile::tempdir().expect("tmp");
        let root = d.path().join("t");
        fs::create_dir_all(root.join("a/b")).expect("mkdir");
        fs::write(root.join("a/b/f"), b"x").expect("write");
        fs::set_permissions(root.join("a/b"), fs::Permissions::from_mode(0o000)).expect("chmod");
        fs::set_permissions(root.join("a"), fs::Permissions::from_mode(0o000)).expect("chmod");
        fs::set_permissions(&root, fs::Permissions::from_mode(0o000)).expect("chmod");
        remove_tree(&root).expect("removed");
        assert!(!root.exists());
    }

    #[test]
    fn display_name_escapes_nul_ansi_bidi_and_invalid_utf8() {
        assert_eq!(display_name(b"./a\x00b"), "./a\\u{0}b");
        assert_eq!(display_name(b"\x1b[31mred"), "\\u{1b}[31mred");
        assert_eq!(display_name("x\u{202e}y".as_bytes()), "x\\u{202e}y");
        assert_eq!(display_name(b"caf\xe9"), "caf\\xe9");
        assert_eq!(display_name("caf\u{e9}/ok".as_bytes()), "caf\u{e9}/ok");
        assert_eq!(display_name(b"a\\b"), "a\\\\b");
    }
}
