//! Parallel inflate of the `.tar.gz` archives this engine writes, for `verify` and `extract`
//! (issue 15): the archive's unit index splits the deflate stream into byte ranges that
//! inflate on their own, so workers inflate them on all cores while one consumer (the caller's
//! thread: tar parsing, checks, file writes) reads their output in order.
//!
//! Size: about half of the file is tests (hostile indexes, gaps, cancels, parity with the
//! serial pass); the plan, the workers and the consumer share the segment bookkeeping that the
//! argument below depends on, so they stay together.
//!
//! The index is untrusted, and this path is only ever a faster way to the serial verdict:
//!
//! * [`plan`] reads the index without inflating the archive (`reuse::Prev`: the locator in the
//!   last 530 bytes, the manifest records streamed from the tail unit) and accepts it only when
//!   its units lie in order from the gzip header to the tail unit, each starting at most
//!   `MAX_GAP` bytes after the one before (the gaps are the empty blocks a reusing set writes to
//!   align cloned units), inside the file, at most `MAX_ENTRIES` records, the manifest's crc32
//!   right. Anything else: `None`, and the archive is read serially, exactly as before.
//! * Each *segment* (a unit, with the gap before it) is inflated by a worker as a raw deflate
//!   stream without dictionary, so a back-reference before its start is an error, and must end
//!   exactly on a byte-aligned block boundary, without a final block: the SENTINEL test of
//!   `reuse.rs` (an empty final stored block fed after it must end the stream exactly at its
//!   end). It must give the unit's recorded length and crc32.
//! * After the last segment the consumer reads the fixed tail itself (the stored block with
//!   the locator, the empty final block, the gzip trailer), checks the trailer's crc32 against
//!   the crc32s the workers computed (`crc32_combine` in order) and its length, and that the
//!   file ends there.
//!
//! Why the output is then exactly the serial one: a segment that passed decodes to the same
//! bytes at any byte-aligned block boundary of any deflate stream (no reference before its
//! start, ends on a boundary, not final; see `reuse.rs`). The first segment starts right after
//! the gzip header, every next one where the previous ended, so by induction a serial inflater
//! meets each at such a boundary and produces the same bytes, then the tail's stored block and
//! the final block, then checks the same trailer and finds the end of the file. So a parallel
//! pass that succeeds produces byte for byte the stream a serial pass decodes, with no error,
//! and the tar layer (a function of those bytes) reaches the same verdict.
//!
//! A parallel pass that fails for any reason (a segment that does not pass, a bad trailer, but
//! also a bad tar header or a write error) is never reported: the caller (`read::scan`) throws
//! away what it did and runs the serial pass, whose verdict counts. (The bytes a serial
//! decoder hands on before a deflate error depend on its buffer sizes, so a parallel pass could
//! not reproduce a failing serial pass's exact error by itself.) Only a cancel or deadline ends
//! the job at once. A damaged archive with an intact index thus costs up to two reads.
//!
//! Memory is bounded whatever the index claims: at most `threads` segments wait for the consumer
//! besides the ones being inflated, each with at most `SEG_QUEUE` messages of at most `CHUNK`
//! bytes queued, so about `(2 * threads + 1) * (SEG_QUEUE + 1) * CHUNK` bytes of buffers (2 MiB
//! with 2 workers); a segment of 1 GiB streams through in chunks like any other. (Deeper queues
//! bought no measurable speed on 2 cores and cost 2 MB more.) Threads are scoped: none outlives
//! the pass; a cancel stops the workers at their next chunk.

use super::control::JobControl;
use super::hashing::to_hex;
use super::manifest::Unit;
use super::pgzip::GZ_HEADER;
use super::reuse::{Prev, Records, SENTINEL, TAIL};
use crate::error::{Error, Result};
use flate2::{Decompress, FlushDecompress, Status};
use sha2::{Digest as _, Sha256};
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Mutex;

/// Bytes of compressed input read, and of output sent, at a time.
const CHUNK: usize = 128 << 10;
/// Messages queued per segment before its worker waits for the consumer.
const SEG_QUEUE: usize = 2;
/// Compressed bytes hashed ahead of the consumer (verify).
const HASH_QUEUE: usize = 2;
/// Records of an index this path reads; past it the archive is read serially.
const MAX_ENTRIES: u64 = 1 << 24;
/// Bytes between two units (alignment padding); more is a damaged index.
const MAX_GAP: u64 = 1 << 20;
/// Buffers kept for reuse (fresh ones cost a page fault per 4 KiB).
const POOL_MAX: usize = 16;
/// The stored block before the locator in the tail (`reuse::TAIL`): not final, 512 bytes.
const LOCATOR_BLOCK: [u8; 5] = [0x00, 0x00, 0x02, 0xff, 0xfd];

/// One byte range of the deflate stream that must inflate on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Segment {
    start: u64,
    end: u64,
    /// Recorded length and crc32 of its output.
    ulen: u64,
    crc: u32,
}

/// The segments an index describes, in order, checked on the way (module doc).
struct Segments<'c> {
    records: Records<'c>,
    cur: u64,
    last: Option<Unit>,
    entries: u64,
    tail: Unit,
    done: bool,
}

impl Segments<'_> {
    /// The segment of unit `u` (and the gap before it), which must end by `limit`.
    fn segment(&mut self, u: Unit, limit: u64) -> std::result::Result<Segment, String> {
        let end = u
            .offset
            .checked_add(u.len)
            .ok_or_else(|| "a unit past the end".to_string())?;
        if u.offset < self.cur || u.offset - self.cur > MAX_GAP || end > limit {
            return Err(format!(
                "unit at {} does not follow the one before (ending at {})",
                u.offset, self.cur
            ));
        }
        let seg = Segment {
            start: self.cur,
            end,
            ulen: u.ulen,
            crc: u.crc,
        };
        self.cur = end;
        Ok(seg)
    }

    /// The next segment; `Ok(None)` after the tail unit's.
    fn next_segment(&mut self) -> std::result::Result<Option<Segment>, String> {
        if self.done {
            return Ok(None);
        }
        while let Some((_, ext)) = self.records.next_record()? {
            self.entries += 1;
            if self.entries > MAX_ENTRIES {
                return Err(format!("more than {MAX_ENTRIES} entries"));
            }
            // the entries of a unit share it; an entry without a unit has its bytes in another
            let Some(u) = ext.unit.filter(|u| Some(*u) != self.last) else {
                continue;
            };
            self.last = Some(u);
            let limit = self.tail.offset;
            return self.segment(u, limit).map(Some);
        }
        // the records ended (their crc32 checked): the tail unit, which must end at the tail
        self.done = true;
        let tail = self.tail;
        let seg = self.segment(tail, tail.offset.saturating_add(tail.len))?;
        Ok(Some(seg))
    }
}

