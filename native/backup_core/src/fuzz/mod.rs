//! The fuzz harness of the archive reader: seed archives (made by this engine, and crafted by
//! hand with what hostile archives hold: hard links, symlinks, devices, sparse maps, PAX and
//! long names), mutated deterministically from a seed number: truncation at every frame
//! boundary and at random offsets, byte flips in the compressed file, and mutations of the tar
//! stream inside it (flipped bytes, header fields set to huge or hostile values with the
//! checksum fixed up, crafted blocks spliced in, blocks dropped or repeated), recompressed.
//!
//! Size: the seed set, the mutators and the judge of each input (crash, hang, memory, verify
//! vs extract) are one harness; hand-crafted hostile entries are in craft.rs.
//!
//! For every input it runs `verify` and `extract` and counts:
//! * crashes: a panic in either;
//! * hangs: either hit the per-input deadline (`JobControl::with_timeout`);
//! * disagreements: one said ok and the other refused;
//! * silent corruptions: both said ok, but the extracted tree is not what was recorded (for an
//!   archive with this engine's manifest: the original tree, every mode, mtime, link and byte;
//!   otherwise: what `list` reported, file sizes and crc32s, link targets and kinds);
//! * over-memory: the heap peak of one input passed the cap (measured when the binary installs
//!   `alloc::CountingAlloc`);
//! * staging leftovers: a staging dir left behind by an extract.
//!
//! `cargo test` runs a bounded run (tests/fuzz.rs); `zbackup fuzz --inputs N --seed S` runs any
//! number. Hand-written: the mutations are specific to tar inside gzip/zstd, which generic
//! fuzzers (cargo-fuzz needs a nightly toolchain) would spend most inputs rediscovering.

pub mod alloc;
pub mod craft;

use crate::archive::{self, ArchiveOptions, EntryKind, ExtractOptions, Format, JobControl, Source};
use crate::error::{Error, Result};
use craft::{fix_checksum, gzip, zstd_frames, Fields, TarBuilder};
use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How a run goes.
#[derive(Debug, Clone)]
pub struct Config {
    /// Inputs to try (the frame-boundary pass counts towards them).
    pub inputs: u64,
    /// The run is a function of this number.
    pub seed: u64,
    /// Scratch directory (inputs, seed trees, extractions); must exist.
    pub dir: PathBuf,
    /// Deadline of each verify and each extract.
    pub timeout: Duration,
    /// Heap peak allowed per input, in bytes (checked when `CountingAlloc` is installed).
    pub memory_cap: usize,
}

/// What a run found.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    pub inputs: u64,
    pub verify_ok: u64,
    pub crashes: u64,
    pub hangs: u64,
    pub disagreements: u64,
    pub silent_corruptions: u64,
    pub over_memory: u64,
    pub staging_leftovers: u64,
    /// Both refused, with different reasons (not a failure: informational).
    pub reason_differences: u64,
    pub max_input_ms: u64,
    /// Highest heap peak of one input, when measured.
    pub max_heap_bytes: Option<usize>,
    /// Descriptions of the first failures.
    pub samples: Vec<String>,
}

impl Stats {
    /// Inputs that broke a property.
    pub fn failures(&self) -> u64 {
        self.crashes
            + self.hangs
            + self.disagreements
            + self.silent_corruptions
            + self.over_memory
            + self.staging_leftovers
    }

    fn sample(&mut self, what: String) {
        if self.samples.len() < 20 {
            self.samples.push(what);
        }
    }
}

