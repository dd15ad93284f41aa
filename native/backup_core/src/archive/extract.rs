//! Safe extraction. One streaming pass writes into a staging directory created inside the
//! target's parent; only when the whole archive has been read and verified (compressed checksum,
//! tar structure, manifest crc32s) is the staged tree moved into place. On any error or cancel the
//! staging dir is removed and the target is untouched.
//!
//! Refused with `Error::UnsafePath`: absolute names, `..` components, entries below a symlink
//! entry, hard links to anything but an earlier file entry, and symlink targets that are absolute
//! or could leave the tree. A symlink target may only start with `..` components (no more than
//! the link's depth) followed by components without `..`; with every other link held to the same
//! rule, resolving any link can never climb above the root, whatever other links it crosses.
//! Symlinks are created last, so no file is ever written through one.

use super::control::JobControl;
use super::manifest::EntryKind;
use super::read::{scan, EntryInfo};
use super::TmpFile;
use crate::error::{Error, Result};
use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, Copy, Default)]
pub struct ExtractOptions {
    /// When the target exists and is not empty: replace its top-level entries that the archive
    /// also has (true) or fail with `eexist` (false).
    pub overwrite: bool,
}

#[derive(Debug, Clone, Default)]
pub struct ExtractSummary {
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    pub bytes: u64,
    /// Entries not extracted (devices, fifos), with why.
    pub skipped: Vec<(String, String)>,
}

/// The safe relative path of an entry name; `Ok(None)` for the root (`./`).
fn safe_rel(name: &[u8]) -> Result<Option<PathBuf>> {
    let lossy = || String::from_utf8_lossy(name).into_owned();
    if name.first() == Some(&b'/') {
        return Err(Error::UnsafePath(format!("absolute path {}", lossy())));
    }
    let mut out = PathBuf::new();
    for comp in name.split(|&b| b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => return Err(Error::UnsafePath(format!("'..' in {}", lossy()))),
            c => out.push(OsStr::from_bytes(c)),
        }
    }
    Ok(if out.as_os_str().is_empty() {
        None
    } else {
        Some(out)
    })
}

/// Can a symlink at `rel` (relative to the root) point at `target` without leaving the tree?
fn safe_link_target(rel: &Path, target: &[u8]) -> bool {
    if target.is_empty() || target.first() == Some(&b'/') {
        return false;
    }
    let depth = rel.components().count().saturating_sub(1);
    let mut ups = 0usize;
    let mut descended = false;
    for comp in target.split(|&b| b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." if descended => return false,
            b".." => ups += 1,
            _ => descended = true,
        }
    }
    ups <= depth
}

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

struct Stager<'a> {
    root: &'a Path,
    symlink_entries: HashSet<PathBuf>,
    files: HashSet<PathBuf>,
    dirs: Vec<(PathBuf, u32, i64)>,
    root_meta: Option<(u32, i64)>,
    links: Vec<(PathBuf, PathBuf, i64)>,
    summary: ExtractSummary,
}

impl Stager<'_> {
    fn entry(&mut self, info: &EntryInfo, data: &mut dyn Read) -> Result<()> {
        let Some(rel) = safe_rel(&info.path)? else {
            if info.kind == EntryKind::Dir {
                self.root_meta = Some((info.mode, info.mtime));
            }
            return Ok(());
        };
        for anc in rel.ancestors().skip(1) {
            if self.symlink_entries.contains(anc) {
                return Err(Error::UnsafePath(format!(
                    "{} is below the symlink {}",
                    info.path_lossy(),
                    anc.display()
                )));
            }
        }
        let dest = self.root.join(&rel);
        let io = |e: io::Error| Error::io(&dest, e);
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        match info.kind {
            EntryKind::Dir => {
                match fs::create_dir(&dest) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dest.is_dir() => {}
                    Err(e) => return Err(io(e)),
                }
                self.dirs.push((dest.clone(), info.mode, info.mtime));
                self.summary.dirs += 1;
            }
            EntryKind::File => {
                if self.symlink_entries.contains(&rel) {
                    return Err(Error::UnsafePath(format!(
                        "{} is also a symlink",
                        info.path_lossy()
                    )));
                }
                let mut f = File::create(&dest).map_err(io)?;
                let n = io::copy(data, &mut f)
                    .map_err(|e| Error::BadArchive(format!("{}: {e}", info.path_lossy())))?;
                f.flush().map_err(io)?;
                f.set_permissions(fs::Permissions::from_mode(info.mode & 0o1777))
                    .map_err(io)?;
                f.set_modified(to_time(info.mtime)).map_err(io)?;
                self.files.insert(rel);
                self.summary.files += 1;
                self.summary.bytes += n;
            }
            EntryKind::Symlink => {
                let target = info.link.as_deref().unwrap_or(&[]);
                if !safe_link_target(&rel, target) {
                    return Err(Error::UnsafePath(format!(
                        "symlink {} -> {} leaves the target",
                        info.path_lossy(),
                        String::from_utf8_lossy(target)
                    )));
                }
                self.symlink_entries.insert(rel);
                self.links
                    .push((dest, PathBuf::from(OsStr::from_bytes(target)), info.mtime));
            }
            EntryKind::Hardlink => {
                let target = info.link.as_deref().unwrap_or(&[]);
                let trel = safe_rel(target)?.ok_or_else(|| {
                    Error::UnsafePath(format!("hard link {} to the root", info.path_lossy()))
                })?;
                if !self.files.contains(&trel) {
                    return Err(Error::UnsafePath(format!(
                        "hard link {} to {} which is not an earlier file",
                        info.path_lossy(),
                        trel.display()
                    )));
                }
                if dest.exists() {
                    fs::remove_file(&dest).map_err(io)?;
                }
                fs::hard_link(self.root.join(&trel), &dest).map_err(io)?;
                self.files.insert(rel);
                self.summary.files += 1;
            }
            EntryKind::Other => {
                self.summary
                    .skipped
                    .push((info.path_lossy(), "special file not extracted".into()));
            }
        }
        Ok(())
    }

    /// Symlinks, then directory modes and mtimes deepest first (so writing children does not
    /// bump a parent's mtime after it was set).
    fn finish(&mut self) -> Result<()> {
        for (dest, target, mtime) in &self.links {
            std::os::unix::fs::symlink(target, dest).map_err(|e| Error::io(dest, e))?;
            // the link's own time, as `tar -x` sets it; the target is never touched
            let t = filetime::FileTime::from_unix_time(*mtime, 0);
            filetime::set_symlink_file_times(dest, t, t).map_err(|e| Error::io(dest, e))?;
            self.summary.symlinks += 1;
        }
        let mut dirs = std::mem::take(&mut self.dirs);
        dirs.sort_by_key(|(p, _, _)| std::cmp::Reverse(p.components().count()));
        if let Some((mode, mtime)) = self.root_meta {
            dirs.push((self.root.to_path_buf(), mode, mtime));
        }
        for (p, mode, mtime) in dirs {
            set_mtime(&p, mtime).map_err(|e| Error::io(&p, e))?;
            fs::set_permissions(&p, fs::Permissions::from_mode(mode & 0o1777))
                .map_err(|e| Error::io(&p, e))?;
        }
        Ok(())
    }
}