/// An archive whose index passed [`plan`].
pub(crate) struct Plan {
    prev: Prev,
    len: u64,
}

impl Plan {
    /// Size of the archive file.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    fn segments<'c>(&self, ctl: &'c JobControl) -> std::result::Result<Segments<'c>, String> {
        Ok(Segments {
            records: self.prev.records(ctl)?,
            cur: GZ_HEADER.len() as u64,
            last: None,
            entries: 0,
            tail: self.prev.tail_unit(),
            done: false,
        })
    }
}

/// The archive's index when the parallel pass can use it (module doc); `None`: read serially.
pub(crate) fn plan(path: &Path, ctl: &JobControl) -> Option<Plan> {
    let prev = Prev::open(path).ok()?;
    let len = prev.file.metadata().ok()?.len();
    // `Prev::open` checked this against its own look at the length; the file is the same
    let tail = prev.tail_unit();
    if len < GZ_HEADER.len() as u64 + TAIL || tail.offset.checked_add(tail.len) != Some(len - TAIL)
    {
        return None;
    }
    let plan = Plan { prev, len };
    let mut segs = plan.segments(ctl).ok()?;
    while segs.next_segment().ok()?.is_some() {}
    Some(plan)
}

/// What the parallel pass read besides the stream.
pub(crate) struct Finished {
    /// Lower-case hex sha256 of the archive file, when asked for.
    pub(crate) sha256: Option<String>,
    /// Bytes of the archive file read.
    pub(crate) compressed: u64,
}

/// Buffers handed back and forth between workers and consumer.
struct Pool(Mutex<Vec<Vec<u8>>>);

impl Pool {
    fn get(&self) -> Vec<u8> {
        let mut v = self
            .0
            .lock()
            .ok()
            .and_then(|mut p| p.pop())
            .unwrap_or_default();
        v.resize(CHUNK, 0);
        v
    }

    fn put(&self, v: Vec<u8>) {
        if v.capacity() < CHUNK {
            return;
        }
        if let Ok(mut p) = self.0.lock() {
            if p.len() < POOL_MAX {
                p.push(v);
            }
        }
    }
}

/// From a worker to the consumer, per segment, in order.
enum Msg {
    /// Compressed bytes read (sent when hashing).
    Input(Vec<u8>),
    /// Inflated bytes, and (when not hashing) the compressed bytes read since the last
    /// message, for progress. One message for both: every message may cost a wake-up.
    Output(Vec<u8>, u64),
    /// The segment passed: its crc32 (with its length), and compressed bytes read as above.
    End(crc32fast::Hasher, u64),
    /// The segment failed (the whole pass is then discarded).
    Fail(String),
}

/// From the dispatch to the consumer, in stream order.
enum Order {
    Segment(Receiver<Msg>),
    Done,
    Fail(String),
}

/// Hands out segments in order; whoever takes one registers its queue with the consumer.
struct Dispatch<'c> {
    segs: Segments<'c>,
    order: Option<SyncSender<Order>>,
}

/// What every worker shares.
struct Shared<'a> {
    file: &'a File,
    ctl: &'a JobControl,
    pool: &'a Pool,
    stop: &'a AtomicBool,
    hash: bool,
}

impl Shared<'_> {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed) || self.ctl.is_cancelled()
    }
}

fn worker(sh: &Shared<'_>, dispatch: &Mutex<Dispatch<'_>>) {
    work(sh, dispatch);
    // However it ended (done, failed, stopped), a worker that leaves drops the dispatch's
    // sender: the consumer then never waits for a segment nobody will hand out. (Its own
    // segment's queue is closed already, so a dispatcher blocked on a full order queue is
    // freed by the consumer before this lock is needed.)
    if let Ok(mut d) = dispatch.lock() {
        d.order = None;
    }
}

fn work(sh: &Shared<'_>, dispatch: &Mutex<Dispatch<'_>>) {
    loop {
        if sh.stopped() {
            return;
        }
        let (seg, tx) = {
            let Ok(mut d) = dispatch.lock() else { return };
            // taken out while in use; put back unless the segments are done
            let Some(order) = d.order.take() else {
                return;
            };
            match d.segs.next_segment() {
                Ok(Some(seg)) => {
                    let (tx, rx) = sync_channel(SEG_QUEUE);
                    if order.send(Order::Segment(rx)).is_err() {
                        return;
                    }
                    d.order = Some(order);
                    (seg, tx)
                }
                Ok(None) => {
                    let _ = order.send(Order::Done);
                    return;
                }
                Err(why) => {
                    let _ = order.send(Order::Fail(why));
                    return;
                }
            }
        };
        match inflate_segment(sh, seg, &tx) {
            Ok(Some((crc, read))) => {
                if tx.send(Msg::End(crc, read)).is_err() {
                    return;
                }
            }
            Ok(None) => return,
            Err(why) => {
                let _ = tx.send(Msg::Fail(why));
                return;
            }
        }
    }
}

/// One segment's inflate in a worker (`inflate_segment`).
struct SegmentRun<'s, 'a> {
    sh: &'s Shared<'a>,
    seg: Segment,
    tx: &'s SyncSender<Msg>,
    dec: Decompress,
    crc: crc32fast::Hasher,
    out: Vec<u8>,
    filled: usize,
    /// Compressed bytes read and not yet reported (when not hashing).
    unreported: u64,
}

impl SegmentRun<'_, '_> {
    /// Sends the output chunk (with the compressed bytes read so far); `false`: stopped.
    fn send_output(&mut self) -> bool {
        let mut full = std::mem::replace(&mut self.out, self.sh.pool.get());
        full.truncate(self.filled);
        self.crc.update(&full);
        self.filled = 0;
        let read = std::mem::take(&mut self.unreported);
        self.tx.send(Msg::Output(full, read)).is_ok()
    }

    /// Feeds `data` to the inflater, sending every full output chunk. `last`: `data` is the
    /// SENTINEL, which must end the stream exactly and make no output. `Ok(false)`: stopped.
    fn feed(&mut self, data: &[u8], last: bool) -> std::result::Result<bool, String> {
        let mut off = 0;
        loop {
            let (in0, out0) = (self.dec.total_in(), self.dec.total_out());
            let status = self
                .dec
                .decompress(
                    &data[off..],
                    &mut self.out[self.filled..],
                    FlushDecompress::None,
                )
                .map_err(|e| format!("inflate: {e}"))?;
            let used = (self.dec.total_in() - in0) as usize;
            let made = (self.dec.total_out() - out0) as usize;
            off += used;
            self.filled += made;
            if self.dec.total_out() > self.seg.ulen {
                return Err("more output than recorded".into());
            }
            if last && made > 0 {
                return Err("the segment does not end on a block boundary".into());
            }
            if status == Status::StreamEnd {
                return if last && off == data.len() {
                    Ok(true)
                } else {
                    Err("a final block inside the segment, or off a boundary".into())
                };
            }
            if self.filled == self.out.len() {
                if !self.send_output() {
                    return Ok(false);
                }
            } else if off == data.len() {
                return if last {
                    Err("the segment does not end on a block boundary".into())
                } else {
                    Ok(true)
                };
            } else if used == 0 && made == 0 {
                return Err("the inflater made no progress".into());
            }
        }
    }
}

