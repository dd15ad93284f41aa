//! Z1 encrypted files (`.enc`) for `backup_file_crypto`: jobs around `backup_core::crypto`.
//! They report progress and stop on cancel, owner death or a dropped handle, removing their
//! `.tmp` output. Jobs, not dirty NIFs: CFB8 runs at about 45 MB/s, so a 1 GB media archive
//! would hold a dirty scheduler for some 20 s.

use crate::job::job_nif;
use crate::term::{FilePath, Password};
use backup_core::archive::JobControl;
use backup_core::crypto;
use backup_core::term::OrUndefined;
use backup_core::Digest;
use rustler::NifMap;
use std::path::Path;

/// `#{sha256, size, hmac}` of a written `.enc` (`hmac`: what backup.json keeps as
/// `<part>_hmac`, `undefined` when none was made).
#[derive(NifMap)]
#[rustler(encode)]
struct Sealed {
    sha256: String,
    size: u64,
    hmac: OrUndefined<String>,
}

/// `#{sha256, size}` of a decrypted file.
#[derive(NifMap)]
#[rustler(encode)]
struct Plain {
    sha256: String,
    size: u64,
}

impl From<Digest> for Plain {
    fn from(d: Digest) -> Self {
        Plain {
            sha256: d.sha256,
            size: d.size,
        }
    }
}

#[derive(NifMap)]
#[rustler(encode)]
struct Hmac {
    hmac: String,
}

job_nif! {
    /// `encrypt_file_start(In, Out, Password, Ref, ProgressPid)`: the job's result is `Sealed`.
    fn encrypt_file_start(input: FilePath, output: FilePath, password: Password)
        .writing(&output.0) => |ctl| {
        let progress = ctl.reading(&input.0, 1);
        let s = crypto::encrypt_file_with_progress(&input.0, &output.0, &password.0, progress)?;
        Ok(Sealed {
            sha256: s.digest.sha256,
            size: s.digest.size,
            hmac: OrUndefined(Some(s.hmac).filter(|h| !h.is_empty())),
        })
    }
}

job_nif! {
    /// `decrypt_file_start(In, Out, Password, Ref, ProgressPid)`: the job's result is `Plain`,
    /// or `{error, {wrong_password, _}}` before any output is created.
    fn decrypt_file_start(input: FilePath, output: FilePath, password: Password)
        .writing(&output.0) => |ctl| decrypt(&input.0, &output.0, &password, None, ctl)
}

job_nif! {
    /// `decrypt_verified_start(In, Out, Password, Hmac, Ref, ProgressPid)`: as
    /// `decrypt_file_start`, but the stored file is first checked against `Hmac` (hex, as in
    /// backup.json): `{error, {hmac_mismatch, _}}` and no output when it differs.
    fn decrypt_verified_start(input: FilePath, output: FilePath, password: Password, hmac: String)
        .writing(&output.0) => |ctl| decrypt(&input.0, &output.0, &password, Some(&hmac), ctl)
}

fn decrypt(
    input: &Path,
    output: &Path,
    password: &Password,
    hmac: Option<&str>,
    ctl: &JobControl,
) -> backup_core::Result<Plain> {
    // The HMAC check is a pass of its own over the input.
    let progress = ctl.reading(input, if hmac.is_some() { 2 } else { 1 });
    crypto::decrypt_file_verified(input, output, &password.0, hmac, progress).map(Plain::from)
}

job_nif! {
    /// `file_hmac_start(In, Password, Ref, ProgressPid)`: the job's result is `#{hmac => Hex}`,
    /// the HMAC-SHA256 of the stored `.enc` file (password checked first).
    fn file_hmac_start(input: FilePath, password: Password) => |ctl| {
        let hmac = crypto::file_hmac(&input.0, &password.0, ctl.reading(&input.0, 1))?;
        Ok(Hmac { hmac })
    }
}
