//! Z1 encrypted files (`.enc`), byte-compatible with Zotonic's `backup_file_crypto` and its
//! `zotonic decrypt` command.
//!
//! Size: the Z1 format (header, key derivation, CFB8 stream, HMAC) and its streaming reader
//! and writer are one unit of byte compatibility; its tests are in crypto/tests.rs.
//!
//! Layout of a file:
//!
//! ```text
//! "Z1" | iterations: u32 little-endian | salt: 16 bytes | AES-256-CFB8( check: 32 bytes | content )
//! ```
//!
//! PBKDF2-HMAC-SHA256(password, salt, iterations) gives 48 bytes: the first 16 are the IV, the
//! next 32 the AES-256 key. `check` is HMAC-SHA256 with the password as key over
//! `salt ++ password`; a reader decrypts it first and compares, so a wrong password is reported
//! before any content is produced. Writers pick 600000 + 1..65535 iterations; readers refuse
//! counts of 20,000,000 or more (and 0, which PBKDF2 cannot use).
//!
//! The format has no authentication of the content and no trailer: a truncated or altered body
//! decrypts to garbage without an error, and a sha256 in backup.json only helps against bad
//! luck (anyone who can change the file can change the index). So this module adds an HMAC
//! that lives outside the file (backup.json keeps it under `<part>_hmac`, a key the stock
//! module ignores, and `zbackup restore-check` and the restore check it before decrypting):
//!
//! ```text
//! material = PBKDF2-HMAC-SHA256(password, salt, iterations, 48)   (the Z1 key derivation)
//! mac_key  = HKDF-SHA256(salt = none, ikm = material, info = HMAC_INFO, 32 bytes)
//! hmac     = HMAC-SHA256(mac_key, the whole stored file: header, check and ciphertext)
//! ```
//!
//! It costs no extra key derivation (the PBKDF2 output is expanded by HKDF into a key that is
//! independent of the AES key and IV) and no extra read pass when writing (it is computed as
//! the file is written, like its sha256). It proves the file was made by someone who knew the
//! password and has not changed since, whatever the index around it says.
//!
//! CFB8 runs the block cipher once per byte. Encryption is inherently serial (each byte's input
//! block holds the previous ciphertext byte); decryption is not, because every input block is
//! made of ciphertext that is already known, so [`Z1Reader`] decrypts batches of bytes with the
//! pipelined multi-block AES of the `aes` crate (AES-NI when the CPU has it).

use crate::archive::JobControl;
use crate::digest::{hex, Digest, Hasher};
use crate::error::{Error, Result};
use crate::fsutil::open_regular;
use aes::cipher::generic_array::GenericArray;
use aes::cipher::inout::InOutBuf;
use aes::cipher::{BlockEncrypt, BlockEncryptMut, KeyInit, KeyIvInit};
use aes::Aes256;
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// The two bytes every Z1 file starts with.
pub const MAGIC: [u8; 2] = *b"Z1";
/// Bytes of random salt in the header.
pub const SALT_LEN: usize = 16;
/// Bytes of the clear-text header: magic, iteration count, salt.
pub const HEADER_LEN: usize = 2 + 4 + SALT_LEN;
/// Bytes of the encrypted password check that follows the header.
pub const CHECK_LEN: usize = 32;
/// Writers use this many PBKDF2 iterations plus a random 1..=65535.
pub const MIN_ITERATIONS: u32 = 600_000;
/// Readers refuse iteration counts of this or more (a hostile header could otherwise make the
/// key derivation run for hours).
pub const MAX_ITERATIONS: u32 = 20_000_000;

const IV_LEN: usize = 16;
const KEY_LEN: usize = 32;
/// HKDF `info` of the file HMAC key (see the module doc). A new version of the scheme gets a
/// new string and a new index key.
pub const HMAC_INFO: &[u8] = b"zotonic_mod_backup Z1 file HMAC-SHA256 v1";
/// Hex digits of a recorded HMAC.
pub const HMAC_HEX_LEN: usize = 64;
/// Bytes encrypted or decrypted per step; also the I/O block of the file helpers.
const CHUNK: usize = 256 * 1024;
/// Bytes decrypted per batch of AES blocks (16 bytes of cipher input per byte: 64 KiB, in L2).
const DECRYPT_BATCH: usize = 4096;