fn is_empty_dir(p: &Path) -> io::Result<bool> {
    Ok(fs::read_dir(p)?.next().is_none())
}

/// Extracts `archive` into `dest` (created if missing). See the module doc for the guarantees.
pub fn extract(
    archive: &Path,
    dest: &Path,
    opts: &ExtractOptions,
    ctl: &JobControl,
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
    let dest_empty = !dest_exists || is_empty_dir(dest).map_err(|e| Error::io(dest, e))?;
    if !dest_empty && !opts.overwrite {
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
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "extract".into());
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let staging = parent.join(format!(
        ".{base}.zbackup-staging-{}-{nanos}",
        std::process::id()
    ));
    fs::create_dir(&staging).map_err(|e| Error::io(&staging, e))?;
    let guard = TmpFile::new(staging.clone());
    let mut stager = Stager {
        root: &staging,
        symlink_entries: HashSet::new(),
        files: HashSet::new(),
        dirs: Vec::new(),
        root_meta: None,
        links: Vec::new(),
        summary: ExtractSummary::default(),
    };
    scan(archive, ctl, &mut |info, data| stager.entry(info, data))?;
    stager.finish()?;
    ctl.check()?;
    if dest_empty {
        if dest_exists {
            fs::remove_dir(dest).map_err(|e| Error::io(dest, e))?;
        }
        fs::rename(&staging, dest).map_err(|e| Error::io(dest, e))?;
        guard.disarm();
    } else {
        for child in fs::read_dir(&staging).map_err(|e| Error::io(&staging, e))? {
            let child = child.map_err(|e| Error::io(&staging, e))?;
            let to = dest.join(child.file_name());
            match fs::symlink_metadata(&to) {
                Ok(m) if m.is_dir() => fs::remove_dir_all(&to).map_err(|e| Error::io(&to, e))?,
                Ok(_) => fs::remove_file(&to).map_err(|e| Error::io(&to, e))?,
                Err(_) => {}
            }
            fs::rename(child.path(), &to).map_err(|e| Error::io(&to, e))?;
        }
        // guard removes the (now empty) staging dir
        drop(guard);
    }
    Ok(stager.summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_rel_refuses_absolute_and_dotdot_and_accepts_dot_prefix() {
        assert!(safe_rel(b"/etc/passwd").is_err());
        assert!(safe_rel(b"./a/../../x").is_err());
        assert!(safe_rel(b"..").is_err());
        assert_eq!(safe_rel(b"./").expect("root"), None);
        assert_eq!(
            safe_rel(b"./a//b/").expect("ok"),
            Some(PathBuf::from("a/b"))
        );
    }

    #[test]
    fn link_targets_may_only_climb_within_their_depth() {
        assert!(safe_link_target(Path::new("a/b/l"), b"../x"));
        assert!(safe_link_target(Path::new("a/b/l"), b"../../x"));
        assert!(!safe_link_target(Path::new("a/b/l"), b"../../../x"));
        assert!(!safe_link_target(Path::new("l"), b"/etc"));
        assert!(!safe_link_target(Path::new("t"), b"s/.."));
        assert!(safe_link_target(Path::new("l"), b"./x/y"));
    }
}
