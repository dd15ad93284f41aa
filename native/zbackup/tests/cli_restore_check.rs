//! `zbackup restore-check` on backup sets laid out as mod_backup writes them.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output};

fn zbackup(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_zbackup"));
    cmd.args(args).env_remove("ZBACKUP_PASSWORD");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("zbackup runs")
}

fn sha256(path: &Path) -> String {
    let out = zbackup(&["digest", path.to_str().expect("utf8")], &[]);
    let line = String::from_utf8(out.stdout).expect("utf8");
    let v: serde_json::Value = serde_json::from_str(line.trim()).expect("json");
    v["sha256"].as_str().expect("sha").to_string()
}

/// A set `site-3` of the three files mod_backup makes, with backup.json holding their hashes.
fn make_set(dir: &Path, encrypt_with: Option<&Path>) -> Vec<String> {
    let dump = dir.join("site-3.sql.gz");
    let mut gz = flate2::write::GzEncoder::new(
        fs::File::create(&dump).expect("create"),
        flate2::Compression::default(),
    );
    gz.write_all(
        b"--\n-- PostgreSQL database dump\n--\nCREATE SCHEMA \"public\";\n\
          CREATE TABLE rsc (id int);\n--\n-- PostgreSQL database dump complete\n--\n",
    )
    .expect("write");
    gz.finish().expect("finish");
    let media = dir.join("media");
    fs::create_dir_all(media.join("2024/01")).expect("mkdir");
    fs::write(media.join("2024/01/a.jpg"), vec![42u8; 300_000]).expect("write");
    let tar = dir.join("site-3.tar.gz");
    let cfg = dir.join("config-site-3.tar.gz");
    for out in [&tar, &cfg] {
        let o = zbackup(
            &[
                "archive",
                media.to_str().expect("utf8"),
                out.to_str().expect("utf8"),
            ],
            &[],
        );
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let mut names = vec![
        "site-3.sql.gz".to_string(),
        "config-site-3.tar.gz".to_string(),
        "site-3.tar.gz".to_string(),
    ];
    if let Some(pwfile) = encrypt_with {
        for n in names.iter_mut() {
            let plain = dir.join(&*n);
            let enc = dir.join(format!("{n}.enc"));
            let o = zbackup(
                &[
                    "encrypt",
                    "--password-file",
                    pwfile.to_str().expect("utf8"),
                    plain.to_str().expect("utf8"),
                    enc.to_str().expect("utf8"),
                ],
                &[],
            );
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            fs::remove_file(&plain).expect("rm");
            *n = format!("{n}.enc");
        }
    }
    let index = serde_json::json!({
        "site-3": {
            "timestamp": 1_790_000_000,
            "database": names[0], "database_hash": sha256(&dir.join(&names[0])),
            "config_files": names[1], "config_files_hash": sha256(&dir.join(&names[1])),
            "files": names[2], "files_hash": sha256(&dir.join(&names[2])),
            "is_filestore_uploaded": false,
            "is_encrypted": encrypt_with.is_some()
        }
    });
    fs::write(dir.join("backup.json"), index.to_string()).expect("index");
    names
}

#[test]
fn intact_set_passes_every_check() {
    let d = tempfile::tempdir().expect("tmp");
    make_set(d.path(), None);
    let o = zbackup(&["restore-check", d.path().to_str().expect("utf8")], &[]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{text}");
    assert!(
        text.contains("restore-check: 3 passed, 0 failed, 0 skipped"),
        "{text}"
    );
    assert!(text.contains("sha256 matches backup.json"), "{text}");
    assert!(text.contains("pg_dump SQL"), "{text}");
}

#[test]
fn flipped_byte_fails_the_hash_and_the_exit_status() {
    let d = tempfile::tempdir().expect("tmp");
    make_set(d.path(), None);
    let tar = d.path().join("site-3.tar.gz");
    let mut bytes = fs::read(&tar).expect("read");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    fs::write(&tar, bytes).expect("write");
    let o = zbackup(
        &[
            "restore-check",
            d.path().join("backup.json").to_str().expect("utf8"),
        ],
        &[],
    );
    let text = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{text}");
    assert!(
        text.contains("FAIL   site-3.tar.gz  hash_mismatch"),
        "{text}"
    );
    assert!(text.contains("2 passed, 1 failed"), "{text}");
}

#[test]
fn single_file_is_checked_against_the_index_beside_it() {
    let d = tempfile::tempdir().expect("tmp");
    make_set(d.path(), None);
    let o = zbackup(
        &[
            "restore-check",
            d.path().join("site-3.sql.gz").to_str().expect("utf8"),
        ],
        &[],
    );
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{text}");
    assert!(
        text.contains("set site-3") && text.contains("1 passed"),
        "{text}"
    );
}

#[test]
fn encrypted_set_is_decrypted_with_the_password_and_header_checked_without() {
    let d = tempfile::tempdir().expect("tmp");
    let pw = d.path().join("pw");
    fs::write(&pw, "s3cret-Passw0rd\n").expect("pw");
    let set = d.path().join("set");
    fs::create_dir_all(&set).expect("mkdir");
    make_set(&set, Some(&pw));
    let dir = set.to_str().expect("utf8");
    let o = zbackup(
        &[
            "restore-check",
            "--password-file",
            pw.to_str().expect("utf8"),
            dir,
        ],
        &[],
    );
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{text}");
    assert!(text.contains("3 passed, 0 failed"), "{text}");
    assert!(text.contains("decrypted;"), "{text}");
    let o = zbackup(&["restore-check", dir], &[]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{text}");
    assert!(text.contains("0 passed, 0 failed, 3 skipped"), "{text}");
    let o = zbackup(&["restore-check", dir], &[("ZBACKUP_PASSWORD", "wrong")]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{text}");
    assert!(text.contains("wrong_password"), "{text}");
}

#[test]
fn index_naming_a_path_outside_the_directory_fails_that_entry_and_the_rest_is_checked() {
    let d = tempfile::tempdir().expect("tmp");
    make_set(d.path(), None);
    let mut index: serde_json::Value =
        serde_json::from_slice(&fs::read(d.path().join("backup.json")).expect("read"))
            .expect("json");
    index["evil"] = serde_json::json!({"timestamp": 1, "database": "../etc/passwd",
                                       "database_hash": "0".repeat(64)});
    fs::write(d.path().join("backup.json"), index.to_string()).expect("index");
    let o = zbackup(&["restore-check", d.path().to_str().expect("utf8")], &[]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{text}");
    assert!(text.contains("FAIL   ../etc/passwd  unsafe_path"), "{text}");
    assert!(text.contains("3 passed, 1 failed"), "{text}");
}
