//! `zbackup help` and every subcommand's `--help` agree with each other.

use std::process::Command;

const COMMANDS: &[&str] = &[
    "archive",
    "verify",
    "list",
    "extract",
    "bench",
    "digest",
    "encrypt",
    "decrypt",
    "restore-check",
    "hmac",
    "fuzz",
];

fn zbackup(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_zbackup"))
        .args(args)
        .output()
        .expect("zbackup runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn every_subcommand_has_help_that_matches_the_main_help() {
    let (code, main) = zbackup(&["help"]);
    assert_eq!(code, Some(0));
    for cmd in COMMANDS {
        assert!(
            main.contains(&format!("\n  {cmd} ")),
            "{cmd} missing in help"
        );
        for flag in ["--help", "-h"] {
            let (code, text) = zbackup(&[cmd, flag]);
            assert_eq!(code, Some(0), "{cmd} {flag}");
            let synopsis = text.lines().next().unwrap_or_default();
            assert!(
                synopsis.starts_with(&format!("usage: zbackup {cmd}")),
                "{text}"
            );
            let rest = synopsis.trim_start_matches("usage: zbackup ");
            assert!(
                main.contains(rest),
                "{cmd}: '{rest}' differs from zbackup help"
            );
            assert!(text.lines().count() >= 2, "{cmd} help has no description");
        }
    }
}

#[test]
fn unknown_command_prints_usage_and_exits_2() {
    let (code, _) = zbackup(&["frobnicate", "--help"]);
    assert_eq!(code, Some(2));
    let (code, _) = zbackup(&["frobnicate"]);
    assert_eq!(code, Some(2));
}
