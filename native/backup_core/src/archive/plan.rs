//! What a set copies from the previous archive (PREV) and what it compresses anew (issue 15):
//! the walk, joined with PREV's records unit by unit, becomes a sequence of [`Step`]s.
//!
//! * **A whole unit** of PREV whose entries all follow in the walk, unchanged on disk, is copied
//!   as a unit of its own (`Step::Reusable`).
//! * **A prefix**: when only a unit's first entries are unchanged, its bytes up to the sync
//!   point after the last of them (recorded per entry, manifest version 4) are a unit of their
//!   own (`Step::Reusable` with `prefix`).
//! * **A tail**: after a changed entry, the rest of the unit can still be copied. Its bytes
//!   start at a sync point (byte-aligned, a new deflate block) but may refer back into the
//!   input before it -- at most 32 KiB back, deflate's window. So once this set has compressed
//!   32 KiB or more of the unit's unchanged entries anew, in the same order and into the same
//!   open unit of its own, the bytes of PREV's unit from the sync point after them inflate
//!   here exactly as they did there, and the rest of the unit (up to the next changed entry's
//!   sync point, or its end) is copied after them, ending the unit (`Step::Tail`,
//!   `ParallelGzWriter::queue_raw_tail`). The planner knows the 32 KiB from PREV's records;
//!   whether this set's open unit really holds them (it may have been cut, or a file read
//!   differently) is checked where the entries are written (create.rs, `Window`): each entry
//!   compressed anew carries the length and crc32 of its tar bytes in PREV (`Match`), which
//!   must equal what was written.
//! * Everything else is one entry to compress (`Step::One`).
//!
//! Size: the planner is ~400 lines; the rest is its tests, which build real archives and check
//! the steps a set takes after each kind of change (kept beside the code they pin down).
//!
//! A copied unit, prefix or tail is used only after the checks of reuse.rs (its tar headers
//! this run would write and PREV's data crc32s combine to its recorded crc32; its copied bytes
//! have their recorded crc32), done by create.rs.

use super::create::{Item, Walked};
use super::manifest::{EntryExt, EntryKind, ManifestEntry, Unit, UnitEnd};
use super::reuse::{walk_cmp, Records, MAX_UNIT_ENTRIES};
use super::tarw::{write_header, HeaderInfo, BLOCK};
use std::cmp::Ordering;
use std::collections::VecDeque;
use std::io;
use std::os::unix::fs::MetadataExt;

/// Deflate refers back at most this many bytes of input.
pub(super) const WINDOW: u64 = 32 * 1024;

/// The length and crc32 of an entry's tar bytes (header, data, padding).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct TarBytes {
    pub(super) len: u64,
    pub(super) crc: u32,
}

impl TarBytes {
    /// These bytes followed by `len` bytes of crc32 `crc`.
    pub(super) fn then(self, crc: u32, len: u64) -> TarBytes {
        let mut h = crc32fast::Hasher::new_with_initial_len(self.crc, self.len);
        h.combine(&crc32fast::Hasher::new_with_initial_len(crc, len));
        TarBytes {
            len: self.len + len,
            crc: h.finalize(),
        }
    }
}

/// A unit of the previous archive (or its first entries), with its records.
pub(super) struct PrevUnit {
    pub(super) unit: Unit,
    pub(super) records: Vec<(ManifestEntry, EntryExt)>,
    /// The unit is the first `records` of a unit of PREV, up to the sync point after them.
    pub(super) prefix: bool,
}

/// The rest of a unit of PREV, from the sync point after one of its entries.
pub(super) struct Tail {
    /// PREV's unit.
    pub(super) unit: Unit,
    /// Index in that unit of the first entry of the tail.
    pub(super) first: usize,
    /// Where the tail starts in the unit, and its bytes.
    pub(super) from: UnitEnd,
    pub(super) span: UnitEnd,
    pub(super) records: Vec<(ManifestEntry, EntryExt)>,
}

impl Tail {
    /// Offset of its first byte in PREV.
    pub(super) fn src_offset(&self) -> u64 {
        self.unit.offset + self.from.len
    }
}