/// The clear-text parameters of a Z1 file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Params {
    pub iterations: u32,
    pub salt: [u8; SALT_LEN],
}

impl Params {
    /// Fresh parameters as Zotonic makes them: 600000 + 1..=65535 iterations, 16 random bytes of
    /// salt from the operating system's generator.
    pub fn random() -> Result<Self> {
        let mut salt = [0u8; SALT_LEN];
        getrandom::fill(&mut salt).map_err(rng_error)?;
        let r = getrandom::u32().map_err(rng_error)?;
        Ok(Params {
            iterations: MIN_ITERATIONS + 1 + r % 65_535,
            salt,
        })
    }

    /// The 22 header bytes of a file with these parameters.
    pub fn header(&self) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h[..2].copy_from_slice(&MAGIC);
        h[2..6].copy_from_slice(&self.iterations.to_le_bytes());
        h[6..].copy_from_slice(&self.salt);
        h
    }

    /// Parses and checks a header.
    pub fn parse(header: &[u8]) -> Result<Self> {
        if header.len() < MAGIC.len() || header[..2] != MAGIC {
            return Err(Error::BadEncryptedFile("not a Z1 file (bad magic)".into()));
        }
        let (Some(count), Some(salt)) = (header.get(2..6), header.get(6..HEADER_LEN)) else {
            return Err(Error::BadEncryptedFile(format!(
                "truncated header: {} of {HEADER_LEN} bytes",
                header.len()
            )));
        };
        let mut count_bytes = [0u8; 4];
        count_bytes.copy_from_slice(count);
        let mut salt_bytes = [0u8; SALT_LEN];
        salt_bytes.copy_from_slice(salt);
        let params = Params {
            iterations: u32::from_le_bytes(count_bytes),
            salt: salt_bytes,
        };
        params.check()?;
        Ok(params)
    }

    fn check(&self) -> Result<()> {
        if self.iterations == 0 || self.iterations >= MAX_ITERATIONS {
            return Err(Error::BadEncryptedFile(format!(
                "iteration count {} out of range 1..{MAX_ITERATIONS}",
                self.iterations
            )));
        }
        Ok(())
    }

    /// PBKDF2-HMAC-SHA256 key material, and from it the IV, the AES-256 key and (by HKDF)
    /// the file HMAC key.
    fn derive(&self, password: &[u8]) -> Keys {
        let mut material = [0u8; IV_LEN + KEY_LEN];
        pbkdf2::pbkdf2_hmac::<Sha256>(password, &self.salt, self.iterations, &mut material);
        Self::keys_from(material)
    }

    /// `derive`, calling `check` every 65,536 iterations so a job can stop in the middle of a
    /// derivation (a hostile header may ask for 19,999,999 iterations: 5 s of one core).
    fn derive_checked(
        &self,
        password: &[u8],
        check: &mut dyn FnMut() -> Result<()>,
    ) -> Result<Keys> {
        let mut material = [0u8; IV_LEN + KEY_LEN];
        pbkdf2_checked(password, &self.salt, self.iterations, &mut material, check)?;
        Ok(Self::keys_from(material))
    }

    fn keys_from(mut material: [u8; IV_LEN + KEY_LEN]) -> Keys {
        let mut keys = Keys {
            iv: [0u8; IV_LEN],
            key: [0u8; KEY_LEN],
            mac: [0u8; KEY_LEN],
        };
        keys.iv.copy_from_slice(&material[..IV_LEN]);
        keys.key.copy_from_slice(&material[IV_LEN..]);
        // 32 bytes is far below HKDF-SHA256's 8160-byte output limit: expand cannot fail
        let expanded = Hkdf::<Sha256>::new(None, &material).expand(HMAC_INFO, &mut keys.mac);
        material.fill(0);
        debug_assert!(expanded.is_ok());
        keys
    }
}

/// The keys of one Z1 file. Zeroed on drop.
struct Keys {
    iv: [u8; IV_LEN],
    key: [u8; KEY_LEN],
    mac: [u8; KEY_LEN],
}

