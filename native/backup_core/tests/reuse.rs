//! Reusing the previous archive (issue 15): every archive made with a PREV is the source tree
//! for GNU tar (`diff -r`), passes `gzip -t` and our `verify`; unchanged files' units are
//! copied, changed and new files compressed; a PREV with one flipped byte in a reused range is
//! caught and that unit's files compressed again; a missing, foreign or older PREV is not used.

mod common;
use backup_core::archive::{self, ArchiveOptions, JobControl, Source, Summary};
use common::pseudo_random;
use proptest::prelude::*;
use sha2::{Digest as _, Sha256};
use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;

fn texty(n: usize, seed: u64) -> Vec<u8> {
    let words = [
        "zotonic ", "media ", "<p>", "</p>\n", "archive ", "backup ", "site ",
    ];
    let mut x = seed | 1;
    let mut v = Vec::with_capacity(n + 16);
    while v.len() < n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(words[(x % words.len() as u64) as usize].as_bytes());
    }
    v.truncate(n);
    v
}

/// Photos, pages, many small files in a few dirs, a symlink, an empty dir.
fn make_tree(root: &Path, small: usize) {
    fs::create_dir_all(root.join("2024/01")).expect("mkdir");
    fs::create_dir_all(root.join("2024/02/empty")).expect("mkdir");
    fs::create_dir_all(root.join("small")).expect("mkdir");
    for i in 0..6u64 {
        fs::write(
            root.join(format!("2024/01/photo{i}.jpg")),
            pseudo_random(200_000 + i as usize * 77_777, i + 1),
        )
        .expect("write");
        fs::write(
            root.join(format!("2024/01/page{i}.html")),
            texty(90_000 + i as usize * 1_111, i + 100),
        )
        .expect("write");
    }
    for i in 0..small {
        fs::write(
            root.join(format!("small/f{i:04}.txt")),
            texty(500 + (i * 997) % 9_000, i as u64 + 7),
        )
        .expect("write");
    }
    symlink("2024/01/photo0.jpg", root.join("link")).expect("symlink");
}

fn opts() -> ArchiveOptions {
    ArchiveOptions {
        threads: 2,
        fsync: false,
        ..ArchiveOptions::default()
    }
}