/// xorshift64*: small, deterministic, good enough to pick mutations (and for `zbackup bench`,
/// whose trees it makes from its raw state, `Rng(state)`).
pub struct Rng(pub u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// Below `n` (0 for 0, without a draw).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }
    pub fn fill(&mut self, buf: &mut [u8]) {
        for c in buf.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            c.copy_from_slice(&v[..c.len()]);
        }
    }
    fn index(&mut self, n: usize) -> usize {
        self.below(n as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// What a tree holds, for comparison: relative path -> (kind, mode, mtime, size and crc32 of a
/// file's content, or a link's target).
type Snapshot = BTreeMap<Vec<u8>, (char, u32, i64, Vec<u8>)>;

/// Size and crc32 of a file, reading only its data regions (holes count as zeros without
/// being read: an extracted sparse file may be a terabyte of holes).
fn file_crc(path: &Path) -> std::io::Result<(u64, u32)> {
    use rustix::fs::{seek, SeekFrom};
    use std::io::{Seek, SeekFrom as StdSeek};
    let mut f = fs::File::open(path)?;
    let size = f.metadata()?.len();
    let mut crc = crc32fast::Hasher::new();
    let mut pos = 0u64;
    let mut buf = vec![0u8; 1 << 16];
    while pos < size {
        let data = match seek(&f, SeekFrom::Data(pos)) {
            Ok(d) => d.min(size),
            Err(_) => size,
        };
        if data > pos {
            crc.combine(&crate::archive::zeros_crc(data - pos));
            pos = data;
        }
        if pos >= size {
            break;
        }
        let hole = seek(&f, SeekFrom::Hole(pos))
            .map(|h| h.min(size))
            .unwrap_or(size);
        f.seek(StdSeek::Start(pos))?;
        while pos < hole {
            let want = ((hole - pos) as usize).min(buf.len());
            f.read_exact(&mut buf[..want])?;
            crc.update(&buf[..want]);
            pos += want as u64;
        }
    }
    Ok((size, crc.finalize()))
}

fn snapshot(root: &Path) -> Result<Snapshot> {
    let mut out = Snapshot::new();
    for entry in walkdir::WalkDir::new(root).follow_links(false) {
        let entry = entry.map_err(|e| Error::InvalidArgument(format!("walk: {e}")))?;
        let rel = entry
            .path()
            .strip_prefix(root)
            .map(|p| p.as_os_str().as_bytes().to_vec())
            .unwrap_or_default();
        let meta = fs::symlink_metadata(entry.path()).map_err(|e| Error::io(entry.path(), e))?;
        let ft = meta.file_type();
        let (kind, body) = if ft.is_dir() {
            ('d', Vec::new())
        } else if ft.is_symlink() {
            let l = fs::read_link(entry.path()).map_err(|e| Error::io(entry.path(), e))?;
            ('l', l.as_os_str().as_bytes().to_vec())
        } else if ft.is_file() {
            let (size, crc) = file_crc(entry.path()).map_err(|e| Error::io(entry.path(), e))?;
            let mut v = size.to_le_bytes().to_vec();
            v.extend_from_slice(&crc.to_le_bytes());
            ('f', v)
        } else {
            ('o', Vec::new())
        };
        let mode = if kind == 'l' { 0 } else { meta.mode() & 0o7777 };
        out.insert(rel, (kind, mode, meta.mtime(), body));
    }
    Ok(out)
}

struct Seed {
    name: String,
    /// The archive as stored.
    bytes: Vec<u8>,
    /// The tar stream inside it.
    tar: Vec<u8>,
    format: Format,
    /// Offsets of zstd frames (truncation points).
    frames: Vec<usize>,
    /// The tree it was made from (archives with this engine's manifest).
    tree: Option<Snapshot>,
    /// What the intact seed extracts to, by its own listing (crafted seeds).
    listed: Option<Listing>,
}

type Listing = BTreeMap<Vec<u8>, (char, u64, u32, Vec<u8>)>;

fn decompress(bytes: &[u8], format: Format) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = match format {
        Format::Gzip => flate2::read::MultiGzDecoder::new(bytes).read_to_end(&mut out),
        Format::Zstd => match zstd::stream::read::Decoder::new(bytes) {
            Ok(mut d) => d.read_to_end(&mut out),
            Err(e) => Err(e),
        },
    };
    out
}

fn pattern(n: usize, seed: u64) -> Vec<u8> {
    let mut r = Rng::new(seed);
    (0..n)
        .map(|i| {
            if seed % 2 == 0 {
                b"zotonic "[i % 8]
            } else {
                r.next_u64() as u8
            }
        })
        .collect()
}

/// A small media-like tree with what breaks naive archivers.
fn make_tree(root: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::symlink;
    fs::create_dir_all(root.join("2024/01/deep"))?;
    fs::create_dir_all(root.join("empty"))?;
    for (i, (name, n)) in [
        ("zero.txt", 0usize),
        ("one.txt", 1),
        ("2024/block.bin", 512),
        ("2024/01/odd.jpg", 3001),
        ("2024/01/deep/page.html", 9000),
    ]
    .iter()
    .enumerate()
    {
        fs::write(root.join(name), pattern(*n, i as u64))?;
    }
    let long = "l".repeat(120);
    fs::write(root.join(format!("2024/{long}.txt")), b"long name")?;
    fs::write(
        root.join(std::ffi::OsStr::from_bytes(b"caf\xe9.txt")),
        b"latin-1",
    )?;
    symlink("2024/01/odd.jpg", root.join("link"))?;
    symlink("../odd.jpg", root.join("2024/01/deep/up"))?;
    fs::set_permissions(root.join("one.txt"), fs::Permissions::from_mode(0o600))?;
    fs::set_permissions(
        root.join("2024/block.bin"),
        fs::Permissions::from_mode(0o750),
    )?;
    let t = filetime::FileTime::from_unix_time(1_600_000_000, 0);
    for p in [
        "zero.txt",
        "one.txt",
        "2024/block.bin",
        "2024/01/odd.jpg",
        "2024/01/deep/page.html",
    ] {
        filetime::set_file_mtime(root.join(p), t)?;
    }
    filetime::set_file_mtime(root.join(format!("2024/{long}.txt")), t)?;
    filetime::set_file_mtime(root.join(std::ffi::OsStr::from_bytes(b"caf\xe9.txt")), t)?;
    filetime::set_symlink_file_times(root.join("link"), t, t)?;
    filetime::set_symlink_file_times(root.join("2024/01/deep/up"), t, t)?;
    for d in ["2024/01/deep", "2024/01", "2024", "empty", ""] {
        filetime::set_file_mtime(root.join(d), t)?;
    }
    Ok(())
}

fn crafted_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let big = pattern(70_000, 3);
    let long = format!("./{}/{}", "d".repeat(90), "f".repeat(90));
    vec![
        (
            "links",
            TarBuilder::new()
                .dir(b"./", 0o755)
                .file(b"./a", b"first")
                .hardlink(b"./h", b"./a")
                .file(b"./a", b"second replaces, h keeps first")
                .symlink(b"./s", b"a")
                .special(b"./dev", b'3')
                .special(b"./fifo", b'6')
                .dir(b"./d/", 0o700)
                .symlink(b"./d/up", b"../a")
                .end()
                .finish(),
        ),
        (
            "sparse",
            TarBuilder::new()
                .sparse(b"./s", 5000, &[(512, 512), (2048, 1024)], &pattern(1536, 5))
                .sparse(
                    b"./many",
                    40_000,
                    &(0..9).map(|i| (i * 4096, 512)).collect::<Vec<_>>(),
                    &pattern(9 * 512, 7),
                )
                .file(b"./after", b"ok")
                .end()
                .finish(),
        ),
        (
            "pax_and_long",
            TarBuilder::new()
                .pax(&[("path", long.as_bytes()), ("mtime", b"1234567890.5")])
                .file(b"./short", b"pax named")
                .pax(&[("linkpath", b"short")])
                .symlink(b"./pl", b"")
                .file(format!("./{}", "x".repeat(200)).as_bytes(), &big)
                .symlink(b"./ll", "y".repeat(150).as_bytes())
                .end()
                .finish(),
        ),
        (
            "modes",
            TarBuilder::new()
                .dir(b"./", 0o000)
                .file_mode(b"./locked", b"data", 0o000)
                .dir(b"./ro/", 0o555)
                .file(b"./ro/f", b"in a read-only dir")
                .end()
                .finish(),
        ),
    ]
}

