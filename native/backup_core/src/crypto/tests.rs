use super::*;
use proptest::prelude::*;

/// Few iterations keep the tests fast; the format does not care.
const FAST: u32 = 1000;

fn fast_params(seed: u8) -> Params {
    Params {
        iterations: FAST,
        salt: [seed; SALT_LEN],
    }
}

fn encrypt_bytes(plain: &[u8], password: &[u8], params: Params) -> Vec<u8> {
    let mut w = Z1Writer::with_params(Vec::new(), password, params).expect("writer");
    w.write_all(plain).expect("write");
    w.finish().expect("finish")
}

fn decrypt_bytes(enc: &[u8], password: &[u8]) -> Result<Vec<u8>> {
    let mut r = Z1Reader::new(enc, password)?;
    let mut out = Vec::new();
    r.read_to_end(&mut out).expect("read");
    Ok(out)
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + i / 251) as u8).collect()
}

// The reference vector: made with Python's hashlib/hmac and `openssl enc -aes-256-cfb8`, i.e.
// without this code; test/backup_file_crypto_tests.erl checks the same bytes against OTP's crypto.
const VECTOR_PASSWORD: &[u8] = b"correct horse battery staple";
const VECTOR_ITERATIONS: u32 = 1000;
const VECTOR_PLAIN_LINE: &[u8] = b"Zotonic backup Z1 test vector.\n";
const VECTOR_FILE_HEX: &str = "5a31e8030000000102030405060708090a0b0c0d0e0f296e5166b4ffab32698afbb487c4a3bb1e82a9c8c1373ca1018a2d86dd769f1805046d74fe0a7093c7e32988fcc3fa62c7537167b16e368b61441fb097214d774f35be6963068e60dd1bd439fb90b64b077147dedea842b22c5f3d60ffd590b9e00082ff376e45e2415a7d4cfd9a71d1d156e8169d42771df839396f4a";
const VECTOR_FILE_SHA256: &str = "2c69adf4e36fe541c2f976373a4d075f43ae907982c67c9756f48b62fcb4a71e";

