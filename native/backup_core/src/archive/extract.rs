//! Safe extraction. One streaming pass (`read::scan`, the same one `verify` makes, so the two
//! always agree) writes into a private staging directory beside the target; only when the whole
//! archive has been read and checked is the staged tree swapped into place.
//!
//! With an indexed `.tar.gz` the pass is the parallel one (`parallel.rs`); if it fails for any
//! reason but a cancel, everything it staged is removed (`Visitor::reset`) and the serial pass
//! stages the tree again and gives the verdict. So DEST still changes only after a whole pass
//! succeeded, and the staged tree is always exactly what the serial pass makes; a damaged
//! archive costs up to two reads before it is refused.
//!
//! * Names are checked by `validate` (absolute paths, `..`, entries below or over symlinks,
//!   escaping link targets, hard links to anything but an earlier file: `unsafe_path`). Files
//!   are created with `O_EXCL|O_NOFOLLOW`; a later file entry of the same name unlinks the
//!   earlier one first (as GNU tar does), so a file hard-linked to it keeps its content.
//!   Symlinks are created last, so nothing is ever written through one. Runs of zeros (and the
//!   holes of sparse entries) become holes in the output file.
//! * The swap: when DEST does not exist the staging dir is renamed to it. When it exists (and
//!   is empty, or `overwrite` is set) the two are exchanged atomically (`renameat2` with
//!   `RENAME_EXCHANGE`); where the file system cannot, DEST is renamed aside, the staging dir
//!   renamed to DEST, and DEST renamed back if that fails. Either way DEST is replaced as a
//!   whole or left exactly as it was, and the old tree is removed only once the new one is in
//!   place. If removing the old tree fails, the new one stays and the old one's path is
//!   reported in `ExtractSummary::leftover`.
//! * On any error or cancel the staging dir is removed, even when the archive gave its entries
//!   modes like 000. Staging dirs of runs that were killed (`.<name>.zbackup-staging-<pid>-<n>`
//!   in the target's parent, owned by this user, of a process that no longer exists, untouched
//!   for a minute) are removed by the next extract there.
//! * Errors name the user's DEST path, never the hidden staging dir.

use super::control::JobControl;
use super::read::{scan, EntryInfo, Pass, Visitor};
use super::tarread::{Chunk, EntryData};
use super::validate::{Action, Plan};
use crate::error::{Error, Result};
use crate::fsutil::{create_new, remove_tree};
use crate::term::{Bytes, OrUndefined};
use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{self, Seek, SeekFrom, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, Copy, Default)]
pub struct ExtractOptions {
    /// When the target exists and is not empty: replace it as a whole (true) or fail with
    /// `eexist` (false).
    pub overwrite: bool,
}

#[derive(Debug, Clone, Default)]
#[cfg_attr(feature = "nif", derive(rustler::NifMap), rustler(encode))]
pub struct ExtractSummary {
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    pub bytes: u64,
    /// Entries not extracted (devices, fifos), with why.
    pub skipped: Vec<(String, String)>,
    /// The replaced tree, when it could not be removed after the swap (DEST holds the new
    /// tree all the same): its path's bytes.
    pub leftover: OrUndefined<Bytes>,
}

const STAGING_TAG: &str = ".zbackup-staging-";
const OLD_TAG: &str = ".zbackup-old-";
/// A staging dir of a dead process is left alone this long after its last change.
const STALE_AFTER: Duration = Duration::from_secs(60);
const WRITE_BUF: usize = 256 << 10;

fn to_time(mtime: i64) -> SystemTime {
    if mtime >= 0 {
        UNIX_EPOCH + Duration::from_secs(mtime as u64)
    } else {
        UNIX_EPOCH - Duration::from_secs(mtime.unsigned_abs())
    }
}

fn set_mtime(path: &Path, mtime: i64) -> io::Result<()> {
    File::open(path)?.set_modified(to_time(mtime))
}

/// Whether `b` is all zero bytes: slice comparisons with a zero block (memcmp runs at memory
/// speed, a byte loop at a fraction of it).
fn is_zero(b: &[u8]) -> bool {
    static ZEROS: [u8; 4096] = [0; 4096];
    b.chunks(ZEROS.len()).all(|c| c == &ZEROS[..c.len()])
}

