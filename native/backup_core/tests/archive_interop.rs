//! Size: one short test per tool and direction (GNU tar, gzip, Python, erl_tar).
//!
//! The archive engine against the real tools: GNU tar, gzip, zstd, Python's tarfile and OTP's
//! erl_tar, in both directions, plus damage, hostile archives, vanishing files and cancel.

mod common;
use backup_core::archive::{
    self, ArchiveOptions, EntryKind, ExtractOptions, Format, JobControl, Source,
};
use common::pseudo_random;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn set_mtime(p: &Path, secs: u64) {
    let f = fs::File::open(p).expect("open for mtime");
    f.set_modified(UNIX_EPOCH + Duration::from_secs(secs))
        .expect("set mtime");
}

/// A tree with what a media dir has and what breaks naive archivers: nested dirs, empty files,
/// files of odd sizes, a long name (>100 bytes), a non-UTF-8 name, symlinks, odd modes and mtimes.
/// `portable = false` leaves out what erl_tar refuses by design (non-UTF-8 names, `..` links).
fn make_tree(root: &Path, portable_only: bool) {
    let with_non_utf8 = !portable_only;
    fs::create_dir_all(root.join("2024/01/deep/er")).expect("mkdir");
    fs::create_dir_all(root.join("empty_dir")).expect("mkdir");
    fs::write(root.join("empty.txt"), b"").expect("write");
    fs::write(root.join("2024/01/photo.jpg"), pseudo_random(300_001, 1)).expect("write");
    fs::write(
        root.join("2024/01/deep/er/page.html"),
        "<p>hello zotonic</p>\n".repeat(5000),
    )
    .expect("write");
    fs::write(root.join("2024/exact_chunk.bin"), pseudo_random(65536, 2)).expect("write");
    let long = "x".repeat(120);
    fs::create_dir_all(root.join(&long)).expect("mkdir long");
    fs::write(root.join(&long).join(format!("{long}.txt")), b"long name").expect("write");
    if with_non_utf8 {
        let name = OsStr::from_bytes(b"caf\xe9-latin1.txt");
        fs::write(root.join(name), b"latin-1 name").expect("write");
    }
    symlink("2024/01/photo.jpg", root.join("link_to_photo")).expect("symlink");
    let link_time = filetime::FileTime::from_unix_time(1_400_000_000, 0);
    filetime::set_symlink_file_times(root.join("link_to_photo"), link_time, link_time)
        .expect("lutimes");
    if !portable_only {
        symlink("../photo.jpg", root.join("2024/01/deep/up_link")).expect("symlink");
    }
    fs::write(root.join("script.sh"), b"#!/bin/sh\necho hi\n").expect("write");
    fs::set_permissions(root.join("script.sh"), fs::Permissions::from_mode(0o750)).expect("chmod");
    fs::set_permissions(root.join("empty.txt"), fs::Permissions::from_mode(0o600)).expect("chmod");
    for (i, p) in [
        "empty.txt",
        "2024/01/photo.jpg",
        "2024/01/deep/er/page.html",
        "2024/exact_chunk.bin",
        "script.sh",
    ]
    .iter()
    .enumerate()
    {
        set_mtime(&root.join(p), 1_600_000_000 + i as u64 * 1000);
    }
    for (i, d) in [
        "2024/01/deep/er",
        "2024/01/deep",
        "2024/01",
        "2024",
        "empty_dir",
        "",
    ]
    .iter()
    .enumerate()
    {
        set_mtime(&root.join(d), 1_500_000_000 + i as u64 * 77);
    }
}

/// Every entry below `root` (and root itself): relative path, kind, mode, mtime, content/target.
/// A temporary directory with the test tree (`make_tree`) in its `src`.
fn tree_dir(portable_only: bool) -> (tempfile::TempDir, PathBuf) {
    let t = tempfile::tempdir().expect("tempdir");
    let src = t.path().join("src");
    make_tree(&src, portable_only);
    (t, src)
}

/// `src/a.txt` holding `content`, archived (gzip, one thread) as `a.tar.gz` in `dir`, whose
/// path is returned.
fn one_file_archive(dir: &Path, content: &[u8]) -> PathBuf {
    let src = dir.join("src");
    fs::create_dir(&src).expect("mkdir");
    fs::write(src.join("a.txt"), content).expect("write");
    let out = dir.join("a.tar.gz");
    build(&src, &out, opts(Format::Gzip, 1, 0));
    out
}