fn vector_params() -> Params {
    let mut salt = [0u8; SALT_LEN];
    for (i, b) in salt.iter_mut().enumerate() {
        *b = i as u8;
    }
    Params {
        iterations: VECTOR_ITERATIONS,
        salt,
    }
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

#[test]
fn writer_reproduces_the_independent_reference_vector() {
    let plain = VECTOR_PLAIN_LINE.repeat(3);
    let enc = encrypt_bytes(&plain, VECTOR_PASSWORD, vector_params());
    assert_eq!(crate::digest::hex(&enc), VECTOR_FILE_HEX);
    let mut h = Hasher::new();
    h.update(&enc);
    assert_eq!(h.finish().sha256, VECTOR_FILE_SHA256);
}

#[test]
fn reader_decrypts_the_independent_reference_vector() {
    let plain = decrypt_bytes(&unhex(VECTOR_FILE_HEX), VECTOR_PASSWORD).expect("decrypt");
    assert_eq!(plain, VECTOR_PLAIN_LINE.repeat(3));
}

#[test]
fn round_trip_at_the_edges_of_the_password_check_and_of_batches() {
    for len in [
        0,
        1,
        31,
        32,
        33,
        DECRYPT_BATCH - 1,
        DECRYPT_BATCH,
        DECRYPT_BATCH + 1,
        CHUNK + 17,
        3 * CHUNK + 5,
    ] {
        let plain = pattern(len);
        let enc = encrypt_bytes(&plain, b"pw", fast_params(7));
        assert_eq!(enc.len(), HEADER_LEN + CHECK_LEN + len, "size for {len}");
        assert_eq!(
            decrypt_bytes(&enc, b"pw").expect("decrypt"),
            plain,
            "len {len}"
        );
    }
}

#[test]
fn batched_decryptor_equals_the_reference_cfb8_crate_over_a_large_buffer() {
    use aes::cipher::{AsyncStreamCipher, KeyIvInit as _};
    let key = [3u8; KEY_LEN];
    let iv = [9u8; IV_LEN];
    let cipher_text = pattern(5 * DECRYPT_BATCH + 123);
    let mut expected = cipher_text.clone();
    cfb8::Decryptor::<Aes256>::new(&key.into(), &iv.into()).decrypt(&mut expected);
    let mut ours = cipher_text.clone();
    Cfb8Decryptor::new(&key, &iv).decrypt(&mut ours);
    assert_eq!(ours, expected);
}

#[test]
fn random_params_follow_zotonic_iteration_range_and_vary() {
    let a = Params::random().expect("rng");
    let b = Params::random().expect("rng");
    for p in [a, b] {
        assert!(p.iterations > MIN_ITERATIONS && p.iterations <= MIN_ITERATIONS + 65_535);
    }
    assert_ne!(a.salt, b.salt);
}

#[test]
fn header_is_magic_little_endian_count_and_salt() {
    let p = Params {
        iterations: 0x0009_27c1,
        salt: [0xab; SALT_LEN],
    };
    let h = p.header();
    assert_eq!(&h[..6], b"Z1\xc1\x27\x09\x00");
    assert_eq!(&h[6..], &[0xab; SALT_LEN]);
    assert_eq!(Params::parse(&h).expect("parse"), p);
}

#[test]
fn wrong_password_is_reported_before_any_data() {
    let enc = encrypt_bytes(b"secret content", b"right", fast_params(1));
    let e = decrypt_bytes(&enc, b"wrong").expect_err("must fail");
    assert_eq!(e.reason(), "wrong_password");
}

#[test]
fn flipped_byte_in_the_password_check_reads_as_wrong_password() {
    let enc = encrypt_bytes(b"secret content", b"pw", fast_params(2));
    for pos in [HEADER_LEN, HEADER_LEN + 15, HEADER_LEN + CHECK_LEN - 1] {
        let mut bad = enc.clone();
        bad[pos] ^= 0x01;
        let e = decrypt_bytes(&bad, b"pw").expect_err("must fail");
        assert_eq!(e.reason(), "wrong_password", "flip at {pos}");
    }
}

#[test]
fn flipped_salt_reads_as_wrong_password() {
    let mut enc = encrypt_bytes(b"x", b"pw", fast_params(2));
    enc[HEADER_LEN - 1] ^= 0x80;
    assert_eq!(
        decrypt_bytes(&enc, b"pw").expect_err("fail").reason(),
        "wrong_password"
    );
}

#[test]
fn truncated_header_is_a_bad_encrypted_file() {
    let enc = encrypt_bytes(b"content", b"pw", fast_params(3));
    for len in [0, 1, 2, 5, HEADER_LEN - 1] {
        let e = decrypt_bytes(&enc[..len], b"pw").expect_err("must fail");
        assert_eq!(e.reason(), "bad_encrypted_file", "len {len}");
    }
}

#[test]
fn truncated_password_check_is_a_bad_encrypted_file() {
    let enc = encrypt_bytes(b"content", b"pw", fast_params(3));
    for len in [HEADER_LEN, HEADER_LEN + 1, HEADER_LEN + CHECK_LEN - 1] {
        let e = decrypt_bytes(&enc[..len], b"pw").expect_err("must fail");
        assert_eq!(e.reason(), "bad_encrypted_file", "len {len}");
    }
}

#[test]
fn bad_magic_is_a_bad_encrypted_file() {
    let mut enc = encrypt_bytes(b"content", b"pw", fast_params(3));
    enc[1] = b'2';
    let e = decrypt_bytes(&enc, b"pw").expect_err("must fail");
    assert_eq!(e.reason(), "bad_encrypted_file");
}

#[test]
fn iteration_counts_of_twenty_million_or_more_or_zero_are_rejected_without_deriving() {
    for count in [MAX_ITERATIONS, MAX_ITERATIONS + 1, u32::MAX, 0] {
        let mut h = fast_params(4).header();
        h[2..6].copy_from_slice(&count.to_le_bytes());
        let mut file = h.to_vec();
        file.extend_from_slice(&[0u8; CHECK_LEN]);
        // Would take minutes if the count were used: the test finishing proves it is not.
        let e = decrypt_bytes(&file, b"pw").expect_err("must fail");
        assert_eq!(e.reason(), "bad_encrypted_file", "count {count}");
    }
    let mut h = fast_params(4).header();
    h[2..6].copy_from_slice(&(MAX_ITERATIONS - 1).to_le_bytes());
    assert_eq!(
        Params::parse(&h).expect("parse").iterations,
        MAX_ITERATIONS - 1
    );
    let too_many = Params {
        iterations: MAX_ITERATIONS,
        ..fast_params(4)
    };
    let e = Z1Writer::with_params(Vec::new(), b"pw", too_many)
        .err()
        .expect("refused");
    assert_eq!(e.reason(), "bad_encrypted_file");
}

#[test]
fn empty_password_is_refused_both_ways() {
    let e = Z1Writer::with_params(Vec::new(), b"", fast_params(5))
        .err()
        .expect("refused");
    assert_eq!(e.reason(), "no_password");
    let enc = encrypt_bytes(b"x", b"pw", fast_params(5));
    assert_eq!(
        decrypt_bytes(&enc, b"").expect_err("refused").reason(),
        "no_password"
    );
}

#[test]
fn dropping_a_writer_without_finish_does_not_panic_and_keeps_what_was_written() {
    let mut out = Vec::new();
    {
        let mut w = Z1Writer::with_params(&mut out, b"pw", fast_params(6)).expect("writer");
        w.write_all(b"partial").expect("write");
    }
    assert_eq!(decrypt_bytes(&out, b"pw").expect("decrypt"), b"partial");
}

struct FailingWriter {
    budget: usize,
}

impl Write for FailingWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.budget == 0 {
            return Err(io::Error::from(io::ErrorKind::StorageFull));
        }
        let n = data.len().min(self.budget);
        self.budget -= n;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn writer_refuses_to_continue_after_a_failed_write() {
    let sink = FailingWriter {
        budget: HEADER_LEN + CHECK_LEN + 10,
    };
    let mut w = Z1Writer::with_params(sink, b"pw", fast_params(8)).expect("writer");
    let e = w.write_all(&[0u8; 100]).expect_err("disk full");
    assert_eq!(e.kind(), io::ErrorKind::StorageFull);
    assert!(w.write(b"more").is_err());
    assert!(w.finish().is_err());
}

#[test]
fn header_write_failure_is_an_io_error() {
    let sink = FailingWriter { budget: 3 };
    let e = Z1Writer::with_params(sink, b"pw", fast_params(8))
        .err()
        .expect("fails");
    assert_eq!(e.reason(), "enospc");
}

// ----- file helpers -----

#[test]
fn file_round_trip_returns_digests_of_the_written_files_and_leaves_no_tmp() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plain = dir.path().join("db.sql.gz");
    let enc = dir.path().join("db.sql.gz.enc");
    let back = dir.path().join("back.sql.gz");
    let data = pattern(700_001);
    fs::write(&plain, &data).expect("write");
    let d_enc =
        encrypt_file_with_params(&plain, &enc, b"pw", fast_params(9), |_| Ok(())).expect("encrypt");
    let stored = crate::file_digest(&enc).expect("digest");
    assert_eq!((&d_enc.sha256, d_enc.size), (&stored.sha256, stored.size));
    assert_eq!(d_enc.size, (HEADER_LEN + CHECK_LEN + data.len()) as u64);
    // the HMAC computed while writing is the one a separate pass computes
    let mac = file_hmac(&enc, b"pw", |_| Ok(())).expect("hmac");
    assert_eq!(d_enc.hmac, mac);
    let d_back = decrypt_file(&enc, &back, b"pw").expect("decrypt");
    let want = crate::file_digest(&plain).expect("digest");
    assert_eq!((d_back.sha256, d_back.size), (want.sha256, want.size));
    assert_eq!(fs::read(&back).expect("read"), data);
    let names: Vec<_> = fs::read_dir(dir.path())
        .expect("ls")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names.len(), 3, "no .tmp left: {names:?}");
}