/// Writes the entries into the staging root.
struct Stager<'a> {
    root: &'a Path,
    /// The user's DEST: what errors name.
    shown: &'a Path,
    dirs: Vec<(PathBuf, u32, i64)>,
    root_meta: Option<(u32, i64)>,
    links: Vec<(PathBuf, PathBuf, i64)>,
    summary: ExtractSummary,
    buf: Vec<u8>,
    /// The directory the last entry went into, known to exist: the next entry in it (entries
    /// come grouped by directory) needs no `mkdir` and `statx`. Nothing but this pass writes in
    /// the private staging root, no entry removes a directory (`unlink` takes files only) and
    /// symlinks are made at the end, so a directory seen stays one.
    last_parent: PathBuf,
}

impl Stager<'_> {
    fn err(&self, rel: &Path, e: io::Error) -> Error {
        Error::io(self.shown.join(rel), e)
    }

    fn parents(&mut self, rel: &Path) -> Result<()> {
        if let Some(parent) = rel.parent().filter(|p| !p.as_os_str().is_empty()) {
            if parent != self.last_parent {
                fs::create_dir_all(self.root.join(parent)).map_err(|e| self.err(parent, e))?;
                parent.clone_into(&mut self.last_parent);
            }
        }
        Ok(())
    }

    fn unlink(&self, rel: &Path) -> Result<()> {
        match fs::remove_file(self.root.join(rel)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(self.err(rel, e)),
            _ => Ok(()),
        }
    }

    fn file(&mut self, info: &EntryInfo, rel: &Path, data: &mut EntryData<'_, '_>) -> Result<()> {
        let dest = self.root.join(rel);
        let mut f = create_new(&dest, 0o600).map_err(|e| self.err(rel, e))?;
        let mut buf = std::mem::take(&mut self.buf);
        let written = self.copy(data, &mut f, &mut buf, rel);
        self.buf = buf;
        let n = written?;
        f.set_permissions(fs::Permissions::from_mode(info.mode & 0o1777))
            .map_err(|e| self.err(rel, e))?;
        f.set_modified(to_time(info.mtime))
            .map_err(|e| self.err(rel, e))?;
        self.summary.files += 1;
        self.summary.bytes += n;
        Ok(())
    }

    /// Copies the data, leaving holes for holes and for whole blocks of zeros.
    fn copy(
        &self,
        data: &mut EntryData<'_, '_>,
        f: &mut File,
        buf: &mut Vec<u8>,
        rel: &Path,
    ) -> Result<u64> {
        buf.resize(WRITE_BUF, 0);
        let mut pos = 0u64;
        let mut holes = false;
        loop {
            match data.next_chunk(buf)? {
                Chunk::Data(n) => {
                    let chunk = &buf[..n];
                    if n >= 4096 && is_zero(chunk) {
                        f.seek(SeekFrom::Current(n as i64))
                            .map_err(|e| self.err(rel, e))?;
                        holes = true;
                    } else {
                        f.write_all(chunk).map_err(|e| self.err(rel, e))?;
                    }
                    pos += n as u64;
                }
                Chunk::Hole(n) => {
                    let step =
                        i64::try_from(n).map_err(|_| Error::BadArchive("hole too large".into()))?;
                    f.seek(SeekFrom::Current(step))
                        .map_err(|e| self.err(rel, e))?;
                    pos += n;
                    holes = true;
                }
                Chunk::End => break,
            }
        }
        if holes {
            f.set_len(pos).map_err(|e| self.err(rel, e))?;
        }
        Ok(pos)
    }

    /// Symlinks, then directory mtimes and modes deepest first (so writing children does not
    /// bump a parent's mtime after it was set), the root last.
    fn finish(&mut self) -> Result<()> {
        for (rel, target, mtime) in std::mem::take(&mut self.links) {
            let dest = self.root.join(&rel);
            std::os::unix::fs::symlink(&target, &dest).map_err(|e| self.err(&rel, e))?;
            // the link's own time, as `tar -x` sets it; the target is never touched
            let t = filetime::FileTime::from_unix_time(mtime, 0);
            filetime::set_symlink_file_times(&dest, t, t).map_err(|e| self.err(&rel, e))?;
            self.summary.symlinks += 1;
        }
        let mut dirs = std::mem::take(&mut self.dirs);
        dirs.sort_by_key(|(p, _, _)| std::cmp::Reverse(p.components().count()));
        if let Some((mode, mtime)) = self.root_meta {
            dirs.push((PathBuf::new(), mode, mtime));
        }
        for (rel, mode, mtime) in dirs {
            let p = self.root.join(&rel);
            set_mtime(&p, mtime).map_err(|e| self.err(&rel, e))?;
            fs::set_permissions(&p, fs::Permissions::from_mode(mode & 0o1777))
                .map_err(|e| self.err(&rel, e))?;
        }
        Ok(())
    }
}

