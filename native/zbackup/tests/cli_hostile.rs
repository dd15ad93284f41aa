//! Issue 14, black box: each numbered case of the issue (except 8, the Erlang side's) as the
//! `zbackup` command meets it. Every test here failed on the code before the fix (commit
//! 9d0db4a); run them against another build with `ZBACKUP_UNDER_TEST=/path/to/zbackup`.
//! Commands run with a deadline, so a hang is a failure, not a stuck test run.

use backup_core::fuzz::craft::{self, fix_checksum, Fields, TarBuilder};
use std::ffi::OsStr;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn bin() -> PathBuf {
    std::env::var_os("ZBACKUP_UNDER_TEST")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_zbackup")))
}

struct Run {
    code: Option<i32>,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    timed_out: bool,
    seconds: f64,
    /// Peak RSS in KiB, when measured.
    rss_kib: Option<u64>,
}

impl Run {
    fn out(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    fn err(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
    fn ok(&self) -> bool {
        self.code == Some(0) && !self.timed_out
    }
}

/// Runs `cmd` until it exits or `limit` passes (then it is killed).
fn run_cmd(mut cmd: Command, limit: Duration) -> Run {
    let started = Instant::now();
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env_remove("ZBACKUP_PASSWORD")
        .spawn()
        .expect("zbackup runs");
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let t_out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let t_err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let mut timed_out = false;
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break Some(s);
        }
        if started.elapsed() > limit {
            timed_out = true;
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Run {
        code: status.and_then(|s| s.code()),
        stdout: t_out.join().unwrap_or_default(),
        stderr: t_err.join().unwrap_or_default(),
        timed_out,
        seconds: started.elapsed().as_secs_f64(),
        rss_kib: None,
    }
}

fn zb(args: &[&OsStr], limit: Duration) -> Run {
    let mut c = Command::new(bin());
    c.args(args);
    run_cmd(c, limit)
}

/// Runs zbackup under GNU time for its peak RSS.
fn zb_rss(args: &[&OsStr], dir: &Path, limit: Duration) -> Run {
    let rss_file = dir.join("rss.txt");
    let mut c = Command::new("/usr/bin/time");
    c.arg("-f")
        .arg("%M")
        .arg("-o")
        .arg(&rss_file)
        .arg(bin())
        .args(args);
    let mut r = run_cmd(c, limit);
    r.rss_kib = fs::read_to_string(&rss_file)
        .ok()
        .and_then(|s| s.lines().last().and_then(|l| l.trim().parse().ok()));
    r
}

fn os(s: &str) -> &OsStr {
    OsStr::new(s)
}

const LIMIT: Duration = Duration::from_secs(30);

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    fs::write(&p, bytes).expect("write");
    p
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(bytes)
        .read_to_end(&mut out)
        .expect("gunzip");
    out
}

/// Makes a `.tar.gz` of a small tree with this engine.
fn engine_archive(dir: &Path) -> PathBuf {
    let src = dir.join("src");
    fs::create_dir_all(src.join("sub")).expect("mkdir");
    fs::write(src.join("a.txt"), b"alpha").expect("write");
    fs::write(src.join("b.txt"), b"bravo").expect("write");
    fs::write(src.join("sub/c.txt"), b"charlie").expect("write");
    symlink("a.txt", src.join("link")).expect("symlink");
    let out = dir.join("engine.tar.gz");
    let r = zb(&[os("archive"), src.as_os_str(), out.as_os_str()], LIMIT);
    assert!(r.ok(), "{}", r.err());
    out
}

fn staging_left(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .expect("ls")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".zbackup-"))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// 1. An endless, uncancellable job