#[test]
fn encrypt_file_uses_fresh_zotonic_parameters() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plain = dir.path().join("a");
    let enc = dir.path().join("a.enc");
    fs::write(&plain, b"hello").expect("write");
    encrypt_file(&plain, &enc, b"pw").expect("encrypt");
    let bytes = fs::read(&enc).expect("read");
    let p = Params::parse(&bytes[..HEADER_LEN]).expect("header");
    assert!(p.iterations > MIN_ITERATIONS && p.iterations <= MIN_ITERATIONS + 65_535);
    assert_eq!(decrypt_bytes(&bytes, b"pw").expect("decrypt"), b"hello");
}

#[test]
fn decrypt_file_with_wrong_password_creates_neither_output_nor_tmp() {
    let dir = tempfile::tempdir().expect("tempdir");
    let enc = dir.path().join("x.enc");
    let out = dir.path().join("x");
    fs::write(&enc, encrypt_bytes(b"data", b"pw", fast_params(10))).expect("write");
    let e = decrypt_file(&enc, &out, b"nope").expect_err("wrong");
    assert_eq!(e.reason(), "wrong_password");
    assert!(!out.exists());
    assert!(!dir.path().join("x.tmp").exists());
}

#[test]
fn decrypt_file_of_a_truncated_header_names_the_problem() {
    let dir = tempfile::tempdir().expect("tempdir");
    let enc = dir.path().join("x.enc");
    fs::write(&enc, b"Z1\x01").expect("write");
    let e = decrypt_file(&enc, &dir.path().join("x"), b"pw").expect_err("bad");
    assert_eq!(e.reason(), "bad_encrypted_file");
}

