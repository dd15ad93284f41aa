//! `ParallelGzWriter`: a streaming gzip writer that deflates on several threads and still writes
//! ONE gzip member that `gzip -d`, GNU tar, Python's tarfile and `erl_tar` read.
//!
//! Size: the writer, its workers and the unit framing (byte-aligned units a later set can
//! splice, with their CRCs combined into one trailer) must agree on every flush; kept together.
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
//! finished chunks to the inner writer in order) when that many are pending. Raw units (below)
//! hold no data, only where to copy it from: up to `MAX_QUEUED` of them may wait behind a chunk
//! still being compressed, so a caller going through a run of unchanged files reaches the next
//! changed one, and keeps the compressors busy, before the copies ahead of it are written. The
//! inner writer is only ever used from the caller's thread, so it needs no `Send`.
//!
//! Call `finish` to write the last block and the trailer; dropping the writer without `finish`
//! leaves a truncated stream (and never panics).
//!
//! **Units** (segmented mode, what archives use; issue 15): `cut` ends a *unit*, a run of input
//! whose compressed bytes start on a byte boundary with no back-reference before its start (the
//! first chunk of a unit gets no dictionary) and end with a sync flush, so it inflates on its
//! own and can be copied byte for byte into another stream at any byte-aligned position. The
//! writer reports each finished unit ([`UnitInfo`]: offset and length in the output, length
//! and crc32 of its input). `queue_raw` puts a unit taken from elsewhere (another archive)
//! into the output in order, without compressing it: the caller vouches for its bytes, length
//! and crc32, which are combined into the trailer like any chunk's. When the output can share
//! extents with the source of raw units (`set_clone_align`), a raw unit is preceded by empty
//! deflate blocks (5 or 6 bytes each) so that its offset in the output is congruent with its
//! offset in its source modulo the file system block, which lets the file system clone it.
//! In segmented mode the stream ends with an empty final stored block after the last unit.
//!
//! **Sync points** (issue 15): `sync` marks the input position inside a unit after which a
//! later set may want to cut the unit short (an entry boundary). The compressor ends a part
//! there: a deflated run gets a sync flush in the same stream (the window is kept, so the cost
//! is one block restart), a stored run is split into two runs of stored blocks. Every part ends
//! byte-aligned, so the unit's compressed bytes up to a sync point inflate on their own to the
//! unit's input up to it, with no back-reference before the unit's start: a unit of their own.
//! The writer reports each ([`SyncPoint`]: compressed and uncompressed bytes of the unit up to
//! it, with their crc32s). A sync point where the unit ends (a cut) is the unit's end and is
//! not reported; one at a chunk start is the previous chunk's end (already a sync flush).

use flate2::{Compress, Compression, FlushCompress, Status};
use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::mpsc::{sync_channel, Receiver, TryRecvError};
use std::sync::Arc;

/// Entries (chunks and raw units) queued at most: a raw unit is some 100 bytes.
const MAX_QUEUED: usize = 1024;
/// Deflate window: the dictionary carried from one chunk to the next.
const WINDOW: usize = 32 * 1024;
/// Largest stored block payload.
const STORED_MAX: usize = 65_535;
/// Unit of the stored-or-deflated decision.
const SEGMENT: usize = 128 * 1024;
/// Default chunk size: large enough that per-chunk costs (reset, dictionary) vanish.
/// The gzip header every archive starts with (ID1 ID2 CM=deflate FLG=0 MTIME=0 XFL=0 OS=unix);
/// a later set recognises its own archives by it (reuse.rs).
pub(crate) const GZ_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3];

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

/// One run of a compressed chunk: a slice of the deflated bytes (`data`), or a slice of the
/// input to be written as stored blocks (never copied into `data`: `take` writes block headers
/// and slices of `input` straight to the output).
struct Part {
    stored: bool,
    start: usize,
    end: usize,
    /// The final block of the stream.
    fin: bool,
    /// Input bytes this part holds, and their crc32.
    ulen: u64,
    crc: u32,
    /// A sync point follows this part.
    sync: bool,
}

/// The part of a chunk that belongs to one unit.
struct Piece {
    /// `parts[..parts_end]` hold this piece and the ones before it.
    parts_end: usize,
    /// A unit ends with this piece.
    ends_unit: bool,
    /// A sync point is at the piece's start (the chunk's start, inside a unit).
    sync_at_start: bool,
}

struct ChunkOut {
    data: Vec<u8>,
    /// The input buffer, handed back for reuse (fresh buffers cost a page fault per 4 KiB).
    input: Vec<u8>,
    parts: Vec<Part>,
    pieces: Vec<Piece>,
    /// Every part is stored.
    stored: bool,
}

/// Where a finished unit is in the output, and what it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnitInfo {
    /// Units are numbered from 0 in output order (raw units included).
    pub id: u64,
    /// Offset of its first compressed byte in the output (the gzip header counts).
    pub offset: u64,
    /// Compressed bytes.
    pub len: u64,
    /// Uncompressed bytes.
    pub ulen: u64,
    /// crc32 of the uncompressed bytes.
    pub crc: u32,
    /// crc32 of the compressed bytes (what a later set checks before copying them).
    pub zcrc: u32,
}

/// A sync point inside a unit (module doc): the unit's bytes up to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncPoint {
    /// Id of its unit.
    pub unit: u64,
    /// Uncompressed bytes of the unit before it, and their crc32.
    pub ulen: u64,
    pub crc: u32,
    /// Compressed bytes of the unit before it (from the unit's offset), and their crc32.
    pub len: u64,
    pub zcrc: u32,
}