fn make_seeds(dir: &Path) -> Result<Vec<Seed>> {
    let src = dir.join("seed-tree");
    if !src.exists() {
        make_tree(&src).map_err(|e| Error::io(&src, e))?;
    }
    let tree = snapshot(&src)?;
    let mut seeds = Vec::new();
    for format in [Format::Gzip, Format::Zstd] {
        let out = dir.join(format!("seed.{}", format.as_str()));
        let opts = ArchiveOptions {
            format,
            threads: 1,
            fsync: false,
            ..ArchiveOptions::default()
        };
        archive::create(&Source::Dir(src.clone()), &out, &opts, &JobControl::new())?;
        let bytes = fs::read(&out).map_err(|e| Error::io(&out, e))?;
        let tar = decompress(&bytes, format);
        seeds.push(Seed {
            name: format!("engine-{}", format.as_str()),
            bytes,
            tar: tar.clone(),
            format,
            frames: Vec::new(),
            tree: Some(tree.clone()),
            listed: None,
        });
        if format == Format::Zstd {
            // As the engine writes big archives: the marker frame, then many frames.
            let (bytes, frames) = zstd_frames(&tar, 1536, true);
            seeds.push(Seed {
                name: "engine-zst-frames".into(),
                bytes,
                tar,
                format,
                frames,
                tree: Some(tree.clone()),
                listed: None,
            });
        }
    }
    for (name, tar) in crafted_seeds() {
        let (zbytes, frames) = zstd_frames(&tar, 2048, false);
        let gz = gzip(&tar);
        let probe = dir.join("seed-probe");
        fs::write(&probe, &gz).map_err(|e| Error::io(&probe, e))?;
        // every crafted seed is a valid archive: its listing is the truth for its cuts
        let listed = Some(expected_from_list(&probe, Duration::from_secs(30))?);
        seeds.push(Seed {
            name: format!("{name}-gz"),
            bytes: gz,
            tar: tar.clone(),
            format: Format::Gzip,
            frames: Vec::new(),
            tree: None,
            listed: listed.clone(),
        });
        seeds.push(Seed {
            name: format!("{name}-zst"),
            bytes: zbytes,
            tar,
            format: Format::Zstd,
            frames,
            tree: None,
            listed,
        });
    }
    Ok(seeds)
}