impl Drop for Keys {
    fn drop(&mut self) {
        self.iv.fill(0);
        self.key.fill(0);
        self.mac.fill(0);
    }
}

impl Keys {
    fn hmac(&self) -> Hmac<Sha256> {
        // HMAC takes keys of any length: this cannot fail
        <Hmac<Sha256> as Mac>::new_from_slice(&self.mac)
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"))
    }
}

/// PBKDF2-HMAC-SHA256 (RFC 8018), the `pbkdf2` crate's computation written out so that it
/// can stop between iterations: each 32-byte block is U1 = HMAC(P, S || INT(i)),
/// Uj = HMAC(P, Uj-1), T = U1 ^ ... ^ Uc. Built from the `hmac` crate only (the keyed state is
/// cloned per iteration, as the `pbkdf2` crate does); a test checks it against that crate.
fn pbkdf2_checked(
    password: &[u8],
    salt: &[u8],
    rounds: u32,
    out: &mut [u8],
    check: &mut dyn FnMut() -> Result<()>,
) -> Result<()> {
    let prf = <Hmac<Sha256> as Mac>::new_from_slice(password)
        .map_err(|e| Error::InvalidArgument(format!("password unusable as HMAC key: {e}")))?;
    for (i, block) in out.chunks_mut(32).enumerate() {
        let mut m = prf.clone();
        m.update(salt);
        m.update(&(i as u32 + 1).to_be_bytes());
        let mut u = m.finalize().into_bytes();
        let mut t = u;
        for r in 1..rounds {
            if r % 65_536 == 0 {
                check()?;
            }
            let mut m = prf.clone();
            m.update(&u);
            u = m.finalize().into_bytes();
            for (a, b) in t.iter_mut().zip(u.iter()) {
                *a ^= b;
            }
        }
        block.copy_from_slice(&t[..block.len()]);
        t.fill(0);
        u.fill(0);
    }
    Ok(())
}

fn rng_error(e: getrandom::Error) -> Error {
    Error::InvalidArgument(format!("no random numbers from the operating system: {e}"))
}

/// HMAC-SHA256 keyed with the password over salt ++ password: the plaintext of the check field.
fn password_check(password: &[u8], salt: &[u8; SALT_LEN]) -> Result<Hmac<Sha256>> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(password)
        .map_err(|e| Error::InvalidArgument(format!("password unusable as HMAC key: {e}")))?;
    mac.update(salt);
    mac.update(password);
    Ok(mac)
}

fn require_password(password: &[u8]) -> Result<()> {
    if password.is_empty() {
        Err(Error::NoPassword)
    } else {
        Ok(())
    }
}

/// Encrypts everything written to it into a Z1 stream on `inner`.
///
/// The header and the password check are written by the constructor; every `write` encrypts and
/// passes its bytes on at once, so nothing is buffered: [`Z1Writer::finish`] only flushes and
/// hands `inner` back, and dropping the writer loses nothing (there is no trailer). After a
/// failed write the cipher state no longer matches what `inner` holds, so the writer refuses
/// further writes.
pub struct Z1Writer<W: Write> {
    inner: W,
    cipher: cfb8::Encryptor<Aes256>,
    buf: Vec<u8>,
    params: Params,
    failed: bool,
}

impl<W: Write> Z1Writer<W> {
    /// Starts a stream with fresh random parameters.
    pub fn new(inner: W, password: &[u8]) -> Result<Self> {
        Self::with_params(inner, password, Params::random()?)
    }

    /// Starts a stream with the given parameters (fixed test vectors; otherwise use `new`).
    /// I/O errors on `inner` come back as `Error::Io` with an empty path.
    pub fn with_params(inner: W, password: &[u8], params: Params) -> Result<Self> {
        require_password(password)?;
        params.check()?;
        let keys = params.derive(password);
        Self::with_keys(inner, password, params, &keys)
    }

