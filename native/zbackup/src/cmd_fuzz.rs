//! `zbackup fuzz`: the long run of the archive reader's fuzz harness (`backup_core::fuzz`),
//! and the bomb archives of issue 14 for measurements by hand.

use backup_core::fuzz::{self, Config};
use backup_core::{Error, Result};
use serde_json::json;
use std::path::PathBuf;
use std::time::{Duration, Instant};

pub fn fuzz(args: &[String]) -> Result<bool> {
    let mut cfg = Config {
        inputs: 100_000,
        seed: 14,
        dir: std::env::temp_dir(),
        timeout: Duration::from_secs(10),
        memory_cap: 64 << 20,
    };
    let mut bombs: Option<PathBuf> = None;
    let mut full = false;
    let mut it = args.iter();
    let num = |v: Option<&String>, flag: &str| -> Result<u64> {
        v.and_then(|s| s.parse().ok())
            .ok_or_else(|| Error::InvalidArgument(format!("{flag} needs a number")))
    };
    while let Some(a) = it.next() {
        match a.as_str() {
            "--inputs" => cfg.inputs = num(it.next(), a)?,
            "--seed" => cfg.seed = num(it.next(), a)?,
            "--timeout-ms" => cfg.timeout = Duration::from_millis(num(it.next(), a)?),
            "--dir" => {
                cfg.dir = PathBuf::from(
                    it.next()
                        .ok_or_else(|| Error::InvalidArgument("--dir needs a value".into()))?,
                )
            }
            "--write-bombs" => {
                bombs = Some(PathBuf::from(it.next().ok_or_else(|| {
                    Error::InvalidArgument("--write-bombs needs a directory".into())
                })?))
            }
            "--full" => full = true,
            other => return Err(Error::InvalidArgument(format!("unknown argument {other}"))),
        }
    }
    if let Some(dir) = bombs {
        for p in fuzz::write_bombs(&dir, full)? {
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