fn snapshot(root: &Path) -> Vec<(PathBuf, String, u32, i64, Vec<u8>)> {
    let mut out = Vec::new();
    for e in walkdir::WalkDir::new(root).sort_by_file_name() {
        let e = e.expect("walk");
        let rel = e.path().strip_prefix(root).expect("prefix").to_path_buf();
        let m = fs::symlink_metadata(e.path()).expect("lstat");
        let ft = m.file_type();
        let (kind, body, mtime, mode) = if ft.is_symlink() {
            let t = fs::read_link(e.path()).expect("readlink");
            ("link", t.as_os_str().as_bytes().to_vec(), m.mtime(), 0)
        } else if ft.is_dir() {
            ("dir", Vec::new(), m.mtime(), m.mode() & 0o7777)
        } else {
            (
                "file",
                fs::read(e.path()).expect("read"),
                m.mtime(),
                m.mode() & 0o7777,
            )
        };
        out.push((rel, kind.to_string(), mode, mtime, body));
    }
    out
}

fn assert_same_tree(a: &Path, b: &Path) {
    let (sa, sb) = (snapshot(a), snapshot(b));
    let names = |s: &Vec<(PathBuf, String, u32, i64, Vec<u8>)>| {
        s.iter().map(|e| e.0.clone()).collect::<Vec<_>>()
    };
    assert_eq!(names(&sa), names(&sb), "same entries");
    for (x, y) in sa.iter().zip(sb.iter()) {
        assert_eq!(x.1, y.1, "kind of {:?}", x.0);
        assert_eq!(x.2, y.2, "mode of {:?}", x.0);
        assert_eq!(x.3, y.3, "mtime of {:?}", x.0);
        assert!(x.4 == y.4, "content of {:?}", x.0);
    }
    let diff = Command::new("diff")
        .arg("-r")
        .arg("--no-dereference")
        .arg(a)
        .arg(b)
        .status()
        .expect("diff runs");
    assert!(diff.success(), "diff -r");
}

fn run(cmd: &mut Command) {
    let out = cmd.output().expect("command runs");
    assert!(
        out.status.success(),
        "{:?} failed: {}",
        cmd,
        String::from_utf8_lossy(&out.stderr)
    );
}

fn opts(format: Format, threads: usize, chunk: usize) -> ArchiveOptions {
    ArchiveOptions {
        format,
        threads,
        level: None,
        chunk_size: chunk,
        fsync: false,
    }
}

fn build(src: &Path, out: &Path, o: ArchiveOptions) -> archive::Summary {
    archive::create(&Source::Dir(src.to_path_buf()), out, &o, &JobControl::new())
        .expect("archive created")
}

