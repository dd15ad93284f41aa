//! Z1 encrypted files (`.enc`) for `backup_file_crypto`: jobs around `backup_core::crypto`
//! (`backup_nif.erl` specs them). They report progress and stop on cancel, owner death or a
//! dropped handle, removing their `.tmp` output. Jobs, not dirty NIFs: CFB8 runs at about
//! 45 MB/s, so a 1 GB media archive would hold a dirty scheduler for some 20 s.

use crate::job::job_nif;
use crate::{FilePath, Password};
use backup_core::crypto;
use rustler::NifMap;

#[derive(NifMap)]
#[rustler(encode)]
struct Hmac {
    hmac: String,
}

job_nif! {
    /// `input` encrypted into `output`: a `crypto::Sealed`.
    fn encrypt_file_start(input: FilePath, output: FilePath, password: Password)
    writing: Some(output.0.clone()), within: None => |ctl| {
        let progress = ctl.reading(&input.0, 1);
        crypto::encrypt_file_with_progress(&input.0, &output.0, &password.0, progress)
    }
}

job_nif! {
    /// `input` decrypted into `output`: a `crypto::Plain`, or `wrong_password` before any
    /// output is made.
    fn decrypt_file_start(input: FilePath, output: FilePath, password: Password)
    writing: Some(output.0.clone()), within: None => |ctl| {
        crypto::decrypt_file_job(&input.0, &output.0, &password.0, None, ctl)
    }
}

job_nif! {
    /// As `decrypt_file_start` once `input` matches `hmac` (hex, as in backup.json), else
    /// `hmac_mismatch` and no output.
    fn decrypt_verified_start(
        input: FilePath,
        output: FilePath,
        password: Password,
        hmac: String,
    )
    writing: Some(output.0.clone()), within: None => |ctl| {
        let hmac = Some(hmac.as_str());
        crypto::decrypt_file_job(&input.0, &output.0, &password.0, hmac, ctl)
    }
}

job_nif! {
    /// `#{hmac => Hex}`: the HMAC-SHA256 of the stored `.enc` file (password checked first).
    fn file_hmac_start(input: FilePath, password: Password)
    writing: None, within: None => |ctl| {
        let hmac = crypto::file_hmac(&input.0, &password.0, ctl.reading(&input.0, 1))?;
        Ok(Hmac { hmac })
    }
}