/// A walked entry that is, unchanged, entry `index` of the unit of PREV at `prev` (its
/// offset), whose tar bytes there had this length and crc32.
#[derive(Debug, Clone, Copy)]
pub(super) struct Match {
    pub(super) prev: u64,
    pub(super) index: usize,
    pub(super) tar: TarBytes,
}

/// One step of the walk, with the previous archive beside it.
pub(super) enum Step {
    /// An entry to compress (or one left out); `Some` when it is unchanged in PREV.
    One(Walked, Option<Match>),
    /// Consecutive entries that are exactly the entries of a unit of the previous archive (or
    /// of a prefix of one), unchanged on disk.
    Reusable(PrevUnit, Vec<Item>),
    /// Consecutive entries that are the rest of a unit of PREV from one of its sync points,
    /// unchanged on disk, after 32 KiB or more of that unit's entries (module doc).
    Tail(Tail, Vec<Item>),
}

/// `end` of an entry of unit `u` when it lies inside `u` (PREV is untrusted: an end outside
/// its unit is dropped, never copied).
pub(super) fn end_inside(end: Option<UnitEnd>, u: &Unit) -> Option<UnitEnd> {
    end.filter(|e| e.len > 0 && e.len <= u.len && e.ulen > 0 && e.ulen <= u.ulen)
}

/// A unit of PREV as the walk passes through it.
struct Cursor {
    unit: Unit,
    records: Vec<(ManifestEntry, EntryExt)>,
    /// The first record the walk has not passed.
    pos: usize,
    /// Where in the unit's input the current run of unchanged entries starts (the end of the
    /// last entry that changed, went or had a new one put before it); `None` when not known.
    run_from: Option<UnitEnd>,
}

impl Cursor {
    fn end_of(&self, i: usize) -> Option<UnitEnd> {
        end_inside(self.records.get(i)?.1.end, &self.unit)
    }

    fn start_of(&self, i: usize) -> Option<UnitEnd> {
        match i {
            0 => Some(UnitEnd::START),
            _ => self.end_of(i - 1),
        }
    }
}

/// The walk, joined with the previous archive's records (both in walk order).
pub(super) struct Planner<'w, 'c> {
    walk: Box<dyn Iterator<Item = Walked> + 'w>,
    ahead: VecDeque<Walked>,
    records: Option<Records<'c>>,
    /// A record read but not yet in a unit.
    peeked: Option<(ManifestEntry, EntryExt)>,
    cur: Option<Cursor>,
    /// Why reading the previous archive's records stopped early.
    pub(super) stopped: Option<String>,
}

impl<'w, 'c> Planner<'w, 'c> {
    pub(super) fn new(
        walk: Box<dyn Iterator<Item = Walked> + 'w>,
        records: Option<Records<'c>>,
    ) -> Self {
        Planner {
            walk,
            ahead: VecDeque::new(),
            records,
            peeked: None,
            cur: None,
            stopped: None,
        }
    }

    fn record(&mut self) -> Option<(ManifestEntry, EntryExt)> {
        if let Some(r) = self.peeked.take() {
            return Some(r);
        }
        let recs = self.records.as_mut()?;
        match recs.next_record() {
            Ok(r) => r,
            Err(why) => {
                self.stopped = Some(why);
                self.records = None;
                None
            }
        }
    }

    /// Reads the next unit of the previous archive into the cursor; false at the end.
    fn load_unit(&mut self) -> bool {
        loop {
            let Some(first) = self.record() else {
                return false;
            };
            let Some(unit) = first.1.unit else { continue };
            let mut records = vec![first];
            let mut too_many = false;
            while let Some(r) = self.record() {
                if r.1.unit != Some(unit) {
                    self.peeked = Some(r);
                    break;
                }
                if records.len() < MAX_UNIT_ENTRIES {
                    records.push(r);
                } else {
                    too_many = true;
                }
            }
            if too_many {
                continue;
            }
            self.cur = Some(Cursor {
                unit,
                records,
                pos: 0,
                run_from: Some(UnitEnd::START),
            });
            return true;
        }
    }

    fn pull(&mut self) -> Option<Walked> {
        self.ahead.pop_front().or_else(|| self.walk.next())
    }