#[test]
fn gnu_tar_extracts_our_gz_to_an_identical_tree_and_gzip_t_accepts_it() {
    let (t, src) = tree_dir(false);
    let out = t.path().join("a.tar.gz");
    let ctl = JobControl::new();
    let s = archive::create(
        &Source::Dir(src.clone()),
        &out,
        &opts(Format::Gzip, 2, 64 * 1024),
        &ctl,
    )
    .expect("create");
    assert!(s.skipped.is_empty(), "{:?}", s.skipped);
    assert!(!archive_tmp(&out).exists(), "tmp file renamed away");
    // summary facts
    let bytes = fs::read(&out).expect("read");
    assert_eq!(s.bytes_out, bytes.len() as u64);
    let d = backup_core::file_digest(&out).expect("digest");
    assert_eq!(s.sha256, d.sha256, "sha256 computed while writing");
    let p = ctl.progress();
    assert_eq!((p.files_done, p.bytes_done), (p.files_total, p.bytes_total));
    assert_eq!(p.bytes_total, s.bytes_in);
    assert_eq!(
        archive::list(&out, &JobControl::new()).expect("list")[0].path,
        b"./"
    );
    run(Command::new("gzip").arg("-t").arg(&out));
    let dest = t.path().join("x");
    fs::create_dir(&dest).expect("mkdir");
    run(Command::new("tar")
        .arg("-xzf")
        .arg(&out)
        .arg("-C")
        .arg(&dest));
    assert_same_tree(&src, &dest);
    // GNU tar lists exactly the tree: no manifest entry visible, no warning
    let listed = Command::new("tar")
        .arg("-tzf")
        .arg(&out)
        .output()
        .expect("tar -t");
    assert!(listed.status.success());
    assert!(
        listed.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    assert_eq!(
        listed
            .stdout
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .count() as u64,
        s.files
    );
    // and `tar -d` finds no difference with the source
    run(Command::new("tar")
        .arg("-dzf")
        .arg(&out)
        .arg("-C")
        .arg(&src));
}

fn archive_tmp(out: &Path) -> PathBuf {
    let mut s = out.as_os_str().to_owned();
    s.push(".tmp");
    PathBuf::from(s)
}

#[test]
fn zstd_archive_passes_zstd_t_and_gnu_tar_extracts_it_identically() {
    let (t, src) = tree_dir(false);
    let out = t.path().join("a.tar.zst");
    build(&src, &out, opts(Format::Zstd, 2, 0));
    run(Command::new("zstd").arg("-q").arg("-t").arg(&out));
    let dest = t.path().join("x");
    fs::create_dir(&dest).expect("mkdir");
    run(Command::new("tar")
        .arg("--zstd")
        .arg("-xf")
        .arg(&out)
        .arg("-C")
        .arg(&dest));
    assert_same_tree(&src, &dest);
    let r = archive::verify(&out, &JobControl::new()).expect("verify");
    assert_eq!(r.format, Format::Zstd);
    assert!(r.manifest_checked);
}

#[test]
fn python_tarfile_extracts_our_gz_identically() {
    let (t, src) = tree_dir(false);
    let out = t.path().join("a.tar.gz");
    build(&src, &out, opts(Format::Gzip, 2, 32 * 1024));
    let dest = t.path().join("py");
    fs::create_dir(&dest).expect("mkdir");
    run(Command::new("python3")
        .arg("-c")
        .arg(
            "import sys,tarfile\n\
         with tarfile.open(sys.argv[1]) as t:\n\
         \x20   names=t.getnames()\n\
         \x20   t.extractall(sys.argv[2])\n\
         assert not any('MANIFEST' in n for n in names), names\n",
        )
        .arg(&out)
        .arg(&dest));
    // tarfile restores neither the mtime of `./` nor those of symlinks; compare files and
    // link targets
    let strip = |s: Vec<(PathBuf, String, u32, i64, Vec<u8>)>| {
        s.into_iter()
            .filter(|e| e.1 != "dir")
            .map(|mut e| {
                if e.1 == "link" {
                    e.3 = 0;
                }
                e
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(strip(snapshot(&src)), strip(snapshot(&dest)));
}

#[test]
fn erl_tar_extracts_our_gz_with_exactly_the_original_files() {
    let (t, src) = tree_dir(true);
    let out = t.path().join("a.tar.gz");
    build(&src, &out, opts(Format::Gzip, 2, 16 * 1024));
    let dest = t.path().join("erl");
    fs::create_dir(&dest).expect("mkdir");
    let eval = format!(
        "case erl_tar:extract(\"{}\", [compressed, {{cwd, \"{}\"}}]) of \
         ok -> halt(0); E -> io:format(standard_error, \"~p~n\", [E]), halt(1) end.",
        out.display(),
        dest.display()
    );
    run(Command::new("erl").arg("-noshell").arg("-eval").arg(&eval));
    let files = |s: Vec<(PathBuf, String, u32, i64, Vec<u8>)>| {
        s.into_iter()
            .filter(|e| e.1 == "file")
            .map(|e| (e.0, e.4))
            .collect::<Vec<_>>()
    };
    assert_eq!(files(snapshot(&src)), files(snapshot(&dest)));
}

#[test]
fn we_verify_list_and_extract_archives_gnu_tar_made() {
    let (t, src) = tree_dir(false);
    let out = t.path().join("gnu.tar.gz");
    run(Command::new("tar")
        .arg("-czf")
        .arg(&out)
        .arg("-C")
        .arg(&src)
        .arg("."));
    let r = archive::verify(&out, &JobControl::new()).expect("verify");
    assert!(!r.manifest_checked);
    assert_eq!(r.format, Format::Gzip);
    let listed = archive::list(&out, &JobControl::new()).expect("list");
    assert!(listed
        .iter()
        .any(|e| e.kind == EntryKind::Symlink && e.path == b"./link_to_photo"));
    assert!(listed.iter().any(|e| e.path.len() > 200));
    let dest = t.path().join("ours");
    archive::extract(&out, &dest, &ExtractOptions::default(), &JobControl::new()).expect("extract");
    assert_same_tree(&src, &dest);
}

#[test]
fn our_extract_of_our_archive_reproduces_the_tree_in_both_formats() {
    let (t, src) = tree_dir(false);
    for (i, f) in [Format::Gzip, Format::Zstd].into_iter().enumerate() {
        let out = t.path().join(format!("a{i}.tar"));
        let s = build(&src, &out, opts(f, 1, 8 * 1024));
        // list checks every entry's path, kind, size and crc32 against the manifest trailer
        let listed = archive::list(&out, &JobControl::new()).expect("list");
        assert_eq!(listed.len() as u64, s.files);
        assert!(
            archive::verify(&out, &JobControl::new())
                .expect("verify")
                .manifest_checked
        );
        let dest = t.path().join(format!("x{i}"));
        let e = archive::extract(&out, &dest, &ExtractOptions::default(), &JobControl::new())
            .expect("extract");
        assert_eq!(e.bytes, s.bytes_in);
        assert_same_tree(&src, &dest);
        // no staging dir left behind
        let leftovers: Vec<_> = fs::read_dir(t.path())
            .expect("ls")
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains("staging"))
            .collect();
        assert!(leftovers.is_empty());
    }
}

#[test]
fn list_source_names_entries_as_given_for_the_config_tar() {
    let t = tempfile::tempdir().expect("tempdir");
    let f = t.path().join("zotonic_site.config");
    fs::write(&f, b"[].\n").expect("write");
    let out = t.path().join("config.tar.gz");
    let list = vec![
        (
            b"config-site/config/priv/zotonic_site.config".to_vec(),
            f.clone(),
        ),
        (b"config-site/missing".to_vec(), t.path().join("nope")),
    ];
    let s = archive::create(
        &Source::List(list),
        &out,
        &ArchiveOptions::default(),
        &JobControl::new(),
    )
    .expect("create");
    assert_eq!(s.files, 1);
    assert_eq!(s.skipped.len(), 1);
    assert!(s.skipped[0].1.starts_with("vanished"), "{:?}", s.skipped);
    let out2 = Command::new("tar")
        .arg("-tzf")
        .arg(&out)
        .output()
        .expect("tar");
    assert_eq!(
        out2.stdout,
        b"config-site/config/priv/zotonic_site.config\n"
    );
}

fn corrupt_variants(good: &[u8], format: Format) -> Vec<(&'static str, Vec<u8>)> {
    let mut flipped = good.to_vec();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x55;
    let mut bad_crc = good.to_vec();
    let n = bad_crc.len();
    // gzip: the trailer is crc32 then length, so n-6 is in the crc32; zstd: the last frame's
    // content checksum is its last 4 bytes
    bad_crc[n - if format == Format::Gzip { 6 } else { 2 }] ^= 1;
    vec![
        ("truncated", good[..good.len() * 2 / 3].to_vec()),
        ("flipped byte", flipped),
        ("bad checksum", bad_crc),
        ("cut trailer", good[..good.len() - 3].to_vec()),
    ]
}

#[test]
fn corrupt_and_truncated_archives_are_rejected_as_bad_archive_and_extract_leaves_nothing() {
    let (t, src) = tree_dir(false);
    for f in [Format::Gzip, Format::Zstd] {
        let out = t.path().join("good");
        build(&src, &out, opts(f, 2, 16 * 1024));
        let good = fs::read(&out).expect("read");
        for (what, bytes) in corrupt_variants(&good, f) {
            let bad = t.path().join("bad");
            fs::write(&bad, &bytes).expect("write");
            let e = archive::verify(&bad, &JobControl::new()).expect_err(what);
            assert_eq!(e.reason(), "bad_archive", "{f:?} {what}: {e}");
            let dest = t.path().join("dest");
            let e = archive::extract(&bad, &dest, &ExtractOptions::default(), &JobControl::new())
                .expect_err(what);
            assert_eq!(e.reason(), "bad_archive", "{f:?} {what}: {e}");
            assert!(!dest.exists(), "{what}: nothing extracted");
            assert_eq!(
                fs::read_dir(t.path()).expect("ls").count(),
                3,
                "{what}: no staging left"
            );
        }
    }
    fs::write(t.path().join("junk"), b"not an archive").expect("write");
    let e = archive::verify(&t.path().join("junk"), &JobControl::new()).expect_err("junk");
    assert_eq!(e.reason(), "bad_archive");
}

#[test]
fn a_changed_file_crc_is_caught_by_the_manifest_even_when_the_gzip_crc_is_fixed_up() {
    // Rewrite an archive with python: same tar, one file byte changed, valid gzip; our trailer
    // still says the old crc32 -> verify fails with a crc32 message.
    let t = tempfile::tempdir().expect("tempdir");
    let out = one_file_archive(t.path(), b"hello world");
    run(Command::new("python3")
        .arg("-c")
        .arg(
            "import gzip,sys\n\
         d=gzip.open(sys.argv[1]).read()\n\
         d=d.replace(b'hello world', b'hello World')\n\
         gzip.open(sys.argv[1],'wb').write(d)\n",
        )
        .arg(&out));
    let e = archive::verify(&out, &JobControl::new()).expect_err("crc");
    assert_eq!(e.reason(), "bad_archive");
    assert!(e.to_string().contains("size or crc32 differ"), "{e}");
}

fn hostile(t: &Path, name: &str, script: &str) -> PathBuf {
    let out = t.join(format!("{name}.tar.gz"));
    run(Command::new("python3")
        .arg("-c")
        .arg(format!(
            "import tarfile,io,sys\n\
             t=tarfile.open(sys.argv[1],'w:gz')\n\
             def f(n,d=b'x'):\n\
             \x20   i=tarfile.TarInfo(n); i.size=len(d); t.addfile(i,io.BytesIO(d))\n\
             def l(n,target,typ=tarfile.SYMTYPE):\n\
             \x20   i=tarfile.TarInfo(n); i.type=typ; i.linkname=target; t.addfile(i)\n\
             {script}\n\
             t.close()\n"
        ))
        .arg(&out));
    out
}

#[test]
fn traversal_archives_are_refused_as_unsafe_path_and_nothing_is_written() {
    let t = tempfile::tempdir().expect("tempdir");
    let cases = [
        ("abs", "f('/tmp/zbackup-evil')"),
        ("dotdot", "f('ok.txt'); f('a/../../evil')"),
        ("link_abs", "l('ln', '/etc')"),
        ("link_up", "l('a/ln', '../../x')"),
        ("link_dot_trick", "l('s', '.'); l('t', 's/..')"),
        ("through_link", "l('d', 'sub'); f('d/evil')"),
        ("hardlink_out", "l('h', '/etc/passwd', tarfile.LNKTYPE)"),
        ("hardlink_up", "l('h', '../x', tarfile.LNKTYPE)"),
    ];
    for (name, script) in cases {
        let a = hostile(t.path(), name, script);
        let dest = t.path().join(format!("d-{name}"));
        let e = archive::extract(&a, &dest, &ExtractOptions::default(), &JobControl::new())
            .expect_err(name);
        assert_eq!(e.reason(), "unsafe_path", "{name}: {e}");
        assert!(!dest.exists(), "{name}: target untouched");
    }
    assert!(!Path::new("/tmp/zbackup-evil").exists());
    // an in-tree relative link is fine
    let a = hostile(t.path(), "fine", "f('a/b.txt'); l('a/ln', '../a/b.txt')");
    let dest = t.path().join("fine");
    archive::extract(&a, &dest, &ExtractOptions::default(), &JobControl::new()).expect("ok");
    assert_eq!(fs::read(dest.join("a/ln")).expect("through link"), b"x");
}

#[test]
fn extract_refuses_a_non_empty_target_unless_overwrite_which_replaces_it_whole() {
    let t = tempfile::tempdir().expect("tempdir");
    let out = one_file_archive(t.path(), b"new");
    let dest = t.path().join("dest");
    fs::create_dir(&dest).expect("mkdir");
    fs::write(dest.join("a.txt"), b"old").expect("write");
    fs::write(dest.join("keep.txt"), b"keep").expect("write");
    let e = archive::extract(&out, &dest, &ExtractOptions::default(), &JobControl::new())
        .expect_err("exists");
    assert_eq!(e.reason(), "eexist");
    archive::extract(
        &out,
        &dest,
        &ExtractOptions { overwrite: true },
        &JobControl::new(),
    )
    .expect("overwrite");
    assert_eq!(fs::read(dest.join("a.txt")).expect("read"), b"new");
    // DEST is the archive's tree now, nothing else: the old tree is gone as a whole
    assert!(!dest.join("keep.txt").exists());
    let left: Vec<_> = fs::read_dir(t.path())
        .expect("ls")
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n.to_string_lossy().contains("zbackup-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// A big compressible first file at level 9 on one thread makes archiving take a while, so a
/// watcher thread can act while the job is inside it.
fn slow_tree(root: &Path) {
    fs::create_dir_all(root).expect("mkdir");
    let text: Vec<u8> = (0..6_000_000u32)
        .flat_map(|i| format!("{} ", i.wrapping_mul(2_654_435_761) % 1000).into_bytes())
        .take(6_000_000)
        .collect();
    fs::write(root.join("a_big.txt"), text).expect("write");
    fs::write(root.join("z_gone.txt"), b"soon gone").expect("write");
    fs::write(root.join("z_shrinks.txt"), vec![7u8; 100_000]).expect("write");
}

#[test]
fn files_vanishing_or_shrinking_mid_archive_are_reported_not_fatal() {
    let t = tempfile::tempdir().expect("tempdir");
    let src = t.path().join("src");
    slow_tree(&src);
    let ctl = Arc::new(JobControl::new());
    let watcher = {
        let (ctl, src) = (Arc::clone(&ctl), src.clone());
        std::thread::spawn(move || {
            while ctl.progress().bytes_done == 0 {
                std::thread::yield_now();
            }
            fs::remove_file(src.join("z_gone.txt")).expect("rm");
            fs::OpenOptions::new()
                .write(true)
                .open(src.join("z_shrinks.txt"))
                .and_then(|f| f.set_len(10))
                .expect("truncate");
        })
    };
    let out = t.path().join("a.tar.gz");
    let o = ArchiveOptions {
        level: Some(9),
        ..opts(Format::Gzip, 1, 64 * 1024)
    };
    let s = archive::create(&Source::Dir(src.clone()), &out, &o, &ctl).expect("not fatal");
    watcher.join().expect("watcher");
    let reasons: Vec<String> = s.skipped.iter().map(|(p, r)| format!("{p}: {r}")).collect();
    assert!(
        reasons
            .iter()
            .any(|r| r.starts_with("./z_gone.txt: vanished")),
        "{reasons:?}"
    );
    // the shrunk file was opened after the truncate: archived at its new size, no complaint
    // needed; either way the archive must verify and GNU tar must read it.
    archive::verify(&out, &JobControl::new()).expect("verifies");
    run(Command::new("tar").arg("-tzf").arg(&out));
}

#[test]
fn cancel_stops_the_job_and_leaves_neither_output_nor_tmp() {
    let t = tempfile::tempdir().expect("tempdir");
    let src = t.path().join("src");
    slow_tree(&src);
    let ctl = Arc::new(JobControl::new());
    let watcher = {
        let ctl = Arc::clone(&ctl);
        std::thread::spawn(move || {
            while ctl.progress().bytes_done == 0 {
                std::thread::yield_now();
            }
            ctl.cancel();
        })
    };
    let out = t.path().join("a.tar.gz");
    let o = ArchiveOptions {
        level: Some(9),
        ..opts(Format::Gzip, 1, 64 * 1024)
    };
    let e = archive::create(&Source::Dir(src), &out, &o, &ctl).expect_err("cancelled");
    watcher.join().expect("watcher");
    assert_eq!(e.reason(), "cancelled");
    assert!(!out.exists());
    assert!(!archive_tmp(&out).exists());
}

#[test]
fn sockets_and_fifos_are_skipped_with_a_reason() {
    let t = tempfile::tempdir().expect("tempdir");
    let src = t.path().join("src");
    fs::create_dir(&src).expect("mkdir");
    run(Command::new("mkfifo").arg(src.join("fifo")));
    fs::write(src.join("f"), b"x").expect("write");
    let out = t.path().join("a.tar.gz");
    let s = build(&src, &out, opts(Format::Gzip, 1, 0));
    assert_eq!(
        s.skipped,
        vec![("./fifo".to_string(), "fifo not archived".to_string())]
    );
    let _ = SystemTime::now();
}

#[test]
fn a_root_that_is_a_symlink_is_followed_like_tar_c_does_but_links_below_are_not() {
    let t = tempfile::tempdir().expect("tempdir");
    let real = t.path().join("real");
    make_tree(&real, false);
    let root = t.path().join("archive_link");
    symlink(&real, &root).expect("symlink");
    let out = t.path().join("a.tar.gz");
    let s = build(&root, &out, opts(Format::Gzip, 2, 0));
    assert!(s.skipped.is_empty());
    let dest = t.path().join("x");
    archive::extract(&out, &dest, &ExtractOptions::default(), &JobControl::new()).expect("extract");
    assert_same_tree(&real, &dest);
}
