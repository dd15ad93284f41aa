//! `zbackup encrypt` / `zbackup decrypt` as a user runs them.

use std::fs;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn zbackup(args: &[&str], env_password: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_zbackup"));
    cmd.args(args)
        .env_remove("ZBACKUP_PASSWORD")
        .stdin(Stdio::null());
    if let Some(pw) = env_password {
        cmd.env("ZBACKUP_PASSWORD", pw);
    }
    cmd.output().expect("run zbackup")
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

#[test]
fn encrypt_then_decrypt_to_the_default_name_restores_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plain = dir.path().join("site-1.sql.gz");
    let enc = dir.path().join("site-1.sql.gz.enc");
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 253) as u8).collect();
    fs::write(&plain, &data).expect("write");
    let pwfile = dir.path().join("pw");
    fs::write(&pwfile, "Abcde-fghij-KLMNO-pqrs!@\n").expect("write");

    let out = zbackup(
        &["encrypt", "--password-file", s(&pwfile), s(&plain), s(&enc)],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("\"sha256\""), "{stdout}");
    assert!(!stdout.contains("Abcde"), "password never printed");
    assert_eq!(&fs::read(&enc).expect("read")[..2], b"Z1");

    fs::remove_file(&plain).expect("rm");
    // Same password through the environment (no line end there).
    let out = zbackup(&["decrypt", s(&enc)], Some("Abcde-fghij-KLMNO-pqrs!@"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(fs::read(&plain).expect("read"), data);
}

#[test]
fn wrong_password_exits_1_with_the_reason_and_writes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plain = dir.path().join("a");
    let enc = dir.path().join("a.enc");
    let back = dir.path().join("b");
    fs::write(&plain, b"content").expect("write");
    assert!(zbackup(&["encrypt", s(&plain), s(&enc)], Some("right"))
        .status
        .success());
    let out = zbackup(&["decrypt", s(&enc), s(&back)], Some("wrong"));
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("zbackup: wrong_password:"), "{err}");
    assert!(!back.exists());
    assert!(!dir.path().join("b.tmp").exists());
}

#[test]
fn no_password_source_and_no_terminal_is_an_error_not_a_hang() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plain = dir.path().join("a");
    fs::write(&plain, b"x").expect("write");
    let out = zbackup(&["encrypt", s(&plain), s(&dir.path().join("a.enc"))], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ZBACKUP_PASSWORD"));
}

#[test]
fn password_file_is_taken_in_both_spellings_and_after_the_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (plain, enc, back) = (
        dir.path().join("a"),
        dir.path().join("a.enc"),
        dir.path().join("b"),
    );
    fs::write(&plain, b"content").expect("write");
    let pwfile = dir.path().join("pw");
    fs::write(&pwfile, "secret\r\n").expect("write");
    let spelled = format!("--password-file={}", s(&pwfile));
    let out = zbackup(&["encrypt", s(&plain), s(&enc), &spelled], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = zbackup(
        &["decrypt", s(&enc), s(&back), "--password-file", s(&pwfile)],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(fs::read(&back).expect("read"), b"content");
    // The file's first line without its line end is the password.
    let out = zbackup(&["decrypt", s(&enc), s(&back)], Some("secret"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn not_a_z1_file_is_reported_as_bad_encrypted_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let enc = dir.path().join("x.enc");
    fs::write(&enc, b"PK\x03\x04 not ours").expect("write");
    let out = zbackup(&["decrypt", s(&enc)], Some("pw"));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad_encrypted_file"));
}