/// Values that numeric fields of hostile headers get.
const HUGE: [u64; 8] = [
    0,
    1,
    511,
    513,
    1 << 30,
    1 << 40,
    (1 << 60) + 7,
    u64::MAX >> 1,
];

fn set_number(field: &mut [u8], v: u64, rng: &mut Rng) {
    if rng.chance(50) || v >= 1 << (3 * (field.len() - 1)) {
        // GNU base-256
        field.fill(0);
        let bytes = v.to_be_bytes();
        let n = field.len();
        let take = n.min(8);
        field[n - take..].copy_from_slice(&bytes[8 - take..]);
        field[0] |= 0x80;
    } else {
        let s = format!("{v:0width$o}\0", width = field.len() - 1);
        let b = s.as_bytes();
        let take = b.len().min(field.len());
        field[..take].copy_from_slice(&b[b.len() - take..]);
    }
}

const EVIL_NAMES: [&[u8]; 9] = [
    b"/etc/zbackup-fuzz",
    b"../escape",
    b"./a/../../x",
    b"./\x1b[31mansi",
    b"./nul\0inside",
    b"./",
    b"",
    b"./d/up/through",
    b"./link/through",
];

const TYPES: [u8; 17] = [
    b'0', 0, b'1', b'2', b'3', b'4', b'5', b'6', b'7', b'L', b'K', b'x', b'g', b'S', b'V', b'M',
    b'D',
];

/// Offsets of the header blocks of a tar stream (skipping data), as far as they parse.
fn header_offsets(tar: &[u8]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 512 <= tar.len() && out.len() < 10_000 {
        let block = &tar[at..at + 512];
        if block.iter().all(|&b| b == 0) {
            at += 512;
            continue;
        }
        out.push(at);
        let h = tar::Header::from_byte_slice(block);
        let size = h.entry_size().unwrap_or(0);
        if size > tar.len() as u64 {
            break;
        }
        at += 512 + (size as usize).div_ceil(512) * 512;
    }
    out
}

