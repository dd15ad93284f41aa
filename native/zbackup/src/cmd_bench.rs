//! `zbackup bench [--size MiB] [--dir D] [--runs N] [--threads N]`: generates a media-heavy and a
//! text-heavy tree of about `--size` MiB each and prints, per tree, the median wall time and
//! output size of our gz and zst against `tar -czf`, `tar | pigz -p 2`, `tar | zstd -T2 -3` and
//! plain `tar -cf` (the I/O floor), with the ratios the targets are stated in. Ours runs
//! in-process without fsync (the tar pipelines do not fsync either). Not a test: timings depend
//! on the machine and its load; run it on an idle machine.
//!
//! Size: three benches (trees, `--incremental`, `--reflink`) sharing the tree generator,
//! the timing and the table printer.
//!
//! `--incremental` (issue 15) instead makes sets of a generated mixed tree: a first, a second
//! with nothing changed and a third with 5% of the files changed or added, each with `--reuse`
//! of the one before, beside `tar -czf`, `tar -cf` and `cp` of the previous archive, the extract
//! of a fresh archive beside `tar -xzf` (`--runs` times each, every run printed) in the work dir
//! and on a fresh ext4 the bench makes on a loop-mounted image (where root can), and the sizes of
//! fresh archives of the mixed and a text tree against `tar -czf`. `--reflink` makes 11 sets of an unchanged tree on a loop-mounted
//! XFS image with reflink and compares the space they take with one set's.

use backup_core::archive::{self, ArchiveOptions, Format, JobControl, Source};
use backup_core::fuzz::Rng;
use backup_core::{Error, Result};
use clap::Args;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

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
        write_file(&dir.join(name), size, random, &mut buf, rng)?;
        done += size;
        i += 1;
    }
    Ok(())
}

/// Writes `size` bytes to `path`: random (media-like) or text, made in `buf`.
fn write_file(
    path: &Path,
    size: u64,
    random: bool,
    buf: &mut Vec<u8>,
    rng: &mut Rng,
) -> Result<()> {
    buf.resize(size as usize, 0);
    if random {
        rng.fill(buf);
    } else {
        text(buf, rng);
    }
    fs::write(path, &buf).map_err(io(path))
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
        let r = rng.next_u64();
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
        let p = dir.join(format!("f{i}.{}", exts[(i % 5) as usize]));
        write_file(&p, size, false, &mut buf, rng)?;
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
    /// instead: sets of a mixed tree with --reuse (unchanged, 5% changed) beside tar -czf,
    /// tar -cf and cp, the extract, and sizes (issue 15)
    #[arg(long)]
    incremental: bool,
    /// instead (or also): 11 unchanged sets on a loop-mounted XFS image with reflink, the
    /// space they take against one set's, and deleting sets
    #[arg(long)]
    reflink: bool,
}

