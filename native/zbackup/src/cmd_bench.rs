//! `zbackup bench [--size MiB] [--dir D] [--runs N] [--threads N]`: generates a media-heavy and a
//! text-heavy tree of about `--size` MiB each and prints, per tree, the median wall time and
//! output size of our gz and zst against `tar -czf`, `tar | pigz -p 2`, `tar | zstd -T2 -3` and
//! plain `tar -cf` (the I/O floor), with the ratios the targets are stated in. Ours runs
//! in-process without fsync (the tar pipelines do not fsync either). Not a test: timings depend
//! on the machine and its load; run it on an idle machine.

use backup_core::archive::{self, ArchiveOptions, Format, JobControl, Source};
use backup_core::{Error, Result};
use clap::Args;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn fill(&mut self, buf: &mut [u8]) {
        for c in buf.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            c.copy_from_slice(&v[..c.len()]);
        }
    }
}

fn io(p: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| Error::io(p, e)
}

/// Most bytes random-like in JPEG (150 KiB - 4 MiB) and MP4 (10 - 40 MiB) sized files, a few
/// small text files (resized-image sidecars, HTML) beside them.
fn media_tree(root: &Path, bytes: u64, rng: &mut Rng) -> Result<()> {
    let mut done = 0u64;
    let mut i = 0u64;
    let mut buf = Vec::new();
    while done < bytes {
        let dir = root.join(format!("{}/{:02}", 2020 + i % 5, i % 12 + 1));
        fs::create_dir_all(&dir).map_err(io(&dir))?;
        let (name, size, random) = match i % 20 {
            0 => (format!("clip{i}.mp4"), 10 << 20 | rng.below(30 << 20), true),
            1..=3 => (format!("page{i}.html"), 2048 + rng.below(30_000), false),
            _ => (
                format!("photo{i}.jpg"),
                150 << 10 | rng.below(4 << 20),
                true,
            ),
        };
        let size = size.min(bytes - done).max(1);
        buf.resize(size as usize, 0);
        if random {
            rng.fill(&mut buf);
        } else {
            text(&mut buf, rng);
        }
        let p = dir.join(name);
        fs::write(&p, &buf).map_err(io(&p))?;
        done += size;
        i += 1;
    }
    Ok(())
}

const WORDS: &[&str] = &[
    "the",
    "of",
    "and",
    "zotonic",
    "resource",
    "media",
    "<div class=\"content\">",
    "</div>",
    "<p>",
    "</p>",
    "<a href=\"/page/",
    "\">",
    "</a>",
    "stream",
    "endobj",
    "obj",
    "<path d=\"M",
    "L",
    "Z\"/>",
    "fill=\"#",
    "archive",
    "backup",
    "site",
    "category",
    "published",
    "title",
    "summary",
    "body",
    "edge",
    "depiction",
    "author",
    "keyword",
    "language",
    "en",
    "nl",
];

/// Fills `buf` with HTML/SVG/PDF-like text: words, numbers and markup from a PRNG, which
/// deflates about 3-4x like real pages do.
fn text(buf: &mut [u8], rng: &mut Rng) {
    let mut pos = 0;
    while pos < buf.len() {
        let r = rng.next();
        let w: Vec<u8> = if r % 7 == 0 {
            format!("{} ", (r >> 20) % 10_000).into_bytes()
        } else if r % 23 == 0 {
            b"\n".to_vec()
        } else {
            let mut w = WORDS[((r >> 8) % WORDS.len() as u64) as usize]
                .as_bytes()
                .to_vec();
            w.push(b' ');
            w
        };
        let n = w.len().min(buf.len() - pos);
        buf[pos..pos + n].copy_from_slice(&w[..n]);
        pos += n;
    }
}

