//! `ParallelGzWriter`: a streaming gzip writer that deflates on several threads and still writes
//! ONE gzip member that `gzip -d`, GNU tar, Python's tarfile and `erl_tar` read.
//!
//! How (the pigz scheme): input is cut into chunks; each chunk is raw-deflated on a worker with the
//! previous 32 KiB of input as preset dictionary (so matches reach back across the cut and the
//! ratio stays that of a serial deflate), and ends with a sync flush (an empty stored block), which
//! byte-aligns it, so compressed chunks concatenate into one valid deflate stream. The last chunk
//! ends with a final block. Each worker computes its chunk's CRC32; the writer combines them in
//! order for the gzip trailer.
//!
//! Chunks that look incompressible (byte entropy above ~7.95 bits, i.e. JPEG/MP4/ZIP data) are
//! written as stored blocks instead: deflating them costs CPU and saves under 1%. The decision
//! is made per 128 KiB segment, so a chunk that mixes both (a small HTML file between two
//! photos) stores its media runs and deflates its text runs, each primed with the 32 KiB before
//! it; a chunk that is media throughout is written straight from its buffer.
//!
//! Memory is bounded: at most `2 * threads + 2` chunks are in flight; `write` blocks (writing
//! finished chunks to the inner writer in order) when that many are pending. The inner writer is
//! only ever used from the caller's thread, so it needs no `Send`.
//!
//! Call `finish` to write the last block and the trailer; dropping the writer without `finish`
//! leaves a truncated stream (and never panics).

use flate2::{Compress, Compression, FlushCompress, Status};
use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::mpsc::{sync_channel, Receiver, TryRecvError};
use std::sync::Arc;

/// Deflate window: the dictionary carried from one chunk to the next.
const WINDOW: usize = 32 * 1024;
/// Largest stored block payload.
const STORED_MAX: usize = 65_535;
/// Unit of the stored-or-deflated decision.
const SEGMENT: usize = 128 * 1024;
/// Default chunk size: large enough that per-chunk costs (reset, dictionary) vanish.
pub const DEFAULT_CHUNK: usize = 1024 * 1024;

/// Settings of a `ParallelGzWriter`.
#[derive(Debug, Clone, Copy)]
pub struct GzOptions {
    /// Worker threads; 0 means one per available core.
    pub threads: usize,
    /// Deflate level 0..=9 (0 = stored only); 6 is gzip's default.
    pub level: u32,
    /// Uncompressed bytes per chunk (minimum 1 KiB; default 1 MiB).
    pub chunk_size: usize,
}

impl Default for GzOptions {
    fn default() -> Self {
        GzOptions {
            threads: 0,
            level: 6,
            chunk_size: DEFAULT_CHUNK,
        }
    }
}

/// What a finished gzip stream holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GzStats {
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub crc32: u32,
    pub chunks: u64,
    /// Chunks written as stored blocks because they looked incompressible.
    pub stored_chunks: u64,
}

struct ChunkOut {
    data: Vec<u8>,
    /// The input buffer, handed back for reuse (fresh buffers cost a page fault per 4 KiB).
    input: Vec<u8>,
    crc: u32,
    len: u64,
    /// Stored chunks are not copied into `data`: `take` writes block headers and slices of
    /// `input` straight to the output.
    stored: bool,
    last: bool,
}

pub struct ParallelGzWriter<W: Write> {
    inner: Option<W>,
    pool: Arc<rayon::ThreadPool>,
    level: u32,
    chunk_size: usize,
    max_pending: usize,
    /// The chunk being filled; always `chunk_size` long, `fill` bytes of it are data.
    buf: Vec<u8>,
    fill: usize,
    dict: Arc<Vec<u8>>,
    pending: VecDeque<Receiver<io::Result<ChunkOut>>>,
    crc: crc32fast::Hasher,
    stats: GzStats,
    header_written: bool,
    spare_in: Vec<Vec<u8>>,
    spare_out: Vec<Vec<u8>>,
}

/// Number of threads `threads = 0` stands for.
pub fn default_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
}