    fn with_keys(inner: W, password: &[u8], params: Params, keys: &Keys) -> Result<Self> {
        let cipher = cfb8::Encryptor::<Aes256>::new(&keys.key.into(), &keys.iv.into());
        let check = password_check(password, &params.salt)?
            .finalize()
            .into_bytes();
        let mut first = Vec::with_capacity(HEADER_LEN + CHECK_LEN);
        first.extend_from_slice(&params.header());
        first.extend_from_slice(&check);
        let mut w = Z1Writer {
            inner,
            cipher,
            buf: Vec::new(),
            params,
            failed: false,
        };
        w.cfb8_encrypt_tail(&mut first, HEADER_LEN);
        w.inner.write_all(&first).map_err(|e| Error::io("", e))?;
        Ok(w)
    }

    /// The parameters in this stream's header.
    pub fn params(&self) -> Params {
        self.params
    }

    /// The underlying writer.
    pub fn get_ref(&self) -> &W {
        &self.inner
    }

    /// Flushes and returns the underlying writer. The stream is complete at this point.
    pub fn finish(mut self) -> io::Result<W> {
        if self.failed {
            return Err(poisoned());
        }
        self.inner.flush()?;
        Ok(self.inner)
    }

    fn cfb8_encrypt_tail(&mut self, bytes: &mut [u8], from: usize) {
        if let Some(tail) = bytes.get_mut(from..) {
            let (blocks, _rest) = InOutBuf::from(tail).into_chunks();
            self.cipher.encrypt_blocks_inout_mut(blocks);
        }
    }
}

fn poisoned() -> io::Error {
    io::Error::other("Z1 stream is unusable after an earlier write error")
}

impl<W: Write> Write for Z1Writer<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.failed {
            return Err(poisoned());
        }
        let n = data.len().min(CHUNK);
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        buf.extend_from_slice(&data[..n]);
        self.cfb8_encrypt_tail(&mut buf, 0);
        let written = self.inner.write_all(&buf);
        self.buf = buf;
        match written {
            Ok(()) => Ok(n),
            Err(e) => {
                self.failed = true;
                Err(e)
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// AES-256-CFB8 decryption in batches: byte i of a batch is `c[i] ^ AES(window[i..i + 16])[0]`,
/// where `window` is the 16 previous ciphertext bytes followed by the batch. All those inputs
/// are known up front, so the blocks are encrypted together (pipelined AES-NI).
struct Cfb8Decryptor {
    cipher: Aes256,
    /// The shift register: the last 16 ciphertext bytes (the IV at the start).
    register: [u8; 16],
    window: Vec<u8>,
    blocks: Vec<aes::Block>,
}

impl Cfb8Decryptor {
    fn new(key: &[u8; KEY_LEN], iv: &[u8; IV_LEN]) -> Self {
        Cfb8Decryptor {
            cipher: Aes256::new(GenericArray::from_slice(key)),
            register: *iv,
            window: Vec::with_capacity(16 + DECRYPT_BATCH),
            blocks: Vec::with_capacity(DECRYPT_BATCH),
        }
    }

    fn decrypt(&mut self, data: &mut [u8]) {
        for batch in data.chunks_mut(DECRYPT_BATCH) {
            self.window.clear();
            self.window.extend_from_slice(&self.register);
            self.window.extend_from_slice(batch);
            self.blocks.clear();
            self.blocks.extend(
                self.window
                    .windows(16)
                    .take(batch.len())
                    .map(|w| *aes::Block::from_slice(w)),
            );
            self.cipher.encrypt_blocks(&mut self.blocks);
            let last = self.window.len() - 16;
            self.register.copy_from_slice(&self.window[last..]);
            for (byte, block) in batch.iter_mut().zip(&self.blocks) {
                *byte ^= block[0];
            }
        }
    }
}

/// Reads and decrypts a Z1 stream.
///
/// The constructor reads the header and the password check and fails with
/// `Error::WrongPassword` or `Error::BadEncryptedFile` before any content is read, so a caller
/// can refuse a file without creating output. Reads after that yield the decrypted content.
pub struct Z1Reader<R: Read> {
    inner: R,
    decryptor: Cfb8Decryptor,
    params: Params,
}

impl<R: Read> Z1Reader<R> {
    /// Checks the header and the password. I/O errors on `inner` come back as `Error::Io` with
    /// an empty path (callers that know the path use [`Error::io`] on their side).
    pub fn new(mut inner: R, password: &[u8]) -> Result<Self> {
        require_password(password)?;
        let params = read_params(&mut inner)?;
        let keys = params.derive(password);
        Self::after_header(inner, password, params, &keys)
    }

    /// Checks the password with `inner` positioned after the header.
    fn after_header(mut inner: R, password: &[u8], params: Params, keys: &Keys) -> Result<Self> {
        let mut decryptor = Cfb8Decryptor::new(&keys.key, &keys.iv);
        let mut check = [0u8; CHECK_LEN];
        let got = read_full(&mut inner, &mut check).map_err(|e| Error::io("", e))?;
        if got < CHECK_LEN {
            return Err(Error::BadEncryptedFile(format!(
                "truncated password check: {got} of {CHECK_LEN} bytes"
            )));
        }
        decryptor.decrypt(&mut check);
        password_check(password, &params.salt)?
            .verify_slice(&check)
            .map_err(|_| Error::WrongPassword)?;
        Ok(Z1Reader {
            inner,
            decryptor,
            params,
        })
    }

    /// The parameters from the header.
    pub fn params(&self) -> Params {
        self.params
    }

    /// The underlying reader, positioned after what was decrypted so far.
    pub fn into_inner(self) -> R {
        self.inner
    }
}

impl<R: Read> Read for Z1Reader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.decryptor.decrypt(&mut buf[..n]);
        Ok(n)
    }
}