/// HTML/SVG/PDF-like text files of 2 - 300 KiB.
fn text_tree(root: &Path, bytes: u64, rng: &mut Rng) -> Result<()> {
    let mut done = 0u64;
    let mut i = 0u64;
    let mut buf = Vec::new();
    let exts = ["html", "svg", "pdf", "css", "js"];
    while done < bytes {
        let dir = root.join(format!("d{}", i % 40));
        fs::create_dir_all(&dir).map_err(io(&dir))?;
        let size = (2048 + rng.below(300 << 10)).min(bytes - done).max(1);
        buf.resize(size as usize, 0);
        text(&mut buf, rng);
        let p = dir.join(format!("f{i}.{}", exts[(i % 5) as usize]));
        fs::write(&p, &buf).map_err(io(&p))?;
        done += size;
        i += 1;
    }
    Ok(())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn shell(cmd: &str) -> Result<()> {
    let st = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .status()
        .map_err(|e| Error::io("sh", e))?;
    if st.success() {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "benchmark command failed: {cmd}"
        )))
    }
}

struct Row {
    name: &'static str,
    secs: f64,
    size: u64,
}

fn measure(
    name: &'static str,
    runs: usize,
    out: &Path,
    mut f: impl FnMut() -> Result<()>,
) -> Result<Row> {
    let mut times = Vec::new();
    let mut size = 0;
    for _ in 0..runs {
        let _ = fs::remove_file(out);
        // write back the previous run's output (and the generated trees) untimed, so no run
        // pays for another's dirty pages
        shell("sync")?;
        let t = Instant::now();
        f()?;
        times.push(t.elapsed().as_secs_f64());
        size = fs::metadata(out).map_err(io(out))?.len();
    }
    let _ = fs::remove_file(out);
    Ok(Row {
        name,
        secs: median(times),
        size,
    })
}

fn bench_tree(label: &str, tree: &Path, work: &Path, runs: usize, threads: usize) -> Result<()> {
    let t = tree.display();
    let q = |p: &Path| format!("'{}'", p.display());
    let out = work.join("bench.out");
    let o = q(&out);
    // warm the page cache so every contender reads from memory
    shell(&format!("tar -cf - -C '{t}' . > /dev/null"))?;
    let ours = |format| {
        let out = out.clone();
        let src = tree.to_path_buf();
        move || {
            let opts = ArchiveOptions {
                format,
                threads,
                fsync: false,
                ..ArchiveOptions::default()
            };
            archive::create(&Source::Dir(src.clone()), &out, &opts, &JobControl::new()).map(|_| ())
        }
    };
    let rows = vec![
        measure("ours gz", runs, &out, ours(Format::Gzip))?,
        measure("ours zst", runs, &out, ours(Format::Zstd))?,
        measure("tar -czf", runs, &out, || {
            shell(&format!("tar -czf {o} -C '{t}' ."))
        })?,
        measure("tar | pigz -p 2", runs, &out, || {
            shell(&format!("tar -cf - -C '{t}' . | pigz -p 2 > {o}"))
        })?,
        measure("tar | zstd -T2 -3", runs, &out, || {
            shell(&format!("tar -cf - -C '{t}' . | zstd -q -T2 -3 > {o}"))
        })?,
        measure("tar -cf", runs, &out, || {
            shell(&format!("tar -cf {o} -C '{t}' ."))
        })?,
    ];
    let by = |n: &str| rows.iter().find(|r| r.name == n);
    let (Some(gz), Some(zst), Some(targz), Some(pigz), Some(tzst), Some(plain)) = (
        by("ours gz"),
        by("ours zst"),
        by("tar -czf"),
        by("tar | pigz -p 2"),
        by("tar | zstd -T2 -3"),
        by("tar -cf"),
    ) else {
        return Err(Error::InvalidArgument("missing benchmark row".into()));
    };
    println!(
        "\n== {label} ({:.0} MiB of files, median of {runs}) ==",
        plain.size as f64 / 1048576.0
    );
    println!(
        "{:<20} {:>9} {:>12} {:>10} {:>10}",
        "", "seconds", "MiB", "speedup", "size/czf"
    );
    for r in &rows {
        println!(
            "{:<20} {:>9.3} {:>12.2} {:>9.2}x {:>10.4}",
            r.name,
            r.secs,
            r.size as f64 / 1048576.0,
            targz.secs / r.secs,
            r.size as f64 / targz.size as f64
        );
    }
    let check = |what: String, ok: bool| println!("  {} {what}", if ok { "MET " } else { "MISS" });
    let s_czf = targz.secs / gz.secs;
    let s_pigz = pigz.secs / gz.secs;
    let vs_plain = gz.secs / plain.secs;
    let size = gz.size as f64 / targz.size as f64;
    if label.starts_with("media") {
        check(
            format!("gz {s_czf:.2}x faster than tar -czf (>= 6)"),
            s_czf >= 6.0,
        );
        check(
            format!("gz {s_pigz:.2}x faster than tar|pigz -p 2 (>= 3)"),
            s_pigz >= 3.0,
        );
        check(
            format!("gz {vs_plain:.2}x the time of tar -cf (<= 2)"),
            vs_plain <= 2.0,
        );
        check(
            format!("gz size {size:.4}x tar -czf's (<= 1.01)"),
            size <= 1.01,
        );
    } else {
        check(
            format!("gz {s_czf:.2}x faster than tar -czf (>= 1.9)"),
            s_czf >= 1.9,
        );
        check(
            format!("gz size {size:.4}x tar -czf's (<= 1.02)"),
            size <= 1.02,
        );
    }
    let zt = tzst.secs / zst.secs;
    let zs = zst.size as f64 / tzst.size as f64;
    check(
        format!("zst {zt:.2}x the speed of tar|zstd -T2 -3 (>= 1)"),
        zt >= 1.0,
    );
    check(
        format!("zst size {zs:.4}x tar|zstd's (within 2%)"),
        (zs - 1.0).abs() <= 0.02,
    );
    Ok(())
}