/// Inflates one segment on its own, sending its output in chunks, and its input when hashing.
/// `Ok(None)` when the pass stopped (cancel, or the consumer is gone); else the segment's
/// crc32 (with its length) and the compressed bytes read and not yet reported.
fn inflate_segment(
    sh: &Shared<'_>,
    seg: Segment,
    tx: &SyncSender<Msg>,
) -> std::result::Result<Option<(crc32fast::Hasher, u64)>, String> {
    let mut run = SegmentRun {
        sh,
        seg,
        tx,
        dec: Decompress::new(false),
        crc: crc32fast::Hasher::new(),
        out: sh.pool.get(),
        filled: 0,
        unreported: 0,
    };
    let mut input = if sh.hash { Vec::new() } else { sh.pool.get() };
    let mut pos = seg.start;
    while pos < seg.end {
        if sh.stopped() {
            return Ok(None);
        }
        let n = (seg.end - pos).min(CHUNK as u64) as usize;
        let mut buf = if sh.hash {
            sh.pool.get()
        } else {
            std::mem::take(&mut input)
        };
        buf.resize(n, 0);
        sh.file
            .read_exact_at(&mut buf, pos)
            .map_err(|e| format!("read at {pos}: {e}"))?;
        pos += n as u64;
        if !sh.hash {
            run.unreported += n as u64;
        }
        if !run.feed(&buf, false)? {
            return Ok(None);
        }
        if sh.hash {
            if tx.send(Msg::Input(buf)).is_err() {
                return Ok(None);
            }
        } else {
            input = buf;
        }
    }
    sh.pool.put(input);
    if !run.feed(&SENTINEL, true)? {
        return Ok(None);
    }
    if run.filled > 0 && !run.send_output() {
        return Ok(None);
    }
    if run.dec.total_out() != seg.ulen || run.crc.clone().finalize() != seg.crc {
        return Err(format!(
            "segment at {} gives {} bytes, not its recorded {} and crc32",
            seg.start,
            run.dec.total_out(),
            seg.ulen
        ));
    }
    sh.pool.put(std::mem::take(&mut run.out));
    Ok(Some((run.crc, run.unreported)))
}

fn bad(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// The consumer's end: the inflated stream, in order, as a `Read`.
struct Inflated<'a> {
    order: Receiver<Order>,
    cur: Option<Receiver<Msg>>,
    chunk: Vec<u8>,
    at: usize,
    crc: crc32fast::Hasher,
    hash: Option<SyncSender<Vec<u8>>>,
    pool: &'a Pool,
    file: &'a File,
    len: u64,
    compressed: u64,
    ctl: &'a JobControl,
    /// The trailer was checked and the end of the file found: the stream is complete.
    ended: bool,
}

impl Inflated<'_> {
    /// Compressed bytes passed in order: progress, and the hash.
    fn passed(&mut self, bytes: Vec<u8>) -> io::Result<()> {
        self.passed_len(bytes.len() as u64);
        match &self.hash {
            Some(h) => h
                .send(bytes)
                .map_err(|_| io::Error::other("the hashing thread stopped")),
            None => {
                self.pool.put(bytes);
                Ok(())
            }
        }
    }

    fn passed_len(&mut self, n: u64) {
        self.compressed += n;
        self.ctl.add_bytes(n);
    }

    /// After the last segment: the tail block, the trailer, the end of the file.
    fn tail(&mut self) -> io::Result<()> {
        let mut tail = vec![0u8; TAIL as usize];
        self.file.read_exact_at(&mut tail, self.len - TAIL)?;
        if tail[..5] != LOCATOR_BLOCK || tail[517..522] != SENTINEL {
            return Err(bad("the tail of the stream is not the locator block"));
        }
        let block = tail[5..517].to_vec();
        self.crc.update(&block);
        let le32 =
            |at: usize| u32::from_le_bytes([tail[at], tail[at + 1], tail[at + 2], tail[at + 3]]);
        if le32(522) != self.crc.clone().finalize() || le32(526) != self.crc.total_len() as u32 {
            return Err(bad("corrupt gzip stream does not have a matching checksum"));
        }
        // nothing may follow (the serial reader would read it)
        let mut one = [0u8; 1];
        if self.file.read_at(&mut one, self.len)? != 0 {
            return Err(bad("the archive grew while it was read"));
        }
        self.passed(tail)?;
        self.chunk = block;
        self.at = 0;
        self.ended = true;
        Ok(())
    }
}

impl Read for Inflated<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.at < self.chunk.len() {
                let n = buf.len().min(self.chunk.len() - self.at);
                buf[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
                self.at += n;
                return Ok(n);
            }
            if self.ended || buf.is_empty() {
                return Ok(0);
            }
            if self.ctl.is_cancelled() {
                return Err(io::Error::other("cancelled"));
            }
            self.pool.put(std::mem::take(&mut self.chunk));
            self.at = 0;
            let Some(rx) = &self.cur else {
                match self.order.recv() {
                    Ok(Order::Segment(rx)) => self.cur = Some(rx),
                    Ok(Order::Done) => self.tail()?,
                    Ok(Order::Fail(why)) => return Err(bad(format!("index: {why}"))),
                    Err(_) => return Err(io::Error::other("the inflate workers stopped")),
                }
                continue;
            };
            match rx.recv() {
                Ok(Msg::Output(v, read)) => {
                    self.passed_len(read);
                    self.chunk = v;
                }
                Ok(Msg::Input(v)) => self.passed(v)?,
                Ok(Msg::End(crc, read)) => {
                    self.passed_len(read);
                    self.crc.combine(&crc);
                    self.cur = None;
                }
                Ok(Msg::Fail(why)) => return Err(bad(why)),
                Err(_) => return Err(io::Error::other("an inflate worker stopped")),
            }
        }
    }
}

