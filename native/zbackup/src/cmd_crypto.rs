//! `zbackup encrypt`, `decrypt` and `hmac`: Z1 `.enc` files as Zotonic's mod_backup writes them
//! and `zotonic decrypt` reads them.
//!
//! The password comes from `--password-file F` (its first line), else the environment variable
//! `ZBACKUP_PASSWORD`, else a prompt on the terminal (echo off). It is never taken from the
//! command line, where `ps` would show it, and never printed.

use backup_core::{crypto, Error, Result};
use clap::Args;
use std::ffi::OsString;
use std::io::{self, IsTerminal};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

pub const PASSWORD_ENV: &str = "ZBACKUP_PASSWORD";

/// Where the password comes from, shared by every command that needs one.
#[derive(Args)]
pub struct PasswordArgs {
    /// the password is F's first line [default: $ZBACKUP_PASSWORD, else a prompt]
    #[arg(long, value_name = "F")]
    pub password_file: Option<PathBuf>,
}

/// encrypt IN into OUT as a Z1 .enc file (Zotonic's format)
#[derive(Args)]
pub struct EncryptArgs {
    #[command(flatten)]
    password: PasswordArgs,
    #[arg(value_name = "IN")]
    input: PathBuf,
    #[arg(value_name = "OUT")]
    output: PathBuf,
}

pub fn encrypt(a: EncryptArgs) -> Result<()> {
    let pw = password(a.password.password_file.as_deref(), false)?;
    let s = crypto::encrypt_file(&a.input, &a.output, &pw)?;
    let line = serde_json::json!({
        "file": a.output.to_string_lossy(),
        "sha256": s.sha256,
        "size": s.size,
        "hmac": s.hmac,
    });
    println!("{line}");
    Ok(())
}

/// decrypt a Z1 .enc file (also Zotonic's)
#[derive(Args)]
pub struct DecryptArgs {
    #[command(flatten)]
    password: PasswordArgs,
    /// decrypt only if the stored file has this HMAC-SHA256 (as backup.json keeps it)
    #[arg(long, value_name = "HEX")]
    hmac: Option<String>,
    #[arg(value_name = "IN")]
    input: PathBuf,
    /// [default: IN without .enc]
    #[arg(value_name = "OUT")]
    output: Option<PathBuf>,
}

pub fn decrypt(a: DecryptArgs) -> Result<()> {
    let output = match a.output.or_else(|| default_output(&a.input)) {
        Some(out) => out,
        None => crate::usage_error("decrypt", "IN does not end in .enc; name the output file"),
    };
    let pw = password(a.password.password_file.as_deref(), true)?;
    let d = crypto::decrypt_file_verified(&a.input, &output, &pw, a.hmac.as_deref(), |_| Ok(()))?;
    let line = serde_json::json!({
        "file": output.to_string_lossy(),
        "sha256": d.sha256,
        "size": d.size,
    });
    println!("{line}");
    Ok(())
}

/// the HMAC-SHA256 of each stored .enc file, as backup.json keeps it
#[derive(Args)]
pub struct HmacArgs {
    #[command(flatten)]
    password: PasswordArgs,
    #[arg(value_name = "FILE.enc", required = true)]
    files: Vec<PathBuf>,
}

/// One JSON line per file; backup.json keeps the same value as `<part>_hmac`.
pub fn hmac(a: HmacArgs) -> Result<()> {
    let pw = password(a.password.password_file.as_deref(), true)?;
    for f in &a.files {
        let mac = crypto::file_hmac(f, &pw, |_| Ok(()))?;
        println!(
            "{}",
            serde_json::json!({"file": f.to_string_lossy(), "hmac": mac})
        );
    }
    Ok(())
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

/// The password, from the first available source. When encrypting, a typo would lock the data
/// away, so the prompt then asks twice.
pub(crate) fn password(file: Option<&Path>, decrypting: bool) -> Result<Vec<u8>> {
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

/// One line from the terminal without echo (rpassword reads /dev/tty, not stdin).
fn prompt(text: &str) -> Result<Vec<u8>> {
    rpassword::prompt_password(text)
        .map(String::into_bytes)
        .map_err(|e| Error::io("/dev/tty", e))
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn password_file_yields_its_first_line_without_the_line_end() {
        assert_eq!(first_line(b"abc-DEF!@\r\nsecond"), b"abc-DEF!@");
        assert_eq!(first_line(b"pw \n"), b"pw ");
        assert_eq!(first_line(b"pw"), b"pw");
    }
}