/// compare with tar -czf, tar|pigz, tar|zstd and tar -cf on generated trees
#[derive(Args)]
pub struct BenchArgs {
    /// MiB of files in each generated tree
    #[arg(long, value_name = "MiB", default_value_t = 256)]
    size: u64,
    /// where to generate the trees [default: the temp dir]
    #[arg(long, value_name = "D")]
    dir: Option<PathBuf>,
    /// runs of each contender; the median counts
    #[arg(long, value_name = "N", default_value_t = 3)]
    runs: usize,
    /// compression threads of ours (0: one per core)
    #[arg(long, value_name = "N", default_value_t = 0)]
    threads: usize,
}

pub fn bench(a: BenchArgs) -> Result<()> {
    let (size_mib, runs, threads) = (a.size, a.runs.max(1), a.threads);
    let base = a.dir.unwrap_or_else(std::env::temp_dir);
    let work = base.join(format!("zbackup-bench-{}", std::process::id()));
    fs::create_dir_all(&work).map_err(io(&work))?;
    let result = (|| {
        let bytes = size_mib << 20;
        let mut rng = Rng(0x5eed_1234_abcd_ef01);
        let media = work.join("media");
        let text = work.join("text");
        eprintln!("generating {size_mib} MiB trees in {}", work.display());
        media_tree(&media, bytes, &mut rng)?;
        text_tree(&text, bytes, &mut rng)?;
        println!(
            "zbackup bench: {size_mib} MiB per tree, {} cores, load {}",
            archive::default_threads(),
            fs::read_to_string("/proc/loadavg")
                .unwrap_or_default()
                .trim()
        );
        bench_tree("media-heavy", &media, &work, runs, threads)?;
        bench_tree("text-heavy", &text, &work, runs, threads)?;
        Ok(())
    })();
    let _ = fs::remove_dir_all(&work);
    result
}
