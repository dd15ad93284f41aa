//! The rules an archive's names must follow, applied in one place for `verify`, `list` and
//! `extract`, so the three always agree: an archive that `verify` passes is one that `extract`
//! writes, and one that `extract` refuses, `verify` refuses with the same reason.
//!
//! * `unsafe_path`: absolute names, `..` components, anything below or on top of a symlink
//!   entry, symlink targets that could leave the tree (a target may only start with `..`
//!   components, no more than the link's depth, followed by components without `..`; with every
//!   link held to that rule, resolving any link can never climb above the root), hard links to
//!   anything but an earlier file entry.
//! * `bad_archive`: NUL bytes in names, an entry below a file, a name that is both a file and a
//!   directory, a hard link to itself, a non-directory entry naming the root.
//! * `enametoolong`: a component longer than 255 bytes, a name longer than `MAX_PATH_BYTES`.
//!
//! A later file entry of the same name replaces an earlier one (GNU tar does the same), without
//! changing files hard-linked to the earlier one.
//!
//! To know what each name already is, the validator keeps a 128-bit keyed hash (SipHash with
//! random keys, two of them) of every name seen, with its kind: about 40 bytes per name,
//! charged to the read's `Budget` together with what `extract` keeps for directories,
//! symlinks and skipped entries, so `verify` and `extract` also reach the budget at the same
//! entry.

use super::limits::{Budget, MAX_COMPONENT_BYTES, MAX_LINK_BYTES, MAX_PATH_BYTES};
use super::manifest::EntryKind;
use super::read::EntryInfo;
use crate::error::{Error, Result};
use crate::fsutil::display_name;
use std::collections::HashMap;
use std::ffi::OsStr;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

/// What extraction does with an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Action {
    /// The `./` directory entry: the mode and mtime of the target itself.
    RootMeta,
    /// Not extracted (devices, FIFOs, sockets): why.
    Skip(String),
    /// A directory (already there when `exists`).
    Dir { exists: bool },
    /// A file; `replace` when an earlier file of the same name must be unlinked first.
    File { replace: bool },
    /// A symlink to `target`, created after everything else.
    Symlink { target: PathBuf },
    /// A hard link to the earlier file `target` (relative to the root).
    Hardlink { target: PathBuf, replace: bool },
}

/// Where an entry goes (relative to the target root; empty for the root) and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Plan {
    pub(crate) rel: PathBuf,
    pub(crate) action: Action,
}

const DIR: u64 = 1;
const FILE: u64 = 2;
const LINK: u64 = 3;
/// Bytes charged per name the validator remembers (hash table slot with its share of growth).
const NAME_COST: u64 = 40;
/// Bytes charged per record extract keeps besides the name bytes (dirs, symlinks, skipped).
const RECORD_COST: u64 = 48;

/// The keys are already uniformly random 64-bit hashes: use them as they are.
#[derive(Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type Hash2 = (u64, u64);

pub(crate) struct Validator {
    keys: (RandomState, RandomState),
    /// first hash -> (second hash with the low 2 bits replaced by the kind)
    seen: HashMap<u64, u64, BuildHasherDefault<PassThrough>>,
    /// names whose first hash collided with another name's (practically never used)
    overflow: HashMap<Hash2, u64>,
    entries: u64,
}

/// A name split into components, with the hash of every prefix.
struct Name {
    canon: Vec<u8>,
    /// Hash of each prefix ending at a component; the last is the whole name.
    prefixes: Vec<Hash2>,
    /// Byte length of each prefix in `canon`.
    ends: Vec<usize>,
}

impl Validator {
    pub(crate) fn new() -> Self {
        Validator {
            keys: (RandomState::new(), RandomState::new()),
            seen: HashMap::default(),
            overflow: HashMap::new(),
            entries: 0,
        }
    }

    fn parse(&self, raw: &[u8]) -> Result<Name> {
        let shown = || display_name(raw);
        if raw.contains(&0) {
            return Err(Error::BadArchive(format!(
                "NUL byte in the name {}",
                shown()
            )));
        }
        if raw.first() == Some(&b'/') {
            return Err(Error::UnsafePath(format!("absolute path {}", shown())));
        }
        let mut name = Name {
            canon: Vec::with_capacity(raw.len()),
            prefixes: Vec::new(),
            ends: Vec::new(),
        };
        let (mut a, mut b) = (self.keys.0.build_hasher(), self.keys.1.build_hasher());
        for comp in raw.split(|&c| c == b'/') {
            match comp {
                b"" | b"." => continue,
                b".." => return Err(Error::UnsafePath(format!("'..' in {}", shown()))),
                c if c.len() > MAX_COMPONENT_BYTES => {
                    return Err(Error::NameTooLong(format!(
                        "a component of {} is longer than {MAX_COMPONENT_BYTES} bytes",
                        shown()
                    )))
                }
                c => {
                    if !name.canon.is_empty() {
                        name.canon.push(b'/');
                        a.write(b"/");
                        b.write(b"/");
                    }
                    name.canon.extend_from_slice(c);
                    a.write(c);
                    b.write(c);
                    name.prefixes.push((a.clone().finish(), b.clone().finish()));
                    name.ends.push(name.canon.len());
                }
            }
        }
        if name.canon.len() > MAX_PATH_BYTES {
            return Err(Error::NameTooLong(format!(
                "{} is longer than {MAX_PATH_BYTES} bytes",
                shown()
            )));
        }
        Ok(name)
    }