/// A crafted block sequence to splice into a tar stream.
fn crafted_blocks(rng: &mut Rng) -> Vec<u8> {
    let mut t = TarBuilder::new();
    match rng.below(9) {
        0 => {
            t.header(&Fields::new(
                b"././@LongLink",
                b'L',
                HUGE[rng.index(HUGE.len())],
            ));
            t.raw(&vec![b'n'; 512 * rng.index(4)]);
        }
        1 => {
            t.header(&Fields::new(
                b"././@PaxHeader",
                b'x',
                HUGE[rng.index(HUGE.len())],
            ));
            t.raw(&vec![b'9'; 512 * rng.index(4)]);
        }
        2 => {
            let real = HUGE[rng.index(HUGE.len())];
            t.sparse(b"./s", real, &[(rng.below(4096), 512)], &[1u8; 512]);
        }
        3 => {
            t.raw(&[0u8; 512]);
        }
        4 => {
            t.end();
        }
        5 => {
            let n = HUGE[rng.index(HUGE.len())];
            t.raw(&crate::archive::manifest::trailer_header(
                n,
                HUGE[rng.index(HUGE.len())],
                0,
            ));
        }
        6 => {
            t.pax(&[("path", EVIL_NAMES[rng.index(EVIL_NAMES.len())])]);
        }
        7 => {
            t.hardlink(b"./h", EVIL_NAMES[rng.index(EVIL_NAMES.len())]);
        }
        _ => {
            t.file(EVIL_NAMES[rng.index(EVIL_NAMES.len())], b"evil");
        }
    }
    t.finish()
}

/// Mutates the tar stream in place.
fn mutate_tar(tar: &mut Vec<u8>, rng: &mut Rng) {
    let headers = header_offsets(tar);
    match rng.below(6) {
        0 => {
            for _ in 0..=rng.below(8) {
                if !tar.is_empty() {
                    let i = rng.index(tar.len());
                    tar[i] ^= 1 << rng.below(8);
                }
            }
        }
        1 | 2 if !headers.is_empty() => {
            let at = headers[rng.index(headers.len())];
            let block = &mut tar[at..at + 512];
            match rng.below(6) {
                0 => set_number(&mut block[124..136], HUGE[rng.index(HUGE.len())], rng),
                1 => block[156] = TYPES[rng.index(TYPES.len())],
                2 => {
                    let name = EVIL_NAMES[rng.index(EVIL_NAMES.len())];
                    block[..100].fill(0);
                    block[..name.len()].copy_from_slice(name);
                }
                3 => {
                    let name = EVIL_NAMES[rng.index(EVIL_NAMES.len())];
                    block[157..257].fill(0);
                    block[157..157 + name.len()].copy_from_slice(name);
                }
                4 => set_number(&mut block[100..108], rng.below(0o10000), rng),
                _ => set_number(&mut block[136..148], HUGE[rng.index(HUGE.len())], rng),
            }
            if rng.chance(90) {
                fix_checksum(block);
            }
        }
        3 => {
            let blocks = tar.len() / 512;
            let at = rng.index(blocks + 1) * 512;
            let spliced = crafted_blocks(rng);
            tar.splice(at..at, spliced);
        }
        4 => {
            let blocks = tar.len() / 512;
            if blocks > 1 {
                let from = rng.index(blocks) * 512;
                let n = (1 + rng.index(3)) * 512;
                let to = (from + n).min(tar.len());
                if rng.chance(50) {
                    tar.drain(from..to);
                } else {
                    let copy = tar[from..to].to_vec();
                    tar.splice(from..from, copy);
                }
            }
        }
        _ => {
            let cut = if rng.chance(50) {
                rng.index(tar.len() / 512 + 1) * 512
            } else {
                rng.index(tar.len() + 1)
            };
            tar.truncate(cut);
        }
    }
}

/// One input: the bytes of an archive file, from a seed.
fn mutate(seed: &Seed, rng: &mut Rng) -> (Vec<u8>, &'static str) {
    match rng.below(10) {
        0 => {
            let cut = rng.index(seed.bytes.len() + 1);
            (seed.bytes[..cut].to_vec(), "truncated")
        }
        1 | 2 => {
            let mut b = seed.bytes.clone();
            for _ in 0..=rng.below(3) {
                if !b.is_empty() {
                    let i = rng.index(b.len());
                    b[i] ^= 1 << rng.below(8);
                }
            }
            (b, "flipped")
        }
        3 => {
            let mut b = seed.bytes.clone();
            if rng.chance(50) {
                b.extend(std::iter::repeat_n(0u8, 1 + rng.index(5000)));
                (b, "zero-padded")
            } else {
                b.extend_from_slice(b"garbage after the stream");
                (b, "garbage-appended")
            }
        }
        _ => {
            let mut tar = seed.tar.clone();
            mutate_tar(&mut tar, rng);
            let bytes = match seed.format {
                Format::Gzip => gzip(&tar),
                Format::Zstd => zstd_frames(&tar, 512 * (1 + rng.index(8)), rng.chance(50)).0,
            };
            (bytes, "tar-mutated")
        }
    }
}

