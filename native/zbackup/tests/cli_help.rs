//! `zbackup help` and every subcommand's `--help` come from the one clap definition, and
//! every option the README documents is still there.

use std::process::Command;

/// Each command with the options the README documents for it.
const COMMANDS: &[(&str, &[&str])] = &[
    (
        "archive",
        &[
            "--format",
            "--threads",
            "--level",
            "--chunk-size",
            "--no-fsync",
        ],
    ),
    ("verify", &[]),
    ("list", &[]),
    ("extract", &["--overwrite"]),
    ("bench", &["--size", "--dir", "--runs", "--threads"]),
    ("digest", &[]),
    ("encrypt", &["--password-file"]),
    ("decrypt", &["--password-file", "--hmac"]),
    ("restore-check", &["--password-file"]),
    ("hmac", &["--password-file"]),
    (
        "fuzz",
        &[
            "--inputs",
            "--seed",
            "--dir",
            "--timeout-ms",
            "--write-bombs",
            "--full",
        ],
    ),
];

fn zbackup(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_zbackup"))
        .args(args)
        .output()
        .expect("zbackup runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn every_subcommand_help_names_its_documented_options_and_matches_the_main_help() {
    let (code, main, _) = zbackup(&["help"]);
    assert_eq!(code, Some(0));
    for (cmd, options) in COMMANDS {
        // The main help lists the command with its one-line description...
        let listed = main
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{cmd} ")))
            .unwrap_or_else(|| panic!("{cmd} missing in help: {main}"));
        let about = listed.trim_start()[cmd.len()..].trim();
        assert!(!about.is_empty(), "{cmd} has no description");
        for flag in ["--help", "-h"] {
            // ...and the command's own help opens with the same line.
            let (code, text, _) = zbackup(&[cmd, flag]);
            assert_eq!(code, Some(0), "{cmd} {flag}");
            assert_eq!(text.lines().next(), Some(about), "{cmd} {flag}: {text}");
            assert!(
                text.contains(&format!("Usage: zbackup {cmd} ")),
                "{cmd} {flag}: {text}"
            );
            for option in *options {
                assert!(
                    text.contains(&format!("{option} ")) || text.contains(&format!("{option}\n")),
                    "{cmd} {flag} does not name {option}: {text}"
                );
            }
        }
        assert_eq!(zbackup(&["help", cmd]).1, zbackup(&[cmd, "--help"]).1);
    }
}

#[test]
fn no_command_or_an_unknown_one_prints_usage_on_stderr_and_exits_2() {
    for args in [&[][..], &["frobnicate"], &["frobnicate", "--help"]] {
        let (code, out, err) = zbackup(args);
        assert_eq!(code, Some(2), "{args:?}");
        assert!(out.is_empty(), "{args:?}: {out}");
        assert!(err.contains("Usage: zbackup"), "{args:?}: {err}");
    }
}