#[test]
fn missing_input_is_enoent_with_its_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("missing");
    let e = encrypt_file(&missing, &dir.path().join("o"), b"pw").expect_err("enoent");
    assert_eq!(e.reason(), "enoent");
    assert_eq!(e.path(), Some(missing.as_path()));
}

#[test]
fn unwritable_output_dir_is_enoent_on_the_tmp_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plain = dir.path().join("a");
    fs::write(&plain, b"x").expect("write");
    let out = dir.path().join("no/such/dir/a.enc");
    let e = encrypt_file(&plain, &out, b"pw").expect_err("enoent");
    assert_eq!(e.reason(), "enoent");
    assert_eq!(
        e.path(),
        Some(dir.path().join("no/such/dir/a.enc.tmp").as_path())
    );
}

#[test]
fn cancelling_through_progress_removes_the_tmp_and_writes_no_output() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plain = dir.path().join("a");
    let enc = dir.path().join("a.enc");
    fs::write(&plain, pattern(3 * CHUNK)).expect("write");
    let mut calls = 0;
    let e = encrypt_file_with_params(&plain, &enc, b"pw", fast_params(11), |done| {
        calls += 1;
        assert_eq!(done, (calls * CHUNK) as u64);
        if calls == 2 {
            Err(Error::Cancelled)
        } else {
            Ok(())
        }
    })
    .expect_err("cancelled");
    assert_eq!(e.reason(), "cancelled");
    assert!(!enc.exists());
    assert!(!dir.path().join("a.enc.tmp").exists());
}

