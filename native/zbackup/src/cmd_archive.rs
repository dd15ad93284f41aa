//! `zbackup archive|verify|list|extract`: the archive engine from the shell. Each prints JSON
//! (one line per result; `list` one line per entry) on stdout; a progress bar goes to stderr
//! when stderr is a terminal.

use backup_core::archive::{self, ArchiveOptions, ExtractOptions, Format, JobControl, Source};
use backup_core::{Error, Result};
use clap::{Args, ValueEnum};
use serde_json::json;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
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

/// tar SRC_DIR (like tar -C SRC_DIR -c .) into OUT_FILE; prints a JSON summary
#[derive(Args)]
pub struct ArchiveArgs {
    /// gzip (parallel) or zstd
    #[arg(long, value_enum, default_value = "gz")]
    format: FormatArg,
    /// compression threads (0: one per core)
    #[arg(long, value_name = "N", default_value_t = 0)]
    threads: usize,
    /// compression level (gz 0-9, default 6; zst 1-19, default 3)
    #[arg(long, value_name = "N")]
    level: Option<i32>,
    /// uncompressed bytes per parallel gzip chunk
    #[arg(long, value_name = "BYTES", default_value_t = archive::DEFAULT_CHUNK)]
    chunk_size: usize,
    /// do not fsync OUT_FILE before renaming it into place
    #[arg(long)]
    no_fsync: bool,
    /// copy the compressed bytes of files unchanged since this earlier .tar.gz of ours
    /// (checked first; cloned where the file system shares extents); compress the rest
    #[arg(long, value_name = "PREV.tar.gz")]
    reuse: Option<PathBuf>,
    /// the tree to archive
    src_dir: PathBuf,
    /// written as OUT_FILE.tmp, renamed when complete
    out_file: PathBuf,
}

/// `--format`; the core's `Format` is foreign to this crate, so clap's trait goes on this copy.
#[derive(Clone, Copy, ValueEnum)]
enum FormatArg {
    #[value(alias = "gzip")]
    Gz,
    #[value(alias = "zstd")]
    Zst,
}

pub fn archive(a: ArchiveArgs) -> Result<()> {
    let o = ArchiveOptions {
        format: match a.format {
            FormatArg::Gz => Format::Gzip,
            FormatArg::Zst => Format::Zstd,
        },
        threads: a.threads,
        level: a.level,
        chunk_size: a.chunk_size,
        fsync: !a.no_fsync,
    };
    let ctl = Arc::new(JobControl::new());
    let bar = ProgressBar::start(Arc::clone(&ctl), "archive");
    let s = archive::create_reusing(
        &Source::Dir(a.src_dir),
        &a.out_file,
        &o,
        a.reuse.as_deref(),
        &ctl,
    );
    drop(bar);
    // The core is the one judge of option values (a level out of the format's range): its
    // verdict on them is a usage error.
    let s = s.map_err(|e| match e {
        Error::InvalidArgument(m) => crate::usage_error("archive", m),
        e => e,
    })?;
    let mut v = json!({
        "files": s.files, "bytes_in": s.bytes_in, "bytes_out": s.bytes_out,
        "sha256": s.sha256, "seconds": s.seconds, "skipped": path_reasons(&s.skipped),
        "format": o.format.as_str(),
    });
    if let Some(r) = &s.reuse {
        v["reuse"] = reuse_json(r);
    }
    println!("{v}");
    Ok(())
}

/// `[{path, reason}]` of entries left out (or units not reused), with why.
fn path_reasons(list: &[(String, String)]) -> Vec<serde_json::Value> {
    list.iter()
        .map(|(p, r)| json!({"path": p, "reason": r}))
        .collect()
}

/// The `reuse` object of the archive result.
pub fn reuse_json(r: &archive::ReuseSummary) -> serde_json::Value {
    json!({
        "used": r.used(), "unusable": r.unusable,
        "reused_entries": r.reused_entries, "reused_bytes": r.reused_bytes,
        "reused_units": r.reused_units, "reused_compressed": r.reused_compressed,
        "prefix_units": r.prefix_units, "prefix_compressed": r.prefix_compressed,
        "tail_pieces": r.tail_pieces, "tail_compressed": r.tail_compressed,
        "rejected_units": r.rejected_units, "rejected": path_reasons(&r.rejected),
        "method": r.method().as_str(), "cloned_bytes": r.cloned_bytes, "copied_bytes": r.copied_bytes,
        "written_bytes": r.written_bytes,
        "padding_bytes": r.padding_bytes, "sha256_resumed_bytes": r.sha256_resumed_bytes,
    })
}

/// check a .tar.gz/.tar.zst: stream checksum, tar structure, per-file crc32s
#[derive(Args)]
pub struct VerifyArgs {
    file: PathBuf,
}

pub fn verify(a: VerifyArgs) -> Result<()> {
    let ctl = Arc::new(JobControl::new());
    let bar = ProgressBar::start(Arc::clone(&ctl), "verify");
    let r = archive::verify(&a.file, &ctl);
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

/// one JSON line per entry
#[derive(Args)]
pub struct ListArgs {
    file: PathBuf,
}

pub fn list(a: ListArgs) -> Result<()> {
    // One line per entry as it is read (memory stays bounded); the exit status is verify's
    // verdict on the whole archive, known at its end. JSON escapes every control character.
    let mut out = std::io::stdout().lock();
    let ctl = JobControl::new();
    archive::list_each(&a.file, &ctl, &mut |e| {
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

/// safe extract via a staging dir beside DEST_DIR
#[derive(Args)]
pub struct ExtractArgs {
    /// replace a non-empty DEST_DIR as a whole (or leave it exactly as it was)
    #[arg(long)]
    overwrite: bool,
    file: PathBuf,
    /// created if missing; must be empty unless --overwrite
    dest_dir: PathBuf,
}

pub fn extract(a: ExtractArgs) -> Result<()> {
    let opts = ExtractOptions {
        overwrite: a.overwrite,
    };
    let ctl = Arc::new(JobControl::new());
    let bar = ProgressBar::start(Arc::clone(&ctl), "extract");
    let s = archive::extract(&a.file, &a.dest_dir, &opts, &ctl);
    drop(bar);
    let s = s?;
    let mut v = json!({
        "files": s.files, "dirs": s.dirs, "symlinks": s.symlinks, "bytes": s.bytes,
        "skipped": path_reasons(&s.skipped),
    });
    if let Some(left) = s.leftover.as_ref() {
        // DEST holds the new tree; only removing the replaced one failed.
        eprintln!(
            "zbackup: warning: the replaced tree could not be removed entirely: {}",
            backup_core::fsutil::display_name(left)
        );
        v["leftover"] = json!(String::from_utf8_lossy(left));
    }
    println!("{v}");
    Ok(())
}