pub(crate) fn build_pool(threads: usize) -> io::Result<rayon::ThreadPool> {
    let n = if threads == 0 {
        default_threads()
    } else {
        threads
    };
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .thread_name(|i| format!("zbackup-gz-{i}"))
        // belt and braces: jobs catch their own panics, but never let rayon abort
        .panic_handler(|_| {})
        .build()
        .map_err(|e| io::Error::other(format!("thread pool: {e}")))
}

impl<W: Write> ParallelGzWriter<W> {
    /// A writer with its own pool of `opts.threads` workers.
    pub fn new(inner: W, opts: GzOptions) -> io::Result<Self> {
        let threads = if opts.threads == 0 {
            default_threads()
        } else {
            opts.threads
        };
        let pool = Arc::new(build_pool(threads)?);
        Self::with_pool(inner, opts, pool, threads)
    }

    fn with_pool(
        inner: W,
        opts: GzOptions,
        pool: Arc<rayon::ThreadPool>,
        threads: usize,
    ) -> io::Result<Self> {
        if opts.level > 9 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("gzip level {} not in 0..9", opts.level),
            ));
        }
        let chunk_size = opts.chunk_size.max(1024);
        Ok(ParallelGzWriter {
            inner: Some(inner),
            pool,
            level: opts.level,
            chunk_size,
            max_pending: 2 * threads + 2,
            buf: vec![0; chunk_size],
            fill: 0,
            dict: Arc::new(Vec::new()),
            pending: VecDeque::new(),
            crc: crc32fast::Hasher::new(),
            stats: GzStats::default(),
            header_written: false,
            spare_in: Vec::new(),
            spare_out: Vec::new(),
        })
    }

    fn inner_mut(&mut self) -> io::Result<&mut W> {
        self.inner
            .as_mut()
            .ok_or_else(|| io::Error::other("gzip writer already finished"))
    }

    fn write_out(&mut self, bytes: &[u8]) -> io::Result<()> {
        if !self.header_written {
            self.header_written = true;
            // ID1 ID2 CM=deflate FLG=0 MTIME=0 XFL=0 OS=unix
            let header = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3];
            self.inner_mut()?.write_all(&header)?;
            self.stats.bytes_out += header.len() as u64;
        }
        self.inner_mut()?.write_all(bytes)?;
        self.stats.bytes_out += bytes.len() as u64;
        Ok(())
    }

    /// Hands the buffered chunk to a worker.
    fn submit(&mut self, last: bool) -> io::Result<()> {
        let mut next = self.spare_in.pop().unwrap_or_default();
        // recycled buffers come back at their old length: usually no zeroing at all
        next.resize(self.chunk_size, 0);
        let mut data = std::mem::replace(&mut self.buf, next);
        data.truncate(self.fill);
        self.fill = 0;
        let out = self.spare_out.pop().unwrap_or_default();
        let dict = Arc::clone(&self.dict);
        let tail = data.len().min(WINDOW);
        if tail == WINDOW || last {
            self.dict = Arc::new(data[data.len() - tail..].to_vec());
        } else {
            // A short non-final chunk (after an explicit flush): the window spans both.
            let mut d = dict[dict.len().saturating_sub(WINDOW - tail)..].to_vec();
            d.extend_from_slice(&data);
            self.dict = Arc::new(d);
        }
        let level = self.level;
        let (tx, rx) = sync_channel(1);
        self.pool.spawn(move || {
            // A panic must not reach rayon (its default handler aborts the process, and this
            // runs inside the Erlang VM): it becomes this chunk's error.
            let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                compress_chunk(data, out, &dict, level, last)
            }))
            .unwrap_or_else(|_| Err(io::Error::other("compression worker panicked")));
            // The receiver is gone only if the writer was dropped; nothing to report then.
            let _ = tx.send(out);
        });
        self.pending.push_back(rx);
        self.drain(false)?;
        while self.pending.len() >= self.max_pending {
            self.drain_one_blocking()?;
        }
        Ok(())
    }

    /// `data` as stored blocks (the last one final when `last`), without copying it first.
    fn write_stored(&mut self, data: &[u8], last: bool) -> io::Result<()> {
        for (header, block) in stored_blocks(data, last) {
            self.write_out(&header)?;
            self.write_out(block)?;
        }
        Ok(())
    }

    /// The free part of the current chunk, for reading input straight into it (no copy);
    /// follow with `commit(n)`. Never empty.
    pub fn spare(&mut self) -> io::Result<&mut [u8]> {
        if self.inner.is_none() {
            return Err(io::Error::other("gzip writer already finished"));
        }
        if self.fill == self.chunk_size {
            self.submit(false)?;
        }
        Ok(&mut self.buf[self.fill..])
    }

    /// Marks `n` bytes of `spare()` as written.
    pub fn commit(&mut self, n: usize) -> io::Result<()> {
        self.fill = (self.fill + n).min(self.chunk_size);
        if self.fill == self.chunk_size {
            self.submit(false)?;
        }
        Ok(())
    }

    fn take(&mut self, out: io::Result<ChunkOut>) -> io::Result<()> {
        let mut out = out?;
        if out.stored {
            self.write_stored(&out.input, out.last)?;
        } else {
            self.write_out(&out.data)?;
        }
        let keep = self.max_pending + 1;
        if self.spare_in.len() < keep {
            self.spare_in.push(std::mem::take(&mut out.input));
        }
        if self.spare_out.len() < keep {
            out.data.clear();
            self.spare_out.push(std::mem::take(&mut out.data));
        }
        self.crc
            .combine(&crc32fast::Hasher::new_with_initial_len(out.crc, out.len));
        self.stats.bytes_in += out.len;
        self.stats.chunks += 1;
        if out.stored {
            self.stats.stored_chunks += 1;
        }
        Ok(())
    }

    fn drain_one_blocking(&mut self) -> io::Result<()> {
        if let Some(rx) = self.pending.pop_front() {
            let out = rx
                .recv()
                .map_err(|_| io::Error::other("compression worker died"))?;
            self.take(out)?;
        }
        Ok(())
    }

    /// Writes every finished chunk at the head of the queue; all of them if `all`.
    fn drain(&mut self, all: bool) -> io::Result<()> {
        while let Some(rx) = self.pending.front() {
            if all {
                self.drain_one_blocking()?;
                continue;
            }
            match rx.try_recv() {
                Ok(out) => {
                    self.pending.pop_front();
                    self.take(out)?;
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    return Err(io::Error::other("compression worker died"))
                }
            }
        }
        Ok(())
    }

    /// Writes the final block and the gzip trailer, flushes, and returns the inner writer.
    pub fn finish(mut self) -> io::Result<(W, GzStats)> {
        self.submit(true)?;
        self.drain(true)?;
        let crc = self.crc.clone().finalize();
        let mut trailer = [0u8; 8];
        trailer[..4].copy_from_slice(&crc.to_le_bytes());
        trailer[4..].copy_from_slice(&(self.stats.bytes_in as u32).to_le_bytes());
        self.write_out(&trailer)?;
        self.stats.crc32 = crc;
        let mut inner = self
            .inner
            .take()
            .ok_or_else(|| io::Error::other("gzip writer already finished"))?;
        inner.flush()?;
        Ok((inner, self.stats))
    }
}