impl Visitor for Stager<'_> {
    fn reset(&mut self) -> Result<()> {
        remove_tree(self.root).map_err(|e| Error::io(self.shown, e))?;
        fs::DirBuilder::new()
            .mode(0o700)
            .create(self.root)
            .map_err(|e| Error::io(self.shown, e))?;
        self.dirs.clear();
        self.last_parent.clear();
        self.root_meta = None;
        self.links.clear();
        self.summary = ExtractSummary::default();
        Ok(())
    }

    fn entry(&mut self, info: &EntryInfo, plan: &Plan, data: &mut EntryData<'_, '_>) -> Result<()> {
        let rel = plan.rel.as_path();
        match &plan.action {
            Action::RootMeta => self.root_meta = Some((info.mode, info.mtime)),
            Action::Skip(why) => {
                self.parents(rel)?;
                self.summary
                    .skipped
                    .push((info.path_display(), why.clone()));
            }
            Action::Dir { .. } => {
                self.parents(rel)?;
                match fs::create_dir(self.root.join(rel)) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(self.err(rel, e)),
                }
                self.dirs.push((rel.to_path_buf(), info.mode, info.mtime));
                self.summary.dirs += 1;
            }
            Action::File { replace } => {
                self.parents(rel)?;
                if *replace {
                    self.unlink(rel)?;
                }
                self.file(info, rel, data)?;
            }
            Action::Symlink { target } => {
                self.parents(rel)?;
                self.links
                    .push((rel.to_path_buf(), target.clone(), info.mtime));
            }
            Action::Hardlink { target, replace } => {
                self.parents(rel)?;
                if *replace {
                    self.unlink(rel)?;
                }
                fs::hard_link(self.root.join(target), self.root.join(rel))
                    .map_err(|e| self.err(rel, e))?;
                self.summary.files += 1;
            }
        }
        Ok(())
    }
}

/// Removes the staging dir on drop unless disarmed; never panics.
struct Staging {
    path: PathBuf,
    armed: bool,
}

impl Drop for Staging {
    fn drop(&mut self) {
        if self.armed {
            // Nothing to do about a failure here; the error that got us here is reported.
            let _ = remove_tree(&self.path);
        }
    }
}

fn is_empty_dir(p: &Path) -> io::Result<bool> {
    Ok(fs::read_dir(p)?.next().is_none())
}

static SEQ: AtomicU64 = AtomicU64::new(0);

/// `<parent>/.<base>.zbackup-staging-<pid>-<n>` (or `-old-`), with `base` cut to 100 bytes so
/// the name stays within NAME_MAX.
fn sibling(parent: &Path, base: &[u8], tag: &str) -> PathBuf {
    let base = &base[..base.len().min(100)];
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    let mut name = b".".to_vec();
    name.extend_from_slice(base);
    name.extend_from_slice(format!("{tag}{}-{nanos}{n}", std::process::id()).as_bytes());
    parent.join(OsStr::from_bytes(&name))
}

/// The pid in a name made by `sibling`, if it is one.
fn owner_pid(name: &[u8]) -> Option<u32> {
    if name.first() != Some(&b'.') {
        return None;
    }
    let s = std::str::from_utf8(name).ok()?;
    let rest = [STAGING_TAG, OLD_TAG]
        .iter()
        .find_map(|tag| s.rfind(tag).map(|i| &s[i + tag.len()..]))?;
    let (pid, n) = rest.split_once('-')?;
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    pid.parse().ok()
}