#[test]
fn issue14_1_a_2p60_byte_sparse_hole_is_refused_at_once_by_verify_list_and_extract() {
    let d = tempfile::tempdir().expect("tmp");
    let tar = TarBuilder::new()
        .sparse(b"./hole", 1 << 60, &[(0, 512), (1 << 60, 0)], &[7u8; 512])
        .end()
        .finish();
    for (name, bytes) in [
        ("hole.tar.gz", craft::gzip(&tar)),
        ("hole.tar.zst", craft::zstd_frames(&tar, 1 << 20, false).0),
    ] {
        let a = write(d.path(), name, &bytes);
        let dest = d.path().join("dest");
        for args in [
            vec![os("verify"), a.as_os_str()],
            vec![os("list"), a.as_os_str()],
            vec![os("extract"), a.as_os_str(), dest.as_os_str()],
        ] {
            let r = zb(&args, Duration::from_secs(20));
            assert!(!r.timed_out, "{name} {args:?} still running after 20 s");
            assert_eq!(r.code, Some(1), "{name} {args:?}: {}", r.err());
            assert!(r.seconds < 5.0, "{name} {args:?}: {} s", r.seconds);
            assert!(r.err().contains("limit_exceeded"), "{}", r.err());
        }
        assert!(!dest.exists());
        assert!(staging_left(d.path()).is_empty());
    }
}

// ---------------------------------------------------------------------------------------------
// 2. A memory bomb

/// A `.tar.gz` whose first header declares `size` bytes of type `typ`, followed by `size`
/// bytes of `fill` really there (compressed, about 1 MB per GiB).
fn bomb(dir: &Path, name: &str, typ: u8, size: u64, fill: u8, tail: &[u8]) -> PathBuf {
    let p = dir.join(name);
    let f = fs::File::create(&p).expect("create");
    let mut e = flate2::write::GzEncoder::new(f, flate2::Compression::fast());
    let block = if typ == b'T' {
        // a manifest trailer after a tiny valid archive
        let mut t = TarBuilder::new();
        t.file(b"./a", b"x").end();
        t.raw(&backup_core::archive::manifest::trailer_header(1, size, 0));
        t.finish()
    } else {
        craft::header_block(&Fields::new(b"././@LongLink", typ, size)).to_vec()
    };
    e.write_all(&block).expect("write");
    let chunk = vec![fill; 1 << 20];
    for _ in 0..size.div_ceil(1 << 20) {
        e.write_all(&chunk).expect("write");
    }
    e.write_all(tail).expect("write");
    e.finish().expect("finish");
    p
}

#[test]
fn issue14_2_a_1gib_long_name_pax_record_or_manifest_costs_no_memory_and_is_refused() {
    let d = tempfile::tempdir().expect("tmp");
    let cases = [
        bomb(
            d.path(),
            "longname.tar.gz",
            b'L',
            1 << 30,
            b'a',
            &[0u8; 1024],
        ),
        bomb(d.path(), "pax.tar.gz", b'x', 1 << 30, b'9', &[0u8; 1024]),
        bomb(d.path(), "manifest.tar.gz", b'T', 1 << 30, 0, &[]),
    ];
    for a in &cases {
        let dest = d.path().join("dest");
        for args in [
            vec![os("verify"), a.as_os_str()],
            vec![os("list"), a.as_os_str()],
            vec![os("extract"), a.as_os_str(), dest.as_os_str()],
        ] {
            let r = zb_rss(&args, d.path(), Duration::from_secs(60));
            assert_eq!(r.code, Some(1), "{args:?}: {}", r.err());
            let rss = r.rss_kib.expect("rss measured");
            assert!(rss < 64 * 1024, "{args:?}: peak RSS {rss} KiB");
        }
        assert!(!dest.exists());
    }
}

// ---------------------------------------------------------------------------------------------
// 3. Silent truncation

/// Offsets where the zstd frames of `bytes` start.
fn frame_starts(bytes: &[u8]) -> Vec<usize> {
    let mut at = 0;
    let mut out = Vec::new();
    while at < bytes.len() {
        out.push(at);
        match zstd::zstd_safe::find_frame_compressed_size(&bytes[at..]) {
            Ok(n) if n > 0 => at += n,
            _ => break,
        }
    }
    out
}