impl<W: Write> Write for ParallelGzWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.inner.is_none() {
            return Err(io::Error::other("gzip writer already finished"));
        }
        let n = (self.chunk_size - self.fill).min(data.len());
        self.buf[self.fill..self.fill + n].copy_from_slice(&data[..n]);
        self.fill += n;
        if self.fill == self.chunk_size {
            self.submit(false)?;
        }
        Ok(n)
    }

    /// Writes out what is finished; does not cut a chunk (that would cost ratio), so data still
    /// buffered stays buffered until `finish`.
    fn flush(&mut self) -> io::Result<()> {
        self.drain(false)?;
        self.inner_mut()?.flush()
    }
}

/// The stored blocks holding `data` (at least one, so an empty final block can end a stream):
/// each block's 5-byte header and payload.
fn stored_blocks(data: &[u8], last: bool) -> impl Iterator<Item = ([u8; 5], &[u8])> {
    let n = data.len().div_ceil(STORED_MAX).max(1);
    (0..n).map(move |i| {
        let block = &data[(i * STORED_MAX).min(data.len())..((i + 1) * STORED_MAX).min(data.len())];
        let fin = last && i + 1 == n;
        let len = block.len() as u16;
        let [l0, l1] = len.to_le_bytes();
        let [n0, n1] = (!len).to_le_bytes();
        ([u8::from(fin), l0, l1, n0, n1], block)
    })
}