/// Reads and checks the clear-text header.
fn read_params(inner: &mut impl Read) -> Result<Params> {
    let mut header = [0u8; HEADER_LEN];
    let got = read_full(inner, &mut header).map_err(|e| Error::io("", e))?;
    Params::parse(&header[..got])
}

/// Reads until `buf` is full or the stream ends; returns the bytes read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// What encrypting a file yields, as backup.json records it: the sha256 (`<part>_hash`) and
/// size of the `.enc` file as stored, and its HMAC-SHA256 (`<part>_hmac`; see the module doc),
/// both lower-case hex.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "nif", derive(rustler::NifMap), rustler(encode))]
pub struct Sealed {
    pub sha256: String,
    pub size: u64,
    pub hmac: String,
}

/// What decrypting a file yields: the sha256 (lower-case hex) and size of the written file.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "nif", derive(rustler::NifMap), rustler(encode))]
pub struct Plain {
    pub sha256: String,
    pub size: u64,
}

/// Encrypts `input` into `output` with fresh parameters: writes `output.tmp`, syncs it, renames
/// it into place, and removes it on any error. Returns the digest and HMAC of the written
/// (encrypted) file, as backup.json records them.
pub fn encrypt_file(input: &Path, output: &Path, password: &[u8]) -> Result<Sealed> {
    encrypt_file_with_progress(input, output, password, |_| Ok(()))
}

/// [`encrypt_file`], calling `progress(input bytes done)` after every block; an error from it
/// (e.g. `Error::Cancelled`) stops the job and removes the temporary file.
pub fn encrypt_file_with_progress(
    input: &Path,
    output: &Path,
    password: &[u8],
    progress: impl FnMut(u64) -> Result<()>,
) -> Result<Sealed> {
    require_password(password)?;
    let params = Params::random()?;
    encrypt_file_with_params(input, output, password, params, progress)
}

fn encrypt_file_with_params(
    input: &Path,
    output: &Path,
    password: &[u8],
    params: Params,
    mut progress: impl FnMut(u64) -> Result<()>,
) -> Result<Sealed> {
    require_password(password)?;
    params.check()?;
    let src = open_regular(input)?;
    let keys = params.derive_checked(password, &mut || progress(0))?;
    let (tmp, file) = TmpFile::create(output)?;
    let sink = HashingWriter::new(file, Some(keys.hmac()));
    let mut writer =
        Z1Writer::with_keys(sink, password, params, &keys).map_err(|e| at(e, &tmp.path))?;
    copy(src, input, &mut writer, &tmp.path, progress)?;
    let sink = writer.finish().map_err(|e| Error::io(&tmp.path, e))?;
    let (digest, mac) = tmp.commit(sink)?;
    Ok(Sealed {
        sha256: digest.sha256,
        size: digest.size,
        hmac: mac
            .map(|m| hex(&m.finalize().into_bytes()))
            .unwrap_or_default(),
    })
}