    /// How many of the cursor's records from `i` on follow in the walk (`first` being the
    /// walked entry at `i`), unchanged.
    fn unchanged_run(&mut self, i: usize) -> usize {
        let Some(cur) = self.cur.as_ref() else {
            return 0;
        };
        let k = cur.records.len();
        while self.ahead.len() + i + 1 < k {
            match self.walk.next() {
                Some(w) => self.ahead.push_back(w),
                None => break,
            }
        }
        1 + self
            .ahead
            .iter()
            .zip(&cur.records[i + 1..])
            .take_while(|(w, r)| matches!(w, Walked::Item(x) if unchanged(x, r)))
            .count()
    }

    /// `first` and the walked entries after it, `n` in all (counted by `unchanged_run`).
    fn take_items(&mut self, first: Item, n: usize) -> Vec<Item> {
        let mut items = Vec::with_capacity(n);
        items.push(first);
        for _ in 1..n {
            if let Some(Walked::Item(i)) = self.ahead.pop_front() {
                items.push(i);
            }
        }
        items
    }
}

/// Whether `item` on disk is the entry `rec` of the previous archive, unchanged: same name,
/// kind, size, mode, mtime and ctime (to the nanosecond) and inode. Only files and
/// directories are reused (a symlink's unit is always written anew).
fn unchanged(item: &Item, rec: &(ManifestEntry, EntryExt)) -> bool {
    let (e, x) = rec;
    let m = &item.meta;
    let kind_ok = match e.kind {
        EntryKind::File => m.is_file() && m.len() == e.size,
        EntryKind::Dir => m.is_dir(),
        _ => false,
    };
    kind_ok
        && item.name == e.path
        && m.mode() & 0o7777 == e.mode
        && m.mtime() == e.mtime
        && m.mtime_nsec() as u32 == x.mtime_nsec
        && m.ctime() == x.ctime
        && m.ctime_nsec() as u32 == x.ctime_nsec
        && m.ino() == x.ino
}

impl Iterator for Planner<'_, '_> {
    type Item = Step;

    fn next(&mut self) -> Option<Step> {
        let w = self.pull()?;
        if self.records.is_none() && self.cur.is_none() {
            return Some(Step::One(w, None));
        }
        let Walked::Item(item) = w else {
            return Some(Step::One(w, None));
        };
        // the cursor onto the record of the item's name, if PREV has one
        loop {
            let Some(cur) = self.cur.as_mut() else {
                if self.load_unit() {
                    continue;
                }
                return Some(Step::One(Walked::Item(item), None));
            };
            let Some((rec, _)) = cur.records.get(cur.pos) else {
                self.cur = None;
                continue;
            };
            match walk_cmp(&rec.path, &item.name) {
                Ordering::Less => {
                    // gone from the tree
                    cur.run_from = cur.end_of(cur.pos);
                    cur.pos += 1;
                }
                Ordering::Greater => {
                    // new: it comes before the record in this set
                    cur.run_from = cur.start_of(cur.pos);
                    return Some(Step::One(Walked::Item(item), None));
                }
                Ordering::Equal => break,
            }
        }
        let Some(cur) = self.cur.as_mut() else {
            return Some(Step::One(Walked::Item(item), None));
        };
        let i = cur.pos;
        if !unchanged(&item, &cur.records[i]) {
            cur.run_from = cur.end_of(i);
            cur.pos += 1;
            return Some(Step::One(Walked::Item(item), None));
        }
        let whole = cur.unit;
        // a tail needs 32 KiB of the unit's input before it, in this set as in PREV
        let tail_from = cur
            .run_from
            .zip(cur.start_of(i))
            .filter(|(run, start)| i > 0 && start.ulen >= run.ulen.saturating_add(WINDOW))
            .map(|(_, start)| start);
        if i == 0 || tail_from.is_some() {
            let same = self.unchanged_run(i);
            let Some(cur) = self.cur.as_mut() else {
                return Some(Step::One(Walked::Item(item), None));
            };
            let k = cur.records.len();
            // where the copy ends: the unit's end when the run reaches it, else the last
            // recorded sync point of the run inside the unit
            let stop = if i + same == k {
                Some((k, UnitEnd::whole(&whole)))
            } else {
                (i + 1..=i + same).rev().find_map(|n| {
                    cur.end_of(n - 1)
                        .filter(|e| e.len < whole.len && e.ulen < whole.ulen)
                        .map(|e| (n, e))
                })
            };
            if let Some((n, end)) = stop {
                let from = tail_from.unwrap_or(UnitEnd::START);
                if let Some(span) = from.span_to(&end) {
                    let records = cur.records[i..n].to_vec();
                    cur.pos = n;
                    cur.run_from = Some(end);
                    let items = self.take_items(item, n - i);
                    return Some(if i == 0 {
                        Step::Reusable(
                            PrevUnit {
                                unit: end.prefix_of(&whole),
                                records,
                                prefix: n < k,
                            },
                            items,
                        )
                    } else {
                        Step::Tail(
                            Tail {
                                unit: whole,
                                first: i,
                                from,
                                span,
                                records,
                            },
                            items,
                        )
                    });
                }
            }
        }
        // compressed anew, as an entry a tail may follow
        let Some(cur) = self.cur.as_mut() else {
            return Some(Step::One(Walked::Item(item), None));
        };
        let tag = cur
            .start_of(i)
            .zip(cur.end_of(i))
            .and_then(|(s, e)| s.span_to(&e))
            .map(|span| Match {
                prev: whole.offset,
                index: i,
                tar: TarBytes {
                    len: span.ulen,
                    crc: span.crc,
                },
            });
        cur.pos += 1;
        Some(Step::One(Walked::Item(item), tag))
    }
}