#[test]
fn issue14_3_a_multi_frame_zst_archive_cut_at_any_frame_boundary_is_refused() {
    let d = tempfile::tempdir().expect("tmp");
    let src = d.path().join("src");
    fs::create_dir_all(&src).expect("mkdir");
    // Entries sized so that the engine's 4 MiB frames end exactly between entries (the root
    // entry and each file header are 512 bytes): a cut there leaves a well-formed tar prefix.
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for i in 0..3 {
        let size = if i == 0 {
            (4 << 20) - 1024
        } else {
            (4 << 20) - 512
        };
        let data: Vec<u8> = (0..size)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        fs::write(src.join(format!("f{i}.bin")), data).expect("write");
    }
    let a = d.path().join("a.tar.zst");
    let r = zb(
        &[
            os("archive"),
            os("--format"),
            os("zst"),
            src.as_os_str(),
            a.as_os_str(),
        ],
        LIMIT,
    );
    assert!(r.ok(), "{}", r.err());
    let bytes = fs::read(&a).expect("read");
    let starts = frame_starts(&bytes);
    assert!(starts.len() >= 4, "several frames: {starts:?}");
    for &cut in starts.iter().skip(1) {
        let c = write(d.path(), "cut.tar.zst", &bytes[..cut]);
        let r = zb(&[os("verify"), c.as_os_str()], LIMIT);
        assert_eq!(r.code, Some(1), "cut at {cut}: {}", r.out());
        let dest = d.path().join("dest");
        let r = zb(&[os("extract"), c.as_os_str(), dest.as_os_str()], LIMIT);
        assert_eq!(r.code, Some(1), "cut at {cut}: {}", r.out());
        assert!(!dest.exists(), "cut at {cut}: nothing extracted");
    }
}

#[test]
fn issue14_3_a_tar_without_its_end_of_archive_marker_and_an_empty_gzip_are_refused() {
    let d = tempfile::tempdir().expect("tmp");
    let no_end = TarBuilder::new().file(b"./a", b"data").finish();
    let cases = [
        write(d.path(), "noend.tar.gz", &craft::gzip(&no_end)),
        write(d.path(), "empty.tar.gz", &craft::gzip(b"")),
    ];
    for a in &cases {
        let r = zb(&[os("verify"), a.as_os_str()], LIMIT);
        assert_eq!(r.code, Some(1), "{}: {}", a.display(), r.out());
        assert!(r.err().contains("bad_archive"), "{}", r.err());
        let dest = d.path().join("dest");
        let r = zb(&[os("extract"), a.as_os_str(), dest.as_os_str()], LIMIT);
        assert_eq!(r.code, Some(1));
        assert!(!dest.exists());
    }
}

// ---------------------------------------------------------------------------------------------
// 4. verify trusts the manifest only partly; verify and extract disagree

/// The engine archive with the tar header of `name` changed by `change`, checksum fixed.
fn forged(dir: &Path, name: &[u8], change: impl Fn(&mut [u8])) -> PathBuf {
    let a = engine_archive(dir);
    let mut tar = gunzip(&fs::read(&a).expect("read"));
    let mut at = 0;
    let mut found = false;
    while at + 512 <= tar.len() {
        let h = tar::Header::from_byte_slice(&tar[at..at + 512]);
        if tar[at..at + 512].iter().all(|&b| b == 0) {
            break;
        }
        if h.path_bytes().as_ref() == name {
            change(&mut tar[at..at + 512]);
            fix_checksum(&mut tar[at..at + 512]);
            found = true;
            break;
        }
        let size = h.entry_size().expect("size");
        at += 512 + (size as usize).div_ceil(512) * 512;
    }
    assert!(found, "{}", String::from_utf8_lossy(name));
    write(dir, "forged.tar.gz", &craft::gzip(&tar))
}