#[test]
fn existing_output_is_replaced_only_on_success() {
    let dir = tempfile::tempdir().expect("tempdir");
    let enc = dir.path().join("x.enc");
    let out = dir.path().join("x");
    fs::write(&out, b"old").expect("write");
    fs::write(&enc, encrypt_bytes(b"new", b"pw", fast_params(12))).expect("write");
    assert!(decrypt_file(&enc, &out, b"bad").is_err());
    assert_eq!(fs::read(&out).expect("read"), b"old");
    decrypt_file(&enc, &out, b"pw").expect("decrypt");
    assert_eq!(fs::read(&out).expect("read"), b"new");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn round_trip_of_any_content_in_any_write_and_read_sizes(
        data in proptest::collection::vec(any::<u8>(), 0..20_000),
        write_size in 1usize..5_000,
        read_size in 1usize..5_000,
        password in proptest::collection::vec(any::<u8>(), 1..80),
        seed in any::<u8>(),
    ) {
        let mut w = Z1Writer::with_params(Vec::new(), &password, fast_params(seed)).expect("writer");
        for piece in data.chunks(write_size) {
            w.write_all(piece).expect("write");
        }
        let enc = w.finish().expect("finish");
        prop_assert_eq!(&enc, &encrypt_bytes(&data, &password, fast_params(seed)));
        let mut r = Z1Reader::new(enc.as_slice(), &password).expect("reader");
        let mut out = Vec::new();
        let mut buf = vec![0u8; read_size];
        loop {
            let n = r.read(&mut buf).expect("read");
            if n == 0 { break; }
            out.extend_from_slice(&buf[..n]);
        }
        prop_assert_eq!(out, data);
    }

    #[test]
    fn batched_decryption_equals_the_cfb8_crate_for_any_split(
        data in proptest::collection::vec(any::<u8>(), 0..10_000),
        split in 0usize..10_000,
        key in any::<[u8; 32]>(),
        iv in any::<[u8; 16]>(),
    ) {
        use aes::cipher::{AsyncStreamCipher, KeyIvInit as _};
        let mut expected = data.clone();
        cfb8::Decryptor::<Aes256>::new(&key.into(), &iv.into()).decrypt(&mut expected);
        let mut ours = data.clone();
        let split = split.min(ours.len());
        let mut d = Cfb8Decryptor::new(&key, &iv);
        let (a, b) = ours.split_at_mut(split);
        d.decrypt(a);
        d.decrypt(b);
        prop_assert_eq!(ours, expected);
    }
}

/// The file HMAC, computed independently of this module's helpers: PBKDF2 -> HKDF -> HMAC
/// over the stored bytes (the scheme documented in the module doc).
fn reference_hmac(file: &[u8], password: &[u8], params: Params) -> String {
    let mut material = [0u8; 48];
    pbkdf2::pbkdf2_hmac::<Sha256>(password, &params.salt, params.iterations, &mut material);
    let mut key = [0u8; 32];
    Hkdf::<Sha256>::new(None, &material)
        .expand(b"zotonic_mod_backup Z1 file HMAC-SHA256 v1", &mut key)
        .expect("hkdf");
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&key).expect("key");
    mac.update(file);
    crate::digest::hex(&mac.finalize().into_bytes())
}

/// `data` as `dir/db.sql.gz`, encrypted with password "pw" into `dir/db.sql.gz.enc`.
fn sealed_file(dir: &Path, data: &[u8], seed: u8) -> (PathBuf, Sealed) {
    let plain = dir.join("db.sql.gz");
    let enc = dir.join("db.sql.gz.enc");
    fs::write(&plain, data).expect("write");
    let sealed =
        encrypt_file_with_params(&plain, &enc, b"pw", fast_params(seed), |_| Ok(())).expect("enc");
    (enc, sealed)
}

