//! Argument errors: status 2, nothing on stdout, and on stderr clap's `error:` line naming the
//! problem (with that command's usage where clap gives one) and the pointer to `--help`.
//! Nothing is read or written before that.

use std::fs;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn zbackup(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_zbackup"))
        .args(args)
        .env("ZBACKUP_PASSWORD", "pw")
        .stdin(Stdio::null())
        .output()
        .expect("zbackup runs")
}

fn assert_usage_error(args: &[&str], says: &str) {
    let o = zbackup(args);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
    assert!(o.stdout.is_empty(), "{args:?} printed on stdout");
    assert!(err.starts_with("error: "), "{args:?}: {err}");
    assert!(err.contains(says), "{args:?} should say {says:?}: {err}");
    assert!(
        err.trim_end()
            .ends_with("For more information, try '--help'."),
        "{args:?}: {err}"
    );
    if let Some(at) = err.find("Usage: ") {
        let usage = format!("Usage: zbackup {} ", args[0]);
        assert!(
            err[at..].starts_with(&usage),
            "{args:?}: not {usage:?}: {err}"
        );
    }
}

#[test]
fn bad_option_values_exit_2_naming_the_option_and_the_value() {
    assert_usage_error(
        &["archive", "--format", "rar", "a", "b"],
        "invalid value 'rar' for '--format",
    );
    assert_usage_error(
        &["archive", "--threads", "many", "a", "b"],
        "invalid value 'many' for '--threads",
    );
    assert_usage_error(
        &["fuzz", "--inputs", "lots"],
        "invalid value 'lots' for '--inputs",
    );
    assert_usage_error(
        &["bench", "--size", "big"],
        "invalid value 'big' for '--size",
    );
    assert_usage_error(&["bench", "--runs"], "a value is required for '--runs");
    assert_usage_error(&["decrypt", "--hmac"], "a value is required for '--hmac");
}

#[test]
fn unknown_options_and_extra_arguments_exit_2_naming_them() {
    assert_usage_error(&["extract", "--bogus", "a", "b"], "'--bogus'");
    assert_usage_error(&["verify", "a", "b"], "unexpected argument 'b'");
    assert_usage_error(&["encrypt", "a", "b", "c"], "unexpected argument 'c'");
    // The password never comes from argv.
    assert_usage_error(&["decrypt", "--password", "x", "a.enc"], "'--password'");
}

#[test]
fn missing_arguments_exit_2_naming_what_is_missing() {
    assert_usage_error(&["archive", "src"], "<OUT_FILE>");
    assert_usage_error(&["verify"], "<FILE>");
    assert_usage_error(&["list"], "<FILE>");
    assert_usage_error(&["extract", "a.tar.gz"], "<DEST_DIR>");
    assert_usage_error(&["digest"], "<FILE>");
    assert_usage_error(&["encrypt", "only-one-arg"], "<OUT>");
    assert_usage_error(&["decrypt"], "<IN>");
    assert_usage_error(&["hmac"], "<FILE.enc>");
    assert_usage_error(&["restore-check"], "<BACKUP_DIR|backup.json|FILE>");
    assert_usage_error(&["fuzz", "--full"], "--write-bombs");
}

#[test]
fn decrypt_without_enc_extension_or_out_is_a_usage_error_before_any_read() {
    assert_usage_error(
        &["decrypt", "plain.tar.gz"],
        "IN does not end in .enc; name the output file",
    );
}

#[test]
fn a_level_the_format_does_not_have_is_a_usage_error_and_writes_nothing() {
    let t = tempfile::tempdir().expect("tempdir");
    let src = t.path().join("src");
    fs::create_dir(&src).expect("mkdir");
    fs::write(src.join("f"), b"x").expect("write");
    let out = t.path().join("o.tar.gz");
    let s = |p: &Path| p.to_str().expect("utf-8 temp path").to_string();
    let (src, out_s) = (s(&src), s(&out));
    assert_usage_error(
        &["archive", "--level", "12", &src, &out_s],
        "gzip level 12 not in 0..9",
    );
    assert_usage_error(
        &["archive", "--format", "zst", "--level", "0", &src, &out_s],
        "zstd level 0 not in 1..19",
    );
    assert!(!out.exists());
    assert_eq!(
        fs::read_dir(t.path()).expect("ls").count(),
        1,
        "only src is left"
    );
}