/// Puts a raw unit's bytes into the inner writer.
pub type RawWrite<W> = Box<dyn FnOnce(&mut W) -> io::Result<()>>;

/// A unit copied from elsewhere: `write` puts exactly `len` bytes into the inner writer, which
/// inflate on their own (no dictionary, byte-aligned, no final block) to `ulen` bytes of crc32
/// `crc`; `zcrc` is the crc32 of those `len` bytes (reported in its `UnitInfo`; `write` is
/// expected to have them checked). `src_offset` is its offset in its source, for clone
/// alignment.
pub struct RawUnit<W> {
    pub write: RawWrite<W>,
    pub src_offset: u64,
    pub len: u64,
    pub ulen: u64,
    pub crc: u32,
    pub zcrc: u32,
}

enum Pending<W> {
    Chunk(Receiver<io::Result<ChunkOut>>),
    Raw(RawUnit<W>),
    /// A raw piece ending the unit before it.
    Tail(RawUnit<W>),
}

/// The unit being written out by `take`.
struct UnitAcc {
    offset: u64,
    len: u64,
    ulen: u64,
    crc: crc32fast::Hasher,
}

pub struct ParallelGzWriter<W: Write> {
    inner: Option<W>,
    pool: Arc<rayon::ThreadPool>,
    level: u32,
    chunk_size: usize,
    max_pending: usize,
    /// Chunks in `pending` (raw units hold no data and count only against `MAX_QUEUED`).
    chunks_pending: usize,
    /// The chunk being filled; always `chunk_size` long, `fill` bytes of it are data.
    buf: Vec<u8>,
    fill: usize,
    dict: Arc<Vec<u8>>,
    pending: VecDeque<Pending<W>>,
    crc: crc32fast::Hasher,
    stats: GzStats,
    header_written: bool,
    spare_in: Vec<Vec<u8>>,
    spare_out: Vec<Vec<u8>>,
    /// Segmented mode (see the module doc).
    segmented: bool,
    /// Unit ends in the current chunk (offsets into `buf`).
    cuts: Vec<usize>,
    /// Sync points in the current chunk (offsets into `buf`, ascending).
    syncs: Vec<usize>,
    /// Sync points written out, in order, and the (unit, position) of the last one.
    syncs_done: VecDeque<SyncPoint>,
    last_sync: Option<(u64, u64)>,
    /// Input bytes of the unit being filled.
    unit_bytes: u64,
    /// Id of the unit being filled.
    unit_id: u64,
    /// Id of the unit `take` writes next, and its bookkeeping.
    take_id: u64,
    acc: Option<UnitAcc>,
    /// crc32 of the compressed bytes of the unit `take` is writing.
    unit_z: crc32fast::Hasher,
    done: VecDeque<UnitInfo>,
    /// File system block for clone alignment of raw units (0: none).
    clone_align: u64,
    /// Bytes of empty blocks written for that alignment.
    pub(crate) padding_bytes: u64,
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
            chunks_pending: 0,
            buf: vec![0; chunk_size],
            fill: 0,
            dict: Arc::new(Vec::new()),
            pending: VecDeque::new(),
            crc: crc32fast::Hasher::new(),
            stats: GzStats::default(),
            header_written: false,
            spare_in: Vec::new(),
            spare_out: Vec::new(),
            segmented: false,
            cuts: Vec::new(),
            syncs: Vec::new(),
            syncs_done: VecDeque::new(),
            last_sync: None,
            unit_bytes: 0,
            unit_id: 0,
            take_id: 0,
            acc: None,
            unit_z: crc32fast::Hasher::new(),
            done: VecDeque::new(),
            clone_align: 0,
            padding_bytes: 0,
        })
    }

    /// Segmented mode: units (`cut`), raw units, and a final empty block (module doc).
    pub fn set_segmented(&mut self, on: bool) {
        self.segmented = on;
    }

    /// Pad before raw units so they can be cloned in blocks of `align` bytes (0: never).
    pub fn set_clone_align(&mut self, align: u64) {
        self.clone_align = align;
    }

    /// Id of the unit the next input byte belongs to.
    pub fn unit_id(&self) -> u64 {
        self.unit_id
    }

    /// Input bytes in the unit being filled.
    pub fn unit_len(&self) -> u64 {
        self.unit_bytes
    }

    /// Ends the current unit; returns its id, or `None` when it holds no input (then nothing
    /// happens).
    pub fn cut(&mut self) -> io::Result<Option<u64>> {
        if self.inner.is_none() {
            return Err(io::Error::other("gzip writer already finished"));
        }
        if self.unit_bytes == 0 {
            return Ok(None);
        }
        // a sync point where the unit ends is its end
        if self.syncs.last() == Some(&self.fill) {
            self.syncs.pop();
        }
        // `fill == 0` with input in the unit: the unit's last chunk is already submitted; an
        // empty chunk ending the unit closes it (an empty stored block).
        self.cuts.push(self.fill);
        if self.fill == 0 {
            self.submit(false)?;
        }
        let id = self.unit_id;
        self.unit_id += 1;
        self.unit_bytes = 0;
        Ok(Some(id))
    }

    /// Marks a sync point at the current input position (module doc); segmented mode only.
    /// Returns the unit's input bytes before it, or `None` when the unit holds no input yet
    /// (then nothing happens). Reported by `pop_sync` once written, unless the unit ends there.
    pub fn sync(&mut self) -> io::Result<Option<u64>> {
        if self.inner.is_none() {
            return Err(io::Error::other("gzip writer already finished"));
        }
        if !self.segmented {
            return Err(io::Error::other("sync points need segmented mode"));
        }
        if self.unit_bytes == 0 {
            return Ok(None);
        }
        if self.syncs.last() != Some(&self.fill) {
            self.syncs.push(self.fill);
        }
        Ok(Some(self.unit_bytes))
    }

    /// The next sync point written out, in order.
    pub fn pop_sync(&mut self) -> Option<SyncPoint> {
        self.syncs_done.pop_front()
    }

    /// Puts a unit copied from elsewhere into the stream, after everything written so far.
    /// Only between units (after `cut`). Returns its id.
    pub fn queue_raw(&mut self, raw: RawUnit<W>) -> io::Result<u64> {
        if self.inner.is_none() {
            return Err(io::Error::other("gzip writer already finished"));
        }
        if !self.segmented || self.unit_bytes != 0 {
            return Err(io::Error::other("a raw unit may only follow a cut"));
        }
        if self.fill > 0 {
            self.submit(false)?;
        }
        self.pending.push_back(Pending::Raw(raw));
        let id = self.unit_id;
        self.unit_id += 1;
        self.drain(false)?;
        self.wait_for_room()?;
        Ok(id)
    }

    /// Ends the unit being filled with a piece copied from elsewhere (a *tail*; create.rs):
    /// its bytes follow a sync point at the current input position (recorded, and reported by
    /// `pop_sync` like any) and are the unit's last. Unlike a raw unit, a tail may refer back
    /// into the input before it: the caller vouches that the bytes inflate to `ulen` bytes of
    /// crc32 `crc` after the 32 KiB of input the unit holds before them (deflate reaches back
    /// no further), as they did where they were copied from. Never padded for cloning (the
    /// padding would move the sync point). Returns the unit's id.
    pub fn queue_raw_tail(&mut self, raw: RawUnit<W>) -> io::Result<u64> {
        if self.inner.is_none() {
            return Err(io::Error::other("gzip writer already finished"));
        }
        if !self.segmented || self.unit_bytes == 0 {
            return Err(io::Error::other("a raw tail needs a unit to end"));
        }
        // the unit's last chunk ends with a sync flush; the sync point there is recorded when
        // the tail is written (once, should the chunk's part have recorded it too)
        if self.fill > 0 {
            self.submit(false)?;
        } else {
            // (only a sync point at 0 can wait for the next chunk)
            self.syncs.clear();
        }
        // the next unit starts without a window
        self.dict = Arc::new(Vec::new());
        self.pending.push_back(Pending::Tail(raw));
        let id = self.unit_id;
        self.unit_id += 1;
        self.unit_bytes = 0;
        self.drain(false)?;
        self.wait_for_room()?;
        Ok(id)
    }

    /// The next finished unit, in order.
    pub fn pop_unit(&mut self) -> Option<UnitInfo> {
        self.done.pop_front()
    }

    /// Compresses and writes out everything written so far (after a `cut`, every unit is then
    /// finished).
    pub fn drain_all(&mut self) -> io::Result<()> {
        if self.fill > 0 {
            self.submit(false)?;
        }
        self.drain(true)
    }

    /// Output bytes written so far (the gzip header included once anything was written).
    pub fn bytes_out(&self) -> u64 {
        self.stats.bytes_out
    }

    /// Writes `data` as one unit of stored blocks, at once: only between units and with
    /// nothing pending (after `drain_all`). Where it lands is at a fixed distance from the end
    /// when it is the last unit: how a reader finds the archive's index (`manifest`).
    pub fn write_stored_unit(&mut self, data: &[u8]) -> io::Result<UnitInfo> {
        if !self.segmented || self.unit_bytes != 0 || self.fill != 0 || !self.pending.is_empty() {
            return Err(io::Error::other("a stored unit needs an idle writer"));
        }
        self.write_out(&[])?;
        let offset = self.stats.bytes_out;
        self.unit_z = crc32fast::Hasher::new();
        self.write_stored(data, false)?;
        let crc = crc32fast::hash(data);
        self.crc.combine(&crc32fast::Hasher::new_with_initial_len(
            crc,
            data.len() as u64,
        ));
        self.stats.bytes_in += data.len() as u64;
        let info = UnitInfo {
            id: self.unit_id,
            offset,
            len: self.stats.bytes_out - offset,
            ulen: data.len() as u64,
            crc,
            zcrc: std::mem::take(&mut self.unit_z).finalize(),
        };
        self.unit_id += 1;
        self.take_id += 1;
        Ok(info)
    }

    pub(crate) fn inner_mut(&mut self) -> io::Result<&mut W> {
        self.inner
            .as_mut()
            .ok_or_else(|| io::Error::other("gzip writer already finished"))
    }

    fn write_out(&mut self, bytes: &[u8]) -> io::Result<()> {
        if !self.header_written {
            self.header_written = true;
            self.inner_mut()?.write_all(&GZ_HEADER)?;
            self.stats.bytes_out += GZ_HEADER.len() as u64;
        }
        self.inner_mut()?.write_all(bytes)?;
        self.unit_z.update(bytes);
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
        let cuts = std::mem::take(&mut self.cuts);
        let syncs = std::mem::take(&mut self.syncs);
        let tail = data.len().min(WINDOW);
        if let Some(&c) = cuts.last() {
            // the next unit starts at `c`: nothing before it may be referenced
            let after = &data[c..];
            self.dict = Arc::new(after[after.len() - after.len().min(WINDOW)..].to_vec());
        } else if tail == WINDOW || last {
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
                compress_chunk(data, out, &dict, level, last, cuts, &syncs)
            }))
            .unwrap_or_else(|_| Err(io::Error::other("compression worker panicked")));
            // The receiver is gone only if the writer was dropped; nothing to report then.
            let _ = tx.send(out);
        });
        self.pending.push_back(Pending::Chunk(rx));
        self.chunks_pending += 1;
        self.drain(false)?;
        self.wait_for_room()
    }

    /// Writes out finished work, waiting for it in order, until another chunk may be handed to
    /// a worker and another entry queued (see the module doc: memory is bounded).
    fn wait_for_room(&mut self) -> io::Result<()> {
        while self.chunks_pending >= self.max_pending || self.pending.len() >= MAX_QUEUED {
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

    /// Marks `n` bytes of `spare()` as written. A full chunk is submitted by the next write
    /// (so that a `cut` right after it still ends its unit inside it).
    pub fn commit(&mut self, n: usize) -> io::Result<()> {
        let n = n.min(self.chunk_size - self.fill);
        self.fill += n;
        self.unit_bytes += n as u64;
        Ok(())
    }

    /// Books `ulen` input bytes of crc `crc` written as the `comp` bytes from `offset`, in the
    /// unit being written (which starts at `offset` if none is).
    fn add(&mut self, offset: u64, comp: u64, ulen: u64, crc: u32) {
        let part = crc32fast::Hasher::new_with_initial_len(crc, ulen);
        self.crc.combine(&part);
        self.stats.bytes_in += ulen;
        let acc = self.acc.get_or_insert_with(|| UnitAcc {
            offset,
            len: 0,
            ulen: 0,
            crc: crc32fast::Hasher::new(),
        });
        acc.len += comp;
        acc.ulen += ulen;
        acc.crc.combine(&part);
    }

    /// Ends the unit being written; the crc32 of a raw unit's compressed bytes is `zcrc`, a
    /// compressed unit's is `unit_z`'s.
    fn end_unit(&mut self, zcrc: Option<u32>) {
        if let Some(acc) = self.acc.take() {
            self.done.push_back(UnitInfo {
                id: self.take_id,
                offset: acc.offset,
                len: acc.len,
                ulen: acc.ulen,
                crc: acc.crc.finalize(),
                zcrc: zcrc.unwrap_or_else(|| std::mem::take(&mut self.unit_z).finalize()),
            });
        }
        self.take_id += 1;
    }

    /// A sync point after what the unit being written holds so far (once per position).
    fn record_sync(&mut self) {
        if let Some(acc) = &self.acc {
            let at = (self.take_id, acc.ulen);
            if self.last_sync == Some(at) {
                return;
            }
            self.last_sync = Some(at);
            self.syncs_done.push_back(SyncPoint {
                unit: self.take_id,
                ulen: acc.ulen,
                crc: acc.crc.clone().finalize(),
                len: acc.len,
                zcrc: self.unit_z.clone().finalize(),
            });
        }
    }

    fn take(&mut self, out: io::Result<ChunkOut>) -> io::Result<()> {
        let mut out = out?;
        self.write_out(&[])?;
        let mut from = 0;
        for i in 0..out.pieces.len() {
            let (parts_end, ends, at_start) = {
                let p = &out.pieces[i];
                (p.parts_end, p.ends_unit, p.sync_at_start)
            };
            if self.acc.is_none() {
                // a unit starts with this piece: its compressed bytes start here
                self.unit_z = crc32fast::Hasher::new();
            } else if at_start {
                // the previous chunk ended with a sync flush: a sync point of this unit
                self.record_sync();
            }
            for j in from..parts_end {
                let (stored, start, end, fin, ulen, crc, sync) = {
                    let p = &out.parts[j];
                    (p.stored, p.start, p.end, p.fin, p.ulen, p.crc, p.sync)
                };
                let offset = self.stats.bytes_out;
                if stored {
                    let input = std::mem::take(&mut out.input);
                    let r = self.write_stored(&input[start..end], fin);
                    out.input = input;
                    r?;
                } else {
                    let data = std::mem::take(&mut out.data);
                    let r = self.write_out(&data[start..end]);
                    out.data = data;
                    r?;
                }
                self.add(offset, self.stats.bytes_out - offset, ulen, crc);
                if sync {
                    self.record_sync();
                }
            }
            from = parts_end;
            if ends {
                self.end_unit(None);
            }
        }
        let keep = self.max_pending + 1;
        if self.spare_in.len() < keep {
            self.spare_in.push(std::mem::take(&mut out.input));
        }
        if self.spare_out.len() < keep {
            out.data.clear();
            self.spare_out.push(std::mem::take(&mut out.data));
        }
        self.stats.chunks += 1;
        if out.stored {
            self.stats.stored_chunks += 1;
        }
        Ok(())
    }

    /// Empty deflate blocks of exactly `n >= 24` bytes in all: empty stored blocks (5 bytes)
    /// and an empty fixed-Huffman block followed by an empty stored block (6 bytes).
    fn write_padding(&mut self, n: u64) -> io::Result<()> {
        const FIVE: [u8; 5] = [0x00, 0x00, 0x00, 0xff, 0xff];
        const SIX: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0xff, 0xff];
        let sixes = n % 5;
        let fives = (n - 6 * sixes) / 5;
        for _ in 0..sixes {
            self.write_out(&SIX)?;
        }
        for _ in 0..fives {
            self.write_out(&FIVE)?;
        }
        self.padding_bytes += n;
        Ok(())
    }

    fn take_raw(&mut self, raw: RawUnit<W>) -> io::Result<()> {
        self.write_out(&[])?;
        let align = self.clone_align;
        if align > 0 && raw.len >= align {
            let cur = self.stats.bytes_out % align;
            let want = raw.src_offset % align;
            if cur != want {
                let mut n = (want + align - cur) % align;
                while n < 24 {
                    n += align;
                }
                self.write_padding(n)?;
            }
        }
        let offset = self.stats.bytes_out;
        (raw.write)(self.inner_mut()?)?;
        self.stats.bytes_out += raw.len;
        self.add(offset, raw.len, raw.ulen, raw.crc);
        self.end_unit(Some(raw.zcrc));
        Ok(())
    }

    fn take_tail(&mut self, raw: RawUnit<W>) -> io::Result<()> {
        self.write_out(&[])?;
        if self.acc.is_none() {
            return Err(io::Error::other("a raw tail without its unit"));
        }
        self.record_sync();
        let offset = self.stats.bytes_out;
        (raw.write)(self.inner_mut()?)?;
        self.stats.bytes_out += raw.len;
        self.unit_z
            .combine(&crc32fast::Hasher::new_with_initial_len(raw.zcrc, raw.len));
        self.add(offset, raw.len, raw.ulen, raw.crc);
        self.end_unit(None);
        Ok(())
    }

    fn drain_one_blocking(&mut self) -> io::Result<()> {
        match self.pending.pop_front() {
            Some(Pending::Chunk(rx)) => {
                self.chunks_pending -= 1;
                let out = rx
                    .recv()
                    .map_err(|_| io::Error::other("compression worker died"))?;
                self.take(out)
            }
            Some(Pending::Raw(raw)) => self.take_raw(raw),
            Some(Pending::Tail(raw)) => self.take_tail(raw),
            None => Ok(()),
        }
    }

    /// Writes every finished chunk at the head of the queue; all of them if `all`.
    fn drain(&mut self, all: bool) -> io::Result<()> {
        while let Some(head) = self.pending.front() {
            let rx = match head {
                _ if all => {
                    self.drain_one_blocking()?;
                    continue;
                }
                Pending::Raw(_) | Pending::Tail(_) => {
                    self.drain_one_blocking()?;
                    continue;
                }
                Pending::Chunk(rx) => rx,
            };
            match rx.try_recv() {
                Ok(out) => {
                    self.pending.pop_front();
                    self.chunks_pending -= 1;
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
        if self.segmented {
            // the last unit ends before the final block, which is an empty one of its own
            self.cut()?;
            if self.fill > 0 {
                self.submit(false)?;
            }
        }
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
        if data.is_empty() {
            return Ok(0);
        }
        if self.fill == self.chunk_size {
            self.submit(false)?;
        }
        let n = (self.chunk_size - self.fill).min(data.len());
        self.buf[self.fill..self.fill + n].copy_from_slice(&data[..n]);
        self.fill += n;
        self.unit_bytes += n as u64;
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
    cuts: Vec<usize>,
    syncs: &[usize],
) -> io::Result<ChunkOut> {
    let data = &input[..];
    out.clear();
    // The chunk's pieces: (start, end, ends a unit). A unit after a cut starts without any
    // dictionary; the first piece continues the previous chunk's unit (with `dict`, which is
    // empty when that chunk ended with a cut).
    let mut bounds: Vec<(usize, usize, bool)> = Vec::with_capacity(cuts.len() + 1);
    let mut start = 0;
    for &c in &cuts {
        let c = c.min(data.len()).max(start);
        bounds.push((start, c, true));
        start = c;
    }
    if start < data.len() || bounds.is_empty() {
        bounds.push((start, data.len(), false));
    }
    let mut parts = Vec::new();
    let mut pieces = Vec::with_capacity(bounds.len());
    let n_pieces = bounds.len();
    for (pi, &(ps, pe, ends_unit)) in bounds.iter().enumerate() {
        let piece = &data[ps..pe];
        let fin_piece = last && pi + 1 == n_pieces;
        // this piece's sync points, from its start; none where it ends a unit (`cut` drops
        // those) or at its start (the chunk's start: the previous chunk's end)
        let piece_syncs: Vec<usize> = syncs
            .iter()
            .filter(|&&s| s > ps && (s < pe || (s == pe && !ends_unit)))
            .map(|&s| s - ps)
            .collect();
        let runs = if level == 0 || piece.is_empty() {
            vec![Run {
                start: 0,
                end: piece.len(),
                stored: true,
            }]
        } else {
            segment_runs(piece)
        };
        let piece_dict: &[u8] = if pi == 0 { dict } else { &[] };
        let n_runs = runs.len();
        for (ri, run) in runs.into_iter().enumerate() {
            let fin_run = fin_piece && ri + 1 == n_runs;
            // where this run's parts end: its sync points, then its end
            let mut stops: Vec<(usize, bool)> = piece_syncs
                .iter()
                .filter(|&&s| s > run.start && s < run.end)
                .map(|&s| (s, true))
                .collect();
            stops.push((run.end, piece_syncs.contains(&run.end)));
            let n_stops = stops.len();
            if run.stored {
                let mut from = run.start;
                for (k, &(to, sync)) in stops.iter().enumerate() {
                    parts.push(Part {
                        stored: true,
                        start: ps + from,
                        end: ps + to,
                        fin: fin_run && k + 1 == n_stops,
                        ulen: (to - from) as u64,
                        crc: crc32fast::hash(&piece[from..to]),
                        sync,
                    });
                    from = to;
                }
                continue;
            }
            if out.capacity() - out.len() < run.end - run.start + 1024 {
                out.reserve(run.end - run.start + (run.end - run.start) / 64 + 1024);
            }
            COMPRESSOR.with(|cell| -> io::Result<()> {
                let mut slot = cell.borrow_mut();
                let fresh = !matches!(&*slot, Some((l, _)) if *l == level);
                if fresh {
                    *slot = Some((level, Compress::new(Compression::new(level), false)));
                }
                let Some((_, c)) = slot.as_mut() else {
                    return Err(io::Error::other("no compressor"));
                };
                c.reset();
                let window = window_before(piece_dict, piece, run.start);
                if !window.is_empty() {
                    c.set_dictionary(&window).map_err(io::Error::other)?;
                }
                // one stream for the whole run: a sync point is a sync flush, the window kept
                let mut from = run.start;
                for (k, &(to, sync)) in stops.iter().enumerate() {
                    let fin = fin_run && k + 1 == n_stops;
                    let zfrom = out.len();
                    deflate_all(c, &piece[from..to], &mut out, fin)?;
                    parts.push(Part {
                        stored: false,
                        start: zfrom,
                        end: out.len(),
                        fin,
                        ulen: (to - from) as u64,
                        crc: crc32fast::hash(&piece[from..to]),
                        sync,
                    });
                    from = to;
                }
                Ok(())
            })?;
        }
        pieces.push(Piece {
            parts_end: parts.len(),
            ends_unit,
            sync_at_start: pi == 0 && syncs.first() == Some(&0),
        });
    }
    let stored = parts.iter().all(|p| p.stored);
    Ok(ChunkOut {
        data: out,
        input,
        parts,
        pieces,
        stored,
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
    use crate::archive::testdata::pseudo_random;
    use flate2::read::GzDecoder;
    use proptest::prelude::*;
    use std::io::Read;

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
        // 4 full chunks, the last of them final
        assert_eq!(stats.chunks, 4);
        assert_eq!(stats.stored_chunks, 2);
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

    /// Segmented output of `parts` (one unit each): the stream and its units.
    fn units_of(parts: &[Vec<u8>], chunk: usize) -> (Vec<u8>, Vec<UnitInfo>) {
        let units: Vec<Vec<Vec<u8>>> = parts.iter().map(|p| vec![p.clone()]).collect();
        // a unit of one entry: its sync point is its end, never reported
        let (out, infos, syncs) = synced_units(&units, chunk, &[]);
        assert!(syncs.is_empty());
        (out, infos)
    }

    fn inflate_alone(unit: &[u8]) -> Vec<u8> {
        let mut d = flate2::Decompress::new(false);
        let mut input = unit.to_vec();
        // an empty final stored block: the unit must end on a byte-aligned block boundary
        input.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
        let mut out = Vec::with_capacity(8 << 20);
        let st = d
            .decompress_vec(&input, &mut out, flate2::FlushDecompress::Finish)
            .expect("inflates on its own");
        assert_eq!(st, Status::StreamEnd);
        assert_eq!(d.total_in() as usize, input.len());
        out
    }

    #[test]
    fn every_unit_inflates_on_its_own_to_its_input() {
        let parts = vec![
            texty(300_000),
            pseudo_random(200_000, 3),
            texty(10),
            pseudo_random(5, 4),
            [texty(70_000), pseudo_random(150_000, 5)].concat(),
        ];
        let (out, units) = units_of(&parts, 64 << 10);
        assert_eq!(units.len(), parts.len());
        let mut joined = Vec::new();
        for (u, p) in units.iter().zip(&parts) {
            let bytes = &out[u.offset as usize..(u.offset + u.len) as usize];
            assert_eq!(&inflate_alone(bytes), p);
            assert_eq!(u.ulen, p.len() as u64);
            assert_eq!(u.crc, crc32fast::hash(p));
            assert_eq!(
                u.zcrc,
                crc32fast::hash(bytes),
                "crc32 of the compressed bytes"
            );
            joined.extend_from_slice(p);
        }
        assert_eq!(gunzip(&out), joined);
    }

    #[test]
    fn raw_units_with_clone_padding_make_a_valid_stream() {
        let parts = vec![texty(100_000), pseudo_random(300_000, 9)];
        let (src, units) = units_of(&parts, 1 << 20);
        for align in [0u64, 4096, 512] {
            let mut w = ParallelGzWriter::new(Vec::new(), GzOptions::default()).expect("writer");
            w.set_segmented(true);
            w.set_clone_align(align);
            let lead = texty(777);
            w.write_all(&lead).expect("write");
            w.cut().expect("cut");
            for u in &units {
                let bytes = src[u.offset as usize..(u.offset + u.len) as usize].to_vec();
                w.queue_raw(RawUnit {
                    write: Box::new(move |o: &mut Vec<u8>| {
                        o.extend_from_slice(&bytes);
                        Ok(())
                    }),
                    src_offset: u.offset,
                    len: u.len,
                    ulen: u.ulen,
                    crc: u.crc,
                    zcrc: u.zcrc,
                })
                .expect("raw");
            }
            w.drain_all().expect("drain");
            let mut placed = Vec::new();
            while let Some(u) = w.pop_unit() {
                placed.push(u);
            }
            let padding = w.padding_bytes;
            let (out, stats) = w.finish().expect("finish");
            let want = [lead.clone(), parts[0].clone(), parts[1].clone()].concat();
            assert_eq!(gunzip(&out), want, "align {align}");
            assert_eq!(stats.crc32, crc32fast::hash(&want));
            // compressed and raw units alike: zcrc covers exactly their bytes, not the padding
            for p in &placed {
                let bytes = &out[p.offset as usize..(p.offset + p.len) as usize];
                assert_eq!(p.zcrc, crc32fast::hash(bytes), "align {align}");
            }
            if align > 0 {
                for (p, u) in placed[1..].iter().zip(&units) {
                    if u.len >= align {
                        assert_eq!(p.offset % align, u.offset % align);
                    }
                }
                assert!(padding > 0);
            } else {
                assert_eq!(padding, 0);
            }
        }
    }

    /// Entries written into units (a unit per inner list), a sync point after each entry, a
    /// `drain_all` after the entries whose index is in `drain_after` (so a sync point can fall
    /// on a chunk's start): the stream, its units and its sync points.
    fn synced_units(
        units: &[Vec<Vec<u8>>],
        chunk: usize,
        drain_after: &[usize],
    ) -> (Vec<u8>, Vec<UnitInfo>, Vec<SyncPoint>) {
        let mut w = segmented(chunk);
        let mut n = 0;
        for entries in units {
            for e in entries {
                w.write_all(e).expect("write");
                let before = w.unit_len();
                assert_eq!(w.sync().expect("sync"), (before > 0).then_some(before));
                if drain_after.contains(&n) {
                    w.drain_all().expect("drain");
                }
                n += 1;
            }
            w.cut().expect("cut");
        }
        finished(w)
    }

    /// A writer in segmented mode, 2 threads, level 6, chunks of `chunk` bytes.
    fn segmented(chunk: usize) -> ParallelGzWriter<Vec<u8>> {
        let opts = GzOptions {
            threads: 2,
            level: 6,
            chunk_size: chunk,
        };
        let mut w = ParallelGzWriter::new(Vec::new(), opts).expect("writer");
        w.set_segmented(true);
        w
    }

    /// Drains and finishes `w`: the stream, its units and its sync points.
    fn finished(mut w: ParallelGzWriter<Vec<u8>>) -> (Vec<u8>, Vec<UnitInfo>, Vec<SyncPoint>) {
        w.drain_all().expect("drain");
        let mut infos = Vec::new();
        while let Some(u) = w.pop_unit() {
            infos.push(u);
        }
        let mut syncs = Vec::new();
        while let Some(s) = w.pop_sync() {
            syncs.push(s);
        }
        let (out, _) = w.finish().expect("finish");
        (out, infos, syncs)
    }

    /// Every sync point of every unit: the unit's bytes up to it inflate on their own to
    /// exactly its first entries, with the crc32s and lengths reported; one sync point per
    /// entry but the last (which ends the unit).
    fn assert_prefixes_inflate_alone(units: &[Vec<Vec<u8>>], chunk: usize, drain_after: &[usize]) {
        let (out, infos, syncs) = synced_units(units, chunk, drain_after);
        assert_eq!(infos.len(), units.len());
        let mut joined = Vec::new();
        let mut last_entry = 0;
        for (u, entries) in infos.iter().zip(units) {
            last_entry += entries.len();
            let mine: Vec<&SyncPoint> = syncs.iter().filter(|s| s.unit == u.id).collect();
            // a drain after the last entry: the unit ends with an empty chunk, after the sync
            // point, which is then reported (and is all the unit's input)
            let extra = usize::from(drain_after.contains(&(last_entry - 1)));
            assert_eq!(mine.len(), entries.len() - 1 + extra, "unit {}", u.id);
            let mut prefix = Vec::new();
            for (s, e) in mine.iter().zip(entries) {
                prefix.extend_from_slice(e);
                assert!(s.len < u.len);
                let bytes = &out[u.offset as usize..(u.offset + s.len) as usize];
                assert_eq!(inflate_alone(bytes), prefix, "unit {} at {}", u.id, s.ulen);
                assert_eq!(s.ulen, prefix.len() as u64);
                assert_eq!(s.crc, crc32fast::hash(&prefix));
                assert_eq!(s.zcrc, crc32fast::hash(bytes));
            }
            let all: Vec<u8> = entries.concat();
            let bytes = &out[u.offset as usize..(u.offset + u.len) as usize];
            assert_eq!(inflate_alone(bytes), all);
            joined.extend_from_slice(&all);
        }
        assert_eq!(gunzip(&out), joined);
    }

    #[test]
    fn each_sync_point_ends_a_prefix_of_its_unit_that_inflates_on_its_own() {
        // text, media (stored segments) split by sync points, units across chunks, an entry
        // ending exactly at a chunk's end, and a sync point at a chunk's start (after a drain)
        let units = vec![
            vec![
                texty(3_000),
                texty(70_000),
                pseudo_random(300_000, 1),
                texty(9),
            ],
            vec![
                pseudo_random(200_000, 2),
                texty(64 << 10),
                pseudo_random(150_000, 3),
            ],
            vec![texty(20_000), texty(20_000), texty(24_000), texty(100)],
            vec![texty(1), texty(2), texty(3)],
            vec![texty(500)],
        ];
        assert_prefixes_inflate_alone(&units, 64 << 10, &[]);
        assert_prefixes_inflate_alone(&units, 1 << 20, &[]);
        assert_prefixes_inflate_alone(&units, 64 << 10, &[1, 5, 8]);
    }

    /// A unit like `old` but with `first` for its first entry, then `gap`, then the bytes of
    /// `old`'s unit (written by `synced_units`) after its sync point behind `gap`, as a tail:
    /// the stream (a unit before and one after it), the tail's unit and its sync points.
    fn with_tail(
        old: &[Vec<u8>],
        first: &[u8],
        gap: &[Vec<u8>],
        chunk: usize,
        drain_before: bool,
    ) -> (Vec<u8>, UnitInfo, Vec<SyncPoint>, u64) {
        let (src, infos, syncs) = synced_units(&[old.to_vec()], chunk, &[]);
        let u = infos[0];
        let from = syncs
            .iter()
            .filter(|s| s.unit == u.id)
            .nth(gap.len())
            .copied()
            .expect("a sync point after the gap");
        let bytes = src[(u.offset + from.len) as usize..(u.offset + u.len) as usize].to_vec();
        let rest = old[1 + gap.len()..].concat();
        let mut w = segmented(chunk);
        w.write_all(&texty(777)).expect("write");
        w.cut().expect("cut");
        for e in std::iter::once(first).chain(gap.iter().map(|g| &g[..])) {
            w.write_all(e).expect("write");
            w.sync().expect("sync");
        }
        if drain_before {
            w.drain_all().expect("drain");
        }
        let at = w.unit_len();
        let (len, zcrc) = (bytes.len() as u64, crc32fast::hash(&bytes));
        let id = w
            .queue_raw_tail(RawUnit {
                write: Box::new(move |o: &mut Vec<u8>| {
                    o.extend_from_slice(&bytes);
                    Ok(())
                }),
                src_offset: 0,
                len,
                ulen: rest.len() as u64,
                crc: crc32fast::hash(&rest),
                zcrc,
            })
            .expect("tail");
        assert_eq!(w.unit_len(), 0, "the tail ends its unit");
        w.write_all(&texty(3_000)).expect("write");
        let (out, placed, mut points) = finished(w);
        let t = placed
            .into_iter()
            .find(|p| p.id == id)
            .expect("the tail's unit");
        points.retain(|s| s.unit == id);
        (out, t, points, at)
    }

    #[test]
    fn a_tail_copied_after_the_same_32_kib_of_input_inflates_to_its_input_inside_its_unit() {
        // a unit of PREV: an entry that changes, 41 KB of entries that do not, then the tail
        // (text that refers back into those 41 KB, media, text)
        let gap = vec![texty(20_000), texty(21_000)];
        let old: Vec<Vec<u8>> = [
            vec![texty(9_000)],
            gap.clone(),
            vec![texty(30_000), pseudo_random(70_000, 7), texty(5_000)],
        ]
        .concat();
        let rest = old[3..].concat();
        let changed = b"a changed entry ".repeat(300);
        for (chunk, drain_before) in [(1 << 20, false), (16 << 10, false), (64 << 10, true)] {
            let (out, t, points, at) = with_tail(&old, &changed, &gap, chunk, drain_before);
            let unit = [changed.clone(), gap.concat(), rest.clone()].concat();
            let want = [texty(777), unit.clone(), texty(3_000)].concat();
            // (gunzip checks the trailer's crc32, combined from the tail's)
            assert_eq!(gunzip(&out), want, "chunk {chunk}");
            let bytes = &out[t.offset as usize..(t.offset + t.len) as usize];
            assert_eq!(inflate_alone(bytes), unit, "chunk {chunk}");
            assert_eq!((t.ulen, t.crc), (unit.len() as u64, crc32fast::hash(&unit)));
            assert_eq!(t.zcrc, crc32fast::hash(bytes));
            // a sync point after each entry before the tail, once, the last at its start
            assert_eq!(points.len(), 1 + gap.len(), "chunk {chunk}: {points:?}");
            let last = points[points.len() - 1];
            assert_eq!(last.ulen, at);
            let prefix = &out[t.offset as usize..(t.offset + last.len) as usize];
            assert_eq!(inflate_alone(prefix), unit[..at as usize].to_vec());
            assert_eq!(
                (last.crc, last.zcrc),
                (
                    crc32fast::hash(&unit[..at as usize]),
                    crc32fast::hash(prefix)
                )
            );
        }
        // the tail does refer back: after other bytes of the same length it inflates to
        // something else (why a tail needs the same 32 KiB before it)
        let other: Vec<Vec<u8>> = gap.iter().map(|g| g.to_ascii_uppercase()).collect();
        let (out, t, _, _) = with_tail(&old, &changed, &other, 1 << 20, false);
        let bytes = &out[t.offset as usize..(t.offset + t.len) as usize];
        let got = inflate_alone(bytes);
        assert_eq!(got.len() as u64, t.ulen);
        assert_ne!(&got[got.len() - rest.len()..], &rest[..]);
    }

    #[test]
    fn sync_points_cost_little_on_text() {
        // 512 KiB of 16 KiB text entries in one unit, with and without a sync point after each
        let entries: Vec<Vec<u8>> = (0..32u64)
            .map(|i| {
                let mut t = texty(16 << 10);
                t.rotate_left(i as usize * 97);
                t
            })
            .collect();
        let (with, _, syncs) = synced_units(std::slice::from_ref(&entries), 1 << 20, &[]);
        assert_eq!(syncs.len(), 31);
        let (without, _) = units_of(&[entries.concat()], 1 << 20);
        // a block restart: an empty stored block and the next block's code tables (this text
        // compresses 14x, so that is 2% here; on text that compresses 3x it is under 0.5%)
        let per_sync = (with.len() as f64 - without.len() as f64) / 31.0;
        assert!(
            per_sync < 64.0,
            "{per_sync} bytes per sync point: {} against {}",
            with.len(),
            without.len()
        );
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
        fn prefixes_up_to_sync_points_inflate_alone_at_any_lengths(
            lens in prop::collection::vec((any::<bool>(), 1usize..200_000), 1..10),
            per_unit in 1usize..5,
            chunk_k in prop::sample::select(vec![16usize, 64, 1024]),
            drain in prop::collection::vec(0usize..10, 0..3),
        ) {
            let entries: Vec<Vec<u8>> = lens
                .iter()
                .enumerate()
                .map(|(i, &(random, n))| if random { pseudo_random(n, i as u64 + 9) } else { texty(n) })
                .collect();
            let units: Vec<Vec<Vec<u8>>> = entries.chunks(per_unit).map(|c| c.to_vec()).collect();
            assert_prefixes_inflate_alone(&units, chunk_k * 1024, &drain);
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
