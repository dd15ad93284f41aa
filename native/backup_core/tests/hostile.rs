//! Issue 14 inside the engine: every job ends within a second of its cancel or its deadline,
//! whatever entry it is in (a file of zeros that decompresses at gigabytes per second, a
//! sparse hole), and the job's staging dir is gone when it has.

use backup_core::archive::{self, ExtractOptions, JobControl};
use backup_core::fuzz::craft::{self, TarBuilder};
use std::fs;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A `.tar.zst` of one file of 64 GiB of zeros (2 MiB of zstd RLE blocks): minutes of work.
fn zero_bomb(dir: &Path) -> std::path::PathBuf {
    let p = dir.join("zeros.tar.zst");
    let mut f = std::io::BufWriter::new(fs::File::create(&p).expect("create"));
    craft::write_zstd_zero_bomb(&mut f, b"./zeros", 64 << 30).expect("write");
    drop(f);
    p
}

fn no_staging(dir: &Path) {
    let left: Vec<_> = fs::read_dir(dir)
        .expect("ls")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".zbackup-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn issue14_1_a_deadline_stops_verify_and_extract_within_a_second_inside_a_huge_entry() {
    let d = tempfile::tempdir().expect("tmp");
    let a = zero_bomb(d.path());
    let deadline = Duration::from_millis(400);
    let started = Instant::now();
    let e = archive::verify(&a, &JobControl::with_timeout(deadline)).expect_err("deadline");
    assert_eq!(e.reason(), "timeout");
    assert!(
        started.elapsed() < deadline + Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    let dest = d.path().join("dest");
    let started = Instant::now();
    let e = archive::extract(
        &a,
        &dest,
        &ExtractOptions::default(),
        &JobControl::with_timeout(deadline),
    )
    .expect_err("deadline");
    assert_eq!(e.reason(), "timeout");
    assert!(
        started.elapsed() < deadline + Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert!(!dest.exists());
    no_staging(d.path());
}

#[test]
fn issue14_1_cancel_stops_extract_within_a_second_from_another_thread() {
    let d = tempfile::tempdir().expect("tmp");
    let a = zero_bomb(d.path());
    let dest = d.path().join("dest");
    let ctl = Arc::new(JobControl::new());
    let worker = {
        let (ctl, a, dest) = (Arc::clone(&ctl), a.clone(), dest.clone());
        std::thread::spawn(move || archive::extract(&a, &dest, &ExtractOptions::default(), &ctl))
    };
    std::thread::sleep(Duration::from_millis(300));
    let cancelled = Instant::now();
    ctl.cancel();
    let r = worker.join().expect("no panic");
    assert!(
        cancelled.elapsed() < Duration::from_secs(1),
        "{:?}",
        cancelled.elapsed()
    );
    assert_eq!(r.expect_err("cancelled").reason(), "cancelled");
    assert!(!dest.exists());
    no_staging(d.path());
}

#[test]
fn issue14_1_sparse_holes_cost_nothing_to_verify_or_extract() {
    let d = tempfile::tempdir().expect("tmp");
    // a 1 TiB file (the largest allowed) of one data segment and holes
    let tar = TarBuilder::new()
        .sparse(
            b"./big",
            1 << 40,
            &[(1 << 39, 512), (1 << 40, 0)],
            &[9u8; 512],
        )
        .end()
        .finish();
    let a = d.path().join("sparse.tar.gz");
    fs::write(&a, craft::gzip(&tar)).expect("write");
    let started = Instant::now();
    let r = archive::verify(&a, &JobControl::new()).expect("verifies");
    assert_eq!(r.bytes, 1 << 40);
    let listed = archive::list(&a, &JobControl::new()).expect("list");
    let mut want = crc32fast::Hasher::new();
    want.combine(&archive::zeros_crc(1 << 39));
    want.update(&[9u8; 512]);
    want.combine(&archive::zeros_crc((1 << 39) - 512));
    assert_eq!(listed[0].crc32, want.finalize());
    let dest = d.path().join("dest");
    archive::extract(&a, &dest, &ExtractOptions::default(), &JobControl::new()).expect("extract");
    let meta = fs::metadata(dest.join("big")).expect("meta");
    assert_eq!(meta.len(), 1 << 40);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    use std::os::unix::fs::MetadataExt;
    assert!(
        meta.blocks() < 64,
        "holes stay holes: {} blocks",
        meta.blocks()
    );
}