/// Archives `src` into `out` reusing `prev`, and checks that the sha256 the summary reports
/// (resumed from PREV's checkpoints while the output is a copy of it) is the file's.
fn make(src: &Path, out: &Path, prev: Option<&Path>) -> Summary {
    let s = archive::create_reusing(
        &Source::Dir(src.to_path_buf()),
        out,
        &opts(),
        prev,
        &JobControl::new(),
    )
    .expect("archive");
    let bytes = fs::read(out).expect("read the archive");
    assert_eq!(s.sha256, hex(&Sha256::digest(&bytes)), "{}", out.display());
    s
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// GNU tar extracts the tree exactly, gzip -t passes, and so does our verify.
fn assert_is_tree(archive_path: &Path, src: &Path, scratch: &Path) {
    let gz = Command::new("gzip")
        .arg("-t")
        .arg(archive_path)
        .status()
        .expect("gzip runs");
    assert!(gz.success(), "gzip -t {}", archive_path.display());
    let dest = scratch.join(format!(
        "x-{}",
        archive_path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("a")
    ));
    let _ = fs::remove_dir_all(&dest);
    fs::create_dir_all(&dest).expect("mkdir");
    let tar = Command::new("tar")
        .arg("-xzf")
        .arg(archive_path)
        .arg("-C")
        .arg(&dest)
        .status()
        .expect("tar runs");
    assert!(tar.success());
    let diff = Command::new("diff")
        .arg("-r")
        .arg(src)
        .arg(&dest)
        .output()
        .expect("diff runs");
    assert!(
        diff.status.success(),
        "diff -r: {}",
        String::from_utf8_lossy(&diff.stdout)
    );
    let report = archive::verify(archive_path, &JobControl::new()).expect("verify");
    assert!(report.manifest_checked);
}

struct Dirs {
    _tmp: tempfile::TempDir,
    src: PathBuf,
    out: PathBuf,
}

fn dirs(small: usize) -> Dirs {
    let tmp = tempfile::tempdir().expect("tempdir");
    let src = tmp.path().join("src");
    let out = tmp.path().join("out");
    fs::create_dir_all(&out).expect("mkdir");
    make_tree(&src, small);
    Dirs {
        src,
        out,
        _tmp: tmp,
    }
}

#[test]
fn unchanged_tree_reuses_every_file_and_writes_the_same_bytes() {
    let d = dirs(200);
    let a1 = d.out.join("a1.tar.gz");
    let a2 = d.out.join("a2.tar.gz");
    let s1 = make(&d.src, &a1, None);
    assert!(s1.reuse.is_none());
    let s2 = make(&d.src, &a2, Some(&a1));
    let r = s2.reuse.expect("reuse summary");
    assert_eq!(r.unusable, None);
    assert_eq!(r.rejected_units, 0);
    // everything but the symlink (its unit is always written anew)
    assert_eq!(r.reused_entries, s2.files - 1);
    assert_eq!(r.reused_bytes, s2.bytes_in);
    assert_eq!(
        r.cloned_bytes + r.copied_bytes + r.written_bytes,
        r.reused_compressed
    );
    // cloned (and the ends copied) where the file system shares extents, else written: one
    // way per archive
    assert!(r.written_bytes == 0 || r.cloned_bytes + r.copied_bytes == 0);
    assert_eq!(s1.sha256, s2.sha256);
    assert_eq!(fs::read(&a1).expect("a1"), fs::read(&a2).expect("a2"));
    assert_is_tree(&a2, &d.src, &d.out);
}

#[test]
fn changed_added_and_removed_files_are_compressed_and_the_rest_reused() {
    let d = dirs(200);
    let a1 = d.out.join("a1.tar.gz");
    make(&d.src, &a1, None);
    // change one photo (same size), one small file, add a dir, remove a page
    fs::write(
        d.src.join("2024/01/photo3.jpg"),
        pseudo_random(200_000 + 3 * 77_777, 99),
    )
    .expect("write");
    fs::write(d.src.join("small/f0100.txt"), b"changed").expect("write");
    fs::create_dir_all(d.src.join("2025/05")).expect("mkdir");
    fs::write(d.src.join("2025/05/new.jpg"), pseudo_random(123_456, 5)).expect("write");
    fs::remove_file(d.src.join("2024/01/page4.html")).expect("rm");
    let a2 = d.out.join("a2.tar.gz");
    let s2 = make(&d.src, &a2, Some(&a1));
    let r = s2.reuse.expect("reuse summary");
    assert_eq!(r.rejected_units, 0);
    assert!(r.reused_entries > 0);
    assert!(r.reused_entries < s2.files - 3, "{r:?}");
    assert_is_tree(&a2, &d.src, &d.out);
    // and a third from the second: chains work
    fs::write(d.src.join("2025/05/newer.html"), texty(70_000, 3)).expect("write");
    let a3 = d.out.join("a3.tar.gz");
    let s3 = make(&d.src, &a3, Some(&a2));
    assert!(s3.reuse.expect("reuse").reused_entries > 0);
    assert_is_tree(&a3, &d.src, &d.out);
}

#[test]
fn flipped_byte_in_a_reused_range_is_caught_and_that_unit_compressed_again() {
    let d = dirs(50);
    let a1 = d.out.join("a1.tar.gz");
    let s1 = make(&d.src, &a1, None);
    // flip one byte in every 64 KiB stretch in turn: each time exactly one unit is rejected
    // (or, past the entries, the index is), and the new archive is still the tree
    let len = s1.bytes_out;
    let mut rejected_seen = 0;
    for (i, at) in [len / 7, len / 3, len / 2, len * 4 / 5]
        .into_iter()
        .enumerate()
    {
        let bad = d.out.join(format!("bad{i}.tar.gz"));
        fs::copy(&a1, &bad).expect("copy");
        let mut f = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&bad)
            .expect("open");
        let mut b = [0u8; 1];
        f.seek(SeekFrom::Start(at)).expect("seek");
        f.read_exact(&mut b).expect("read");
        f.seek(SeekFrom::Start(at)).expect("seek");
        f.write_all(&[b[0] ^ 0x10]).expect("write");
        drop(f);
        let out = d.out.join(format!("re{i}.tar.gz"));
        let s = make(&d.src, &out, Some(&bad));
        let r = s.reuse.expect("reuse summary");
        assert_eq!(r.unusable, None);
        assert_eq!(r.rejected_units, 1, "flip at {at}: {r:?}");
        // a unit's damage is seen by the crc32 of its compressed bytes (then that set is
        // written again without it), the index's by its own checks
        let (what, why) = &r.rejected[0];
        assert!(
            (what.starts_with("(unit at byte") && why.contains("recorded crc32"))
                || what == "(index)",
            "flip at {at}: {what}: {why}"
        );
        rejected_seen += r.rejected.len();
        assert!(r.reused_entries > 0);
        assert_is_tree(&out, &d.src, &d.out);
    }
    assert_eq!(rejected_seen, 4);
}