pub fn bench(a: BenchArgs) -> Result<()> {
    let (size_mib, runs, threads) = (a.size, a.runs.max(1), a.threads);
    let base = a.dir.unwrap_or_else(std::env::temp_dir);
    let work = base.join(format!("zbackup-bench-{}", std::process::id()));
    fs::create_dir_all(&work).map_err(io(&work))?;
    let (incremental_mode, reflink_mode) = (a.incremental, a.reflink);
    let result = (|| {
        if incremental_mode || reflink_mode {
            if incremental_mode {
                incremental(&work, size_mib, threads, runs)?;
            }
            if reflink_mode {
                reflink(&work, size_mib, threads)?;
            }
            return Ok(());
        }
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

// ---------------------------------------------------------------------------------------------
// `zbackup bench --incremental` (issue 15)

/// A mixed tree like a site's files/archive: 35% of the bytes text (about 8,000 small pages
/// and sidecars of 2-30 KiB, the rest larger pages of 40-400 KiB), the rest JPEG-like
/// (150 KiB - 4 MiB) and MP4-like (10 - 40 MiB) random data, in dated dirs.
fn mixed_tree(root: &Path, bytes: u64, rng: &mut Rng, tag: &str) -> Result<u64> {
    let text_target = bytes * 35 / 100;
    let small_target = text_target * 35 / 100;
    let (mut text_done, mut small_done, mut done) = (0u64, 0u64, 0u64);
    let mut i = 0u64;
    let mut buf = Vec::new();
    let mut files = 0u64;
    while done < bytes {
        let dir = root.join(format!(
            "{tag}{}/{:02}/{:02}",
            2019 + i % 6,
            i % 12 + 1,
            (i / 7) % 28 + 1
        ));
        fs::create_dir_all(&dir).map_err(io(&dir))?;
        // each kind keeps pace with the whole: its share of the bytes done so far
        let behind = |kind_done: u64, target: u64| kind_done * bytes < target * done.max(1);
        let (name, size, random) = if behind(small_done, small_target) {
            let s = 2048 + rng.below(28 << 10);
            small_done += s;
            text_done += s;
            (format!("s{i}.html"), s, false)
        } else if behind(text_done, text_target) {
            let s = (40 << 10) + rng.below(360 << 10);
            text_done += s;
            (format!("page{i}.html"), s, false)
        } else if i % 41 == 0 {
            (
                format!("clip{i}.mp4"),
                (10 << 20) + rng.below(30 << 20),
                true,
            )
        } else {
            (
                format!("photo{i}.jpg"),
                (150 << 10) + rng.below(4 << 20),
                true,
            )
        };
        let size = size.min(bytes - done).max(1);
        write_file(&dir.join(name), size, random, &mut buf, rng)?;
        done += size;
        files += 1;
        i += 1;
    }
    Ok(files)
}

/// All regular files under `root`, sorted.
fn files_under(root: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).map_err(io(&d))? {
            let e = e.map_err(io(&d))?;
            let t = e.file_type().map_err(io(&d))?;
            if t.is_dir() {
                stack.push(e.path());
            } else if t.is_file() {
                out.push(e.path());
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Changes `pct`% of the files: half of them rewritten in place (new content, same size), half
/// as many new files added in a new dated dir (uploads), of the same kinds.
fn change_files(root: &Path, pct: u64, rng: &mut Rng) -> Result<(u64, u64)> {
    let files = files_under(root)?;
    let n = files.len() as u64 * pct / 100;
    let (mut changed, mut added) = (0u64, 0u64);
    let mut buf = Vec::new();
    for k in 0..n {
        let src = &files[rng.below(files.len() as u64) as usize];
        let len = fs::metadata(src).map_err(io(src))?.len();
        let is_text = src.extension().is_some_and(|e| e == "html");
        let target = if k % 2 == 0 {
            changed += 1;
            src.clone()
        } else {
            added += 1;
            let dir = root.join(format!("new/{:02}", k % 20));
            fs::create_dir_all(&dir).map_err(io(&dir))?;
            dir.join(format!("up{k}.{}", if is_text { "html" } else { "jpg" }))
        };
        write_file(&target, len, !is_text, &mut buf, rng)?;
    }
    Ok((changed, added))
}

fn timed<T>(f: impl FnOnce() -> Result<T>) -> Result<(f64, T)> {
    shell("sync")?;
    let t = Instant::now();
    let v = f()?;
    Ok((t.elapsed().as_secs_f64(), v))
}

fn size_of(p: &Path) -> Result<u64> {
    Ok(fs::metadata(p).map_err(io(p))?.len())
}

fn ours(src: &Path, out: &Path, prev: Option<&Path>, threads: usize) -> Result<archive::Summary> {
    let opts = ArchiveOptions {
        threads,
        fsync: false,
        ..ArchiveOptions::default()
    };
    archive::create_reusing(
        &Source::Dir(src.to_path_buf()),
        out,
        &opts,
        prev,
        &JobControl::new(),
    )
}

/// One run of both extracts: seconds, and the load after them.
struct ExtractRun {
    ours: f64,
    tar: f64,
    load: String,
}

/// `runs` extracts of `archive` into `dir`, ours (verified, staged, parallel inflate) and
/// `tar -xzf` alternating. The trees are removed only after the last run: ext4 skips inodes
/// freed in the last minutes when it allocates, so an extract right after `rm -rf` of the
/// last one paid several times the kernel time, whichever contender came second.
fn extract_runs(archive: &Path, dir: &Path, runs: usize) -> Result<Vec<ExtractRun>> {
    let mut out = Vec::new();
    let mut extracted = Vec::new();
    let r = (|| -> Result<()> {
        for r in 0..runs {
            let x1 = dir.join(format!("x-ours-{r}"));
            let x2 = dir.join(format!("x-tar-{r}"));
            extracted.extend([x1.clone(), x2.clone()]);
            let (txo, _) = timed(|| {
                archive::extract(
                    archive,
                    &x1,
                    &archive::ExtractOptions::default(),
                    &JobControl::new(),
                )
            })?;
            fs::create_dir_all(&x2).map_err(io(&x2))?;
            let (txt, ()) = timed(|| {
                shell(&format!(
                    "tar -xzf '{}' -C '{}'",
                    archive.display(),
                    x2.display()
                ))
            })?;
            let load = fs::read_to_string("/proc/loadavg").unwrap_or_default();
            out.push(ExtractRun {
                ours: txo,
                tar: txt,
                load: load.split(' ').next().unwrap_or("?").to_string(),
            });
        }
        Ok(())
    })();
    for x in &extracted {
        let _ = fs::remove_dir_all(x);
    }
    r.map(|()| out)
}

/// The file system type `df` names for `dir` ("?" when it cannot).
fn fs_type(dir: &Path) -> String {
    Command::new("df")
        .args(["--output=fstype"])
        .arg(dir)
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .nth(1)
                .map(|l| l.trim().to_string())
        })
        .unwrap_or_else(|| "?".into())
}

/// A file system the bench makes on a loop-mounted image in the work dir (root, a loop device
/// and the mkfs tool needed); unmounted and its image removed on drop.
struct LoopFs {
    img: PathBuf,
    mnt: PathBuf,
    mount: String,
}

impl LoopFs {
    /// `mkfs` is the command without the image, `package` the Debian package that has it;
    /// `Err(why)` where it cannot be made or mounted.
    fn make(
        work: &Path,
        name: &str,
        mkfs: &str,
        package: &str,
        mib: u64,
    ) -> std::result::Result<LoopFs, String> {
        let tool = mkfs.split(' ').next().unwrap_or(mkfs);
        if shell(&format!("command -v {tool} > /dev/null")).is_err() {
            return Err(format!("{tool} not found (apt-get install {package})"));
        }
        let img = work.join(format!("{name}.img"));
        let mnt = work.join(name);
        let mount = format!("mount -o loop '{}' '{}'", img.display(), mnt.display());
        let lfs = LoopFs { img, mnt, mount };
        let made = fs::create_dir_all(&lfs.mnt).is_ok()
            && shell(&format!("truncate -s {mib}M '{}'", lfs.img.display())).is_ok()
            && shell(&format!("{mkfs} '{}' > /dev/null", lfs.img.display())).is_ok()
            && shell(&lfs.mount).is_ok();
        match made {
            true => Ok(lfs),
            false => Err(format!(
                "this kernel or user cannot make and mount a loop {name} image"
            )),
        }
    }

    /// Unmounts and mounts again: what is read next comes from the disk, not the page cache.
    fn remount(&self) -> Result<()> {
        shell(&format!("umount '{}'", self.mnt.display()))?;
        shell(&self.mount)
    }
}

impl Drop for LoopFs {
    fn drop(&mut self) {
        let _ = shell(&format!("umount '{}' 2> /dev/null", self.mnt.display()));
        let _ = fs::remove_dir(&self.mnt);
        let _ = fs::remove_file(&self.img);
    }
}

fn check_line(what: String, ok: bool) {
    println!("  {} {what}", if ok { "MET " } else { "MISS" });
}

/// The incremental bench: sets of a mixed tree, first, unchanged and 5% changed, beside
/// `tar -czf`, `tar -cf` and `cp` of the previous archive; the extract; sizes of fresh archives
/// of the mixed and a text tree against `tar -czf`.
fn incremental(work: &Path, size_mib: u64, threads: usize, runs: usize) -> Result<()> {
    let bytes = size_mib << 20;
    let mut rng = Rng(0x1ec0_5eed_0000_0015);
    let tree = work.join("mixed");
    eprintln!(
        "generating a {size_mib} MiB mixed tree in {}",
        tree.display()
    );
    let files = mixed_tree(&tree, bytes, &mut rng, "")?;
    let t = tree.display().to_string();
    let a1 = work.join("set1.tar.gz");
    let a2 = work.join("set2.tar.gz");
    let a3 = work.join("set3.tar.gz");
    let fresh = work.join("fresh.tar.gz");
    let czf = work.join("czf.tar.gz");
    let plain = work.join("plain.tar");
    let cp = work.join("cp.tar.gz");
    shell(&format!("tar -cf - -C '{t}' . > /dev/null"))?;
    println!(
        "zbackup bench --incremental: {size_mib} MiB mixed tree, {files} files, {} cores, load {}",
        archive::default_threads(),
        fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    // set 1 twice, the faster counts (the first run after generating pays for write-back)
    let (t1a, _) = timed(|| ours(&tree, &a1, None, threads))?;
    let (t1b, s1) = timed(|| ours(&tree, &a1, None, threads))?;
    let t1 = t1a.min(t1b);
    // set 2 and `cp` alternating, set 3 `runs` times: they take well under a second, and this
    // VM's cost of writing pages swings from run to run (every run is printed, medians count).
    // Each run writes files of its own, removed at the end: a run that replaced the last one's
    // output paid up to twice as much, both contenders alike (ext4 holds freed blocks back).
    let runs = runs.max(1);
    let mut set2_runs = Vec::new();
    let mut s2 = archive::Summary::default();
    let mut outputs = Vec::new();
    for r in 0..runs {
        let (out2, outcp) = if r == 0 {
            (a2.clone(), cp.clone())
        } else {
            (
                work.join(format!("set2-{r}.tar.gz")),
                work.join(format!("cp-{r}.tar.gz")),
            )
        };
        let (t2, s) = timed(|| ours(&tree, &out2, Some(&a1), threads))?;
        let (tcp, ()) = timed(|| shell(&format!("cp '{}' '{}'", a1.display(), outcp.display())))?;
        set2_runs.push((t2, tcp));
        s2 = s;
        if r > 0 {
            outputs.extend([out2, outcp]);
        }
    }
    let t2 = median(set2_runs.iter().map(|r| r.0).collect());
    let tcp = median(set2_runs.iter().map(|r| r.1).collect());
    let (tczf0, ()) = timed(|| shell(&format!("tar -czf '{}' -C '{t}' .", czf.display())))?;
    let (changed, added) = change_files(&tree, 5, &mut rng)?;
    shell(&format!("tar -cf - -C '{t}' . > /dev/null"))?;
    let mut set3_runs = Vec::new();
    let mut s3 = archive::Summary::default();
    for r in 0..runs {
        let out3 = if r == 0 {
            a3.clone()
        } else {
            work.join(format!("set3-{r}.tar.gz"))
        };
        let (t3, s) = timed(|| ours(&tree, &out3, Some(&a2), threads))?;
        set3_runs.push(t3);
        s3 = s;
        if r > 0 {
            outputs.push(out3);
        }
    }
    let t3 = median(set3_runs.clone());
    let (tczf, ()) = timed(|| shell(&format!("tar -czf '{}' -C '{t}' .", czf.display())))?;
    let (tcf, ()) = timed(|| shell(&format!("tar -cf '{}' -C '{t}' .", plain.display())))?;
    let (tfresh, sf) = timed(|| ours(&tree, &fresh, None, threads))?;
    // extract of a fresh archive, in the work dir and on a fresh ext4 made here: the work
    // dir's file system may be anything (this project's CI VM: ext4 without a journal, whose
    // allocator steps past every inode freed in the last minutes one by one, so both
    // contenders pay seconds for the bench's own earlier trees; README "Benchmarks")
    let work_fs = fs_type(work);
    let extract_here = extract_runs(&fresh, work, runs)?;
    let ext4_mib = size_mib * 2 * runs as u64 + 1024;
    let extract_ext4 = match LoopFs::make(work, "ext4", "mkfs.ext4 -q -F", "e2fsprogs", ext4_mib) {
        Ok(lfs) => Ok(extract_runs(&fresh, &lfs.mnt, runs)?),
        Err(why) => Err(why),
    };
    let czf_size = size_of(&czf)?;
    let mib = |b: u64| b as f64 / 1048576.0;
    println!("5% of the files between set 2 and set 3: {changed} rewritten, {added} added");
    println!(
        "{:<44} {:>9} {:>11} {:>12}",
        "", "seconds", "MiB", "vs set 1"
    );
    let row = |name: &str, secs: f64, size: Option<u64>| {
        println!(
            "{:<44} {:>9.3} {:>11} {:>11.1}%",
            name,
            secs,
            size.map_or("-".to_string(), |s| format!("{:.2}", mib(s))),
            100.0 * secs / t1
        );
    };
    row("set 1 (ours, fresh)", t1, Some(s1.bytes_out));
    row(
        "set 2 (--reuse set 1, unchanged; median)",
        t2,
        Some(s2.bytes_out),
    );
    row(
        "cp of set 1 (the I/O floor; median)",
        tcp,
        Some(size_of(&cp)?),
    );
    row(
        "set 3 (--reuse set 2, 5% changed; median)",
        t3,
        Some(s3.bytes_out),
    );
    row("ours fresh of the changed tree", tfresh, Some(sf.bytes_out));
    row("tar -czf (unchanged tree)", tczf0, None);
    row("tar -czf (changed tree)", tczf, Some(czf_size));
    row("tar -cf (changed tree)", tcf, Some(size_of(&plain)?));
    let mut extracts = vec![(format!("the work dir ({work_fs})"), extract_here)];
    let ext4_skipped = extract_ext4.as_ref().err().cloned();
    extracts.extend(extract_ext4.ok().map(|r| ("a fresh ext4".to_string(), r)));
    let medians = |r: &[ExtractRun]| {
        (
            median(r.iter().map(|x| x.ours).collect()),
            median(r.iter().map(|x| x.tar).collect()),
        )
    };
    for (place, r) in &extracts {
        let (txo, txt) = medians(r);
        row(&format!("extract, ours, {place}"), txo, None);
        row(&format!("extract, tar -xzf, {place}"), txt, None);
    }
    for (i, (t2, tcp)) in set2_runs.iter().enumerate() {
        let t3 = set3_runs.get(i).copied().unwrap_or(f64::NAN);
        println!(
            "  set run {}: set 2 {t2:.3} s, cp {tcp:.3} s ({:.2}x); set 3 {t3:.3} s",
            i + 1,
            t2 / tcp
        );
    }
    for (place, r) in &extracts {
        for (i, x) in r.iter().enumerate() {
            println!(
                "  extract run {} in {place}: ours {:.3} s, tar -xzf {:.3} s ({:.2}x), load {}",
                i + 1,
                x.ours,
                x.tar,
                x.tar / x.ours,
                x.load
            );
        }
    }
    if let Some(why) = ext4_skipped {
        println!("  extract on a fresh ext4 skipped: {why}");
    }
    for (name, s) in [("set 2", &s2), ("set 3", &s3)] {
        if let Some(r) = &s.reuse {
            println!(
                "{name}: {} of {} entries reused ({:.1} MiB of data, {:.1} MiB compressed, {} units, of which {} prefixes of {:.1} MiB; {} tails of {:.1} MiB), {} units rejected; cloned {:.1} MiB, copy_file_range {:.1} MiB, written {:.1} MiB; sha256 resumed after {:.1} MiB (hashed {:.1} MiB)",
                r.reused_entries,
                s.files,
                mib(r.reused_bytes),
                mib(r.reused_compressed),
                r.reused_units,
                r.prefix_units,
                mib(r.prefix_compressed),
                r.tail_pieces,
                mib(r.tail_compressed),
                r.rejected_units,
                mib(r.cloned_bytes),
                mib(r.copied_bytes),
                mib(r.written_bytes),
                mib(r.sha256_resumed_bytes),
                mib(s.bytes_out.saturating_sub(r.sha256_resumed_bytes))
            );
        }
    }
    println!("targets:");
    check_line(
        format!(
            "unchanged: set 2 in {:.1}% of set 1's time (<= 5%)",
            100.0 * t2 / t1
        ),
        t2 <= 0.05 * t1,
    );
    check_line(
        format!(
            "unchanged: set 2 {:.1}x faster than tar -czf (>= 50)",
            tczf0 / t2
        ),
        tczf0 / t2 >= 50.0,
    );
    check_line(
        format!("unchanged: set 2 {:.2}x the time of cp (<= 1.5)", t2 / tcp),
        t2 / tcp <= 1.5,
    );
    check_line(
        format!(
            "5% changed: set 3 in {:.1}% of set 1's time (<= 15%)",
            100.0 * t3 / t1
        ),
        t3 <= 0.15 * t1,
    );
    for (place, r) in &extracts {
        let (txo, txt) = medians(r);
        check_line(
            format!(
                "extract in {place} {:.2}x faster than tar -xzf (>= 1.8; medians of {runs})",
                txt / txo
            ),
            txt / txo >= 1.8,
        );
    }
    let ratio = sf.bytes_out as f64 / czf_size as f64;
    check_line(
        format!("mixed tree: fresh archive {ratio:.4}x the size of tar -czf (<= 1.02)"),
        ratio <= 1.02,
    );
    for p in [&a1, &a2, &a3, &fresh, &czf, &plain, &cp]
        .into_iter()
        .chain(&outputs)
    {
        let _ = fs::remove_file(p);
    }
    let _ = fs::remove_dir_all(&tree);
    // the text tree: size only
    let text_root = work.join("text");
    text_tree(&text_root, bytes / 4, &mut rng)?;
    let tt = text_root.display().to_string();
    let s = ours(&text_root, &fresh, None, threads)?;
    shell(&format!("tar -czf '{}' -C '{tt}' .", czf.display()))?;
    let ratio = s.bytes_out as f64 / size_of(&czf)? as f64;
    check_line(
        format!(
            "text tree ({} MiB): fresh archive {ratio:.4}x the size of tar -czf (<= 1.02)",
            size_mib / 4
        ),
        ratio <= 1.02,
    );
    let _ = fs::remove_file(&fresh);
    let _ = fs::remove_file(&czf);
    let _ = fs::remove_dir_all(&text_root);
    Ok(())
}

/// The reflink check: on a loop-mounted XFS image (reflink=1) made here, 11 sets of an
/// unchanged tree, each made with `--reuse` of the one before, against the space one set
/// takes; then sets deleted and the others checked. Needs root, a loop device and mkfs.xfs.
fn reflink(work: &Path, size_mib: u64, threads: usize) -> Result<()> {
    let lfs = match LoopFs::make(
        work,
        "xfs",
        "mkfs.xfs -q -m reflink=1",
        "xfsprogs",
        size_mib * 3 + 512,
    ) {
        Ok(lfs) => lfs,
        Err(why) => {
            println!("reflink check skipped: {why}");
            return Ok(());
        }
    };
    let mnt = lfs.mnt.clone();
    // space used on the file system (statfs): `du` counts a shared extent once per file
    let used_k = |mnt: &Path| -> Result<u64> {
        let out = Command::new("df")
            .args(["-k", "--output=used"])
            .arg(mnt)
            .output()
            .map_err(|e| Error::io("df", e))?;
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .nth(1)
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0))
    };
    let r = (|| -> Result<()> {
        let empty_k = used_k(&mnt)?;
        let mut rng = Rng(0x0ef1_1e55_0000_0011);
        let tree = work.join("reflink-tree");
        mixed_tree(&tree, size_mib << 20, &mut rng, "")?;
        let set = |i: usize| mnt.join(format!("set{i:02}.tar.gz"));
        let (t1, s1) = timed(|| ours(&tree, &set(1), None, threads))?;
        let mut last = None;
        let mut t_reuse = Vec::new();
        for i in 2..=11 {
            let (t, s) = timed(|| ours(&tree, &set(i), Some(&set(i - 1)), threads))?;
            t_reuse.push(t);
            last = s.reuse;
        }
        shell("sync")?;
        let used = used_k(&mnt)?.saturating_sub(empty_k);
        let du = Command::new("du")
            .arg("-sk")
            .arg(&mnt)
            .output()
            .map_err(|e| Error::io("du", e))?;
        let du_k: u64 = String::from_utf8_lossy(&du.stdout)
            .split_whitespace()
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let one = s1.bytes_out as f64 / 1024.0;
        let ratio = used as f64 / one;
        println!(
            "reflink (loop XFS, reflink=1): set 1 {:.2} MiB in {t1:.2} s; sets 2-11 with --reuse {:.2}-{:.2} s",
            one / 1024.0,
            t_reuse.iter().cloned().fold(f64::MAX, f64::min),
            t_reuse.iter().cloned().fold(0.0, f64::max)
        );
        if let Some(r) = &last {
            println!(
                "  set 11: cloned {:.1} MiB, copy_file_range {:.1} KiB, written {:.1} KiB, alignment padding {} bytes",
                r.cloned_bytes as f64 / 1048576.0,
                r.copied_bytes as f64 / 1024.0,
                r.written_bytes as f64 / 1024.0,
                r.padding_bytes
            );
        }
        check_line(
            format!(
                "11 unchanged sets take {ratio:.3}x one set on disk: {used} KiB used on the \
                 file system by 11 sets of {one:.0} KiB (du, which counts a shared extent once \
                 per file, says {du_k} KiB) (<= 1.3)"
            ),
            ratio <= 1.3,
        );
        // deleting sets leaves the others whole
        fs::remove_file(set(1)).map_err(io(&set(1)))?;
        fs::remove_file(set(6)).map_err(io(&set(6)))?;
        // read the survivors from the disk, not from the page cache
        lfs.remount()?;
        let mut ok = true;
        for i in (2..=11).filter(|&i| i != 6) {
            let v = archive::verify(&set(i), &JobControl::new());
            let g = shell(&format!("gzip -t '{}'", set(i).display())).is_ok();
            ok &= v.is_ok() && g;
        }
        check_line(
            "sets 1 and 6 deleted: the 9 others pass gzip -t and zbackup verify".into(),
            ok,
        );
        let _ = fs::remove_dir_all(&tree);
        Ok(())
    })();
    drop(lfs);
    r
}