#[test]
fn issue14_4_a_forged_mode_mtime_or_symlink_target_fails_verify_and_extract_alike() {
    type Forgery = Box<dyn Fn(&mut [u8])>;
    let cases: [(&str, &[u8], Forgery); 3] = [
        (
            "mode",
            b"./a.txt",
            Box::new(|h| h[100..108].copy_from_slice(b"0004777\0")),
        ),
        (
            "mtime",
            b"./b.txt",
            Box::new(|h| h[136..148].copy_from_slice(b"00000000001\0")),
        ),
        (
            "link target",
            b"./link",
            Box::new(|h| h[157..162].copy_from_slice(b"b.txt")),
        ),
    ];
    for (what, name, change) in cases {
        let d = tempfile::tempdir().expect("tmp");
        let a = forged(d.path(), name, change);
        let r = zb(&[os("verify"), a.as_os_str()], LIMIT);
        assert_eq!(r.code, Some(1), "forged {what} passed verify: {}", r.out());
        assert!(r.err().contains("bad_archive"), "{what}: {}", r.err());
        let dest = d.path().join("dest");
        let r = zb(&[os("extract"), a.as_os_str(), dest.as_os_str()], LIMIT);
        assert_eq!(r.code, Some(1), "forged {what} extracted");
        assert!(!dest.exists());
    }
}

