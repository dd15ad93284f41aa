//! Issue 14, item 2: reading the bomb archives (a 1 GiB long name, a 1 GiB PAX record, a
//! manifest trailer claiming 1 GiB and 2^40 entries, a 2^60-byte sparse hole, an endless
//! sparse map, a file claiming 2^62 bytes) costs no more heap than a small archive: every
//! declared length is checked before anything is allocated for it.
//!
//! A test binary of its own: the counting allocator sees only this test.

use backup_core::archive::{self, ExtractOptions, JobControl};
use backup_core::fuzz::alloc::{self, CountingAlloc};
use backup_core::fuzz::craft;

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

#[test]
fn issue14_2_bomb_archives_are_refused_within_a_few_mib_of_heap() {
    let d = tempfile::tempdir().expect("tmp");
    for (name, bytes) in craft::bombs() {
        let p = d.path().join(name);
        std::fs::write(&p, &bytes).expect("write");
        drop(bytes);
        let base = alloc::current();
        alloc::reset_peak();
        let v = archive::verify(&p, &JobControl::new());
        let l = archive::list(&p, &JobControl::new());
        let dest = d.path().join("dest");
        let x = archive::extract(&p, &dest, &ExtractOptions::default(), &JobControl::new());
        let peak = alloc::peak().saturating_sub(base);
        let reasons = [&v.map(|_| ()), &l.map(|_| ()), &x.map(|_| ())]
            .iter()
            .map(|r| r.as_ref().err().map(|e| e.reason()))
            .collect::<Vec<_>>();
        assert!(reasons.iter().all(|r| r.is_some()), "{name}: {reasons:?}");
        assert!(
            reasons.windows(2).all(|w| w[0] == w[1]),
            "{name}: one verdict: {reasons:?}"
        );
        assert!(peak < 8 << 20, "{name}: heap peak {peak} bytes");
        assert!(!dest.exists());
    }
}
