//! `zbackup fuzz`: the long run of the archive reader's fuzz harness (`backup_core::fuzz`),
//! and the bomb archives of issue 14 for measurements by hand.

use backup_core::fuzz::{self, Config};
use backup_core::Result;
use clap::Args;
use serde_json::json;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// fuzz the archive reader; prints the counts as JSON
///
/// Exit status 1 if any input crashed, hung, used too much memory, made verify and extract
/// disagree or extracted something else than verify vouched for. With --write-bombs DIR it
/// writes the hostile archives of issue 14 into DIR instead.
#[derive(Args)]
pub struct FuzzArgs {
    /// inputs to try
    #[arg(long, value_name = "N", default_value_t = 100_000)]
    inputs: u64,
    /// the run is a function of this number
    #[arg(long, value_name = "S", default_value_t = 14)]
    seed: u64,
    /// scratch directory [default: the temp dir]
    #[arg(long, value_name = "D")]
    dir: Option<PathBuf>,
    /// deadline of each verify and each extract, in milliseconds
    #[arg(long, value_name = "T", default_value_t = 10_000)]
    timeout_ms: u64,
    /// write the hostile archives of issue 14 into DIR (and fuzz nothing)
    #[arg(long, value_name = "DIR")]
    write_bombs: Option<PathBuf>,
    /// with --write-bombs: the archives at full scale
    #[arg(long, requires = "write_bombs")]
    full: bool,
}

pub fn fuzz(a: FuzzArgs) -> Result<bool> {
    let cfg = Config {
        inputs: a.inputs,
        seed: a.seed,
        dir: a.dir.unwrap_or_else(std::env::temp_dir),
        timeout: Duration::from_millis(a.timeout_ms),
        memory_cap: 64 << 20,
    };
    if let Some(dir) = a.write_bombs {
        for p in fuzz::write_bombs(&dir, a.full)? {
            println!("{}", json!({"bomb": p.to_string_lossy()}));
        }
        return Ok(true);
    }
    let started = Instant::now();
    let stats = fuzz::run(&cfg, &mut |s| {
        eprintln!(
            "fuzz: {} inputs, {} failures, {:.0} s",
            s.inputs,
            s.failures(),
            started.elapsed().as_secs_f64()
        );
    })?;
    println!(
        "{}",
        json!({
            "inputs": stats.inputs,
            "seed": cfg.seed,
            "verify_ok": stats.verify_ok,
            "crashes": stats.crashes,
            "hangs": stats.hangs,
            "disagreements": stats.disagreements,
            "silent_corruptions": stats.silent_corruptions,
            "over_memory": stats.over_memory,
            "staging_leftovers": stats.staging_leftovers,
            "reason_differences": stats.reason_differences,
            "max_input_ms": stats.max_input_ms,
            "max_heap_bytes": stats.max_heap_bytes,
            "seconds": started.elapsed().as_secs_f64(),
            "samples": stats.samples,
        })
    );
    Ok(stats.failures() == 0)
}
