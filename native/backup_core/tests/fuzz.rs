//! The fuzz harness (`backup_core::fuzz`), a bounded deterministic run: every frame-boundary
//! truncation of the multi-frame seeds, then mutated inputs, asserting no panic, no input past
//! its deadline, a bounded heap per input, verify and extract agreeing, and no silent
//! corruption. The long run is `zbackup fuzz --inputs 100000` (README, "Fuzzing").
//!
//! This file is a test binary of its own, so the counting allocator sees only this run.

use backup_core::fuzz::{self, alloc::CountingAlloc, Config};
use std::time::Duration;

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

/// Inputs of the CI run (about 30 s in the test profile); `ZBACKUP_FUZZ_INPUTS` overrides.
const CI_INPUTS: u64 = 3000;

#[test]
fn fuzzed_archives_never_crash_hang_exhaust_memory_disagree_or_corrupt_silently() {
    let inputs = std::env::var("ZBACKUP_FUZZ_INPUTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(CI_INPUTS);
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = Config {
        inputs,
        seed: 14,
        dir: dir.path().to_path_buf(),
        timeout: Duration::from_secs(10),
        memory_cap: 64 << 20,
    };
    let stats = fuzz::run(&cfg, &mut |_| {}).expect("harness runs");
    println!("{stats:#?}");
    assert_eq!(stats.inputs, inputs);
    assert!(fuzz::alloc::installed(), "the heap was measured");
    assert_eq!(stats.failures(), 0, "{:#?}", stats.samples);
    // the mutations reach past the stream checksums: a good share of inputs verify
    assert!(stats.verify_ok > inputs / 50, "{stats:#?}");
}