/// Whether PREV's bytes of `records` (`ulen` bytes of crc32 `crc` when inflated) inflate to
/// what this run would write for `items` (reuse.rs, check 2), without inflating them: the
/// crc32 of the tar headers this run writes, PREV's recorded data crc32s and the zero padding,
/// combined, and the total length must be `crc` and `ulen`.
pub(super) fn inflates_to(
    items: &[Item],
    records: &[(ManifestEntry, EntryExt)],
    ulen: u64,
    crc: u32,
) -> io::Result<bool> {
    const ZEROS: [u8; BLOCK] = [0; BLOCK];
    let mut all = TarBytes::default();
    let mut h = Vec::with_capacity(BLOCK);
    for (item, (rec, _)) in items.iter().zip(records) {
        h.clear();
        write_header(&mut h, &header_of(item, rec.kind))?;
        all = all.then(crc32fast::hash(&h), h.len() as u64);
        if rec.kind == EntryKind::File {
            let pad = (BLOCK - (rec.size % BLOCK as u64) as usize) % BLOCK;
            all = all
                .then(rec.crc32, rec.size)
                .then(crc32fast::hash(&ZEROS[..pad]), pad as u64);
        }
    }
    Ok(items.len() == records.len() && all == TarBytes { len: ulen, crc })
}

fn header_of(item: &Item, kind: EntryKind) -> HeaderInfo<'_> {
    HeaderInfo {
        name: &item.name,
        kind,
        size: if kind == EntryKind::File {
            item.meta.len()
        } else {
            0
        },
        mode: item.meta.mode(),
        mtime: item.meta.mtime(),
        uid: item.meta.uid() as u64,
        gid: item.meta.gid() as u64,
        link: &[],
    }
}

#[cfg(test)]
mod tests {
    use super::super::control::JobControl;
    use super::super::create::{create, create_reusing, lossy, walk, ArchiveOptions, Source};
    use super::super::reuse::Prev;
    use super::*;
    use std::fs;
    use std::path::{Path, PathBuf};

    /// The units of `archive` with their records, read as a later set reads them.
    fn prev_units(archive: &Path) -> Vec<PrevUnit> {
        let ctl = JobControl::new();
        let prev = Prev::open(archive).expect("an index");
        let records = prev.records(&ctl).expect("records");
        let mut planner = Planner::new(Box::new(std::iter::empty()), Some(records));
        let mut units = Vec::new();
        while planner.load_unit() {
            if let Some(c) = planner.cur.take() {
                units.push(PrevUnit {
                    unit: c.unit,
                    records: c.records,
                    prefix: false,
                });
            }
        }
        units
    }

    /// A tree of files in `src/d/` (in a temp dir), archived as `a1.tar.gz` beside it.
    fn tree_of(files: Vec<(&str, Vec<u8>)>) -> (tempfile::TempDir, PathBuf, PathBuf) {
        let dir = tempfile::tempdir().expect("tempdir");
        let src = dir.path().join("src");
        fs::create_dir_all(src.join("d")).expect("mkdir");
        for (name, data) in files {
            fs::write(src.join("d").join(name), data).expect("write");
        }
        let archive = dir.path().join("a1.tar.gz");
        archive_of(&src, &archive);
        (dir, src, archive)
    }