/// Decrypts `input` into `output` (`output.tmp`, synced, renamed into place, removed on error).
/// The password is checked before the temporary file is created. Returns the sha256 and size
/// of the written (decrypted) file.
pub fn decrypt_file(input: &Path, output: &Path, password: &[u8]) -> Result<Plain> {
    decrypt_file_with_progress(input, output, password, |_| Ok(()))
}

/// [`decrypt_file`], calling `progress(input bytes done after the header)` after every block.
pub fn decrypt_file_with_progress(
    input: &Path,
    output: &Path,
    password: &[u8],
    progress: impl FnMut(u64) -> Result<()>,
) -> Result<Plain> {
    decrypt_file_verified(input, output, password, None, progress)
}

/// [`decrypt_file_with_progress`] that first checks the password and then, when `hmac` (the
/// hex HMAC the index recorded) is given, reads the whole stored file once to verify it:
/// nothing is decrypted, and no output created, unless it matches (`Error::HmacMismatch`
/// otherwise). Progress counts the verifying pass first, then the decrypting one.
pub fn decrypt_file_verified(
    input: &Path,
    output: &Path,
    password: &[u8],
    hmac: Option<&str>,
    mut progress: impl FnMut(u64) -> Result<()>,
) -> Result<Plain> {
    require_password(password)?;
    let mut src = open_regular(input)?;
    let params = read_params(&mut src).map_err(|e| at(e, input))?;
    let keys = params.derive_checked(password, &mut || progress(0))?;
    let mut offset = 0;
    if let Some(expected) = hmac {
        // the password first: a wrong one is `wrong_password`, not an HMAC mismatch
        Z1Reader::after_header(&mut src, password, params, &keys).map_err(|e| at(e, input))?;
        offset = verify_with(input, &keys, expected, &mut progress)?;
        src = open_regular(input)?;
        read_params(&mut src).map_err(|e| at(e, input))?;
    }
    let reader = Z1Reader::after_header(src, password, params, &keys).map_err(|e| at(e, input))?;
    let (tmp, file) = TmpFile::create(output)?;
    let mut sink = HashingWriter::new(file, None);
    copy(reader, input, &mut sink, &tmp.path, |done| {
        progress(offset + done)
    })?;
    let (digest, _) = tmp.commit(sink)?;
    Ok(Plain {
        sha256: digest.sha256,
        size: digest.size,
    })
}

/// [`decrypt_file_verified`] as a job: `ctl` gets the progress (the verifying pass counts as a
/// pass over `input` of its own) and stops the work.
pub fn decrypt_file_job(
    input: &Path,
    output: &Path,
    password: &[u8],
    hmac: Option<&str>,
    ctl: &JobControl,
) -> Result<Plain> {
    let progress = ctl.reading(input, if hmac.is_some() { 2 } else { 1 });
    decrypt_file_verified(input, output, password, hmac, progress)
}

/// The HMAC-SHA256 of the stored file `path` (lower-case hex), after checking the password
/// (`Error::WrongPassword` before the file is read further).
pub fn file_hmac(
    path: &Path,
    password: &[u8],
    mut progress: impl FnMut(u64) -> Result<()>,
) -> Result<String> {
    let (keys, _) = password_checked(path, password, &mut progress)?;
    let mac = mac_of(path, &keys, &mut progress)?;
    Ok(hex(&mac.finalize().into_bytes()))
}

/// Checks the stored file `path` against the recorded HMAC `expected` (hex), after checking
/// the password. Nothing is decrypted.
pub fn verify_file_hmac(
    path: &Path,
    password: &[u8],
    expected: &str,
    mut progress: impl FnMut(u64) -> Result<()>,
) -> Result<()> {
    let (keys, _) = password_checked(path, password, &mut progress)?;
    verify_with(path, &keys, expected, &mut progress).map(|_| ())
}

fn password_checked(
    path: &Path,
    password: &[u8],
    progress: &mut dyn FnMut(u64) -> Result<()>,
) -> Result<(Keys, Params)> {
    require_password(password)?;
    let mut src = open_regular(path)?;
    let params = read_params(&mut src).map_err(|e| at(e, path))?;
    let keys = params.derive_checked(password, &mut || progress(0))?;
    Z1Reader::after_header(&mut src, password, params, &keys).map_err(|e| at(e, path))?;
    Ok((keys, params))
}