#[test]
fn the_file_hmac_follows_the_documented_kdf_and_covers_every_stored_byte() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (enc, sealed) = sealed_file(dir.path(), &pattern(100_000), 3);
    let stored = fs::read(&enc).expect("read");
    assert_eq!(sealed.hmac, reference_hmac(&stored, b"pw", fast_params(3)));
    verify_file_hmac(&enc, b"pw", &sealed.hmac, |_| Ok(())).expect("matches");
    // one flipped ciphertext byte: refused, and decrypt_file_verified makes no output
    let mut forged = stored.clone();
    let last = forged.len() - 1;
    forged[last] ^= 1;
    fs::write(&enc, &forged).expect("write");
    let e = verify_file_hmac(&enc, b"pw", &sealed.hmac, |_| Ok(())).expect_err("forged");
    assert_eq!(e.reason(), "hmac_mismatch");
    let out = dir.path().join("out.sql.gz");
    let e = decrypt_file_verified(&enc, &out, b"pw", Some(&sealed.hmac), |_| Ok(()))
        .expect_err("forged");
    assert_eq!(e.reason(), "hmac_mismatch");
    assert!(!out.exists());
    assert!(!dir.path().join("out.sql.gz.tmp").exists());
    // the genuine file decrypts through the verified path
    fs::write(&enc, &stored).expect("write");
    decrypt_file_verified(&enc, &out, b"pw", Some(&sealed.hmac), |_| Ok(())).expect("ok");
    assert_eq!(fs::read(&out).expect("read"), pattern(100_000));
    // a wrong password is reported as such, before any MAC is compared
    let e = verify_file_hmac(&enc, b"nope", &sealed.hmac, |_| Ok(())).expect_err("pw");
    assert_eq!(e.reason(), "wrong_password");
    // a recorded value that is not 64 hex digits is an error, not a pass
    let e = verify_file_hmac(&enc, b"pw", "abc", |_| Ok(())).expect_err("short");
    assert_eq!(e.reason(), "einval");
}

#[test]
fn decrypt_never_writes_plaintext_through_a_symlink_planted_at_out_tmp() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (enc, _) = sealed_file(dir.path(), b"secret plaintext", 4);
    let victim = dir.path().join("victim");
    fs::write(&victim, b"precious").expect("write");
    let out = dir.path().join("out.sql.gz");
    std::os::unix::fs::symlink(&victim, dir.path().join("out.sql.gz.tmp")).expect("symlink");
    decrypt_file(&enc, &out, b"pw").expect("decrypt");
    assert_eq!(fs::read(&victim).expect("read"), b"precious");
    assert_eq!(fs::read(&out).expect("read"), b"secret plaintext");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]
    #[test]
    fn the_cancellable_pbkdf2_equals_the_pbkdf2_crate(
        password in proptest::collection::vec(any::<u8>(), 1..80),
        salt in proptest::collection::vec(any::<u8>(), 0..32),
        rounds in 1u32..70_000,
        len in 1usize..80,
    ) {
        let mut want = vec![0u8; len];
        pbkdf2::pbkdf2_hmac::<Sha256>(&password, &salt, rounds, &mut want);
        let mut got = vec![0u8; len];
        pbkdf2_checked(&password, &salt, rounds, &mut got, &mut || Ok(())).expect("derived");
        prop_assert_eq!(got, want);
    }
}

#[test]
fn a_cancel_stops_a_19_999_999_iteration_key_derivation_within_a_second() {
    let dir = tempfile::tempdir().expect("tempdir");
    let enc = dir.path().join("hostile.enc");
    let mut header = Params {
        iterations: MAX_ITERATIONS - 1,
        salt: [1; SALT_LEN],
    }
    .header()
    .to_vec();
    header.extend_from_slice(&[0u8; 64]);
    fs::write(&enc, header).expect("write");
    let started = std::time::Instant::now();
    let e = decrypt_file_with_progress(&enc, &dir.path().join("out"), b"pw", |_| {
        if started.elapsed() > std::time::Duration::from_millis(200) {
            Err(Error::Cancelled)
        } else {
            Ok(())
        }
    })
    .expect_err("cancelled");
    assert_eq!(e.reason(), "cancelled");
    assert!(
        started.elapsed() < std::time::Duration::from_millis(1200),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_verified_decrypt_job_counts_two_passes_over_the_stored_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (enc, sealed) = sealed_file(dir.path(), &pattern(300_000), 5);
    let ctl = JobControl::new();
    let out = dir.path().join("out");
    decrypt_file_job(&enc, &out, b"pw", Some(&sealed.hmac), &ctl).expect("decrypt");
    let p = ctl.progress();
    assert_eq!((p.files_total, p.bytes_total), (1, 2 * sealed.size));
    assert!(p.bytes_done > sealed.size, "{p:?}");
}