/// The state `list` says an archive extracts to: canonical path -> (kind, size, crc32, link).
fn expected_from_list(path: &Path, timeout: Duration) -> Result<Listing> {
    let mut state = Listing::new();
    let canon = |raw: &[u8]| -> Vec<u8> {
        raw.split(|&b| b == b'/')
            .filter(|c| !c.is_empty() && *c != b".")
            .collect::<Vec<_>>()
            .join(&b'/')
    };
    let ctl = JobControl::with_timeout(timeout);
    archive::list_each(path, &ctl, &mut |e| {
        let rel = canon(&e.path);
        let v = match e.kind {
            EntryKind::File => ('f', e.size, e.crc32, Vec::new()),
            EntryKind::Dir => ('d', 0, 0, Vec::new()),
            EntryKind::Symlink => ('l', 0, 0, e.link.clone().unwrap_or_default()),
            EntryKind::Hardlink => {
                let t = canon(e.link.as_deref().unwrap_or(&[]));
                match state.get(&t) {
                    Some(v) => v.clone(),
                    None => ('?', 0, 0, Vec::new()),
                }
            }
            EntryKind::Other => return Ok(()),
        };
        state.insert(rel, v);
        Ok(())
    })?;
    Ok(state)
}

fn compare_with_list(dest: &Path, expected: &Listing) -> std::result::Result<(), String> {
    for (rel, (kind, size, crc, link)) in expected {
        let p = dest.join(std::ffi::OsStr::from_bytes(rel));
        let meta = fs::symlink_metadata(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        match kind {
            'f' => {
                let got = file_crc(&p).map_err(|e| format!("{}: {e}", p.display()))?;
                if !meta.is_file() || got != (*size, *crc) {
                    return Err(format!("{}: content differs from the listing", p.display()));
                }
            }
            'd' if !meta.is_dir() => return Err(format!("{}: not a directory", p.display())),
            'l' => {
                let t = fs::read_link(&p).map_err(|e| format!("{}: {e}", p.display()))?;
                if t.as_os_str().as_bytes() != link.as_slice() {
                    return Err(format!("{}: link target differs", p.display()));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Makes everything below `p` writable and removes it (extractions may hold mode-000 dirs).
fn clear(p: &Path) {
    let _ = crate::fsutil::remove_tree(p);
}

fn caught<T>(f: impl FnOnce() -> Result<T>) -> std::result::Result<Result<T>, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|p| {
        p.downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic".into())
    })
}

fn heap_peak_since(base: usize) -> Option<usize> {
    alloc::installed().then(|| alloc::peak().saturating_sub(base))
}

/// Runs the harness. `progress` is called every 1000 inputs.
pub fn run(cfg: &Config, progress: &mut dyn FnMut(&Stats)) -> Result<Stats> {
    let work = cfg.dir.join("fuzz-work");
    clear(&work);
    fs::create_dir_all(&work).map_err(|e| Error::io(&work, e))?;
    let seeds = make_seeds(&work)?;
    let input = work.join("input.archive");
    let mut stats = Stats::default();
    let mut rng = Rng::new(cfg.seed);
    // Truncation at every frame boundary of every multi-frame zstd seed first (and at the
    // boundary plus a few bytes into the next frame).
    let mut plan: Vec<(usize, Option<usize>)> = Vec::new();
    for (i, s) in seeds.iter().enumerate() {
        for &f in &s.frames {
            plan.push((i, Some(f)));
            plan.push((i, Some(f + 5)));
        }
        plan.push((i, Some(s.bytes.len())));
    }
    let prev_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let mut n = 0u64;
    while n < cfg.inputs {
        let (seed_ix, cut) = plan
            .get(n as usize)
            .copied()
            .unwrap_or_else(|| (rng.index(seeds.len()), None));
        let seed = &seeds[seed_ix];
        let (bytes, how) = match cut {
            Some(c) => (seed.bytes[..c.min(seed.bytes.len())].to_vec(), "frame-cut"),
            None => mutate(seed, &mut rng),
        };
        n += 1;
        one_input(cfg, &work, &input, seed, &bytes, how, n, &mut stats)?;
        if n % 1000 == 0 {
            progress(&stats);
        }
    }
    std::panic::set_hook(prev_hook);
    clear(&work);
    Ok(stats)
}

#[allow(clippy::too_many_arguments)]
fn one_input(
    cfg: &Config,
    work: &Path,
    input: &Path,
    seed: &Seed,
    bytes: &[u8],
    how: &str,
    n: u64,
    stats: &mut Stats,
) -> Result<()> {
    fs::write(input, bytes).map_err(|e| Error::io(input, e))?;
    stats.inputs += 1;
    let what = || format!("input {n} ({} {how}, {} bytes)", seed.name, bytes.len());
    let started = Instant::now();
    let base = alloc::current();
    alloc::reset_peak();
    let verify = caught(|| archive::verify(input, &JobControl::with_timeout(cfg.timeout)));
    let dest = work.join("dest");
    clear(&dest);
    let extract = caught(|| {
        archive::extract(
            input,
            &dest,
            &ExtractOptions::default(),
            &JobControl::with_timeout(cfg.timeout),
        )
    });
    let heap = heap_peak_since(base);
    let ms = started.elapsed().as_millis() as u64;
    stats.max_input_ms = stats.max_input_ms.max(ms);
    if let Some(h) = heap {
        stats.max_heap_bytes = Some(stats.max_heap_bytes.unwrap_or(0).max(h));
        if h > cfg.memory_cap {
            stats.over_memory += 1;
            stats.sample(format!("{}: heap peak {h} bytes", what()));
        }
    }
    let leftovers: Vec<_> = fs::read_dir(work)
        .map_err(|e| Error::io(work, e))?
        .flatten()
        .filter(|e| {
            e.file_name()
                .as_bytes()
                .windows(9)
                .any(|w| w == b".zbackup-")
        })
        .map(|e| e.path())
        .collect();
    if !leftovers.is_empty() {
        stats.staging_leftovers += 1;
        stats.sample(format!("{}: left {leftovers:?}", what()));
        for l in &leftovers {
            clear(l);
        }
    }
    let (verify, extract) = match (verify, extract) {
        (Ok(v), Ok(e)) => (v, e),
        (v, e) => {
            stats.crashes += 1;
            stats.sample(format!("{}: panic {:?} / {:?}", what(), v.err(), e.err()));
            clear(&dest);
            return Ok(());
        }
    };
    if std::env::var_os("ZBACKUP_FUZZ_TRACE").is_some() {
        eprintln!(
            "TRACE {n} {} {how} {:?} {:?}",
            seed.name,
            verify.as_ref().map(|_| "ok").map_err(|e| e.to_string()),
            extract.as_ref().map(|_| "ok").map_err(|e| e.to_string())
        );
    }
    let timed_out = |r: &Error| matches!(r, Error::Timeout);
    if verify.as_ref().err().is_some_and(timed_out) || extract.as_ref().err().is_some_and(timed_out)
    {
        stats.hangs += 1;
        stats.sample(format!("{}: deadline hit ({ms} ms)", what()));
        clear(&dest);
        return Ok(());
    }
    match (&verify, &extract) {
        (Ok(report), Ok(_)) => {
            stats.verify_ok += 1;
            // A cut or a flipped byte of an archive this engine wrote must never read as
            // another tree; neither may anything that passed its manifest.
            // The same holds for the crafted seeds against their own listing.
            let exact = report.manifest_checked
                || matches!(how, "frame-cut" | "truncated" | "flipped" | "zero-padded");
            let verdict = match (&seed.tree, &seed.listed, exact) {
                (Some(tree), _, true) => match snapshot(&dest) {
                    Ok(got) if &got == tree => Ok(()),
                    Ok(got) => Err(first_difference(tree, &got)),
                    Err(e) => Err(e.to_string()),
                },
                (None, Some(listed), true) => compare_with_list(&dest, listed),
                _ => match expected_from_list(input, cfg.timeout) {
                    Ok(exp) => compare_with_list(&dest, &exp),
                    Err(e) => Err(format!("list failed after verify passed: {e}")),
                },
            };
            if let Err(why) = verdict {
                stats.silent_corruptions += 1;
                stats.sample(format!("{}: {why}", what()));
            }
        }
        (Err(a), Err(b)) => {
            if a.reason() != b.reason() {
                stats.reason_differences += 1;
            }
        }
        (v, e) => {
            stats.disagreements += 1;
            stats.sample(format!(
                "{}: verify {:?}, extract {:?}",
                what(),
                v.as_ref().map(|_| "ok").map_err(|e| e.to_string()),
                e.as_ref().map(|_| "ok").map_err(|e| e.to_string())
            ));
        }
    }
    clear(&dest);
    Ok(())
}

fn first_difference(want: &Snapshot, got: &Snapshot) -> String {
    for (k, v) in want {
        match got.get(k) {
            None => return format!("{} missing", String::from_utf8_lossy(k)),
            Some(g) if g != v => {
                return format!(
                    "{} differs: want ({}, {:o}, {}), got ({}, {:o}, {})",
                    String::from_utf8_lossy(k),
                    v.0,
                    v.1,
                    v.2,
                    g.0,
                    g.1,
                    g.2
                )
            }
            _ => {}
        }
    }
    match got.keys().find(|k| !want.contains_key(*k)) {
        Some(k) => format!("{} extra", String::from_utf8_lossy(k)),
        None => "trees differ".into(),
    }
}

/// Writes the bomb archives of issue 14 into `dir`: the small ones of `craft::bombs`, and with
/// `full` the ones at the scale (a real 1 GiB long name and PAX record, 3 million
/// entries, a `.tar.zst` of 256 GiB of zeros). Returns their paths.
pub fn write_bombs(dir: &Path, full: bool) -> Result<Vec<PathBuf>> {
    use std::io::Write;
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut out = Vec::new();
    for (name, bytes) in craft::bombs() {
        let p = dir.join(name);
        fs::write(&p, bytes).map_err(|e| Error::io(&p, e))?;
        out.push(p);
    }
    let p = dir.join("zeros_256gib.tar.zst");
    let mut f = std::io::BufWriter::new(fs::File::create(&p).map_err(|e| Error::io(&p, e))?);
    craft::write_zstd_zero_bomb(&mut f, b"./zeros", 256 << 30).map_err(|e| Error::io(&p, e))?;
    f.flush().map_err(|e| Error::io(&p, e))?;
    out.push(p);
    if full {
        let gz = |name: &str, header: Fields<'_>, fill: u8, n: u64| -> Result<PathBuf> {
            let p = dir.join(name);
            let f = fs::File::create(&p).map_err(|e| Error::io(&p, e))?;
            let mut e = flate2::write::GzEncoder::new(f, flate2::Compression::new(9));
            let io = |e: std::io::Error| Error::io(&p, e);
            e.write_all(&craft::header_block(&header)).map_err(io)?;
            let chunk = vec![fill; 1 << 20];
            for _ in 0..n.div_ceil(1 << 20) {
                e.write_all(&chunk).map_err(io)?;
            }
            e.finish().map_err(io)?;
            Ok(p)
        };
        out.push(gz(
            "longname_1gib_full.tar.gz",
            Fields::new(b"././@LongLink", b'L', 1 << 30),
            b'a',
            1 << 30,
        )?);
        out.push(gz(
            "pax_1gib_full.tar.gz",
            Fields::new(b"././@PaxHeader", b'x', 1 << 30),
            b'9',
            1 << 30,
        )?);
        // 3 million directory entries: past the bookkeeping cap
        let p = dir.join("entries_3m.tar.gz");
        let f = fs::File::create(&p).map_err(|e| Error::io(&p, e))?;
        let mut e =
            flate2::write::GzEncoder::new(std::io::BufWriter::new(f), flate2::Compression::fast());
        let io = |e: std::io::Error| Error::io(&p, e);
        for i in 0..3_000_000u32 {
            let name = format!("./{:02}/{:07}/", i % 97, i);
            e.write_all(&craft::header_block(&Fields::new(name.as_bytes(), b'5', 0)))
                .map_err(io)?;
        }
        e.write_all(&[0u8; 1024]).map_err(io)?;
        e.finish().map_err(io)?;
        out.push(p);
    }
    Ok(out)
}