#[test]
fn missing_foreign_truncated_and_zstd_prev_are_not_used() {
    let d = dirs(10);
    let a1 = d.out.join("a1.tar.gz");
    make(&d.src, &a1, None);
    let gnu = d.out.join("gnu.tar.gz");
    let st = Command::new("tar")
        .arg("-czf")
        .arg(&gnu)
        .arg("-C")
        .arg(&d.src)
        .arg(".")
        .status()
        .expect("tar");
    assert!(st.success());
    let cut = d.out.join("cut.tar.gz");
    let bytes = fs::read(&a1).expect("read");
    fs::write(&cut, &bytes[..bytes.len() - 100]).expect("write");
    #[cfg_attr(not(feature = "cli"), allow(unused_mut))]
    let mut prevs = vec![d.out.join("missing.tar.gz"), gnu, cut];
    // zstd archives are written only with the CLI's feature (on in the workspace's test run).
    #[cfg(feature = "cli")]
    {
        let zst = d.out.join("a1.tar.zst");
        archive::create(
            &Source::Dir(d.src.clone()),
            &zst,
            &ArchiveOptions {
                format: archive::Format::Zstd,
                ..opts()
            },
            &JobControl::new(),
        )
        .expect("zst");
        prevs.push(zst);
    }
    for (i, prev) in prevs.iter().enumerate() {
        let out = d.out.join(format!("n{i}.tar.gz"));
        let s = make(&d.src, &out, Some(prev));
        let r = s.reuse.expect("reuse summary");
        assert!(r.unusable.is_some(), "{} was used", prev.display());
        assert_eq!(r.reused_entries, 0);
        assert_is_tree(&out, &d.src, &d.out);
    }
}

#[test]
fn cancel_during_reuse_leaves_no_output() {
    let d = dirs(100);
    let a1 = d.out.join("a1.tar.gz");
    make(&d.src, &a1, None);
    let ctl = JobControl::new();
    ctl.cancel();
    let out = d.out.join("a2.tar.gz");
    let r = archive::create_reusing(&Source::Dir(d.src.clone()), &out, &opts(), Some(&a1), &ctl);
    assert!(matches!(r, Err(backup_core::Error::Cancelled)));
    assert!(!out.exists());
    assert!(!d.out.join("a2.tar.gz.tmp").exists());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]
    /// Any mix of edits between two sets: the second is always exactly the tree.
    #[test]
    fn reuse_after_random_edits_is_always_the_tree(
        edits in prop::collection::vec((0usize..4, 0usize..60, any::<u64>()), 0..12),
    ) {
        let d = dirs(60);
        let a1 = d.out.join("a1.tar.gz");
        make(&d.src, &a1, None);
        for (kind, i, seed) in edits {
            let p = d.src.join(format!("small/f{i:04}.txt"));
            match kind {
                0 => { let _ = fs::remove_file(&p); }
                1 => fs::write(&p, texty(100 + (seed % 20_000) as usize, seed)).expect("write"),
                2 => fs::write(d.src.join(format!("small/g{seed}.bin")),
                               pseudo_random((seed % 100_000) as usize, seed)).expect("write"),
                _ => {
                    let q = d.src.join(format!("2024/01/photo{}.jpg", i % 6));
                    fs::write(&q, pseudo_random(1000 + (seed % 300_000) as usize, seed)).expect("write");
                }
            }
        }
        let a2 = d.out.join("a2.tar.gz");
        let s = make(&d.src, &a2, Some(&a1));
        prop_assert_eq!(s.reuse.expect("reuse").rejected_units, 0);
        assert_is_tree(&a2, &d.src, &d.out);
    }
}

