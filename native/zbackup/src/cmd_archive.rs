//! `zbackup archive|verify|list|extract`: the archive engine from the shell. Each prints JSON
//! (one line per result; `list` one line per entry) on stdout; a progress bar goes to stderr
//! when stderr is a terminal.

use backup_core::archive::{self, ArchiveOptions, ExtractOptions, Format, JobControl, Source};
use backup_core::{Error, Result};
use serde_json::json;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Shows `ctl`'s progress on stderr until dropped; does nothing when stderr is not a terminal.
pub struct ProgressBar {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ProgressBar {
    pub fn start(ctl: Arc<JobControl>, label: &'static str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::io::stderr().is_terminal().then(|| {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(150));
                    let p = ctl.progress();
                    let frac = if p.bytes_total > 0 {
                        (p.bytes_done as f64 / p.bytes_total as f64).min(1.0)
                    } else {
                        0.0
                    };
                    let filled = (frac * 30.0) as usize;
                    let mut err = std::io::stderr().lock();
                    // A failed progress write is harmless; the result line is what matters.
                    let _ = write!(
                        err,
                        "\r{label} [{}{}] {:3.0}%  {} files  {:.1}/{:.1} MiB ",
                        "#".repeat(filled),
                        " ".repeat(30 - filled),
                        frac * 100.0,
                        p.files_done,
                        p.bytes_done as f64 / 1048576.0,
                        p.bytes_total as f64 / 1048576.0
                    );
                    let _ = err.flush();
                }
                let _ = write!(std::io::stderr(), "\r{}\r", " ".repeat(79));
            })
        });
        ProgressBar { stop, thread }
    }
}

impl Drop for ProgressBar {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            // A panicked progress thread only lost its drawing; ignore.
            let _ = t.join();
        }
    }
}

fn usage(msg: impl Into<String>) -> Error {
    Error::InvalidArgument(msg.into())
}

/// Parsed command line: `--flag value` pairs, bare switches, positionals.
type Parsed<'a> = (Vec<(&'a str, &'a str)>, Vec<&'a str>, Vec<&'a str>);

/// Splits `args` into `--flag value` options (from `flags`), bare `--switches` and positionals.
fn parse<'a>(args: &'a [String], flags: &[&str], switches: &[&str]) -> Result<Parsed<'a>> {
    let (mut opts, mut sw, mut pos) = (Vec::new(), Vec::new(), Vec::new());
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if flags.contains(&a.as_str()) {
            let v = it
                .next()
                .ok_or_else(|| usage(format!("{a} needs a value")))?;
            opts.push((a.as_str(), v.as_str()));
        } else if switches.contains(&a.as_str()) {
            sw.push(a.as_str());
        } else if a.starts_with("--") {
            return Err(usage(format!("unknown option {a}")));
        } else {
            pos.push(a.as_str());
        }
    }
    Ok((opts, sw, pos))
}

fn number<T: std::str::FromStr>(flag: &str, v: &str) -> Result<T> {
    v.parse()
        .map_err(|_| usage(format!("{flag}: not a number: {v}")))
}

pub fn archive(args: &[String]) -> Result<()> {
    let (opts, sw, pos) = parse(
        args,
        &[
            "--format",
            "--threads",
            "--level",
            "--chunk-size",
            "--reuse",
        ],
        &["--no-fsync"],
    )?;
    let [src, out] = pos[..] else {
        return Err(usage(
            "archive [--format gz|zst] [--threads N] [--level N] [--reuse PREV] SRC_DIR OUT_FILE",
        ));
    };
    let mut reuse = None;
    let mut o = ArchiveOptions {
        fsync: sw.is_empty(),
        ..ArchiveOptions::default()
    };
    for (k, v) in opts {
        match k {
            "--format" => {
                o.format = match v {
                    "gz" | "gzip" => Format::Gzip,
                    "zst" | "zstd" => Format::Zstd,
                    _ => return Err(usage(format!("--format: gz or zst, not {v}"))),
                }
            }
            "--threads" => o.threads = number(k, v)?,
            "--level" => o.level = Some(number(k, v)?),
            "--reuse" => reuse = Some(PathBuf::from(v)),
            _ => o.chunk_size = number(k, v)?,
        }
    }
    let ctl = Arc::new(JobControl::new());
    let bar = ProgressBar::start(Arc::clone(&ctl), "archive");
    let s = archive::create_reusing(
        &Source::Dir(PathBuf::from(src)),
        Path::new(out),
        &o,
        reuse.as_deref(),
        &ctl,
    );
    drop(bar);
    let s = s?;
    let skipped: Vec<_> = s
        .skipped
        .iter()
        .map(|(p, r)| json!({"path": p, "reason": r}))
        .collect();
    let mut v = json!({
        "files": s.files, "bytes_in": s.bytes_in, "bytes_out": s.bytes_out,
        "sha256": s.sha256, "seconds": s.seconds, "skipped": skipped,
        "format": o.format.as_str(),
    });
    if let Some(r) = &s.reuse {
        v["reuse"] = reuse_json(r);
    }
    println!("{v}");
    Ok(())
}