/// Whether a whole buffer looks like media data, from 8 samples of 4 KiB spread over it (32 KiB
/// pooled, bias ~0.006 bits); see `segment_incompressible`.
#[cfg(feature = "cli")]
pub(crate) fn looks_incompressible(data: &[u8]) -> bool {
    sampled_entropy_above(data, 8, 7.95)
}

/// Cheap incompressibility test of one segment: order-0 entropy of two 4 KiB samples (8 KiB
/// pooled: sampling bias ~0.02 bits, so random bytes measure ~7.98). Deflate cannot beat order-0
/// entropy by more than its LZ matches find, and random-looking media data (JPEG/MP4/ZIP) has
/// none; borderline data is deflated, which is only slower.
fn segment_incompressible(seg: &[u8]) -> bool {
    sampled_entropy_above(seg, 2, 7.95)
}

/// A run of a chunk's segments that are all stored or all deflated.
struct Run {
    start: usize,
    end: usize,
    stored: bool,
}

/// The chunk cut into runs of stored and deflated segments (one deflated run when nothing in
/// it looks incompressible).
fn segment_runs(data: &[u8]) -> Vec<Run> {
    let mut runs: Vec<Run> = Vec::new();
    for (i, seg) in data.chunks(SEGMENT).enumerate() {
        let stored = segment_incompressible(seg);
        let start = i * SEGMENT;
        match runs.last_mut() {
            Some(r) if r.stored == stored => r.end = start + seg.len(),
            _ => runs.push(Run {
                start,
                end: start + seg.len(),
                stored,
            }),
        }
    }
    runs
}

/// The 32 KiB of input before `start` in this chunk: the dictionary of a run starting there.
fn window_before<'a>(dict: &'a [u8], data: &'a [u8], start: usize) -> Cow<'a, [u8]> {
    if start >= WINDOW {
        Cow::Borrowed(&data[start - WINDOW..start])
    } else if start == 0 {
        Cow::Borrowed(dict)
    } else {
        let mut w = dict[dict.len().saturating_sub(WINDOW - start)..].to_vec();
        w.extend_from_slice(&data[..start]);
        Cow::Owned(w)
    }
}

fn sampled_entropy_above(data: &[u8], samples: usize, threshold: f64) -> bool {
    const SAMPLE: usize = 4096;
    if samples < 2 || data.len() < SAMPLE * samples {
        return false;
    }
    let mut counts = [[0u32; 256]; 4];
    let stride = (data.len() - SAMPLE) / (samples - 1);
    let mut total = 0usize;
    for k in 0..samples {
        let sample = &data[k * stride..k * stride + SAMPLE];
        for c in sample.chunks_exact(4) {
            counts[0][c[0] as usize] += 1;
            counts[1][c[1] as usize] += 1;
            counts[2][c[2] as usize] += 1;
            counts[3][c[3] as usize] += 1;
        }
        total += SAMPLE;
    }
    let n = total as f64;
    let mut h = 0.0f64;
    for i in 0..256 {
        let c: u32 = counts.iter().map(|t| t[i]).sum();
        if c > 0 {
            let p = c as f64 / n;
            h -= p * p.log2();
        }
    }
    h > threshold
}

thread_local! {
    static COMPRESSOR: RefCell<Option<(u32, Compress)>> = const { RefCell::new(None) };
}

