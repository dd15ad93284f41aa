//! `zbackup encrypt` and `zbackup decrypt`: Z1 `.enc` files as Zotonic's mod_backup writes them
//! and `zotonic decrypt` reads them.
//!
//! The password comes from `--password-file F` (its first line), else the environment variable
//! `ZBACKUP_PASSWORD`, else a prompt on the terminal (echo off). It is never taken from the
//! command line, where `ps` would show it, and never printed.

use backup_core::crypto;
use backup_core::Error;
use std::ffi::OsString;
use std::io::{self, BufRead, IsTerminal, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

pub const USAGE_ENCRYPT: &str = "zbackup encrypt [--password-file F] IN OUT";
pub const USAGE_DECRYPT: &str = "zbackup decrypt [--password-file F] [--hmac HEX] IN [OUT]";
pub const USAGE_HMAC: &str = "zbackup hmac [--password-file F] FILE.enc...";
pub const PASSWORD_ENV: &str = "ZBACKUP_PASSWORD";

/// `zbackup encrypt [--password-file F] IN OUT`
pub fn encrypt(args: &[String]) -> ExitCode {
    let Some(parsed) = parse(args, 2, 2) else {
        return usage(USAGE_ENCRYPT);
    };
    let input = PathBuf::from(&parsed.files[0]);
    let output = PathBuf::from(&parsed.files[1]);
    report(
        password(parsed.password_file.as_deref(), false).and_then(|pw| {
            let s = crypto::encrypt_file(&input, &output, &pw)?;
            let line = serde_json::json!({
                "file": output.to_string_lossy(),
                "sha256": s.digest.sha256,
                "size": s.digest.size,
                "hmac": s.hmac,
            });
            println!("{line}");
            Ok(())
        }),
    )
}

/// `zbackup decrypt [--password-file F] IN [OUT]`; OUT defaults to IN without `.enc`.
pub fn decrypt(args: &[String]) -> ExitCode {
    let Some(parsed) = parse(args, 1, 2) else {
        return usage(USAGE_DECRYPT);
    };
    let input = PathBuf::from(&parsed.files[0]);
    let output = match parsed.files.get(1) {
        Some(out) => PathBuf::from(out),
        None => match default_output(&input) {
            Some(out) => out,
            None => {
                eprintln!("zbackup: IN does not end in .enc; name the output file");
                return usage(USAGE_DECRYPT);
            }
        },
    };
    report(
        password(parsed.password_file.as_deref(), true).and_then(|pw| {
            let d = crypto::decrypt_file_verified(
                &input,
                &output,
                &pw,
                parsed.hmac.as_deref(),
                |_| Ok(()),
            )?;
            print_result(&output, &d);
            Ok(())
        }),
    )
}

/// `zbackup hmac [--password-file F] FILE.enc...`: the HMAC-SHA256 of each stored file, as
/// backup.json keeps it (`<part>_hmac`), one JSON line per file.
pub fn hmac(args: &[String]) -> ExitCode {
    let Some(parsed) = parse(args, 1, usize::MAX) else {
        return usage(USAGE_HMAC);
    };
    report(
        password(parsed.password_file.as_deref(), true).and_then(|pw| {
            for f in &parsed.files {
                let mac = crypto::file_hmac(Path::new(f), &pw, |_| Ok(()))?;
                println!("{}", serde_json::json!({"file": f, "hmac": mac}));
            }
            Ok(())
        }),
    )
}

/// `x.tar.gz.enc` -> `x.tar.gz`, as `zotonic decrypt` names it; `None` without a `.enc`
/// extension (or when nothing would be left).
pub fn default_output(input: &Path) -> Option<PathBuf> {
    let bytes = input.as_os_str().as_bytes();
    let stem = bytes.strip_suffix(b".enc")?;
    let name_left = input.file_name().is_some_and(|n| n.len() > 4);
    if stem.is_empty() || stem.ends_with(b"/") || !name_left {
        return None;
    }
    Some(PathBuf::from(OsString::from_vec(stem.to_vec())))
}

struct Parsed {
    password_file: Option<PathBuf>,
    hmac: Option<String>,
    files: Vec<String>,
}

fn parse(args: &[String], min: usize, max: usize) -> Option<Parsed> {
    let mut password_file = None;
    let mut hmac = None;
    let mut files = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--password-file" {
            password_file = Some(PathBuf::from(it.next()?));
        } else if let Some(f) = a.strip_prefix("--password-file=") {
            password_file = Some(PathBuf::from(f));
        } else if a == "--hmac" {
            hmac = Some(it.next()?.clone());
        } else if a == "--" {
            files.extend(it.by_ref().cloned());
        } else if a.starts_with('-') && a.len() > 1 {
            return None;
        } else {
            files.push(a.clone());
        }
    }
    (min..=max).contains(&files.len()).then_some(Parsed {
        password_file,
        hmac,
        files,
    })
}