/// The `reuse` object of the archive result.
pub fn reuse_json(r: &archive::ReuseSummary) -> serde_json::Value {
    let rejected: Vec<_> = r
        .rejected
        .iter()
        .map(|(p, why)| json!({"path": p, "reason": why}))
        .collect();
    let method = match (r.cloned_bytes > 0, r.copied_bytes > 0) {
        (true, false) => "clone",
        (true, true) => "clone+copy_file_range",
        (false, true) => "copy_file_range",
        (false, false) => "none",
    };
    json!({
        "used": r.unusable.is_none(), "unusable": r.unusable,
        "reused_entries": r.reused_entries, "reused_bytes": r.reused_bytes,
        "reused_units": r.reused_units, "reused_compressed": r.reused_compressed,
        "rejected_units": r.rejected_units, "rejected": rejected,
        "method": method, "cloned_bytes": r.cloned_bytes, "copied_bytes": r.copied_bytes,
        "padding_bytes": r.padding_bytes,
    })
}

pub fn verify(args: &[String]) -> Result<()> {
    let (_, _, pos) = parse(args, &[], &[])?;
    let [file] = pos[..] else {
        return Err(usage("verify FILE"));
    };
    let ctl = Arc::new(JobControl::new());
    let bar = ProgressBar::start(Arc::clone(&ctl), "verify");
    let r = archive::verify(Path::new(file), &ctl);
    drop(bar);
    let r = r?;
    println!(
        "{}",
        json!({
            "ok": true, "format": r.format.as_str(), "entries": r.entries, "files": r.files,
            "bytes": r.bytes, "compressed_bytes": r.compressed_bytes, "sha256": r.sha256,
            "manifest_checked": r.manifest_checked,
        })
    );
    Ok(())
}

pub fn list(args: &[String]) -> Result<()> {
    let (_, _, pos) = parse(args, &[], &[])?;
    let [file] = pos[..] else {
        return Err(usage("list FILE"));
    };
    // One line per entry as it is read (memory stays bounded); the exit status is verify's
    // verdict on the whole archive, known at its end. JSON escapes every control character.
    let mut out = std::io::stdout().lock();
    let ctl = JobControl::new();
    archive::list_each(Path::new(file), &ctl, &mut |e| {
        let mut v = json!({
            "path": e.path_lossy(), "type": e.kind.as_str(), "size": e.size,
            "mode": format!("{:o}", e.mode), "mtime": e.mtime, "crc32": e.crc32,
        });
        if let Some(l) = &e.link {
            v["link"] = json!(String::from_utf8_lossy(l));
        }
        writeln!(out, "{v}").map_err(|e| Error::io("<stdout>", e))
    })?;
    Ok(())
}

pub fn extract(args: &[String]) -> Result<()> {
    let (_, sw, pos) = parse(args, &[], &["--overwrite"])?;
    let [file, dest] = pos[..] else {
        return Err(usage("extract [--overwrite] FILE DEST_DIR"));
    };
    let opts = ExtractOptions {
        overwrite: !sw.is_empty(),
    };
    let ctl = Arc::new(JobControl::new());
    let bar = ProgressBar::start(Arc::clone(&ctl), "extract");
    let s = archive::extract(Path::new(file), Path::new(dest), &opts, &ctl);
    drop(bar);
    let s = s?;
    let skipped: Vec<_> = s
        .skipped
        .iter()
        .map(|(p, r)| json!({"path": p, "reason": r}))
        .collect();
    let mut v = json!({
        "files": s.files, "dirs": s.dirs, "symlinks": s.symlinks, "bytes": s.bytes,
        "skipped": skipped,
    });
    if let Some(left) = &s.leftover {
        // DEST holds the new tree; only removing the replaced one failed.
        eprintln!(
            "zbackup: warning: the replaced tree could not be removed entirely: {}",
            backup_core::fsutil::display_name(left.as_os_str().as_encoded_bytes())
        );
        v["leftover"] = json!(left.to_string_lossy());
    }
    println!("{v}");
    Ok(())
}

/// Exit status of an archive command: 0 ok, 2 usage (bad option or value), 1 any other failure,
/// with the one-line `zbackup: <reason>: <message>` on stderr.
pub fn exit(result: Result<()>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("zbackup: {}: {}", e.reason(), e);
            let code = if matches!(e, Error::InvalidArgument(_)) {
                2
            } else {
                1
            };
            std::process::ExitCode::from(code)
        }
    }
}