#[test]
fn sha256_resumed_from_checkpoints_is_the_files_whatever_changed_where() {
    // ~40 MiB of incompressible files: the archive passes several 8 MiB checkpoints
    let d = dirs(0);
    fs::create_dir_all(d.src.join("big")).expect("mkdir");
    for i in 0..20u64 {
        fs::write(
            d.src.join(format!("big/m{i:02}.bin")),
            pseudo_random(2_000_000 + i as usize * 1_000, 1000 + i),
        )
        .expect("write");
    }
    let a1 = d.out.join("a1.tar.gz");
    make(&d.src, &a1, None);
    // unchanged: the same file, its sha256 resumed from the last checkpoint
    let a2 = d.out.join("a2.tar.gz");
    let s2 = make(&d.src, &a2, Some(&a1));
    assert_eq!(fs::read(&a1).expect("a1"), fs::read(&a2).expect("a2"));
    let resumed = s2.reuse.expect("reuse").sha256_resumed_bytes;
    assert!(
        resumed >= 32 << 20 && resumed + (8 << 20) >= s2.bytes_out,
        "{resumed} of {} bytes resumed",
        s2.bytes_out
    );
    // a change in the middle: the copy ends there, the rest is hashed from a checkpoint
    fs::write(d.src.join("big/m10.bin"), pseudo_random(2_010_000, 7)).expect("write");
    let a3 = d.out.join("a3.tar.gz");
    let s3 = make(&d.src, &a3, Some(&a2));
    let r3 = s3.reuse.expect("reuse");
    assert!(r3.reused_entries > 10);
    assert!(r3.sha256_resumed_bytes >= 8 << 20, "a copy up to m10");
    // an upload at the end of the walk order: a copy up to there
    fs::create_dir_all(d.src.join("zz-new")).expect("mkdir");
    fs::write(d.src.join("zz-new/up.bin"), pseudo_random(3_000_000, 8)).expect("write");
    let a4 = d.out.join("a4.tar.gz");
    make(&d.src, &a4, Some(&a3));
    // a change in the very first file
    fs::write(d.src.join("2024/01/page0.html"), texty(90_001, 9)).expect("write");
    let a5 = d.out.join("a5.tar.gz");
    make(&d.src, &a5, Some(&a4));
    assert_is_tree(&a5, &d.src, &d.out);
}