fn usage(line: &str) -> ExitCode {
    eprintln!("usage: {line}\n  password: --password-file F, else ${PASSWORD_ENV}, else a prompt on the terminal");
    ExitCode::from(2)
}

fn report(result: backup_core::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("zbackup: {}: {}", e.reason(), e);
            if matches!(e, Error::WrongPassword) {
                eprintln!("zbackup: the backup password is in the admin: System > Config, mod_backup.backup_encrypt_password");
            }
            ExitCode::from(1)
        }
    }
}

fn print_result(output: &Path, d: &backup_core::Digest) {
    let line = serde_json::json!({
        "file": output.to_string_lossy(),
        "sha256": d.sha256,
        "size": d.size,
    });
    println!("{line}");
}

/// The password, from the first available source. When encrypting, a typo would lock the data
/// away, so the prompt then asks twice.
pub(crate) fn password(file: Option<&Path>, decrypting: bool) -> backup_core::Result<Vec<u8>> {
    let pw = if let Some(file) = file {
        let bytes = std::fs::read(file).map_err(|e| Error::io(file, e))?;
        first_line(&bytes).to_vec()
    } else if let Some(env) = std::env::var_os(PASSWORD_ENV) {
        env.into_vec()
    } else if io::stdin().is_terminal() {
        let pw = prompt("Password: ")?;
        if !decrypting && prompt("Repeat password: ")? != pw {
            return Err(Error::InvalidArgument("the passwords differ".into()));
        }
        pw
    } else {
        return Err(Error::InvalidArgument(format!(
            "no password: give --password-file F or set {PASSWORD_ENV}"
        )));
    };
    if pw.is_empty() {
        return Err(Error::NoPassword);
    }
    Ok(pw)
}

/// The bytes before the first line end (`\n` or `\r\n`).
fn first_line(bytes: &[u8]) -> &[u8] {
    let line = match bytes.iter().position(|&b| b == b'\n') {
        Some(i) => &bytes[..i],
        None => bytes,
    };
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Reads one line from the terminal with echo switched off through `stty` (no unsafe code, no
/// extra crate); echo comes back on even when reading fails.
fn prompt(text: &str) -> backup_core::Result<Vec<u8>> {
    let mut err = io::stderr();
    let _ = write!(err, "{text}");
    let _ = err.flush();
    let echo_off = stty("-echo");
    let mut line = Vec::new();
    let read = io::stdin().lock().read_until(b'\n', &mut line);
    if echo_off {
        stty("echo");
        let _ = writeln!(err);
    }
    read.map_err(|e| Error::io("<stdin>", e))?;
    Ok(first_line(&line).to_vec())
}

fn stty(arg: &str) -> bool {
    Command::new("stty")
        .arg(arg)
        .stdin(Stdio::inherit())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn default_output_drops_exactly_the_enc_extension() {
        assert_eq!(
            default_output(Path::new("/b/site-1.tar.gz.enc")),
            Some(PathBuf::from("/b/site-1.tar.gz"))
        );
        assert_eq!(default_output(Path::new("site.sql.gz")), None);
        assert_eq!(default_output(Path::new(".enc")), None);
        assert_eq!(default_output(Path::new("/b/.enc")), None);
    }

    #[test]
    fn password_file_option_is_accepted_anywhere_in_both_spellings() {
        let p = parse(&strings(&["in.enc", "--password-file", "pw"]), 1, 2).expect("parsed");
        assert_eq!(p.password_file, Some(PathBuf::from("pw")));
        assert_eq!(p.files, ["in.enc"]);
        let p = parse(&strings(&["--password-file=pw", "a", "b"]), 2, 2).expect("parsed");
        assert_eq!(p.password_file, Some(PathBuf::from("pw")));
        assert!(parse(&strings(&["a", "--password-file"]), 1, 2).is_none());
        assert!(parse(&strings(&["--password", "x", "a"]), 1, 2).is_none());
        assert!(parse(&strings(&["a", "b", "c"]), 1, 2).is_none());
    }

    #[test]
    fn password_file_yields_its_first_line_without_the_line_end() {
        assert_eq!(first_line(b"abc-DEF!@\r\nsecond"), b"abc-DEF!@");
        assert_eq!(first_line(b"pw \n"), b"pw ");
        assert_eq!(first_line(b"pw"), b"pw");
    }
}
