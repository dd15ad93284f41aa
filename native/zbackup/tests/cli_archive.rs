//! The archive commands as scripts use them: exact syntax, one JSON line, exit statuses.

use std::fs;
use std::process::{Command, Output};

fn zbackup(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_zbackup"))
        .args(args)
        .output()
        .expect("zbackup runs")
}

fn json(o: &Output) -> serde_json::Value {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout);
    assert_eq!(text.lines().count(), 1, "one line: {text}");
    serde_json::from_str(text.trim()).expect("json")
}

#[test]
fn archive_verify_list_extract_round_trip_with_json_output() {
    let t = tempfile::tempdir().expect("tempdir");
    let src = t.path().join("src");
    fs::create_dir_all(src.join("a")).expect("mkdir");
    fs::write(src.join("a/b.txt"), b"hello").expect("write");
    let out = t.path().join("x.tar.zst");
    let s = json(&zbackup(&[
        "archive".as_ref(),
        "--format".as_ref(),
        "zst".as_ref(),
        "--threads".as_ref(),
        "2".as_ref(),
        "--level".as_ref(),
        "5".as_ref(),
        src.as_os_str(),
        out.as_os_str(),
    ]));
    assert_eq!(s["files"], 3);
    assert_eq!(s["bytes_in"], 5);
    assert_eq!(s["sha256"].as_str().map(str::len), Some(64));
    assert!(s["skipped"].as_array().is_some_and(|a| a.is_empty()));
    let v = json(&zbackup(&["verify".as_ref(), out.as_os_str()]));
    assert_eq!(v["manifest_checked"], true);
    assert_eq!(v["sha256"], s["sha256"]);
    let l = zbackup(&["list".as_ref(), out.as_os_str()]);
    assert!(l.status.success());
    let text = String::from_utf8_lossy(&l.stdout);
    assert_eq!(text.lines().count(), 3);
    assert!(text.contains("\"./a/b.txt\""));
    let dest = t.path().join("dest");
    let e = json(&zbackup(&[
        "extract".as_ref(),
        out.as_os_str(),
        dest.as_os_str(),
    ]));
    assert_eq!(e["files"], 1);
    assert_eq!(fs::read(dest.join("a/b.txt")).expect("read"), b"hello");
}

#[test]
fn failures_exit_1_with_one_reason_line_and_usage_errors_exit_2() {
    let t = tempfile::tempdir().expect("tempdir");
    let junk = t.path().join("junk");
    fs::write(&junk, b"junk").expect("write");
    let o = zbackup(&["verify".as_ref(), junk.as_os_str()]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.lines().count(), 1);
    assert!(err.starts_with("zbackup: bad_archive: "), "{err}");
    let o = zbackup(&[
        "archive".as_ref(),
        t.path().join("missing").as_os_str(),
        t.path().join("o.tgz").as_os_str(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).starts_with("zbackup: enoent: "));
    let o = zbackup(&["archive".as_ref(), "--format".as_ref(), "rar".as_ref()]);
    assert_eq!(o.status.code(), Some(2));
}