/// The first byte at which two files differ (their common length if one is a prefix).
fn first_difference(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// A first set of `d`, then small/f0040.txt changed (about 90 small files share a unit; it is
/// the 41st) and a second set reusing the first: both archives and the second's reuse.
fn one_change_in_a_group(d: &Dirs) -> (PathBuf, PathBuf, archive::ReuseSummary) {
    let a1 = d.out.join("a1.tar.gz");
    make(&d.src, &a1, None);
    fs::write(d.src.join("small/f0040.txt"), texty(3_333, 77)).expect("write");
    let a2 = d.out.join("a2.tar.gz");
    let r2 = make(&d.src, &a2, Some(&a1)).reuse.expect("reuse summary");
    assert_eq!(r2.rejected_units, 0, "{r2:?}");
    assert_eq!(r2.prefix_units, 1, "{r2:?}");
    // and the rest of the group, after 32 KiB of it compressed anew, as a tail
    assert_eq!(r2.tail_pieces, 1, "{r2:?}");
    (a1, a2, r2)
}

#[test]
fn a_changed_file_in_the_middle_of_a_group_keeps_the_rest_of_the_group_as_a_tail() {
    let d = dirs(200);
    let (_, a2, r2) = one_change_in_a_group(&d);
    assert!(r2.tail_compressed > 10_000, "{r2:?}");
    assert_is_tree(&a2, &d.src, &d.out);
    // the unit holding the tail records where each of its entries ends: an unchanged tree
    // copies it whole, and a change inside the copied tail keeps the files before it (across
    // the bytes compressed anew and the copied ones) as a prefix, and the rest as a tail again
    let a3 = d.out.join("a3.tar.gz");
    let r3 = make(&d.src, &a3, Some(&a2)).reuse.expect("reuse");
    assert_eq!((r3.prefix_units, r3.tail_pieces), (0, 0), "{r3:?}");
    assert_eq!(fs::read(&a2).expect("a2"), fs::read(&a3).expect("a3"));
    fs::write(d.src.join("small/f0075.txt"), texty(2_222, 79)).expect("write");
    let a4 = d.out.join("a4.tar.gz");
    let r4 = make(&d.src, &a4, Some(&a3)).reuse.expect("reuse");
    // the prefix (f0040 to f0074) ends at an end moved with the tail: its length and crc32s
    // were computed, not written by the compressor; a wrong one would fail the crc32 check
    assert_eq!(r4.rejected_units, 0, "{r4:?}");
    assert_eq!((r4.prefix_units, r4.tail_pieces), (1, 1), "{r4:?}");
    assert_is_tree(&a4, &d.src, &d.out);
}

#[test]
fn a_changed_file_in_the_middle_of_a_group_keeps_the_files_before_it_as_a_prefix_unit() {
    let d = dirs(200);
    let (_, a2, r2) = one_change_in_a_group(&d);
    assert!(r2.prefix_compressed > 10_000, "{r2:?}");
    assert!(r2.prefix_compressed < r2.reused_compressed);
    assert_is_tree(&a2, &d.src, &d.out);
    // the prefix is a unit of the new archive with its own sync points: an unchanged tree
    // reuses all of it, and a change inside it keeps the files before that change
    let a3 = d.out.join("a3.tar.gz");
    let s3 = make(&d.src, &a3, Some(&a2));
    let r3 = s3.reuse.expect("reuse summary");
    assert_eq!(r3.prefix_units, 0);
    assert_eq!(fs::read(&a2).expect("a2"), fs::read(&a3).expect("a3"));
    fs::write(d.src.join("small/f0020.txt"), texty(1_234, 78)).expect("write");
    let a4 = d.out.join("a4.tar.gz");
    let s4 = make(&d.src, &a4, Some(&a3));
    let r4 = s4.reuse.expect("reuse summary");
    assert_eq!(r4.prefix_units, 1, "{r4:?}");
    assert!(r4.prefix_compressed < r2.prefix_compressed, "{r4:?}");
    assert_is_tree(&a4, &d.src, &d.out);
}

#[test]
fn flipped_byte_inside_a_reused_prefix_is_caught_and_those_files_compressed_again() {
    let d = dirs(200);
    let (a1, a2, r2) = one_change_in_a_group(&d);
    // everything before the prefix's end is the same in both (units reused in place), and
    // the new archive's next unit starts afresh there: the prefix is the `prefix_compressed`
    // bytes before the first difference (give or take the few bytes that happen to agree)
    let one = fs::read(&a1).expect("a1");
    let at = first_difference(&one, &fs::read(&a2).expect("a2"));
    let inside = at - r2.prefix_compressed as usize / 2;
    let mut bad = one.clone();
    bad[inside] ^= 0x04;
    let bad_path = d.out.join("bad.tar.gz");
    fs::write(&bad_path, &bad).expect("write");
    let a3 = d.out.join("a3.tar.gz");
    let s3 = make(&d.src, &a3, Some(&bad_path));
    let r3 = s3.reuse.expect("reuse");
    assert_eq!(r3.unusable, None);
    assert_eq!(r3.rejected_units, 1, "{r3:?}");
    let (what, why) = &r3.rejected[0];
    assert!(
        what.starts_with("(unit at byte") && why.contains("recorded crc32"),
        "{what}: {why}"
    );
    // the prefix's files were compressed from the source; every other unit was still reused
    assert_eq!(r3.prefix_units, 0, "{r3:?}");
    assert_eq!(
        r3.reused_compressed + r2.prefix_compressed,
        r2.reused_compressed
    );
    assert_is_tree(&a3, &d.src, &d.out);
}