    fn lookup(&self, h: Hash2) -> Option<u64> {
        match self.seen.get(&h.0) {
            Some(v) if v & !3 == h.1 & !3 => Some(v & 3),
            Some(_) => self.overflow.get(&h).copied(),
            None => None,
        }
    }

    /// Records `h` as `kind`; true when the name is new (and so charged).
    fn insert(&mut self, h: Hash2, kind: u64) -> bool {
        match self.seen.get_mut(&h.0) {
            Some(v) if *v & !3 == h.1 & !3 => {
                *v = (h.1 & !3) | kind;
                false
            }
            Some(_) => self.overflow.insert(h, kind).is_none(),
            None => {
                self.seen.insert(h.0, (h.1 & !3) | kind);
                true
            }
        }
    }

    fn remember(&mut self, h: Hash2, kind: u64, budget: &mut Budget) -> Result<()> {
        if self.insert(h, kind) {
            budget.charge(NAME_COST, self.entries)?;
        }
        Ok(())
    }

    /// Checks one entry against the rules and everything seen before it; returns what to do.
    pub(crate) fn check(&mut self, info: &EntryInfo, budget: &mut Budget) -> Result<Plan> {
        self.entries += 1;
        let shown = || display_name(&info.path);
        let name = self.parse(&info.path)?;
        let rel = PathBuf::from(OsStr::from_bytes(&name.canon));
        let Some((&me, ancestors)) = name.prefixes.split_last() else {
            return match info.kind {
                EntryKind::Dir => Ok(Plan {
                    rel,
                    action: Action::RootMeta,
                }),
                EntryKind::Other => {
                    budget.charge(RECORD_COST + info.path.len() as u64, self.entries)?;
                    Ok(Plan {
                        rel,
                        action: Action::Skip("special file not extracted".into()),
                    })
                }
                k => Err(Error::BadArchive(format!(
                    "the {} entry {} names the root",
                    k.as_str(),
                    shown()
                ))),
            };
        };
        for (i, &anc) in ancestors.iter().enumerate() {
            let prefix = || display_name(&name.canon[..name.ends[i]]);
            match self.lookup(anc) {
                Some(DIR) => {}
                Some(FILE) => {
                    return Err(Error::BadArchive(format!(
                        "{} is below the file {}",
                        shown(),
                        prefix()
                    )))
                }
                Some(_) => {
                    return Err(Error::UnsafePath(format!(
                        "{} is below the symlink {}",
                        shown(),
                        prefix()
                    )))
                }
                None => self.remember(anc, DIR, budget)?,
            }
        }
        let existing = self.lookup(me);
        let conflict = |what: &str| -> Error {
            let was = match existing {
                Some(DIR) => "directory",
                Some(FILE) => "file",
                _ => "symlink",
            };
            let msg = format!("{} is both a {was} and a {what}", shown());
            if existing == Some(LINK) || what == "symlink" {
                Error::UnsafePath(msg)
            } else {
                Error::BadArchive(msg)
            }
        };
        let action = match info.kind {
            EntryKind::Dir => {
                match existing {
                    None | Some(DIR) => {}
                    Some(_) => return Err(conflict("directory")),
                }
                self.remember(me, DIR, budget)?;
                budget.charge(RECORD_COST + name.canon.len() as u64, self.entries)?;
                Action::Dir {
                    exists: existing.is_some(),
                }
            }
            EntryKind::File => {
                let replace = self.file_slot(existing, &conflict)?;
                self.remember(me, FILE, budget)?;
                Action::File { replace }
            }
            EntryKind::Hardlink => {
                let raw = info.link.as_deref().unwrap_or(&[]);
                let target = self.parse(raw)?;
                let Some(&t) = target.prefixes.last() else {
                    return Err(Error::UnsafePath(format!(
                        "hard link {} to the root",
                        shown()
                    )));
                };
                if t == me {
                    return Err(Error::BadArchive(format!(
                        "hard link {} to itself",
                        shown()
                    )));
                }
                if self.lookup(t) != Some(FILE) {
                    return Err(Error::UnsafePath(format!(
                        "hard link {} to {} which is not an earlier file",
                        shown(),
                        display_name(raw)
                    )));
                }
                let replace = self.file_slot(existing, &conflict)?;
                self.remember(me, FILE, budget)?;
                Action::Hardlink {
                    target: PathBuf::from(OsStr::from_bytes(&target.canon)),
                    replace,
                }
            }
            EntryKind::Symlink => {
                let target = info.link.as_deref().unwrap_or(&[]);
                if target.contains(&0) {
                    return Err(Error::BadArchive(format!(
                        "NUL byte in the link of {}",
                        shown()
                    )));
                }
                if target.len() > MAX_LINK_BYTES {
                    return Err(Error::NameTooLong(format!(
                        "the link target of {} is longer than {MAX_LINK_BYTES} bytes",
                        shown()
                    )));
                }
                if !safe_link_target(name.prefixes.len() - 1, target) {
                    return Err(Error::UnsafePath(format!(
                        "symlink {} -> {} leaves the target",
                        shown(),
                        display_name(target)
                    )));
                }
                if existing.is_some() {
                    return Err(conflict("symlink"));
                }
                self.remember(me, LINK, budget)?;
                budget.charge(
                    RECORD_COST + (name.canon.len() + target.len()) as u64,
                    self.entries,
                )?;
                Action::Symlink {
                    target: PathBuf::from(OsStr::from_bytes(target)),
                }
            }
            EntryKind::Other => {
                budget.charge(RECORD_COST + info.path.len() as u64, self.entries)?;
                Action::Skip("special file not extracted".into())
            }
        };
        Ok(Plan { rel, action })
    }