fn process_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return true;
    }
    // SAFETY: kill with signal 0 sends nothing and touches no memory; it only reports whether
    // the process exists (ESRCH when it does not).
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// Removes staging and old-tree dirs in `parent` left by extracts that were killed: named by
/// `sibling`, owned by this user, of a process that no longer exists, unchanged for
/// `STALE_AFTER`. Returns how many were removed; errors are ignored (the sweep is best effort).
pub fn sweep_stale_staging(parent: &Path) -> usize {
    let Ok(rd) = fs::read_dir(parent) else {
        return 0;
    };
    // SAFETY: geteuid has no arguments and cannot fail.
    let me = unsafe { libc::geteuid() };
    let mut removed = 0;
    for entry in rd.flatten() {
        let name = entry.file_name();
        let Some(pid) = owner_pid(name.as_bytes()) else {
            continue;
        };
        if pid == std::process::id() || process_alive(pid) {
            continue;
        }
        let Ok(meta) = fs::symlink_metadata(entry.path()) else {
            continue;
        };
        let age = meta
            .modified()
            .ok()
            .and_then(|m| SystemTime::now().duration_since(m).ok())
            .unwrap_or_default();
        if meta.is_dir()
            && meta.uid() == me
            && age >= STALE_AFTER
            && remove_tree(&entry.path()).is_ok()
        {
            removed += 1;
        }
    }
    removed
}

/// File-system calls of the swap, replaceable in tests.
pub(crate) struct SwapOps {
    pub(crate) exchange: fn(&Path, &Path) -> io::Result<()>,
    pub(crate) rename: fn(&Path, &Path) -> io::Result<()>,
}

fn exchange(a: &Path, b: &Path) -> io::Result<()> {
    rustix::fs::renameat_with(
        rustix::fs::CWD,
        a,
        rustix::fs::CWD,
        b,
        rustix::fs::RenameFlags::EXCHANGE,
    )
    .map_err(io::Error::from)
}

const REAL_OPS: SwapOps = SwapOps {
    exchange,
    rename: |a, b| fs::rename(a, b),
};

/// Puts the staged tree at `dest`, which exists: afterwards `dest` is the new tree and the
/// returned path holds the old one, or (on error) `dest` is exactly what it was.
pub(crate) fn swap_in(staging: &Path, dest: &Path, aside: &Path, ops: &SwapOps) -> Result<PathBuf> {
    match (ops.exchange)(staging, dest) {
        Ok(()) => return Ok(staging.to_path_buf()),
        Err(e)
            if !matches!(
                e.raw_os_error(),
                Some(libc::EINVAL) | Some(libc::ENOSYS) | Some(libc::EOPNOTSUPP)
            ) =>
        {
            return Err(Error::io(dest, e))
        }
        Err(_) => {}
    }
    // No atomic exchange here: rename aside, rename in, and back on failure.
    (ops.rename)(dest, aside).map_err(|e| Error::io(dest, e))?;
    if let Err(e) = (ops.rename)(staging, dest) {
        if let Err(back) = (ops.rename)(aside, dest) {
            return Err(Error::io(
                dest,
                io::Error::new(
                    back.kind(),
                    format!(
                        "{e}; and moving the old tree back from {} failed: {back}",
                        aside.display()
                    ),
                ),
            ));
        }
        return Err(Error::io(dest, e));
    }
    Ok(aside.to_path_buf())
}

/// Extracts `archive` into `dest` (created if missing). See the module doc for the guarantees.
pub fn extract(
    archive: &Path,
    dest: &Path,
    opts: &ExtractOptions,
    ctl: &JobControl,
) -> Result<ExtractSummary> {
    // the sha256 of the archive is `verify`'s to report; extract has no use for it
    extract_with(archive, dest, opts, ctl, Pass::Fastest { hash: false })
}