    fn archive_of(src: &Path, archive: &Path) {
        let opts = ArchiveOptions {
            fsync: false,
            ..ArchiveOptions::default()
        };
        create(
            &Source::Dir(src.to_path_buf()),
            archive,
            &opts,
            &JobControl::new(),
        )
        .expect("create");
    }

    /// The steps of a set of `src` after `archive`, in words: `one X`, `one X (in PREV)`,
    /// `unit X Y`, `prefix X Y`, `tail X Y`.
    fn steps(src: &Path, archive: &Path) -> Vec<String> {
        let ctl = JobControl::new();
        let prev = Prev::open(archive).expect("an index");
        let source = Source::Dir(src.to_path_buf());
        let planner = Planner::new(
            walk(&source).expect("walk"),
            Some(prev.records(&ctl).expect("records")),
        );
        let names = |items: &[Item]| -> String {
            let n: Vec<String> = items.iter().map(|i| lossy(&i.name)).collect();
            n.join(" ")
        };
        let mut out = Vec::new();
        for step in planner {
            out.push(match step {
                Step::One(Walked::Item(i), None) => format!("one {}", lossy(&i.name)),
                Step::One(Walked::Item(i), Some(_)) => format!("one {} (in PREV)", lossy(&i.name)),
                Step::One(Walked::Skipped(p, _), _) => format!("skipped {p}"),
                Step::Reusable(u, items) => {
                    let span = u.records.len();
                    assert!(inflates_to(&items, &u.records, u.unit.ulen, u.unit.crc).expect("h"));
                    assert_eq!(items.len(), span);
                    let kind = if u.prefix { "prefix" } else { "unit" };
                    format!("{kind} {}", names(&items))
                }
                Step::Tail(t, items) => {
                    assert!(inflates_to(&items, &t.records, t.span.ulen, t.span.crc).expect("h"));
                    format!("tail {}", names(&items))
                }
            });
        }
        out
    }

    #[test]
    fn planner_offers_the_unchanged_first_entries_of_a_unit_up_to_the_sync_point_after_them() {
        let names = ["a", "b", "c", "d", "e"];
        let (_dir, src, archive) =
            tree_of(names.map(|n| (n, n.repeat(3000).into_bytes())).to_vec());
        let group = prev_units(&archive)
            .into_iter()
            .find(|u| u.records.len() == 5)
            .expect("the five files in one unit");
        // every entry's end is recorded, the last one's is the unit's
        let ends: Vec<UnitEnd> = group
            .records
            .iter()
            .map(|(_, x)| x.end.expect("an end"))
            .collect();
        assert!(ends.windows(2).all(|w| w[0].len < w[1].len));
        assert_eq!(ends[4], UnitEnd::whole(&group.unit));
        fs::write(src.join("d/c"), b"changed").expect("write");
        let got = steps(&src, &archive);
        assert_eq!(
            got,
            [
                "unit ./",
                "unit ./d/",
                "prefix ./d/a ./d/b",
                "one ./d/c",
                // 7 KB after the change: too little for a tail
                "one ./d/d (in PREV)",
                "one ./d/e (in PREV)",
            ]
        );
    }