    /// A file (or hard link) may take a new name or replace an earlier file.
    fn file_slot(&self, existing: Option<u64>, conflict: &dyn Fn(&str) -> Error) -> Result<bool> {
        match existing {
            None => Ok(false),
            Some(FILE) => Ok(true),
            Some(_) => Err(conflict("file")),
        }
    }
}

/// Can a symlink `depth` directories below the root point at `target` without leaving the
/// tree? See the module doc.
pub(crate) fn safe_link_target(depth: usize, target: &[u8]) -> bool {
    if target.is_empty() || target.first() == Some(&b'/') {
        return false;
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::limits::BOOKKEEPING_CAP;

    fn entry(path: &str, kind: EntryKind, link: Option<&str>) -> EntryInfo {
        EntryInfo {
            path: path.as_bytes().to_vec(),
            kind,
            size: 0,
            mtime: 0,
            mode: 0o644,
            link: link.map(|l| l.as_bytes().to_vec()),
            crc32: 0,
        }
    }

    fn run(entries: &[EntryInfo]) -> Result<Vec<Plan>> {
        let mut v = Validator::new();
        let mut b = Budget::new(BOOKKEEPING_CAP);
        entries.iter().map(|e| v.check(e, &mut b)).collect()
    }

    #[test]
    fn link_targets_may_only_climb_within_their_depth() {
        assert!(safe_link_target(2, b"../x"));
        assert!(safe_link_target(2, b"../../x"));
        assert!(!safe_link_target(2, b"../../../x"));
        assert!(!safe_link_target(0, b"/etc"));
        assert!(!safe_link_target(0, b"s/.."));
        assert!(safe_link_target(0, b"./x/y"));
    }

    #[test]
    fn names_are_normalised_and_unsafe_ones_refused() {
        use EntryKind::*;
        let p = run(&[entry("./a//b/", Dir, None)]).expect("ok");
        assert_eq!(p[0].rel, PathBuf::from("a/b"));
        for (bad, reason) in [
            ("/etc/passwd", "unsafe_path"),
            ("./a/../../x", "unsafe_path"),
            ("..", "unsafe_path"),
        ] {
            let e = run(&[entry(bad, File, None)]).expect_err(bad);
            assert_eq!(e.reason(), reason, "{bad}");
        }
        let long = format!("./{}", "x".repeat(256));
        assert_eq!(
            run(&[entry(&long, File, None)]).expect_err("long").reason(),
            "enametoolong"
        );
        let e = run(&[entry("./a\0b", File, None)]).expect_err("nul");
        assert_eq!(e.reason(), "bad_archive");
    }

    #[test]
    fn conflicts_between_kinds_are_refused_and_files_replace_files() {
        use EntryKind::*;
        let e = run(&[entry("a", File, None), entry("a/b", File, None)]).expect_err("below file");
        assert_eq!(e.reason(), "bad_archive");
        let e = run(&[entry("a/b", File, None), entry("a", File, None)]).expect_err("dir/file");
        assert_eq!(e.reason(), "bad_archive");
        let e =
            run(&[entry("s", Symlink, Some("x")), entry("s/f", File, None)]).expect_err("below");
        assert_eq!(e.reason(), "unsafe_path");
        let e = run(&[entry("d/f", File, None), entry("d", Symlink, Some("x"))]).expect_err("over");
        assert_eq!(e.reason(), "unsafe_path");
        let p = run(&[
            entry("f", File, None),
            entry("h", Hardlink, Some("f")),
            entry("f", File, None),
        ])
        .expect("replace");
        assert_eq!(p[2].action, Action::File { replace: true });
        let e = run(&[entry("h", Hardlink, Some("nope"))]).expect_err("no target");
        assert_eq!(e.reason(), "unsafe_path");
        let e = run(&[entry("f", File, None), entry("f", Hardlink, Some("f"))]).expect_err("self");
        assert_eq!(e.reason(), "bad_archive");
    }
}