/// `extract`, reading the archive as `pass` says.
pub(crate) fn extract_with(
    archive: &Path,
    dest: &Path,
    opts: &ExtractOptions,
    ctl: &JobControl,
    pass: Pass,
) -> Result<ExtractSummary> {
    let dest_exists = match fs::symlink_metadata(dest) {
        Ok(m) if m.is_dir() => true,
        Ok(_) => {
            return Err(Error::io(
                dest,
                io::Error::from(io::ErrorKind::NotADirectory),
            ))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => false,
        Err(e) => return Err(Error::io(dest, e)),
    };
    if dest_exists && !opts.overwrite && !is_empty_dir(dest).map_err(|e| Error::io(dest, e))? {
        return Err(Error::io(
            dest,
            io::Error::from(io::ErrorKind::AlreadyExists),
        ));
    }
    let parent = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let base = dest
        .file_name()
        .map(|n| n.as_bytes().to_vec())
        .unwrap_or_else(|| b"extract".to_vec());
    sweep_stale_staging(&parent);
    let staging = sibling(&parent, &base, STAGING_TAG);
    fs::DirBuilder::new()
        .mode(0o700)
        .create(&staging)
        .map_err(|e| Error::io(dest, e))?;
    let mut guard = Staging {
        path: staging.clone(),
        armed: true,
    };
    let mut stager = Stager {
        root: &staging,
        shown: dest,
        dirs: Vec::new(),
        root_meta: None,
        links: Vec::new(),
        summary: ExtractSummary::default(),
        buf: Vec::new(),
        last_parent: PathBuf::new(),
    };
    scan(archive, ctl, &mut stager, pass)?;
    stager.finish()?;
    ctl.check()?;
    let mut summary = std::mem::take(&mut stager.summary);
    let dest_there = fs::symlink_metadata(dest).is_ok();
    if !dest_there {
        fs::rename(&staging, dest).map_err(|e| Error::io(dest, e))?;
        guard.armed = false;
        return Ok(summary);
    }
    let aside = sibling(&parent, &base, OLD_TAG);
    let old = swap_in(&staging, dest, &aside, &REAL_OPS)?;
    // The new tree is in place; the guard now holds the old one (exchange) or nothing.
    guard.armed = false;
    if let Err(e) = remove_tree(&old) {
        if fs::symlink_metadata(&old).is_ok() {
            let _ = e;
            summary.leftover = OrUndefined(Some(Bytes(old.into_os_string().into_vec())));
        }
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staging_names_carry_the_pid_and_are_recognised() {
        let p = sibling(Path::new("/x"), b"media", STAGING_TAG);
        let name = p.file_name().expect("name").as_bytes().to_vec();
        assert_eq!(owner_pid(&name), Some(std::process::id()));
        assert_eq!(owner_pid(b".media.zbackup-old-42-17"), Some(42));
        assert_eq!(owner_pid(b"media.zbackup-staging-42-17"), None);
        assert_eq!(owner_pid(b".media.zbackup-staging-42-"), None);
        assert_eq!(owner_pid(b".media"), None);
        let long = vec![b'x'; 255];
        let p = sibling(Path::new("/x"), &long, STAGING_TAG);
        assert!(p.file_name().expect("name").len() <= 255);
    }

    fn tree(root: &Path, marker: &str) {
        fs::create_dir_all(root.join("sub")).expect("mkdir");
        fs::write(root.join("sub/f"), marker).expect("write");
    }

    /// A staging tree ("new") and a dest tree ("old") in `dir`, and where the old one goes aside.
    fn swap_trees(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
        let (staging, dest) = (dir.join("s"), dir.join("dest"));
        tree(&staging, "new");
        tree(&dest, "old");
        (staging, dest, dir.join("old"))
    }

    #[test]
    fn a_swap_that_fails_half_way_rolls_back_and_leaves_dest_as_it_was() {
        let d = tempfile::tempdir().expect("tmp");
        let (staging, dest, aside) = swap_trees(d.path());
        // No RENAME_EXCHANGE on this file system, and the rename into place fails.
        let ops = SwapOps {
            exchange: |_, _| Err(io::Error::from_raw_os_error(libc::EINVAL)),
            rename: |a, b| {
                if a.ends_with("s") {
                    Err(io::Error::from_raw_os_error(libc::EACCES))
                } else {
                    fs::rename(a, b)
                }
            },
        };
        let e = swap_in(&staging, &dest, &aside, &ops).expect_err("fails");
        assert_eq!(e.reason(), "eacces");
        assert_eq!(fs::read(dest.join("sub/f")).expect("old tree"), b"old");
        assert!(!aside.exists());
        // The fallback path, succeeding: new in place, old aside.
        let ops = SwapOps {
            exchange: |_, _| Err(io::Error::from_raw_os_error(libc::EINVAL)),
            rename: |a, b| fs::rename(a, b),
        };
        let old = swap_in(&staging, &dest, &aside, &ops).expect("swapped");
        assert_eq!(fs::read(dest.join("sub/f")).expect("new tree"), b"new");
        assert_eq!(fs::read(old.join("sub/f")).expect("old tree"), b"old");
    }

    #[test]
    fn the_atomic_exchange_swaps_both_trees() {
        let d = tempfile::tempdir().expect("tmp");
        let (staging, dest, aside) = swap_trees(d.path());
        let old = swap_in(&staging, &dest, &aside, &REAL_OPS).expect("swapped");
        assert_eq!(fs::read(dest.join("sub/f")).expect("new"), b"new");
        assert_eq!(fs::read(old.join("sub/f")).expect("old"), b"old");
    }
}