    #[test]
    fn planner_offers_the_rest_of_a_unit_after_32_kib_of_its_unchanged_entries() {
        let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l"];
        // 12,800 tar bytes each: three of them hold 32 KiB, two do not
        let (dir, src, archive) =
            tree_of(names.map(|n| (n, n.repeat(12_288).into_bytes())).to_vec());
        assert!(prev_units(&archive).iter().any(|u| u.records.len() == 12));
        let keep = fs::read_dir(src.join("d")).expect("ls").count();
        assert_eq!(keep, 12);
        // one change: the first two as a prefix, three anew, the rest a tail to the unit's end
        fs::write(src.join("d/c"), b"changed").expect("write");
        assert_eq!(
            steps(&src, &archive),
            [
                "unit ./",
                "unit ./d/",
                "prefix ./d/a ./d/b",
                "one ./d/c",
                "one ./d/d (in PREV)",
                "one ./d/e (in PREV)",
                "one ./d/f (in PREV)",
                "tail ./d/g ./d/h ./d/i ./d/j ./d/k ./d/l",
            ]
        );
        // two changes 2 entries apart, a file gone and one new: the run starts again after
        // each; a tail ends at the sync point before the next change
        fs::write(src.join("d/f"), b"changed").expect("write");
        fs::remove_file(src.join("d/i")).expect("rm");
        fs::write(src.join("d/ka"), b"new").expect("write");
        assert_eq!(
            steps(&src, &archive),
            [
                "unit ./",
                // a file went and one came: the directory changed
                "one ./d/",
                "prefix ./d/a ./d/b",
                "one ./d/c",
                "one ./d/d (in PREV)",
                "one ./d/e (in PREV)",
                "one ./d/f",
                "one ./d/g (in PREV)",
                "one ./d/h (in PREV)",
                "one ./d/j (in PREV)",
                "one ./d/k (in PREV)",
                "one ./d/ka",
                "one ./d/l (in PREV)",
            ]
        );
        // the first entry changed: no prefix, the tail after three unchanged ones
        let archive2 = dir.path().join("a2.tar.gz");
        archive_of(&src, &archive2);
        fs::write(src.join("d/a"), b"changed").expect("write");
        fs::write(src.join("d/h"), b"changed").expect("write");
        assert_eq!(
            steps(&src, &archive2),
            [
                "unit ./",
                "unit ./d/",
                "one ./d/a",
                "one ./d/b (in PREV)",
                "one ./d/c (in PREV)",
                "one ./d/d (in PREV)",
                // b, c (now 7 bytes) and d: 26.6 KB; with e 39.4 KB
                "one ./d/e (in PREV)",
                "tail ./d/f ./d/g",
                "one ./d/h",
                "one ./d/j (in PREV)",
                "one ./d/k (in PREV)",
                "one ./d/ka (in PREV)",
                "one ./d/l (in PREV)",
            ]
        );
    }

    #[test]
    fn inflates_to_only_when_this_runs_headers_and_prevs_crc32s_give_the_units_crc32() {
        let files = [("a.txt", 700usize), ("b.txt", 5000), ("c.txt", 1)];
        let (_dir, src, archive) = tree_of(files.map(|(n, len)| (n, vec![b'x'; len])).to_vec());
        let files = prev_units(&archive)
            .into_iter()
            .find(|u| u.records.len() == 3)
            .expect("the three small files grouped in one unit");
        let items = |rename: Option<&[u8]>| -> Vec<Item> {
            files
                .records
                .iter()
                .map(|(rec, _)| {
                    let path = src.join(String::from_utf8_lossy(&rec.path[2..]).as_ref());
                    let name = match rename {
                        Some(n) if rec.path.ends_with(b"b.txt") => n.to_vec(),
                        _ => rec.path.clone(),
                    };
                    Item {
                        name,
                        meta: fs::symlink_metadata(&path).expect("lstat"),
                        path,
                    }
                })
                .collect()
        };
        assert!(inflates_to(
            &items(None),
            &files.records,
            files.unit.ulen,
            files.unit.crc
        )
        .expect("headers"));
        // a header this run would write differently (here: the name) does not match
        let renamed = items(Some(b"./d/B.txt"));
        assert!(
            !inflates_to(&renamed, &files.records, files.unit.ulen, files.unit.crc)
                .expect("headers")
        );
        // nor does a record whose data crc32 is not the one the unit was written with
        let mut forged = files.records.clone();
        forged[1].0.crc32 ^= 1;
        assert!(
            !inflates_to(&items(None), &forged, files.unit.ulen, files.unit.crc).expect("headers")
        );
        // nor a unit whose recorded length is off
        let mut longer = files.unit;
        longer.ulen += 512;
        assert!(
            !inflates_to(&items(None), &files.records, longer.ulen, longer.crc).expect("headers")
        );
    }