fn compress_chunk(
    input: Vec<u8>,
    mut out: Vec<u8>,
    dict: &[u8],
    level: u32,
    last: bool,
) -> io::Result<ChunkOut> {
    let data = &input[..];
    let crc = crc32fast::hash(data);
    let runs = if level == 0 || data.is_empty() {
        Vec::new()
    } else {
        segment_runs(data)
    };
    let stored = matches!(&runs[..], [] | [Run { stored: true, .. }]);
    out.clear();
    if !stored {
        out.reserve(data.len() + data.len() / 64 + 64);
    }
    if !stored {
        COMPRESSOR.with(|cell| -> io::Result<()> {
            let mut slot = cell.borrow_mut();
            let fresh = !matches!(&*slot, Some((l, _)) if *l == level);
            if fresh {
                *slot = Some((level, Compress::new(Compression::new(level), false)));
            }
            let Some((_, c)) = slot.as_mut() else {
                return Err(io::Error::other("no compressor"));
            };
            let n = runs.len();
            for (i, run) in runs.into_iter().enumerate() {
                let fin = last && i + 1 == n;
                let part = &data[run.start..run.end];
                if run.stored {
                    for (header, block) in stored_blocks(part, fin) {
                        out.extend_from_slice(&header);
                        out.extend_from_slice(block);
                    }
                } else {
                    c.reset();
                    let window = window_before(dict, data, run.start);
                    if !window.is_empty() {
                        c.set_dictionary(&window).map_err(io::Error::other)?;
                    }
                    deflate_all(c, part, &mut out, fin)?;
                }
            }
            Ok(())
        })?;
    }
    let len = data.len() as u64;
    Ok(ChunkOut {
        data: out,
        input,
        crc,
        len,
        stored,
        last,
    })
}