/// Verifies in constant time; returns the bytes read.
fn verify_with(
    path: &Path,
    keys: &Keys,
    expected: &str,
    progress: &mut dyn FnMut(u64) -> Result<()>,
) -> Result<u64> {
    let want = unhex(expected).ok_or_else(|| {
        Error::InvalidArgument(format!(
            "the recorded HMAC of {} is not {HMAC_HEX_LEN} hex digits",
            path.display()
        ))
    })?;
    let mac = mac_of(path, keys, progress)?;
    let size = fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    mac.verify_slice(&want).map_err(|_| Error::HmacMismatch {
        path: path.to_path_buf(),
    })?;
    Ok(size)
}

fn mac_of(
    path: &Path,
    keys: &Keys,
    progress: &mut dyn FnMut(u64) -> Result<()>,
) -> Result<Hmac<Sha256>> {
    let mut src = open_regular(path)?;
    let mut mac = keys.hmac();
    let mut buf = vec![0u8; CHUNK];
    let mut done = 0u64;
    loop {
        let n = match src.read(&mut buf) {
            Ok(0) => return Ok(mac),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io(path, e)),
        };
        mac.update(&buf[..n]);
        done += n as u64;
        progress(done)?;
    }
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() != HMAC_HEX_LEN || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

/// Gives a path-less I/O error from a stream adaptor the path it happened on.
fn at(e: Error, path: &Path) -> Error {
    match e {
        Error::Io { path: p, source } if p.as_os_str().is_empty() => Error::io(path, source),
        other => other,
    }
}

fn copy(
    mut from: impl Read,
    from_path: &Path,
    to: &mut impl Write,
    to_path: &Path,
    mut progress: impl FnMut(u64) -> Result<()>,
) -> Result<()> {
    let mut buf = vec![0u8; CHUNK];
    let mut done = 0u64;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io(from_path, e)),
        };
        to.write_all(&buf[..n]).map_err(|e| Error::io(to_path, e))?;
        done += n as u64;
        progress(done)?;
    }
}

/// Passes bytes on to a file and digests them (and MACs them, when asked) on the way.
struct HashingWriter {
    file: File,
    hasher: Hasher,
    mac: Option<Hmac<Sha256>>,
}

impl HashingWriter {
    fn new(file: File, mac: Option<Hmac<Sha256>>) -> Self {
        HashingWriter {
            file,
            hasher: Hasher::new(),
            mac,
        }
    }
}

impl Write for HashingWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = self.file.write(data)?;
        self.hasher.update(&data[..n]);
        if let Some(m) = &mut self.mac {
            m.update(&data[..n]);
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// `<output>.tmp`, removed on drop unless committed.
struct TmpFile {
    path: PathBuf,
    output: PathBuf,
    committed: bool,
}

impl TmpFile {
    fn create(output: &Path) -> Result<(Self, File)> {
        let mut name = OsString::from(output.as_os_str());
        name.push(".tmp");
        let path = PathBuf::from(name);
        // O_EXCL|O_NOFOLLOW: a symlink planted at OUT.tmp is never written through (decrypted
        // plaintext must not land wherever it points)
        let file = crate::fsutil::create_tmp(&path)?;
        let guard = TmpFile {
            path,
            output: output.to_path_buf(),
            committed: false,
        };
        Ok((guard, file))
    }

    /// Syncs the data, renames the file into place and returns the digest (and MAC) of what
    /// was written.
    fn commit(mut self, sink: HashingWriter) -> Result<(Digest, Option<Hmac<Sha256>>)> {
        let HashingWriter { file, hasher, mac } = sink;
        file.sync_all().map_err(|e| Error::io(&self.path, e))?;
        drop(file);
        fs::rename(&self.path, &self.output).map_err(|e| Error::io(&self.output, e))?;
        self.committed = true;
        Ok((hasher.finish(), mac))
    }
}

impl Drop for TmpFile {
    fn drop(&mut self) {
        if !self.committed {
            // Best effort: the error that got us here is the one worth reporting.
            let _ = fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests;