/// Runs `body` over the inflated stream of `plan`'s archive with `threads` workers; `hash`:
/// also the sha256 of the file. `body` must read the stream to its end (`Ok(0)`), which comes
/// only after every check of the module doc passed; an error anywhere is the caller's cue to
/// read the archive serially.
pub(crate) fn run<T>(
    plan: &Plan,
    ctl: &JobControl,
    threads: usize,
    hash: bool,
    body: impl FnOnce(&mut dyn Read) -> Result<T>,
) -> Result<(T, Finished)> {
    let file: &File = &plan.prev.file;
    let failed = |m: &str| Error::BadArchive(format!("parallel read: {m}"));
    let segs = plan.segments(ctl).map_err(|e| failed(&e))?;
    let mut head = [0u8; GZ_HEADER.len()];
    file.read_exact_at(&mut head, 0)
        .map_err(|e| failed(&e.to_string()))?;
    if head != GZ_HEADER {
        return Err(failed("gzip header"));
    }
    let pool = Pool(Mutex::new(Vec::new()));
    let stop = AtomicBool::new(false);
    let threads = threads.max(1);
    let (order_tx, order_rx) = sync_channel(threads);
    let dispatch = Mutex::new(Dispatch {
        segs,
        order: Some(order_tx),
    });
    let shared = Shared {
        file,
        ctl,
        pool: &pool,
        stop: &stop,
        hash,
    };
    std::thread::scope(|s| {
        // Stops the workers however this scope is left, so the scope's join never waits on
        // a worker blocked for a consumer that is gone.
        struct StopOnDrop<'a>(&'a AtomicBool);
        impl Drop for StopOnDrop<'_> {
            fn drop(&mut self) {
                self.0.store(true, Ordering::Relaxed);
            }
        }
        let _stop = StopOnDrop(&stop);
        for i in 0..threads {
            let (sh, d) = (&shared, &dispatch);
            std::thread::Builder::new()
                .name(format!("zbackup-inflate-{i}"))
                .spawn_scoped(s, move || worker(sh, d))
                .map_err(|e| failed(&format!("cannot start a worker: {e}")))?;
        }
        let (hash_tx, hasher) = if hash {
            let (tx, rx) = sync_channel::<Vec<u8>>(HASH_QUEUE);
            let pool = &pool;
            let h = std::thread::Builder::new()
                .name("zbackup-sha256".into())
                .spawn_scoped(s, move || {
                    let mut sha = Sha256::new();
                    for v in rx {
                        sha.update(&v);
                        pool.put(v);
                    }
                    to_hex(&sha.finalize())
                })
                .map_err(|e| failed(&format!("cannot start the hashing thread: {e}")))?;
            (Some(tx), Some(h))
        } else {
            (None, None)
        };
        let mut src = Inflated {
            order: order_rx,
            cur: None,
            chunk: Vec::new(),
            at: 0,
            crc: crc32fast::Hasher::new(),
            hash: hash_tx,
            pool: &pool,
            file,
            len: plan.len,
            compressed: 0,
            ctl,
            ended: false,
        };
        src.passed(head.to_vec())
            .map_err(|e| failed(&e.to_string()))?;
        let out = body(&mut src)?;
        if !src.ended || src.at < src.chunk.len() {
            return Err(failed("the stream was not read to its end"));
        }
        let compressed = src.compressed;
        // closes the hash queue: the hashing thread finishes
        drop(src);
        let sha256 = match hasher {
            Some(h) => Some(h.join().map_err(|_| failed("the hashing thread failed"))?),
            None => None,
        };
        Ok((out, Finished { sha256, compressed }))
    })
}

#[cfg(test)]
mod tests {
    use super::super::extract::{extract_with, ExtractOptions};
    use super::super::manifest::{
        decode_body_v, decode_trailer_header_v, encode_record, trailer_header_v, trailer_padding,
        Locator,
    };
    use super::super::read::{scan, Pass, VerifyReport, Visitor};
    use super::super::{create_reusing, ArchiveOptions, Source};
    use super::*;
    use flate2::{Compress, Compression, FlushCompress};
    use proptest::prelude::*;
    use std::collections::BTreeMap;
    use std::fs;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    use std::path::PathBuf;

    struct NoVisit;
    impl Visitor for NoVisit {}

    fn verify_as(path: &Path, pass: Pass) -> Result<VerifyReport> {
        scan(path, &JobControl::new(), &mut NoVisit, pass)
    }