fn deflate_all(c: &mut Compress, data: &[u8], out: &mut Vec<u8>, last: bool) -> io::Result<()> {
    let flush = if last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    let start = c.total_in();
    loop {
        let done = (c.total_in() - start) as usize;
        if out.capacity() - out.len() < 1024 {
            out.reserve(64 * 1024);
        }
        let status = c
            .compress_vec(&data[done..], out, flush)
            .map_err(io::Error::other)?;
        let consumed_all = (c.total_in() - start) as usize == data.len();
        match status {
            Status::StreamEnd => return Ok(()),
            Status::Ok | Status::BufError => {
                if !last && consumed_all && out.len() < out.capacity() {
                    return Ok(());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::read::GzDecoder;
    use proptest::prelude::*;
    use std::io::Read;

    fn pseudo_random(n: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect()
    }

    /// Text with a realistic ratio (~3-4x): words picked by a PRNG, numbers, markup.
    fn texty(n: usize) -> Vec<u8> {
        let words = [
            "<div class=\"x\">",
            "lorem ",
            "ipsum ",
            "zotonic ",
            "</div>\n",
            "backup ",
            "media ",
            "the ",
            "of ",
            "resource ",
            "<p>",
            "</p>\n",
            "archive ",
            "site ",
        ];
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut v = Vec::with_capacity(n + 32);
        while v.len() < n {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            v.extend_from_slice(words[(x % words.len() as u64) as usize].as_bytes());
            if x % 5 == 0 {
                v.extend_from_slice(format!("{} ", (x >> 40) % 100_000).as_bytes());
            }
        }
        v.truncate(n);
        v
    }

    fn gz(data: &[u8], threads: usize, chunk: usize, level: u32, pieces: usize) -> Vec<u8> {
        let opts = GzOptions {
            threads,
            level,
            chunk_size: chunk,
        };
        let mut w = ParallelGzWriter::new(Vec::new(), opts).expect("writer");
        let step = (data.len() / pieces.max(1)).max(1);
        for piece in data.chunks(step) {
            w.write_all(piece).expect("write");
        }
        let (out, stats) = w.finish().expect("finish");
        assert_eq!(stats.bytes_in, data.len() as u64);
        assert_eq!(stats.bytes_out, out.len() as u64);
        assert_eq!(stats.crc32, crc32fast::hash(data));
        out
    }

    fn gunzip(z: &[u8]) -> Vec<u8> {
        let mut d = GzDecoder::new(z);
        let mut v = Vec::new();
        d.read_to_end(&mut v).expect("valid gzip");
        v
    }

    #[test]
    fn empty_input_is_a_valid_gzip_of_nothing() {
        let z = gz(b"", 2, 1024, 6, 1);
        assert_eq!(gunzip(&z), b"");
    }

    #[test]
    fn random_chunks_are_stored_and_text_chunks_deflated() {
        let mut data = pseudo_random(200_000, 7);
        data.extend(texty(200_000));
        let opts = GzOptions {
            threads: 2,
            level: 6,
            chunk_size: 100_000,
        };
        let mut w = ParallelGzWriter::new(Vec::new(), opts).expect("writer");
        w.write_all(&data).expect("write");
        let (out, stats) = w.finish().expect("finish");
        // 4 full chunks and the (empty) final one
        assert_eq!(stats.chunks, 5);
        assert_eq!(stats.stored_chunks, 3);
        assert!(out.len() < 200_000 + 200_000 / 2, "{}", out.len());
        assert_eq!(gunzip(&out), data);
    }

    #[test]
    fn mixed_chunk_stores_its_media_segments_and_deflates_its_text() {
        // One 1 MiB chunk: 448 KiB of media, 128 KiB of text, 448 KiB of media.
        let mut data = pseudo_random(448 << 10, 11);
        data.extend(texty(128 << 10));
        data.extend(pseudo_random(448 << 10, 12));
        let z = gz(&data, 2, 1 << 20, 6, 3);
        assert_eq!(gunzip(&z), data);
        // The text shrinks about 3x; the media costs 5 bytes per stored block.
        assert!(z.len() < (896 << 10) + (64 << 10), "{}", z.len());
        let runs = segment_runs(&data);
        assert_eq!(
            runs.iter().map(|r| r.stored).collect::<Vec<_>>(),
            [true, false, true]
        );
    }

    #[test]
    fn dictionary_priming_keeps_ratio_close_to_serial_gzip() {
        let data = texty(2_000_000);
        let ours = gz(&data, 2, 64 * 1024, 6, 10).len();
        let mut serial = flate2::write::GzEncoder::new(Vec::new(), Compression::new(6));
        serial.write_all(&data).expect("write");
        let serial = serial.finish().expect("finish").len();
        assert!(
            (ours as f64) < serial as f64 * 1.02,
            "ours {ours} serial {serial}"
        );
    }

    #[test]
    fn gunzip_command_reads_our_stream() {
        let data = texty(300_000);
        let z = gz(&data, 3, 4096, 6, 7);
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("x.gz");
        std::fs::write(&f, &z).expect("write");
        let out = std::process::Command::new("gzip")
            .arg("-dc")
            .arg(&f)
            .output()
            .expect("gzip runs");
        assert!(out.status.success());
        assert_eq!(out.stdout, data);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn roundtrip_any_threads_chunk_sizes_and_lengths(
            threads in 1usize..5,
            chunk_k in 1usize..9,
            extra in prop::sample::select(vec![0usize, 1, 2, 100, 4096]),
            chunks in 0usize..4,
            level in prop::sample::select(vec![0u32, 1, 6, 9]),
            random in any::<bool>(),
            pieces in 1usize..5,
        ) {
            let chunk = chunk_k * 1024;
            // 0 bytes, exactly n chunks, n chunks + 1, ...
            let n = (chunks * chunk + extra).saturating_sub(usize::from(extra == 2) * 2);
            let data = if random { pseudo_random(n, n as u64 + 3) } else { texty(n) };
            let z = gz(&data, threads, chunk, level, pieces);
            prop_assert_eq!(gunzip(&z), data);
        }

        #[test]
        fn roundtrip_of_media_and_text_mixed_at_any_offsets(
            parts in prop::collection::vec((any::<bool>(), 1usize..300_000), 1..8),
            chunk_k in prop::sample::select(vec![64usize, 200, 1024]),
            level in prop::sample::select(vec![1u32, 6]),
        ) {
            let mut data = Vec::new();
            for (i, (random, len)) in parts.iter().enumerate() {
                if *random {
                    data.extend(pseudo_random(*len, i as u64 + 5));
                } else {
                    data.extend(texty(*len));
                }
            }
            let z = gz(&data, 2, chunk_k * 1024, level, 3);
            prop_assert_eq!(gunzip(&z), data);
        }
    }
}
