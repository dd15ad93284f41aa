//! Writing tar framing (GNU format, as `tar -c` writes by default): names longer than 100 bytes
//! and link targets longer than 100 bytes go in `././@LongLink` entries (types `L`/`K`), which
//! GNU tar, Python's tarfile, erl_tar and the tar crate all read. Sizes past 8 GiB use GNU's
//! base-256 numeric fields.

use super::manifest::EntryKind;
use std::io::{self, Write};

pub(crate) const BLOCK: usize = 512;

pub(crate) struct HeaderInfo<'a> {
    pub name: &'a [u8],
    pub kind: EntryKind,
    pub size: u64,
    pub mode: u32,
    pub mtime: i64,
    pub uid: u64,
    pub gid: u64,
    pub link: &'a [u8],
}

fn long_entry<W: Write + ?Sized>(w: &mut W, typ: u8, value: &[u8]) -> io::Result<()> {
    let mut h = tar::Header::new_gnu();
    {
        let gnu = h
            .as_gnu_mut()
            .ok_or_else(|| io::Error::other("gnu header"))?;
        gnu.name[..13].copy_from_slice(b"././@LongLink");
    }
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_size(value.len() as u64 + 1);
    h.set_entry_type(tar::EntryType::new(typ));
    h.set_cksum();
    w.write_all(h.as_bytes())?;
    w.write_all(value)?;
    w.write_all(&[0])?;
    pad(w, value.len() as u64 + 1)
}

/// Zero bytes up to the next block boundary after `len` bytes of data.
pub(crate) fn pad<W: Write + ?Sized>(w: &mut W, len: u64) -> io::Result<()> {
    let rem = (len % BLOCK as u64) as usize;
    if rem != 0 {
        w.write_all(&[0u8; BLOCK][..BLOCK - rem])?;
    }
    Ok(())
}

pub(crate) fn write_header<W: Write + ?Sized>(w: &mut W, info: &HeaderInfo<'_>) -> io::Result<()> {
    if info.name.len() > 100 {
        long_entry(w, b'L', info.name)?;
    }
    if info.link.len() > 100 {
        long_entry(w, b'K', info.link)?;
    }
    let mut h = tar::Header::new_gnu();
    {
        let gnu = h
            .as_gnu_mut()
            .ok_or_else(|| io::Error::other("gnu header"))?;
        let n = info.name.len().min(100);
        gnu.name[..n].copy_from_slice(&info.name[..n]);
        let l = info.link.len().min(100);
        gnu.linkname[..l].copy_from_slice(&info.link[..l]);
    }
    h.set_mode(info.mode & 0o7777);
    h.set_uid(info.uid);
    h.set_gid(info.gid);
    h.set_mtime(info.mtime.max(0) as u64);
    let (typ, size) = match info.kind {
        EntryKind::File => (tar::EntryType::Regular, info.size),
        EntryKind::Dir => (tar::EntryType::Directory, 0),
        EntryKind::Symlink => (tar::EntryType::Symlink, 0),
        EntryKind::Hardlink => (tar::EntryType::Link, 0),
        EntryKind::Other => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cannot archive special files",
            ))
        }
    };
    h.set_size(size);
    h.set_entry_type(typ);
    h.set_cksum();
    w.write_all(h.as_bytes())
}

/// The end-of-archive marker: two zero blocks.
pub(crate) fn write_end<W: Write + ?Sized>(w: &mut W) -> io::Result<()> {
    w.write_all(&[0u8; 2 * BLOCK])
}