    /// GNU tar extracts `archive` to exactly `src`.
    fn assert_tar_is(archive: &Path, src: &Path) {
        let dest = archive.with_extension("x");
        fs::create_dir_all(&dest).expect("mkdir");
        let tar = std::process::Command::new("tar")
            .arg("-xzf")
            .arg(archive)
            .arg("-C")
            .arg(&dest)
            .status()
            .expect("tar runs");
        assert!(tar.success());
        let diff = std::process::Command::new("diff")
            .arg("-r")
            .arg(src)
            .arg(&dest)
            .status()
            .expect("diff runs");
        assert!(
            diff.success(),
            "{} is not {}",
            archive.display(),
            src.display()
        );
    }

    #[test]
    fn flipped_byte_inside_a_reused_tail_is_caught_and_those_files_compressed_again() {
        let names = ["a", "b", "c", "d", "e", "f", "g", "h"];
        let text = |(n, name): (usize, &'static str)| {
            let text: String = (0..1_000)
                .map(|i| format!("<p>{name} {} {}</p>\n", i * 7 % 13, (i + n) % 17))
                .collect();
            (name, text.as_bytes()[..12_000].to_vec())
        };
        let (dir, src, a1) = tree_of(names.into_iter().enumerate().map(text).collect());
        fs::write(src.join("d/b"), b"changed").expect("write");
        // where the tail is in a1
        let ctl = JobControl::new();
        let prev = Prev::open(&a1).expect("an index");
        let source = Source::Dir(src.clone());
        let planner = Planner::new(
            walk(&source).expect("walk"),
            Some(prev.records(&ctl).expect("records")),
        );
        let (off, len) = planner
            .filter_map(|s| match s {
                Step::Tail(t, _) => Some((t.src_offset(), t.span.len)),
                _ => None,
            })
            .next()
            .expect("a tail: f, g, h after c, d, e");
        let opts = ArchiveOptions {
            fsync: false,
            ..ArchiveOptions::default()
        };
        let again = |prev: &Path, out: &Path| {
            let s = create_reusing(&source, out, &opts, Some(prev), &ctl).expect("create");
            assert_tar_is(out, &src);
            s.reuse.expect("reuse")
        };
        let r = again(&a1, &dir.path().join("a2.tar.gz"));
        assert_eq!((r.tail_pieces, r.tail_compressed), (1, len), "{r:?}");
        assert_eq!((r.prefix_units, r.rejected_units), (1, 0), "{r:?}");
        let mut bad = fs::read(&a1).expect("read");
        bad[(off + len / 2) as usize] ^= 0x20;
        let bad_path = dir.path().join("bad.tar.gz");
        fs::write(&bad_path, &bad).expect("write");
        let r = again(&bad_path, &dir.path().join("a3.tar.gz"));
        assert_eq!(r.rejected_units, 1, "{r:?}");
        assert_eq!(r.rejected[0].0, format!("(unit at byte {off})"));
        assert!(r.rejected[0].1.contains("recorded crc32"), "{r:?}");
        assert_eq!((r.tail_pieces, r.prefix_units), (0, 1), "{r:?}");
    }

    #[test]
    fn a_tail_the_planner_offers_is_not_copied_when_this_sets_unit_was_cut_inside_the_32_kib() {
        // a changed to 495 KiB: with b and c after it the unit this set writes passes 512 KiB
        // and is cut, so d (12.8 KB) alone is before e in the open unit, not 32 KiB
        let names = ["a", "b", "c", "d", "e", "f", "g"];
        let (dir, src, a1) = tree_of(names.map(|n| (n, n.repeat(12_288).into_bytes())).to_vec());
        let big: String = (0..200_000).map(|i| format!("{} ", i % 997)).collect();
        fs::write(src.join("d/a"), &big.as_bytes()[..495 << 10]).expect("write");
        let planned = steps(&src, &a1);
        assert!(
            planned.contains(&"tail ./d/e ./d/f ./d/g".to_string()),
            "{planned:?}"
        );
        let opts = ArchiveOptions {
            fsync: false,
            ..ArchiveOptions::default()
        };
        let a2 = dir.path().join("a2.tar.gz");
        let source = Source::Dir(src.clone());
        let s = create_reusing(&source, &a2, &opts, Some(&a1), &JobControl::new()).expect("create");
        let r = s.reuse.expect("reuse");
        assert_eq!((r.tail_pieces, r.rejected_units), (0, 0), "{r:?}");
        assert_tar_is(&a2, &src);
    }
}