    fn pseudo(n: usize, seed: u64, random: bool) -> Vec<u8> {
        let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        let words: [&[u8]; 6] = [
            b"zotonic ",
            b"media ",
            b"<p>",
            b"</p>\n",
            b"backup ",
            b"42 ",
        ];
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if random {
                out.extend_from_slice(&x.to_le_bytes());
            } else {
                out.extend_from_slice(words[(x >> 40) as usize % words.len()]);
            }
        }
        out.truncate(n);
        out
    }

    /// A tree with every kind of unit: grouped small files, solo large ones (text and
    /// media-like), directories, a symlink, an empty file.
    fn sample_tree(root: &Path) {
        for d in ["a", "a/b", "c"] {
            fs::create_dir_all(root.join(d)).expect("mkdir");
        }
        for i in 0..40u64 {
            let n = (i as usize * 7919) % 40_000;
            fs::write(root.join(format!("a/s{i}.html")), pseudo(n, i, false)).expect("write");
        }
        fs::write(root.join("a/b/big.txt"), pseudo(1_500_000, 1, false)).expect("write");
        fs::write(root.join("a/b/photo.jpg"), pseudo(700_000, 2, true)).expect("write");
        fs::write(root.join("c/clip.mp4"), pseudo(2_200_000, 3, true)).expect("write");
        fs::write(root.join("c/empty"), b"").expect("write");
        std::os::unix::fs::symlink("../a/b/big.txt", root.join("c/link")).expect("symlink");
        fs::set_permissions(root.join("c/clip.mp4"), fs::Permissions::from_mode(0o640))
            .expect("chmod");
    }

    fn make_archive(src: &Path, out: &Path) {
        make_reusing(src, out, None);
    }

    /// `src` archived into `out`, reusing `prev`.
    fn make_reusing(src: &Path, out: &Path, prev: Option<&Path>) -> super::super::Summary {
        let opts = ArchiveOptions {
            threads: 2,
            fsync: false,
            ..ArchiveOptions::default()
        };
        create_reusing(
            &Source::Dir(src.to_path_buf()),
            out,
            &opts,
            prev,
            &JobControl::new(),
        )
        .expect("create")
    }

    type Snapshot = BTreeMap<PathBuf, (u32, i64, Vec<u8>)>;

    /// Every entry below `root`: mode, mtime, and content (file) or target (symlink).
    fn snapshot(root: &Path) -> Snapshot {
        let mut out = BTreeMap::new();
        let mut stack = vec![root.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in fs::read_dir(&d).expect("read_dir") {
                let p = e.expect("entry").path();
                let m = fs::symlink_metadata(&p).expect("meta");
                let what = if m.file_type().is_symlink() {
                    fs::read_link(&p)
                        .expect("link")
                        .into_os_string()
                        .into_encoded_bytes()
                } else if m.is_dir() {
                    stack.push(p.clone());
                    b"dir".to_vec()
                } else {
                    fs::read(&p).expect("read")
                };
                let rel = p.strip_prefix(root).expect("below").to_path_buf();
                out.insert(rel, (m.mode(), m.mtime(), what));
            }
        }
        out
    }

    fn extract_as(archive: &Path, dest: &Path, pass: Pass) -> Result<Snapshot> {
        extract_with(
            archive,
            dest,
            &ExtractOptions::default(),
            &JobControl::new(),
            pass,
        )?;
        Ok(snapshot(dest))
    }

    /// Nothing of an extract left in `dir` but `keep`.
    fn no_leftovers(dir: &Path, keep: &[&str]) {
        for e in fs::read_dir(dir).expect("read_dir") {
            let name = e.expect("entry").file_name();
            let name = name.to_string_lossy();
            assert!(keep.contains(&name.as_ref()), "left behind: {name}");
        }
    }

    #[test]
    fn parallel_and_serial_verify_report_the_same_for_any_worker_count() {
        let t = tempfile::tempdir().expect("tmp");
        let a = sample_archive(t.path());
        let serial = verify_as(&a, Pass::Serial).expect("serial");
        assert!(serial.manifest_checked);
        for threads in 1..=4 {
            let par = verify_as(&a, Pass::ParallelOnly { threads }).expect("parallel");
            assert_eq!(par, serial, "{threads} workers");
        }
        assert_eq!(
            verify_as(&a, Pass::Fastest { hash: true }).expect("fastest"),
            serial
        );
        // the hash is of the whole file
        let sha = Sha256::digest(fs::read(&a).expect("read"));
        assert_eq!(serial.sha256, to_hex(&sha));
    }

    #[test]
    fn parallel_and_serial_extract_make_the_same_tree_as_the_source() {
        let t = tempfile::tempdir().expect("tmp");
        let a = sample_archive(t.path());
        let par =
            extract_as(&a, &t.path().join("p"), Pass::Fastest { hash: false }).expect("parallel");
        let ser = extract_as(&a, &t.path().join("s"), Pass::Serial).expect("serial");
        assert_eq!(par, ser);
        assert_eq!(par, snapshot(&t.path().join("src")));
    }

    #[test]
    fn an_archive_holding_a_reused_prefix_unit_reads_in_parallel_as_serially() {
        let t = tempfile::tempdir().expect("tmp");
        let src = t.path().join("src");
        sample_tree(&src);
        let a1 = t.path().join("a1.tar.gz");
        make_archive(&src, &a1);
        // a/s3.html is the 24th of the 25 files of the first group of a/s*.html (bytewise order)
        fs::write(src.join("a/s3.html"), pseudo(12_345, 99, false)).expect("write");
        let a2 = t.path().join("a2.tar.gz");
        let s = make_reusing(&src, &a2, Some(&a1));
        assert_eq!(s.reuse.expect("reuse").prefix_units, 1);
        let serial = verify_as(&a2, Pass::Serial).expect("serial");
        assert_eq!(
            verify_as(&a2, Pass::ParallelOnly { threads: 2 }).expect("parallel"),
            serial
        );
        let par = extract_as(&a2, &t.path().join("p"), Pass::ParallelOnly { threads: 2 })
            .expect("parallel extract");
        assert_eq!(par, snapshot(&src));
    }

    /// Rewrites the unit fields of `archive`'s index with `edit` (the stream stays valid: the
    /// manifest's crc32, the tail unit, the locator and the gzip trailer are made anew).
    fn rewrite_index(archive: &Path, edit: impl Fn(Unit) -> Unit) {
        rewrite(archive, None, edit)
    }

    /// `rewrite_index`, after inserting `insert.1` (bytes that inflate to nothing) into the
    /// compressed stream at offset `insert.0`; the units after it are moved along in the index.
    fn rewrite(archive: &Path, insert: Option<(u64, &[u8])>, edit: impl Fn(Unit) -> Unit) {
        let file = fs::read(archive).expect("read");
        let prev = Prev::open(archive).expect("indexed");
        let tail = prev.tail_unit();
        let (off, len) = (tail.offset as usize, tail.len as usize);
        let mut all = Vec::new();
        flate2::read::GzDecoder::new(&file[..])
            .read_to_end(&mut all)
            .expect("gunzip");
        let (at, pad) = insert.unwrap_or((0, &[]));
        assert!(at as usize <= off);
        let shift = |u: Unit| {
            if u.offset >= at && !pad.is_empty() {
                Unit {
                    offset: u.offset + pad.len() as u64,
                    ..u
                }
            } else {
                u
            }
        };
        // the tail unit alone
        let mut input = file[off..off + len].to_vec();
        input.extend_from_slice(&SENTINEL);
        let mut buf = vec![0u8; tail.ulen as usize + 1];
        let mut dec = Decompress::new(false);
        let st = dec
            .decompress(&input, &mut buf, FlushDecompress::Finish)
            .expect("tail");
        assert_eq!(st, Status::StreamEnd);
        let unit = buf[..dec.total_out() as usize].to_vec();
        assert_eq!(unit.len() as u64, tail.ulen);
        let (n, blen, _, version) = decode_trailer_header_v(&unit[1024..1536]).expect("header");
        let body = &unit[1536..1536 + blen as usize];
        let records = decode_body_v(body, n, crc32fast::hash(body), version).expect("records");
        let mut new_body = Vec::new();
        for (e, ext) in records {
            encode_record(&e, &mut new_body);
            let mut x = ext.expect("an extension (v2 to v4)");
            x.unit = x.unit.map(|u| edit(shift(u)));
            x.encode(&mut new_body);
        }
        // versions 3 and 4 end with the sha256 checkpoint table (the records kept their lengths)
        new_body.extend_from_slice(&body[new_body.len()..]);
        let mut new_unit = unit[..1024].to_vec();
        new_unit.extend_from_slice(&trailer_header_v(
            n,
            new_body.len() as u64,
            crc32fast::hash(&new_body),
            version,
        ));
        new_unit.extend_from_slice(&new_body);
        new_unit.resize(new_unit.len() + trailer_padding(new_body.len() as u64), 0);
        let mut comp = Compress::new(Compression::default(), false);
        let mut deflated = Vec::with_capacity(new_unit.len() + 1024);
        comp.compress_vec(&new_unit, &mut deflated, FlushCompress::Sync)
            .expect("deflate");
        assert_eq!(comp.total_in() as usize, new_unit.len());
        // the whole stream: everything before the tail unit, the new tail unit, the locator
        let before = all.len() - 512 - unit.len();
        let mut stream = all[..before].to_vec();
        stream.extend_from_slice(&new_unit);
        let loc = Locator {
            unit: Unit {
                offset: tail.offset + pad.len() as u64,
                len: deflated.len() as u64,
                ulen: new_unit.len() as u64,
                crc: crc32fast::hash(&new_unit),
                zcrc: 0,
            },
            entries: n,
        }
        .encode();
        stream.extend_from_slice(&loc);
        let mut out = file[..at as usize].to_vec();
        out.extend_from_slice(pad);
        out.extend_from_slice(&file[at as usize..off]);
        out.extend_from_slice(&deflated);
        out.extend_from_slice(&LOCATOR_BLOCK);
        out.extend_from_slice(&loc);
        out.extend_from_slice(&SENTINEL);
        out.extend_from_slice(&crc32fast::hash(&stream).to_le_bytes());
        out.extend_from_slice(&(stream.len() as u32).to_le_bytes());
        fs::write(archive, out).expect("write");
    }

    /// The units of `archive`'s index, in order (each once).
    fn units(archive: &Path) -> Vec<Unit> {
        let plan = plan(archive, &JobControl::new()).expect("plan");
        let ctl = JobControl::new();
        let mut segs = plan.segments(&ctl).expect("segments");
        let mut out = Vec::new();
        while let Some((_, ext)) = segs.records.next_record().expect("record") {
            if let Some(u) = ext.unit {
                if out.last() != Some(&u) {
                    out.push(u);
                }
            }
        }
        out
    }

    /// `sample_tree` in `t/src`, archived as `t/a.tar.gz` (returned).
    fn sample_archive(t: &Path) -> PathBuf {
        let src = t.join("src");
        sample_tree(&src);
        let a = t.join("a.tar.gz");
        make_archive(&src, &a);
        a
    }

    #[test]
    fn the_index_rewriter_of_these_tests_keeps_the_archive_valid_and_indexed() {
        let t = tempfile::tempdir().expect("tmp");
        let a = sample_archive(t.path());
        let before = verify_as(&a, Pass::Serial).expect("serial");
        rewrite_index(&a, |u| u);
        let after = verify_as(&a, Pass::ParallelOnly { threads: 2 }).expect("parallel");
        assert_eq!(after.entries, before.entries);
        assert!(after.manifest_checked);
    }

    #[test]
    fn padding_between_units_as_a_reusing_set_writes_it_is_read_in_parallel() {
        // empty blocks as pgzip's clone alignment writes them: stored (5 bytes), fixed (6)
        const FIVE: [u8; 5] = [0x00, 0x00, 0x00, 0xff, 0xff];
        const SIX: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0xff, 0xff];
        let t = tempfile::tempdir().expect("tmp");
        let a = sample_archive(t.path());
        let serial = verify_as(&a, Pass::Serial).expect("serial");
        let at = units(&a)[3].offset;
        let pad: Vec<u8> = [&SIX[..], &FIVE, &FIVE, &SIX].concat();
        rewrite(&a, Some((at, &pad)), |u| u);
        let padded = verify_as(&a, Pass::Serial).expect("still valid");
        assert_eq!(padded.entries, serial.entries);
        assert!(plan(&a, &JobControl::new()).is_some());
        assert_eq!(
            verify_as(&a, Pass::ParallelOnly { threads: 2 }).expect("parallel"),
            padded
        );
        // more than MAX_GAP of it: the index is not used
        let b = sample_archive(&t.path().join("b"));
        let at = units(&b)[3].offset;
        let pad = FIVE.repeat(MAX_GAP as usize / 5 + 1);
        rewrite(&b, Some((at, &pad)), |u| u);
        assert!(plan(&b, &JobControl::new()).is_none());
        assert_eq!(
            verify_as(&b, Pass::Fastest { hash: true }).expect("serial verdict"),
            verify_as(&b, Pass::Serial).expect("valid")
        );
    }

    #[test]
    fn an_index_whose_units_do_not_follow_each_other_is_not_used() {
        let t = tempfile::tempdir().expect("tmp");
        let a = sample_archive(t.path());
        let us = units(&a);
        assert!(us.len() >= 4, "{} units", us.len());
        // a unit that overlaps the one before it
        let victim = us[2];
        rewrite_index(&a, |u| {
            if u == victim {
                Unit {
                    offset: u.offset - 1,
                    ..u
                }
            } else {
                u
            }
        });
        assert!(plan(&a, &JobControl::new()).is_none());
        let serial = verify_as(&a, Pass::Serial).expect("still a valid archive");
        assert_eq!(
            verify_as(&a, Pass::Fastest { hash: true }).expect("fastest"),
            serial
        );
        // and one past the end of the file
        let a2 = sample_archive(&t.path().join("2"));
        let last = *units(&a2).last().expect("units");
        rewrite_index(&a2, |u| {
            if u == last {
                Unit {
                    len: u64::MAX - 3,
                    ..u
                }
            } else {
                u
            }
        });
        assert!(plan(&a2, &JobControl::new()).is_none());
        verify_as(&a2, Pass::Fastest { hash: true }).expect("serial verdict");
    }

    #[test]
    fn an_index_with_wrong_boundaries_falls_back_to_the_serial_verdict() {
        let t = tempfile::tempdir().expect("tmp");
        let a = sample_archive(t.path());
        let serial = verify_as(&a, Pass::Serial).expect("serial");
        let want = extract_as(&a, &t.path().join("want"), Pass::Serial).expect("serial");
        let us = units(&a);
        // the boundary between two units moved into the first: contiguous, but wrong
        let (x, y) = (us[1], us[2]);
        let mid = x.offset + x.len / 2;
        rewrite_index(&a, |u| {
            if u == x {
                Unit {
                    len: mid - x.offset,
                    ..u
                }
            } else if u == y {
                Unit {
                    offset: mid,
                    len: y.offset + y.len - mid,
                    ..u
                }
            } else {
                u
            }
        });
        assert!(
            plan(&a, &JobControl::new()).is_some(),
            "the index looks fine"
        );
        assert!(verify_as(&a, Pass::ParallelOnly { threads: 2 }).is_err());
        let fastest = verify_as(&a, Pass::Fastest { hash: true }).expect("serial verdict");
        assert_eq!(fastest.entries, serial.entries);
        assert_eq!(fastest.bytes, serial.bytes);
        let got =
            extract_as(&a, &t.path().join("got"), Pass::Fastest { hash: false }).expect("extract");
        assert_eq!(got, want);
        no_leftovers(t.path(), &["src", "a.tar.gz", "want", "got"]);
    }

    #[test]
    fn a_wrong_recorded_unit_crc32_or_length_is_caught_and_the_serial_pass_decides() {
        for (i, edit) in [
            (|u: Unit| Unit {
                crc: u.crc ^ 1,
                ..u
            }) as fn(Unit) -> Unit,
            |u: Unit| Unit {
                ulen: u.ulen - 1,
                ..u
            },
            |u: Unit| Unit {
                ulen: u.ulen + 1,
                ..u
            },
        ]
        .into_iter()
        .enumerate()
        {
            let t = tempfile::tempdir().expect("tmp");
            let a = sample_archive(t.path());
            let victim = units(&a)[3];
            rewrite_index(&a, |u| if u == victim { edit(u) } else { u });
            assert!(plan(&a, &JobControl::new()).is_some(), "case {i}");
            assert!(
                verify_as(&a, Pass::ParallelOnly { threads: 2 }).is_err(),
                "case {i}"
            );
            verify_as(&a, Pass::Fastest { hash: true }).expect("the stream is fine");
        }
    }

    /// Flips one byte at `at` of the file.
    fn flip(path: &Path, at: u64) {
        let mut b = fs::read(path).expect("read");
        b[at as usize] ^= 0x10;
        fs::write(path, b).expect("write");
    }

    #[test]
    fn a_corrupted_unit_is_detected_as_the_serial_pass_reports_it_unless_inflate_skips_the_bit() {
        let t = tempfile::tempdir().expect("tmp");
        let a = sample_archive(t.path());
        let whole = extract_as(&a, &t.path().join("whole"), Pass::Serial).expect("extract");
        let us = units(&a);
        // in every unit, at its start, middle and end: deflated and stored ones
        let (mut cases, mut skipped) = (0, 0);
        for u in us.iter().step_by(3) {
            for at in [u.offset, u.offset + u.len / 2, u.offset + u.len - 1] {
                let c = t.path().join(format!("c{cases}.tar.gz"));
                fs::copy(&a, &c).expect("copy");
                flip(&c, at);
                cases += 1;
                let serial = verify_as(&c, Pass::Serial).map(|_| ());
                let fastest = verify_as(&c, Pass::Fastest { hash: true }).map(|_| ());
                assert_eq!(
                    fastest.as_ref().map_err(|e| e.to_string()),
                    serial.as_ref().map_err(|e| e.to_string()),
                    "flip at {at}"
                );
                let dest = t.path().join("dest");
                if serial.is_ok() {
                    // The bit was one inflate skips: the padding of the empty stored block
                    // before a sync marker (up to 7 bits, wherever the block before ended; the
                    // archive's mtimes move it). Then every pass reads the same data, and
                    // nothing was lost.
                    skipped += 1;
                    assert!(verify_as(&c, Pass::ParallelOnly { threads: 2 }).is_ok());
                    let got = extract_as(&c, &dest, Pass::Fastest { hash: false });
                    assert_eq!(got.expect("extract"), whole, "flip at {at}");
                    fs::remove_dir_all(&dest).expect("rm");
                    continue;
                }
                // any other bit breaks the stream or changes the data the manifest records
                assert!(verify_as(&c, Pass::ParallelOnly { threads: 2 }).is_err());
                let e = extract_as(&c, &dest, Pass::Fastest { hash: false }).expect_err("refused");
                assert_eq!(e.to_string(), serial.as_ref().expect_err("err").to_string());
                assert!(!dest.exists());
            }
        }
        assert!(
            cases >= 6 && skipped * 4 <= cases,
            "{skipped} of {cases} skipped"
        );
        let mut keep: Vec<String> = (0..cases).map(|i| format!("c{i}.tar.gz")).collect();
        keep.extend(["src".into(), "a.tar.gz".into(), "whole".into()]);
        let keep: Vec<&str> = keep.iter().map(|s| s.as_str()).collect();
        no_leftovers(t.path(), &keep);
    }

    #[test]
    fn a_bit_inflate_skips_before_a_sync_marker_changes_no_data_and_is_accepted() {
        // The padding after an empty stored block's 3 header bits up to its LEN: found by
        // trying each bit of the byte before every `00 00 ff ff` of a unit's end; inflate
        // never reads those bits, so the archive's data (and manifest) are unchanged.
        let t = tempfile::tempdir().expect("tmp");
        let a = sample_archive(t.path());
        let whole = extract_as(&a, &t.path().join("whole"), Pass::Serial).expect("extract");
        let bytes = fs::read(&a).expect("read");
        let mut found = 0;
        for u in units(&a) {
            let end = (u.offset + u.len) as usize;
            if end < 5 || bytes[end - 4..end] != [0, 0, 0xff, 0xff] {
                continue;
            }
            for bit in 0..8u8 {
                let c = t.path().join("c.tar.gz");
                let mut b = bytes.clone();
                b[end - 5] ^= 1 << bit;
                fs::write(&c, &b).expect("write");
                if verify_as(&c, Pass::Serial).is_ok() {
                    found += 1;
                    assert!(verify_as(&c, Pass::ParallelOnly { threads: 2 }).is_ok());
                    let dest = t.path().join("dest");
                    let got = extract_as(&c, &dest, Pass::Fastest { hash: false });
                    assert_eq!(got.expect("extract"), whole, "bit {bit} at {}", end - 5);
                    fs::remove_dir_all(&dest).expect("rm");
                }
            }
        }
        assert!(found > 0, "no skipped bit found: the test proves nothing");
    }

    #[test]
    fn a_damaged_tail_or_trailer_is_reported_as_the_serial_pass_reports_it() {
        let t = tempfile::tempdir().expect("tmp");
        let a = sample_archive(t.path());
        let len = fs::metadata(&a).expect("meta").len();
        // the locator block, the final block, the crc32, the length; and a byte appended
        for (i, at) in [len - 400, len - 10, len - 7, len - 2, len]
            .into_iter()
            .enumerate()
        {
            let c = t.path().join(format!("t{i}.tar.gz"));
            fs::copy(&a, &c).expect("copy");
            if at == len {
                let mut b = fs::read(&c).expect("read");
                b.push(0x1f);
                fs::write(&c, b).expect("write");
            } else {
                flip(&c, at);
            }
            let serial = verify_as(&c, Pass::Serial).map_err(|e| e.to_string());
            assert!(serial.is_err(), "case {i}");
            let fastest = verify_as(&c, Pass::Fastest { hash: true }).map_err(|e| e.to_string());
            assert_eq!(fastest.map(|_| ()), serial.map(|_| ()), "case {i}");
            assert!(
                verify_as(&c, Pass::ParallelOnly { threads: 2 }).is_err(),
                "case {i}"
            );
        }
    }

    #[test]
    fn archives_without_an_index_are_read_serially() {
        let t = tempfile::tempdir().expect("tmp");
        let src = t.path().join("src");
        sample_tree(&src);
        // GNU tar's, and a plain gzip of a tar stream
        let gnu = t.path().join("gnu.tar.gz");
        let ok = std::process::Command::new("tar")
            .arg("-czf")
            .arg(&gnu)
            .arg("-C")
            .arg(&src)
            .arg(".")
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if ok {
            assert!(plan(&gnu, &JobControl::new()).is_none());
            let r = verify_as(&gnu, Pass::Fastest { hash: true }).expect("gnu");
            assert_eq!(r, verify_as(&gnu, Pass::Serial).expect("gnu"));
            assert!(!r.manifest_checked);
        }
        // our archive with everything after its units cut off: no locator
        let a = t.path().join("a.tar.gz");
        make_archive(&src, &a);
        let mut b = fs::read(&a).expect("read");
        b.truncate(b.len() - 100);
        let cut = t.path().join("cut.tar.gz");
        fs::write(&cut, b).expect("write");
        assert!(plan(&cut, &JobControl::new()).is_none());
        assert_eq!(
            verify_as(&cut, Pass::Fastest { hash: true }).map_err(|e| e.to_string()),
            verify_as(&cut, Pass::Serial).map_err(|e| e.to_string())
        );
    }

    #[test]
    fn a_cancel_or_deadline_stops_a_parallel_extract_at_once_and_leaves_nothing() {
        let t = tempfile::tempdir().expect("tmp");
        let src = t.path().join("src");
        fs::create_dir(&src).expect("mkdir");
        for i in 0..6u64 {
            fs::write(src.join(format!("f{i}")), pseudo(8 << 20, i, i % 2 == 0)).expect("write");
        }
        let a = t.path().join("a.tar.gz");
        make_archive(&src, &a);
        assert!(plan(&a, &JobControl::new()).is_some());
        let dest = t.path().join("dest");
        for stop_after in [0u64, 5, 30] {
            let ctl = std::sync::Arc::new(JobControl::new());
            let c = std::sync::Arc::clone(&ctl);
            let canceller = std::thread::spawn(move || {
                std::thread::sleep(std::time::Duration::from_millis(stop_after));
                c.cancel();
            });
            let started = std::time::Instant::now();
            let r = extract_with(
                &a,
                &dest,
                &ExtractOptions::default(),
                &ctl,
                Pass::Fastest { hash: false },
            );
            let _ = canceller.join();
            match r {
                Err(Error::Cancelled) => {
                    assert!(started.elapsed().as_millis() < 2000 + stop_after as u128);
                    assert!(!dest.exists());
                }
                // a fast machine may finish first
                Ok(_) => {
                    fs::remove_dir_all(&dest).expect("rm");
                }
                Err(e) => panic!("unexpected {e}"),
            }
            no_leftovers(t.path(), &["src", "a.tar.gz"]);
        }
        let r = extract_with(
            &a,
            &dest,
            &ExtractOptions::default(),
            &JobControl::with_timeout(std::time::Duration::from_millis(1)),
            Pass::Fastest { hash: false },
        );
        assert!(matches!(r, Err(Error::Timeout)), "{r:?}");
        no_leftovers(t.path(), &["src", "a.tar.gz"]);
    }

    #[test]
    fn a_unit_larger_than_the_queues_streams_through_in_bounded_chunks() {
        // one 24 MiB text file: one unit, many times CHUNK * SEG_QUEUE
        let t = tempfile::tempdir().expect("tmp");
        let src = t.path().join("src");
        fs::create_dir(&src).expect("mkdir");
        fs::write(src.join("big.txt"), pseudo(24 << 20, 9, false)).expect("write");
        let a = t.path().join("a.tar.gz");
        make_archive(&src, &a);
        let us = units(&a);
        assert!(us.iter().any(|u| u.ulen > 16 * (CHUNK * SEG_QUEUE) as u64));
        let par = verify_as(&a, Pass::ParallelOnly { threads: 2 }).expect("parallel");
        assert_eq!(par, verify_as(&a, Pass::Serial).expect("serial"));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(12))]
        #[test]
        fn parallel_and_serial_agree_on_random_trees(
            files in prop::collection::vec((0usize..4, 0u8..3, any::<bool>(), 0u64..1000), 1..24),
            threads in 1usize..4,
        ) {
            let t = tempfile::tempdir().expect("tmp");
            let src = t.path().join("src");
            fs::create_dir(&src).expect("mkdir");
            for (i, (size, dir, random, seed)) in files.iter().enumerate() {
                let n = match size {
                    0 => 0,
                    1 => (*seed as usize * 37) % 5000,
                    2 => 60_000 + (*seed as usize * 997) % 300_000,
                    _ => 512 * 1024 + (*seed as usize * 4099) % 900_000,
                };
                let d = src.join(format!("d{dir}"));
                fs::create_dir_all(&d).expect("mkdir");
                fs::write(d.join(format!("f{i}")), pseudo(n, *seed, *random)).expect("write");
                if i % 7 == 3 {
                    std::os::unix::fs::symlink(format!("f{i}"), d.join(format!("l{i}")))
                        .expect("symlink");
                }
            }
            let a = t.path().join("a.tar.gz");
            make_archive(&src, &a);
            let serial = verify_as(&a, Pass::Serial).expect("serial");
            let par = verify_as(&a, Pass::ParallelOnly { threads }).expect("parallel");
            prop_assert_eq!(&par, &serial);
            let p = extract_as(&a, &t.path().join("p"), Pass::Fastest { hash: false }).expect("p");
            let s = extract_as(&a, &t.path().join("s"), Pass::Serial).expect("s");
            prop_assert_eq!(&p, &s);
            prop_assert_eq!(&p, &snapshot(&src));
        }
    }

    #[test]
    fn a_back_reference_before_the_segment_start_is_an_error_of_the_inflater() {
        // "abcabcabc" deflated in one stream; the second half alone refers back into the first
        let data = b"zotonic backup zotonic backup zotonic backup zotonic backup";
        let mut comp = Compress::new(Compression::best(), false);
        let mut a = Vec::with_capacity(256);
        comp.compress_vec(&data[..15], &mut a, FlushCompress::Sync)
            .expect("deflate");
        let cut = a.len();
        comp.compress_vec(&data[15..], &mut a, FlushCompress::Sync)
            .expect("deflate");
        // the whole stream is fine
        let mut whole = a.clone();
        whole.extend_from_slice(&SENTINEL);
        let mut out = Vec::with_capacity(256);
        Decompress::new(false)
            .decompress_vec(&whole, &mut out, FlushDecompress::Finish)
            .expect("inflate");
        assert_eq!(&out[..], &data[..]);
        // the second part alone is not
        let mut part = a[cut..].to_vec();
        part.extend_from_slice(&SENTINEL);
        let mut out = Vec::with_capacity(256);
        assert!(Decompress::new(false)
            .decompress_vec(&part, &mut out, FlushDecompress::Finish)
            .is_err());
    }
}