#[test]
fn issue14_4_archives_that_extract_refuses_are_refused_by_verify_too() {
    let d = tempfile::tempdir().expect("tmp");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "absolute",
            TarBuilder::new()
                .file(b"/tmp/zbackup-evil", b"x")
                .end()
                .finish(),
        ),
        (
            "dotdot",
            TarBuilder::new()
                .file(b"./a/../../evil", b"x")
                .end()
                .finish(),
        ),
        (
            "escaping link",
            TarBuilder::new()
                .symlink(b"./l", b"../../etc")
                .end()
                .finish(),
        ),
        (
            "through a link",
            TarBuilder::new()
                .symlink(b"./d", b"sub")
                .file(b"./d/evil", b"x")
                .end()
                .finish(),
        ),
        (
            "hard link out",
            TarBuilder::new()
                .hardlink(b"./h", b"/etc/passwd")
                .end()
                .finish(),
        ),
    ];
    for (what, tar) in cases {
        let a = write(d.path(), "hostile.tar.gz", &craft::gzip(&tar));
        let v = zb(&[os("verify"), a.as_os_str()], LIMIT);
        let dest = d.path().join("dest");
        let x = zb(&[os("extract"), a.as_os_str(), dest.as_os_str()], LIMIT);
        assert_eq!(x.code, Some(1), "{what}");
        assert_eq!(
            v.code,
            Some(1),
            "{what}: verify passed what extract refuses"
        );
        assert!(
            v.err().contains("unsafe_path") && x.err().contains("unsafe_path"),
            "{what}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 5. extract --overwrite destroying the old tree; unreadable and stale staging dirs

const NOBODY: u32 = 65534;

fn chown(p: &Path, uid: u32) {
    std::os::unix::fs::chown(p, Some(uid), Some(uid)).expect("chown");
}

/// Runs zbackup as user nobody (setpriv), so permissions bite (the tests run as root).
fn zb_as_nobody(args: &[&OsStr]) -> Run {
    let mut c = Command::new("setpriv");
    c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(bin())
        .args(args);
    run_cmd(c, LIMIT)
}

/// A world-readable scratch dir with a parent owned by nobody.
fn nobody_dir() -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().expect("tmp");
    fs::set_permissions(d.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
    let parent = d.path().join("p");
    fs::create_dir(&parent).expect("mkdir");
    chown(&parent, NOBODY);
    (d, parent)
}

fn tree_listing(root: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out: Vec<_> = walkdir(root)
        .into_iter()
        .map(|p| {
            let data = fs::read(&p).unwrap_or_default();
            (
                p.strip_prefix(root)
                    .map(Path::to_path_buf)
                    .unwrap_or_default(),
                data,
            )
        })
        .collect();
    out.sort();
    out
}

fn walkdir(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(p) = stack.pop() {
        if let Ok(rd) = fs::read_dir(&p) {
            for e in rd.flatten() {
                out.push(e.path());
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    stack.push(e.path());
                }
            }
        }
    }
    out
}

#[test]
fn issue14_5_an_overwrite_that_cannot_remove_part_of_dest_leaves_it_whole_or_fully_replaced() {
    let (d, parent) = nobody_dir();
    // The new tree: a0..a9 and z/new.
    let src = d.path().join("src");
    fs::create_dir_all(src.join("z")).expect("mkdir");
    for i in 0..10 {
        fs::write(src.join(format!("a{i}")), format!("new {i}")).expect("write");
    }
    fs::write(src.join("z/new"), b"new z").expect("write");
    let a = d.path().join("new.tar.gz");
    assert!(zb(&[os("archive"), src.as_os_str(), a.as_os_str()], LIMIT).ok());
    fs::set_permissions(&a, fs::Permissions::from_mode(0o644)).expect("chmod");
    // The old DEST: nobody's files, and a root-owned z/ that nobody cannot empty.
    let dest = parent.join("dest");
    fs::create_dir(&dest).expect("mkdir");
    for i in 0..10 {
        fs::write(dest.join(format!("a{i}")), format!("old {i}")).expect("write");
        chown(&dest.join(format!("a{i}")), NOBODY);
    }
    fs::create_dir(dest.join("z")).expect("mkdir");
    fs::write(dest.join("z/keep"), b"old z").expect("write");
    chown(&dest, NOBODY);
    let old = tree_listing(&dest);
    let r = zb_as_nobody(&[
        os("extract"),
        os("--overwrite"),
        a.as_os_str(),
        dest.as_os_str(),
    ]);
    let now = tree_listing(&dest);
    let new = tree_listing(&src);
    assert!(
        now == old || now == new,
        "DEST is neither the old nor the new tree ({}): {now:?}",
        r.err()
    );
    // Here the swap itself succeeds: DEST is the new tree, and the old one, which could not
    // be removed entirely, is reported.
    assert!(r.ok(), "{}", r.err());
    assert_eq!(now, new);
}

#[test]
fn issue14_5_a_mode_000_root_entry_leaves_no_unreadable_staging_dir() {
    let (d, parent) = nobody_dir();
    let tar = TarBuilder::new()
        .dir(b"./", 0o000)
        .file(b"./a", b"data")
        .end()
        .finish();
    let a = write(d.path(), "locked.tar.gz", &craft::gzip(&tar));
    fs::set_permissions(&a, fs::Permissions::from_mode(0o644)).expect("chmod");
    let dest = parent.join("dest");
    fs::create_dir(&dest).expect("mkdir");
    fs::write(dest.join("old"), b"old").expect("write");
    chown(&dest.join("old"), NOBODY);
    chown(&dest, NOBODY);
    let r = zb_as_nobody(&[
        os("extract"),
        os("--overwrite"),
        a.as_os_str(),
        dest.as_os_str(),
    ]);
    let left = staging_left(&parent);
    assert!(left.is_empty(), "left behind: {left:?} ({})", r.err());
    assert!(r.ok(), "{}", r.err());
    assert_eq!(fs::metadata(&dest).expect("dest").mode() & 0o777, 0);
    assert_eq!(fs::read(dest.join("a")).expect("read as root"), b"data");
}

#[test]
fn issue14_5_stale_staging_dirs_of_dead_runs_are_swept_and_others_kept() {
    let d = tempfile::tempdir().expect("tmp");
    let dead = {
        let mut c = Command::new("true").spawn().expect("spawn");
        let pid = c.id();
        c.wait().expect("wait");
        pid
    };
    let me = std::process::id();
    let old = filetime::FileTime::from_unix_time(1_600_000_000, 0);
    let mk = |name: String, stale: bool| -> PathBuf {
        let p = d.path().join(name);
        fs::create_dir_all(p.join("sub")).expect("mkdir");
        fs::write(p.join("sub/data"), b"x").expect("write");
        fs::set_permissions(p.join("sub"), fs::Permissions::from_mode(0o000)).expect("chmod");
        if stale {
            filetime::set_file_mtime(&p, old).expect("mtime");
        }
        p
    };
    let swept = mk(format!(".media.zbackup-staging-{dead}-17"), true);
    let swept_old = mk(format!(".media.zbackup-old-{dead}-18"), true);
    let alive = mk(format!(".media.zbackup-staging-{me}-19"), true);
    let young = mk(format!(".media.zbackup-staging-{dead}-20"), false);
    let foreign = mk(format!(".media.zbackup-staging-{dead}-21"), true);
    chown(&foreign, NOBODY);
    filetime::set_file_mtime(&foreign, old).expect("mtime");
    let unrelated = mk(".media.staging-1-2".into(), true);
    let a = engine_archive(d.path());
    let dest = d.path().join("media2");
    let r = zb(&[os("extract"), a.as_os_str(), dest.as_os_str()], LIMIT);
    assert!(r.ok(), "{}", r.err());
    assert!(
        !swept.exists() && !swept_old.exists(),
        "stale dirs of a dead run are gone"
    );
    for kept in [&alive, &young, &foreign, &unrelated] {
        assert!(kept.exists(), "{} kept", kept.display());
    }
}

// ---------------------------------------------------------------------------------------------
// 6. OUT.tmp followed symlinks

#[test]
fn issue14_6_decrypt_and_archive_never_write_through_a_symlink_planted_at_out_tmp() {
    let d = tempfile::tempdir().expect("tmp");
    let pw = write(d.path(), "pw", b"secret\n");
    let plain = write(d.path(), "db.sql.gz", b"the plaintext");
    let enc = d.path().join("db.sql.gz.enc");
    let r = zb(
        &[
            os("encrypt"),
            os("--password-file"),
            pw.as_os_str(),
            plain.as_os_str(),
            enc.as_os_str(),
        ],
        LIMIT,
    );
    assert!(r.ok(), "{}", r.err());
    let victim = write(d.path(), "victim", b"precious");
    let out = d.path().join("out.sql.gz");
    symlink(&victim, d.path().join("out.sql.gz.tmp")).expect("plant");
    let r = zb(
        &[
            os("decrypt"),
            os("--password-file"),
            pw.as_os_str(),
            enc.as_os_str(),
            out.as_os_str(),
        ],
        LIMIT,
    );
    assert!(r.ok(), "{}", r.err());
    assert_eq!(
        fs::read(&victim).expect("victim"),
        b"precious",
        "decrypt wrote through the link"
    );
    assert_eq!(fs::read(&out).expect("out"), b"the plaintext");
    // archive creation, likewise
    let src = d.path().join("src");
    fs::create_dir(&src).expect("mkdir");
    fs::write(src.join("f"), b"f").expect("write");
    let tgz = d.path().join("a.tar.gz");
    symlink(&victim, d.path().join("a.tar.gz.tmp")).expect("plant");
    let r = zb(&[os("archive"), src.as_os_str(), tgz.as_os_str()], LIMIT);
    assert!(r.ok(), "{}", r.err());
    assert_eq!(
        fs::read(&victim).expect("victim"),
        b"precious",
        "archive wrote through the link"
    );
}

// ---------------------------------------------------------------------------------------------
// 7. restore-check passing what it never checked

#[test]
fn issue14_7_restore_check_fails_sets_and_hashes_it_cannot_check() {
    let good_hash = "0".repeat(64);
    let cases = [
        r#"{"s1":{}}"#.to_string(),
        r#"{"s1":"oops"}"#.to_string(),
        r#"{"s1":{"database":5}}"#.to_string(),
        r#"{"s1":{"timestamp":1,"database":"s1.sql.gz"}}"#.to_string(),
        r#"{"s1":{"timestamp":1,"database":"s1.sql.gz","database_hash":5}}"#.to_string(),
        format!(
            r#"{{"s1":{{"timestamp":1,"database":"s1.sql.gz","database_hash":"{good_hash}","database_hmac":7}}}}"#
        ),
    ];
    for index in cases {
        let d = tempfile::tempdir().expect("tmp");
        write(
            d.path(),
            "s1.sql.gz",
            &craft::gzip(b"-- PostgreSQL database dump\n"),
        );
        write(d.path(), "backup.json", index.as_bytes());
        let r = zb(&[os("restore-check"), d.path().as_os_str()], LIMIT);
        assert_eq!(r.code, Some(1), "{index} passed: {}", r.out());
        assert!(r.out().contains("FAIL"), "{index}: {}", r.out());
    }
}

#[test]
fn issue14_7_restore_check_never_opens_a_fifo_or_a_device_named_by_the_index() {
    let d = tempfile::tempdir().expect("tmp");
    let fifo = d.path().join("s1.sql.gz");
    let st = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(st.success());
    symlink("/dev/zero", d.path().join("s1.tar.gz")).expect("symlink");
    let h = "0".repeat(64);
    write(
        d.path(),
        "backup.json",
        format!(r#"{{"s1":{{"timestamp":1,"database":"s1.sql.gz","database_hash":"{h}","files":"s1.tar.gz","files_hash":"{h}"}}}}"#).as_bytes(),
    );
    let r = zb(
        &[os("restore-check"), d.path().as_os_str()],
        Duration::from_secs(20),
    );
    assert!(!r.timed_out, "restore-check hung on a FIFO or /dev/zero");
    assert_eq!(r.code, Some(1), "{}", r.out());
    assert_eq!(
        r.out().matches("not_regular_file").count(),
        2,
        "{}",
        r.out()
    );
}

#[test]
fn issue14_7_one_unsafe_name_fails_that_entry_and_the_other_sets_are_still_checked() {
    let d = tempfile::tempdir().expect("tmp");
    let dump = write(
        d.path(),
        "good.sql.gz",
        &craft::gzip(
            b"--\n-- PostgreSQL database dump\n--\nCREATE SCHEMA \"public\";\n\
              --\n-- PostgreSQL database dump complete\n--\n",
        ),
    );
    let digest = zb(&[os("digest"), dump.as_os_str()], LIMIT);
    let v: serde_json::Value = serde_json::from_slice(&digest.stdout).expect("json");
    let index = serde_json::json!({
        "evil": {"timestamp": 1, "database": "../../etc/passwd", "database_hash": "0".repeat(64)},
        "good": {"timestamp": 2, "database": "good.sql.gz", "database_hash": v["sha256"]},
    });
    write(d.path(), "backup.json", index.to_string().as_bytes());
    let r = zb(&[os("restore-check"), d.path().as_os_str()], LIMIT);
    assert_eq!(r.code, Some(1));
    assert!(r.out().contains("unsafe_path"), "{}", r.out());
    assert!(r.out().contains("1 passed, 1 failed"), "{}", r.out());
}

// ---------------------------------------------------------------------------------------------
// 9. The smaller ones

#[test]
fn issue14_9_a_later_entry_never_changes_a_file_hard_linked_earlier() {
    let d = tempfile::tempdir().expect("tmp");
    let tar = TarBuilder::new()
        .file(b"./a", b"first")
        .hardlink(b"./h", b"./a")
        .file(b"./a", b"second")
        .end()
        .finish();
    let a = write(d.path(), "links.tar.gz", &craft::gzip(&tar));
    let dest = d.path().join("dest");
    let r = zb(&[os("extract"), a.as_os_str(), dest.as_os_str()], LIMIT);
    assert!(r.ok(), "{}", r.err());
    assert_eq!(fs::read(dest.join("a")).expect("a"), b"second");
    assert_eq!(
        fs::read(dest.join("h")).expect("h"),
        b"first",
        "GNU tar keeps the first file"
    );
}

#[test]
fn issue14_9_a_name_too_long_is_enametoolong_not_eio() {
    let d = tempfile::tempdir().expect("tmp");
    let name = format!("./{}", "n".repeat(300));
    let tar = TarBuilder::new().file(name.as_bytes(), b"x").end().finish();
    let a = write(d.path(), "long.tar.gz", &craft::gzip(&tar));
    let r = zb(
        &[
            os("extract"),
            a.as_os_str(),
            d.path().join("dest").as_os_str(),
        ],
        LIMIT,
    );
    assert_eq!(r.code, Some(1));
    assert!(r.err().starts_with("zbackup: enametoolong:"), "{}", r.err());
}

#[test]
fn issue14_9_extract_errors_name_dest_not_the_hidden_staging_dir() {
    let d = tempfile::tempdir().expect("tmp");
    // DEST about 1300 bytes deep, an entry of 3000: together past PATH_MAX, so creating the
    // entry fails with an error that names a path.
    let mut parent = d.path().to_path_buf();
    for i in 0..6 {
        parent.push(format!("{i}{}", "p".repeat(200)));
    }
    fs::create_dir_all(&parent).expect("mkdir");
    let comps: Vec<String> = (0..14)
        .map(|i| format!("{i:02}{}", "c".repeat(200)))
        .collect();
    let name = format!("./{}/f", comps.join("/"));
    let tar = TarBuilder::new().file(name.as_bytes(), b"x").end().finish();
    let a = write(d.path(), "deep.tar.gz", &craft::gzip(&tar));
    let dest = parent.join("dest");
    let r = zb(&[os("extract"), a.as_os_str(), dest.as_os_str()], LIMIT);
    assert_eq!(r.code, Some(1), "{}", r.out());
    assert!(!r.err().contains("zbackup-staging"), "{}", r.err());
    assert!(r.err().contains("/dest/"), "{}", r.err());
}

#[test]
fn issue14_9_zero_padding_after_the_gzip_stream_is_accepted() {
    let d = tempfile::tempdir().expect("tmp");
    let a = engine_archive(d.path());
    let mut bytes = fs::read(&a).expect("read");
    bytes.extend(std::iter::repeat_n(0u8, 10240 - bytes.len() % 10240));
    let p = write(d.path(), "padded.tar.gz", &bytes);
    let r = zb(&[os("verify"), p.as_os_str()], LIMIT);
    assert!(r.ok(), "{}", r.err());
    let dest = d.path().join("dest");
    let r = zb(&[os("extract"), p.as_os_str(), dest.as_os_str()], LIMIT);
    assert!(r.ok(), "{}", r.err());
    // garbage that is not zeros is still refused
    bytes.extend_from_slice(b"junk");
    let p = write(d.path(), "junk.tar.gz", &bytes);
    assert_eq!(zb(&[os("verify"), p.as_os_str()], LIMIT).code, Some(1));
}

#[test]
fn issue14_9_a_leading_zstd_skippable_frame_is_accepted() {
    let d = tempfile::tempdir().expect("tmp");
    let tar = TarBuilder::new().file(b"./a", b"pzstd").end().finish();
    // pzstd starts its files with a skippable frame holding the next frame's size
    let (frames, _) = craft::zstd_frames(&tar, 1 << 20, false);
    let mut bytes = 0x184D_2A50u32.to_le_bytes().to_vec();
    bytes.extend_from_slice(&4u32.to_le_bytes());
    bytes.extend_from_slice(&(frames.len() as u32).to_le_bytes());
    bytes.extend_from_slice(&frames);
    let p = write(d.path(), "pzstd.tar.zst", &bytes);
    let r = zb(&[os("verify"), p.as_os_str()], LIMIT);
    assert!(r.ok(), "{}", r.err());
    let dest = d.path().join("dest");
    assert!(zb(&[os("extract"), p.as_os_str(), dest.as_os_str()], LIMIT).ok());
    assert_eq!(fs::read(dest.join("a")).expect("a"), b"pzstd");
}

#[test]
fn issue14_9_names_from_an_archive_never_put_raw_control_bytes_on_the_terminal() {
    let d = tempfile::tempdir().expect("tmp");
    let tar = TarBuilder::new()
        .file(b"/\x1b[2J\x1b[31mevil\x07", b"x")
        .end()
        .finish();
    let a = write(d.path(), "ansi.tar.gz", &craft::gzip(&tar));
    for args in [
        vec![os("verify"), a.as_os_str()],
        vec![os("list"), a.as_os_str()],
        vec![
            os("extract"),
            a.as_os_str(),
            d.path().join("dest").as_os_str(),
        ],
    ] {
        let r = zb(&args, LIMIT);
        assert_eq!(r.code, Some(1), "{args:?}");
        for (what, text) in [("stderr", &r.stderr), ("stdout", &r.stdout)] {
            assert!(
                !text.iter().any(|&b| b == 0x1b || b == 0x07 || b == 0),
                "{args:?}: raw control bytes on {what}: {:?}",
                String::from_utf8_lossy(text)
            );
        }
        assert!(r.err().contains("\\u{1b}"), "{args:?}: {}", r.err());
    }
}
