//! A `Write` adaptor that computes the sha256 and byte count of everything written through it,
//! so an archive's digest (backup.json needs it) costs no second read pass.
//!
//! Size: the hash thread, the splice path (copies checked against their recorded crc32) and
//! the sha256 resumed from a previous archive's checkpoints must agree on one byte count and
//! one order of blocks, so they stay in one file; about 170 of its lines are tests.

use super::control::StopSignal;
use super::sha_resume::{Midstate, Sha256Stream};
use sha2::{Digest as _, Sha256};
use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;

pub struct Sha256Writer<W: Write> {
    inner: W,
    sha: Sha256,
    count: u64,
}

impl<W: Write> Sha256Writer<W> {
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            sha: Sha256::new(),
            count: 0,
        }
    }

    /// Bytes written so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn get_ref(&self) -> &W {
        &self.inner
    }

    /// Returns the inner writer, the lower-case hex sha256 and the byte count. Does not flush.
    pub fn finish(self) -> (W, String, u64) {
        let digest = self.sha.finalize();
        (self.inner, to_hex(&digest), self.count)
    }
}

pub(crate) use crate::digest::hex as to_hex;

impl<W: Write> Write for Sha256Writer<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.sha.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_writer_matches_known_digest_of_abc() {
        let mut w = Sha256Writer::new(Vec::new());
        w.write_all(b"a").expect("write");
        w.write_all(b"bc").expect("write");
        let (inner, hex, n) = w.finish();
        assert_eq!(inner, b"abc");
        assert_eq!(n, 3);
        assert_eq!(
            hex,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}

/// Like `Sha256Writer`, but hashing and writing happen on two threads of their own, in
/// parallel with each other and with the caller, so a caller whose thread is the bottleneck
/// (reading files, feeding compressors) pays neither for sha256 nor for the `write` syscalls.
/// Data is handed over in 1 MiB blocks shared by both threads, at most `MAX_BLOCKS` of them
/// (a block goes back to the pool when its last holder drops it), through channels of
/// `QUEUE` messages: splices hold no data, so the caller may run well ahead of the two threads
/// through a run of them, and meanwhile feed its compressors (with pgzip's queue of raw units
/// beside it: set 3 of the bench tree 0.94-0.97 s instead of 1.05-1.17 s with 4 messages,
/// alternating runs).
///
/// Dropped without `finish` (an error or a cancel on the caller's side), the output is thrown
/// away: both threads stop at their next message or block, whatever is still queued.
///
/// `splice` appends a byte range of another file; the hasher thread reads it (for the digest,
/// or for the crc32 check of a copy). While the output is still a copy of the base (every
/// range so far the base's own bytes at their own offset: `maybe_same`), the hasher only
/// checks those bytes and hands the blocks it read to the writer thread, which writes them:
/// read once, written once (an unchanged set: on ext4 here `copy_file_range` beside those
/// reads took longer, median 0.368 s against 0.313 s for 752 MiB; README). After that the
/// hasher must hash what it reads, and the writer thread copies each range itself
/// (`copy_file_range`) without waiting for it: waiting made the output run at the pace of the
/// sha256 (set 3 of the bench 4.3-5.4 s instead of 1.2 s). Where the file system shares extents
/// (`set_cloning`), the writer thread always clones (`FICLONERANGE` where the offsets allow,
/// `copy_file_range` for the rest).
pub struct OffloadWriter<W: SpliceTarget + Send + 'static> {
    buf: Vec<u8>,
    /// Splices are cloned by the output thread (`set_cloning`), never written from the hash
    /// thread's reads.
    cloning: bool,
    /// Bytes taken so far (written and spliced).
    pos: u64,
    /// The base while every splice so far was of its own bytes at their own offset: then the
    /// hash thread may only check a splice (its sha256 resumed), and hand its blocks over to
    /// be written. After the first splice that is not, the hash thread hashes every range, and
    /// the output thread copies ranges on its own instead of waiting for the hash thread.
    maybe_same: Option<Arc<File>>,
    /// Splices not yet handed over, merged while they continue each other.
    pending: Option<SpliceRange>,
    to_writer: Option<SyncSender<Block>>,
    to_hasher: Option<SyncSender<Block>>,
    /// Blocks dropped by their last holder, and a sender for new blocks to go back by.
    recycled: Receiver<Vec<u8>>,
    back: SyncSender<Vec<u8>>,
    /// Blocks allocated so far (at most `MAX_BLOCKS`, `buf` included).
    blocks: usize,
    writer: Option<JoinHandle<io::Result<(W, u64, SpliceStats)>>>,
    hasher: Option<JoinHandle<io::Result<Hashed>>>,
    /// The job's stop, seen while a send waits (`set_stop`).
    stop: Option<StopSignal>,
    /// Set by `drop` (an error or a cancel: nothing will be read from the output), so the
    /// threads skip what is still queued instead of copying and hashing it first.
    abandon: Arc<AtomicBool>,
}

/// What the hash thread returns.
struct Hashed {
    sha256: String,
    mismatched: Vec<u64>,
    resumed: u64,
}

/// What `OffloadWriter::finish_spliced` returns.
pub struct Finished<W> {
    pub inner: W,
    /// Lower-case hex sha256 of everything written.
    pub sha256: String,
    pub count: u64,
    pub spliced: SpliceStats,
    /// Source offsets of spliced ranges whose bytes did not have the crc32 they were spliced
    /// with (at most `MAX_MISMATCHED`; more make the list that long).
    pub mismatched: Vec<u64>,
    /// Leading bytes whose sha256 state was taken from the base's checkpoints, not hashed.
    pub resumed: u64,
}

/// Mismatched ranges reported at most (a caller that sees this many gives up on the source).
pub const MAX_MISMATCHED: usize = 4096;

/// A byte range of a file to append: consecutive pieces (a splice each, merged), each with
/// the crc32 it should have, if known. One large `copy_file_range` instead of one per piece:
/// on ext4 here, copying a 760 MB file in 760 KB calls took 0.57 s against 0.35 s in one.
struct SpliceRange {
    src: Arc<File>,
    off: u64,
    len: u64,
    pieces: Vec<(u64, Option<u32>)>,
    /// The hash thread hands the blocks it reads to the output thread, which writes them;
    /// else the output thread clones or copies the range itself (`SpliceTarget`).
    written: bool,
}

/// What the hash thread gives the output thread for a `written` splice: the blocks it read,
/// in order, or (when it hashes them, not only checks them) word to splice the range itself.
enum Handover {
    Block(Vec<u8>),
    Splice,
}

/// Splices merged into one range at most: its bytes and pieces. A range is handed over when it
/// is complete, so its size is also how long the output threads wait for the first one: with
/// 1 GiB, an unchanged set was one range and nothing was copied until the caller had planned
/// every entry (the first ~100 ms of the bench's set 2); 32 MiB is still some 20 calls for
/// 750 MiB.
const MAX_SPLICE: u64 = 32 << 20;
const MAX_PIECES: usize = 4096;

/// What the writer and hasher threads get.
#[derive(Clone)]
enum Block {
    Data(Arc<PoolBlock>),
    Splice(Arc<SpliceRange>),
    /// Asks the hash thread for the checkpoints of everything before it (hash thread only).
    Sync(SyncSender<Vec<Midstate>>),
}

/// How spliced bytes got into the output.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SpliceStats {
    /// Bytes shared with the source by `FICLONERANGE`.
    pub cloned: u64,
    /// Bytes copied by `copy_file_range` (or, where it is refused, read and written by the
    /// writer thread).
    pub copied: u64,
    /// Bytes read by the hasher thread (checked there) and written by the writer thread.
    pub written: u64,
}

/// An output that can take a byte range of a file.
pub trait SpliceTarget: Write {
    /// Appends `len` bytes of `src` from `off`; `at` is this output's length so far. Clones
    /// only while `try_clone` holds, and clears it when the file system refuses.
    fn splice_from(
        &mut self,
        src: &File,
        off: u64,
        len: u64,
        at: u64,
        try_clone: &mut bool,
    ) -> io::Result<SpliceStats>;
}

impl SpliceTarget for Vec<u8> {
    fn splice_from(
        &mut self,
        src: &File,
        off: u64,
        len: u64,
        _at: u64,
        _try_clone: &mut bool,
    ) -> io::Result<SpliceStats> {
        let start = self.len();
        let n = usize::try_from(len).map_err(io::Error::other)?;
        self.resize(start + n, 0);
        src.read_exact_at(&mut self[start..], off)?;
        Ok(SpliceStats {
            cloned: 0,
            copied: len,
            written: 0,
        })
    }
}

impl SpliceTarget for File {
    fn splice_from(
        &mut self,
        src: &File,
        off: u64,
        len: u64,
        at: u64,
        try_clone: &mut bool,
    ) -> io::Result<SpliceStats> {
        let stats = crate::fsutil::splice_range(src, off, self, at, len, try_clone)?;
        // copy_file_range and the clone write at explicit offsets: move past them
        self.seek(SeekFrom::Start(at + len))?;
        Ok(stats)
    }
}

const OFFLOAD_BLOCK: usize = 1 << 20;
/// Output blocks at most (memory: `MAX_BLOCKS` MiB), and messages queued for each thread.
const MAX_BLOCKS: usize = 8;
const QUEUE: usize = 64;
/// How often a wait for the threads asks whether to give up.
const STOP_POLL: std::time::Duration = std::time::Duration::from_millis(2);
const WRITE_SIZE: usize = 128 << 10;
/// The hash thread reads spliced ranges in blocks of this size; of a `written` range, at most
/// `SPLICE_BLOCKS` are queued for the output thread and as many kept for reuse.
const SPLICE_BLOCK: usize = 256 << 10;
const SPLICE_BLOCKS: usize = 4;

/// Distance between the sha256 checkpoints an output records (a multiple of 64).
pub const CHECKPOINT: u64 = 8 << 20;
/// Checkpoints kept at most (512 GiB of output).
pub const MAX_CHECKPOINTS: usize = 1 << 16;

/// A file the output may begin as a byte-for-byte copy of (the previous set), with the sha256
/// checkpoints recorded when it was written. While every byte so far equals the base's bytes
/// at the same offset -- spliced from it at the same offset with a crc32 to check, or compared
/// -- the hash thread does not hash: at the first difference (or the end) it resumes from the
/// base's last checkpoint before it and hashes the base's bytes from there. An unchanged set
/// then costs its copy and a crc32, not a sha256 of every byte.
pub struct Base {
    pub file: Arc<File>,
    /// At multiples of `CHECKPOINT`, ascending.
    pub checkpoints: Vec<Midstate>,
}

/// The hash thread's work: sha256 (with checkpoints) and crc32 checks of spliced ranges.
struct HashThread {
    sha: Sha256Stream,
    /// Output bytes seen.
    pos: u64,
    /// `Some` while the output so far equals the base's first `pos` bytes.
    same: Option<Base>,
    checkpoints: Vec<Midstate>,
    mismatched: Vec<u64>,
    /// Bytes not hashed here: the length of the base's checkpoint resumed from.
    resumed: u64,
    buf: Vec<u8>,
    cmp: Vec<u8>,
    /// Where the blocks of `written` splices go (the output thread), and its spent blocks.
    to_writer: SyncSender<Handover>,
    spare: Receiver<Vec<u8>>,
    /// Set when the output is dropped unfinished (`abandoned`).
    abandon: Arc<AtomicBool>,
}

impl HashThread {
    fn new(
        base: Option<Base>,
        to_writer: SyncSender<Handover>,
        spare: Receiver<Vec<u8>>,
        abandon: Arc<AtomicBool>,
    ) -> Self {
        HashThread {
            sha: Sha256Stream::new(),
            pos: 0,
            same: base,
            checkpoints: Vec::new(),
            mismatched: Vec::new(),
            resumed: 0,
            buf: Vec::new(),
            cmp: Vec::new(),
            to_writer,
            spare,
            abandon,
        }
    }

    /// Hashes output bytes, recording a checkpoint at every multiple of `CHECKPOINT`.
    fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let to_next = CHECKPOINT - self.sha.len() % CHECKPOINT;
            let n = (to_next as usize).min(data.len());
            self.sha.update(&data[..n]);
            data = &data[n..];
            if self.sha.len() % CHECKPOINT == 0 && self.checkpoints.len() < MAX_CHECKPOINTS {
                self.checkpoints.extend(self.sha.midstate());
            }
        }
    }

    /// The output stops being a copy of the base at `pos`: resume from the base's last
    /// checkpoint at or before it and hash the base's bytes from there to `pos`.
    fn leave_base(&mut self) -> io::Result<()> {
        let Some(base) = self.same.take() else {
            return Ok(());
        };
        let from = base
            .checkpoints
            .iter()
            .rev()
            .find(|m| m.len <= self.pos)
            .copied();
        self.checkpoints = base
            .checkpoints
            .iter()
            .filter(|m| from.is_some_and(|f| m.len <= f.len))
            .copied()
            .collect();
        self.sha = from.map(Sha256Stream::resume).unwrap_or_default();
        self.resumed = self.sha.len();
        let mut buf = std::mem::take(&mut self.buf);
        buf.resize(OFFLOAD_BLOCK, 0);
        let mut at = self.sha.len();
        while at < self.pos {
            let n = (self.pos - at).min(OFFLOAD_BLOCK as u64) as usize;
            base.file.read_exact_at(&mut buf[..n], at)?;
            self.feed(&buf[..n]);
            at += n as u64;
        }
        self.buf = buf;
        Ok(())
    }

    fn data(&mut self, block: &[u8]) -> io::Result<()> {
        if let Some(base) = &self.same {
            // still a copy? compare with the base's bytes at the same offset
            self.cmp.resize(block.len(), 0);
            let same = base.file.read_exact_at(&mut self.cmp, self.pos).is_ok()
                && self.cmp[..] == block[..];
            if same {
                self.pos += block.len() as u64;
                return Ok(());
            }
            self.leave_base()?;
        }
        self.feed(block);
        self.pos += block.len() as u64;
        Ok(())
    }

    fn splice(&mut self, r: &SpliceRange) -> io::Result<()> {
        // the same bytes of the same file at the same offset, checked by their crc32s
        let copy = self.same.as_ref().is_some_and(|b| {
            Arc::ptr_eq(&b.file, &r.src)
                && r.off == self.pos
                && r.pieces.iter().all(|(_, want)| want.is_some())
        });
        if !copy {
            self.leave_base()?;
        }
        // the bytes are read here anyway (for the sha256, or for the crc32 of a copy):
        // checking their crc32 on the same pass costs no second read (reuse.rs). A `written`
        // range (`OffloadWriter::maybe_same`) is written from these blocks while this thread
        // only checks them (`copy`: the sha256 is resumed); where this thread saw the output
        // differ from the base first, it hashes them and the output thread copies the range
        // meanwhile
        let hand = r.written && copy;
        if r.written && !hand {
            // gone only when the output thread failed: its error is the one reported
            let _ = self.to_writer.send(Handover::Splice);
        }
        let mut check = PieceCheck::new(r);
        let end = r.off + r.len;
        let mut at = r.off;
        while at < end {
            abandoned(&self.abandon)?;
            let n = (end - at).min(SPLICE_BLOCK as u64) as usize;
            let mut buf = match hand {
                true => self.spare.try_recv().unwrap_or_default(),
                false => std::mem::take(&mut self.buf),
            };
            buf.resize(n, 0);
            r.src.read_exact_at(&mut buf, at)?;
            if !copy {
                self.feed(&buf);
            }
            check.update(&buf, &mut self.mismatched);
            at += n as u64;
            if hand {
                // gone only when the output thread failed: its error is the one reported
                let _ = self.to_writer.send(Handover::Block(buf));
            } else {
                self.buf = buf;
            }
        }
        check.update(&[], &mut self.mismatched);
        self.pos += r.len;
        Ok(())
    }

    /// Checkpoints of the output so far.
    fn checkpoints(&self) -> Vec<Midstate> {
        match &self.same {
            Some(b) => b
                .checkpoints
                .iter()
                .filter(|m| m.len <= self.pos)
                .copied()
                .collect(),
            None => self.checkpoints.clone(),
        }
    }

    fn finish(mut self) -> io::Result<Hashed> {
        self.leave_base()?;
        Ok(Hashed {
            resumed: self.resumed,
            sha256: to_hex(&self.sha.finalize()),
            mismatched: self.mismatched,
        })
    }
}

/// The crc32 check of a splice's pieces, fed its bytes in order in blocks of any size.
struct PieceCheck<'a> {
    pieces: std::slice::Iter<'a, (u64, Option<u32>)>,
    /// The piece being fed: its source offset and the crc32 it should have.
    cur: Option<(u64, Option<u32>)>,
    left: u64,
    crc: crc32fast::Hasher,
    /// Source offset of the next piece.
    at: u64,
}

impl<'a> PieceCheck<'a> {
    fn new(r: &'a SpliceRange) -> Self {
        PieceCheck {
            pieces: r.pieces.iter(),
            cur: None,
            left: 0,
            crc: crc32fast::Hasher::new(),
            at: r.off,
        }
    }

    /// Feeds the next bytes of the range (none at its end), recording the source offset of
    /// every complete piece whose crc32 is not the one it should have.
    fn update(&mut self, mut data: &[u8], mismatched: &mut Vec<u64>) {
        loop {
            while self.left == 0 {
                if let Some((start, want)) = self.cur.take() {
                    let crc = std::mem::take(&mut self.crc).finalize();
                    if want.is_some_and(|w| w != crc) && mismatched.len() < MAX_MISMATCHED {
                        mismatched.push(start);
                    }
                }
                let Some(&(len, want)) = self.pieces.next() else {
                    return;
                };
                self.cur = Some((self.at, want));
                self.left = len;
                self.at += len;
            }
            if data.is_empty() {
                return;
            }
            let k = self.left.min(data.len() as u64) as usize;
            if self.cur.is_some_and(|(_, want)| want.is_some()) {
                self.crc.update(&data[..k]);
            }
            data = &data[k..];
            self.left -= k as u64;
        }
    }
}

/// The output thread clones or copies range `r` itself (at output offset `at`), and counts it.
/// In steps of `MAX_SPLICE` (a multiple of any clone block, and source and output move on
/// alike, so cloning is as aligned as in one call), checking `abandon` between them: a range
/// can be one reused file of any size, and a stop must not wait for all of its copy.
fn copy_range<W: SpliceTarget>(
    inner: &mut W,
    r: &SpliceRange,
    at: u64,
    try_clone: &mut bool,
    spliced: &mut SpliceStats,
    abandon: &AtomicBool,
) -> io::Result<()> {
    let mut done = 0;
    while done < r.len {
        abandoned(abandon)?;
        let n = (r.len - done).min(MAX_SPLICE);
        let s = inner.splice_from(&r.src, r.off + done, n, at + done, try_clone)?;
        spliced.cloned += s.cloned;
        spliced.copied += s.copied;
        done += n;
    }
    Ok(())
}

/// The output thread: writes the blocks, writes or copies the splices, in order.
fn output_thread<W: SpliceTarget>(
    mut inner: W,
    writer_rx: Receiver<Block>,
    read_rx: Receiver<Handover>,
    spare_tx: SyncSender<Vec<u8>>,
    abandon: &AtomicBool,
) -> io::Result<(W, u64, SpliceStats)> {
    let mut count = 0u64;
    let mut spliced = SpliceStats::default();
    let mut try_clone = true;
    for block in writer_rx {
        abandoned(abandon)?;
        match block {
            Block::Data(block) => {
                // 128 KiB per write(2): with 1 MiB writes this kernel's page cache
                // spent up to 10x the system time (large-folio allocation; measured
                // with dd: 1 GiB in 0.3-2.6 s at bs=1M vs 0.23-0.29 s at bs=128K).
                for piece in block.chunks(WRITE_SIZE) {
                    inner.write_all(piece)?;
                }
                count += block.len() as u64;
            }
            Block::Splice(r) if r.written => {
                let mut left = r.len;
                while left > 0 {
                    abandoned(abandon)?;
                    let block = match read_rx.recv() {
                        Ok(Handover::Block(block)) => block,
                        // the hash thread hashes it: copied here meanwhile
                        Ok(Handover::Splice) if left == r.len => {
                            copy_range(
                                &mut inner,
                                &r,
                                count,
                                &mut try_clone,
                                &mut spliced,
                                abandon,
                            )?;
                            left = 0;
                            continue;
                        }
                        Ok(Handover::Splice) => {
                            return Err(io::Error::other("a splice handed over twice"));
                        }
                        Err(_) => return Err(io::Error::other("hash thread stopped")),
                    };
                    let n = block.len() as u64;
                    if n > left {
                        return Err(io::Error::other("a splice's blocks overran it"));
                    }
                    for piece in block.chunks(WRITE_SIZE) {
                        inner.write_all(piece)?;
                    }
                    left -= n;
                    spliced.written += n;
                    // enough spares already, or the hash thread is gone
                    let _ = spare_tx.try_send(block);
                }
                count += r.len;
            }
            Block::Splice(r) => {
                copy_range(&mut inner, &r, count, &mut try_clone, &mut spliced, abandon)?;
                count += r.len;
            }
            Block::Sync(_) => {}
        }
    }
    inner.flush()?;
    Ok((inner, count, spliced))
}

/// The hash thread: hashes (or, while the output is a copy of the base, checks) what the
/// output thread writes, and hands it the blocks of `written` splices.
fn hash_thread(
    base: Option<Base>,
    hasher_rx: Receiver<Block>,
    read_tx: SyncSender<Handover>,
    spare_rx: Receiver<Vec<u8>>,
    abandon: Arc<AtomicBool>,
) -> io::Result<Hashed> {
    let mut h = HashThread::new(base, read_tx, spare_rx, abandon);
    for block in hasher_rx {
        abandoned(&h.abandon)?;
        match block {
            Block::Data(block) => {
                h.data(&block)?;
            }
            Block::Splice(r) => h.splice(&r)?,
            Block::Sync(reply) => {
                // the caller waits for it; gone only if it was dropped
                let _ = reply.send(h.checkpoints());
            }
        }
    }
    h.finish()
}

/// How a send to one of the threads went.
enum Sent {
    Yes,
    /// The thread is gone (it failed).
    Gone,
    /// The job was stopped while the queue was full.
    Stopped,
}

/// Sends `block`, waiting while `tx`'s queue is full; with a `stop`, polls it meanwhile every
/// `STOP_POLL` (the thread takes a message per range or block, so the queue never runs dry
/// for it).
fn send_or_stop(tx: &SyncSender<Block>, block: Block, stop: Option<&StopSignal>) -> Sent {
    let Some(stop) = stop else {
        return match tx.send(block) {
            Ok(()) => Sent::Yes,
            Err(_) => Sent::Gone,
        };
    };
    let mut block = block;
    loop {
        match tx.try_send(block) {
            Ok(()) => return Sent::Yes,
            Err(TrySendError::Disconnected(_)) => return Sent::Gone,
            Err(TrySendError::Full(_)) if stop.is_set() => return Sent::Stopped,
            Err(TrySendError::Full(b)) => {
                block = b;
                std::thread::sleep(STOP_POLL);
            }
        }
    }
}

/// A thread not yet ended.
fn running<T>(t: &Option<JoinHandle<T>>) -> bool {
    t.as_ref().is_some_and(|t| !t.is_finished())
}

/// The error of a thread that stopped because the output was abandoned: dropped unfinished,
/// given up, or failed in the other thread. Never the error to report when the other thread
/// has one of its own (`join`).
#[derive(Debug)]
struct Abandoned;

impl std::fmt::Display for Abandoned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("output abandoned")
    }
}

impl std::error::Error for Abandoned {}

fn is_abandoned(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|x| x.is::<Abandoned>())
}

/// The threads' way out when the output was abandoned.
fn abandoned(flag: &AtomicBool) -> io::Result<()> {
    match flag.load(Ordering::Relaxed) {
        true => Err(io::Error::other(Abandoned)),
        false => Ok(()),
    }
}

/// A thread's result; its error also abandons the output, so the other thread stops at its
/// next message or block instead of working through its queue (up to `QUEUE` ranges) before
/// the error can be reported.
fn abandon_on_error<T>(flag: &AtomicBool, r: io::Result<T>) -> io::Result<T> {
    if r.is_err() {
        flag.store(true, Ordering::Relaxed);
    }
    r
}

/// A block of output data; whoever drops it last (a thread done with it, or one that
/// stopped with it queued) sends it back to the pool, so the caller waiting for a free block
/// always gets one.
struct PoolBlock {
    data: Vec<u8>,
    back: SyncSender<Vec<u8>>,
}

impl std::ops::Deref for PoolBlock {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.data
    }
}

impl Drop for PoolBlock {
    fn drop(&mut self) {
        let mut v = std::mem::take(&mut self.data);
        v.clear();
        // The pool's channel holds `MAX_BLOCKS`, as many as exist: never full. Gone only when
        // the writer was dropped; the block is freed then.
        let _ = self.back.try_send(v);
    }
}

impl<W: SpliceTarget + Send + 'static> OffloadWriter<W> {
    pub fn new(inner: W) -> io::Result<Self> {
        Self::with_base(inner, None)
    }

    /// An output that may start as a copy of `base` (see `Base`).
    pub fn with_base(inner: W, base: Option<Base>) -> io::Result<Self> {
        let maybe_same = base.as_ref().map(|b| Arc::clone(&b.file));
        let (to_writer, writer_rx) = sync_channel::<Block>(QUEUE);
        let (to_hasher, hasher_rx) = sync_channel::<Block>(QUEUE);
        let (back_tx, back_rx) = sync_channel::<Vec<u8>>(MAX_BLOCKS);
        // the blocks of `written` splices, hash thread to output thread, and back
        let (read_tx, read_rx) = sync_channel::<Handover>(SPLICE_BLOCKS);
        let (spare_tx, spare_rx) = sync_channel::<Vec<u8>>(SPLICE_BLOCKS);
        let abandon = Arc::new(AtomicBool::new(false));
        let abandon_w = Arc::clone(&abandon);
        let abandon_h = Arc::clone(&abandon);
        let writer = std::thread::Builder::new()
            .name("zbackup-write".into())
            .spawn(move || {
                let r = output_thread(inner, writer_rx, read_rx, spare_tx, &abandon_w);
                abandon_on_error(&abandon_w, r)
            })?;
        let hasher = std::thread::Builder::new()
            .name("zbackup-sha".into())
            .spawn(move || {
                let flag = Arc::clone(&abandon_h);
                let r = hash_thread(base, hasher_rx, read_tx, spare_rx, abandon_h);
                abandon_on_error(&flag, r)
            })?;
        Ok(OffloadWriter {
            buf: Vec::with_capacity(OFFLOAD_BLOCK),
            cloning: false,
            pos: 0,
            maybe_same,
            pending: None,
            to_writer: Some(to_writer),
            to_hasher: Some(to_hasher),
            recycled: back_rx,
            back: back_tx,
            blocks: 1,
            writer: Some(writer),
            hasher: Some(hasher),
            abandon,
            stop: None,
        })
    }

    /// Hands over the pending splice and what is buffered (never both: `write` sends the
    /// splice first).
    fn send(&mut self) -> io::Result<()> {
        if let Some(r) = self.pending.take() {
            self.send_block(Block::Splice(Arc::new(r)))?;
        }
        if self.buf.is_empty() {
            return Ok(());
        }
        let next = match self.recycled.try_recv() {
            Ok(v) => v,
            Err(_) if self.blocks < MAX_BLOCKS => {
                self.blocks += 1;
                Vec::with_capacity(OFFLOAD_BLOCK)
            }
            // every block is queued or in use: the first one dropped comes back (this writer
            // holds a sender, so this waits for a block, never for a disconnect)
            Err(_) => self
                .recycled
                .recv()
                .map_err(|_| io::Error::other("output block pool gone"))?,
        };
        let block = Block::Data(Arc::new(PoolBlock {
            data: std::mem::replace(&mut self.buf, next),
            back: self.back.clone(),
        }));
        self.send_block(block)
    }

    /// Appends `len` bytes of `src` from `off` (after what is buffered). With `crc`, the hash
    /// thread checks that the bytes have that crc32 and reports the range in `mismatched` if
    /// not (the bytes are written either way: the caller decides what a mismatch costs).
    pub fn splice(
        &mut self,
        src: Arc<File>,
        off: u64,
        len: u64,
        crc: Option<u32>,
    ) -> io::Result<()> {
        let same = self
            .maybe_same
            .as_ref()
            .is_some_and(|b| Arc::ptr_eq(b, &src) && off == self.pos && crc.is_some());
        if !same {
            self.maybe_same = None;
        }
        let written = same && !self.cloning;
        self.pos += len;
        if let Some(p) = &mut self.pending {
            if Arc::ptr_eq(&p.src, &src)
                && p.written == written
                && p.off + p.len == off
                && p.len + len <= MAX_SPLICE
                && p.pieces.len() < MAX_PIECES
            {
                p.len += len;
                p.pieces.push((len, crc));
                return Ok(());
            }
        }
        self.send()?;
        self.pending = Some(SpliceRange {
            src,
            off,
            len,
            pieces: vec![(len, crc)],
            written,
        });
        Ok(())
    }

    /// Splices from here on are cloned where the file system shares extents (else copied in
    /// the kernel) by the output thread, instead of written from the blocks the hash thread
    /// reads to check them. For a source the output's file system can clone from (the caller
    /// probes it): a clone shares the bytes, a write copies them.
    pub fn set_cloning(&mut self, on: bool) {
        self.cloning = on;
    }

    /// This output's sha256 checkpoints (`CHECKPOINT`) up to everything written so far; waits
    /// for the hash thread to get there, or gives up once `stop` says so (the output is then
    /// thrown away, the error `Interrupted`): in an unchanged set, that is waiting for the
    /// whole copy to be checked.
    pub fn checkpoints(&mut self, stop: &dyn Fn() -> bool) -> io::Result<Vec<Midstate>> {
        self.send()?;
        let (tx, rx) = sync_channel(1);
        let sent = self
            .to_hasher
            .as_ref()
            .is_some_and(|h| h.send(Block::Sync(tx)).is_ok());
        loop {
            match rx.recv_timeout(STOP_POLL) {
                Ok(v) if sent => return Ok(v),
                Err(RecvTimeoutError::Timeout) if !stop() => {}
                Err(RecvTimeoutError::Timeout) => return Err(self.give_up()),
                _ => {
                    return Err(match self.join() {
                        Err(e) => e,
                        Ok(_) => io::Error::other("hash thread stopped"),
                    })
                }
            }
        }
    }

    fn send_block(&mut self, block: Block) -> io::Result<()> {
        let stop = self.stop.as_ref();
        let sent = match (&self.to_hasher, &self.to_writer) {
            (Some(h), Some(w)) => match send_or_stop(h, block.clone(), stop) {
                Sent::Yes => send_or_stop(w, block, stop),
                other => other,
            },
            _ => Sent::Gone,
        };
        match sent {
            Sent::Yes => Ok(()),
            Sent::Stopped => {
                let _ = self.give_up();
                Err(io::Error::other(Abandoned))
            }
            // The writer stopped: it failed; return its error.
            Sent::Gone => Err(match self.join() {
                Err(e) => e,
                Ok(_) => io::Error::other("output thread stopped"),
            }),
        }
    }

    /// While a send waits for room in a thread's queue, the job's stop gives the output up:
    /// the gzip writer hands over up to 1024 queued units at once (pgzip.rs), and a cancel
    /// must not wait for their copy.
    pub(crate) fn set_stop(&mut self, stop: StopSignal) {
        self.stop = Some(stop);
    }

    fn join(&mut self) -> io::Result<Finished<W>> {
        self.to_writer = None;
        self.to_hasher = None;
        let written = match self.writer.take().map(|t| t.join()) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err(io::Error::other("output thread panicked")),
            None => Err(io::Error::other("output thread already gone")),
        };
        let hex = match self.hasher.take().map(|t| t.join()) {
            Some(Ok(h)) => h,
            _ => Err(io::Error::other("hash thread failed")),
        };
        // the hash thread's error first: the output thread can fail because of it (a
        // `written` splice it stopped feeding); but not when the hash thread only stopped
        // because the output thread failed (`abandon_on_error`)
        let (h, (inner, count, spliced)) = match (hex, written) {
            (Ok(h), Ok(w)) => (h, w),
            (Err(h), Err(w)) if is_abandoned(&h) && !is_abandoned(&w) => return Err(w),
            (Err(h), _) => return Err(h),
            (Ok(_), Err(w)) => return Err(w),
        };
        Ok(Finished {
            inner,
            sha256: h.sha256,
            count,
            spliced,
            mismatched: h.mismatched,
            resumed: h.resumed,
        })
    }

    /// Writes what is buffered, waits for the threads, and returns the inner writer (flushed),
    /// the hex sha256 and the byte count.
    pub fn finish(self) -> io::Result<(W, String, u64)> {
        self.finish_spliced().map(|f| (f.inner, f.sha256, f.count))
    }

    /// `finish`, with how spliced ranges were put in and which failed their crc32.
    pub fn finish_spliced(self) -> io::Result<Finished<W>> {
        self.finish_spliced_unless(&|| false)
    }

    /// `finish_spliced`, but while the threads still work through what is queued (up to
    /// `QUEUE` ranges of `MAX_SPLICE`), gives up once `stop` says so: the output is thrown away
    /// and the error is `Interrupted`. So a job cancelled at its end stops within milliseconds.
    pub fn finish_spliced_unless(mut self, stop: &dyn Fn() -> bool) -> io::Result<Finished<W>> {
        self.send()?;
        // no more messages: the threads end when their queues are done
        self.to_writer = None;
        self.to_hasher = None;
        while running(&self.writer) || running(&self.hasher) {
            if stop() {
                return Err(self.give_up());
            }
            std::thread::sleep(STOP_POLL);
        }
        self.join()
    }

    /// Throws the output away: the threads stop at their next message or block, whatever is
    /// still queued, and are waited for. The error to report for it.
    fn give_up(&mut self) -> io::Error {
        self.abandon.store(true, Ordering::Relaxed);
        let _ = self.join();
        io::Error::new(io::ErrorKind::Interrupted, "output given up")
    }
}

impl<W: SpliceTarget + Send + 'static> Write for OffloadWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.pending.is_some() || self.buf.len() == OFFLOAD_BLOCK {
            self.send()?;
        }
        let n = (OFFLOAD_BLOCK - self.buf.len()).min(data.len());
        self.buf.extend_from_slice(&data[..n]);
        self.pos += n as u64;
        if self.buf.len() == OFFLOAD_BLOCK {
            self.send()?;
        }
        Ok(n)
    }

    /// Hands over what is buffered; the threads write it soon after.
    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

impl<W: SpliceTarget + Send + 'static> Drop for OffloadWriter<W> {
    fn drop(&mut self) {
        // Closing the channels ends the threads; wait so the file is closed when we return.
        // Errors were (or could have been) seen through `finish`; nothing to do with them here.
        // Unfinished (an error or a cancel on the caller's side), the output is thrown away
        // instead of the threads working through their queues (up to `QUEUE` ranges of
        // `MAX_SPLICE`); after `finish` there is nothing left to join.
        let _ = self.give_up();
    }
}

#[cfg(test)]
mod props;

#[cfg(test)]
mod offload_tests {
    use super::*;

    #[test]
    fn offload_writer_hashes_and_writes_everything_in_order() {
        let data: Vec<u8> = (0..3_500_000u32).map(|i| (i % 251) as u8).collect();
        let mut w = OffloadWriter::new(Vec::new()).expect("thread");
        for piece in data.chunks(77_777) {
            w.write_all(piece).expect("write");
        }
        let (out, hex, n) = w.finish().expect("finish");
        assert_eq!(out, data);
        assert_eq!(n, data.len() as u64);
        assert_eq!(hex, to_hex(&Sha256::digest(&data)));
    }

    #[test]
    fn splice_with_a_wrong_crc32_is_reported_and_a_right_one_is_not() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 249) as u8).collect();
        let mut f = tempfile::tempfile().expect("tempfile");
        f.write_all(&data).expect("write");
        let src = Arc::new(f);
        // written from the hash thread's reads, and cloned (here: copied) by the output thread
        for cloning in [false, true] {
            let mut w = OffloadWriter::new(Vec::new()).expect("thread");
            w.set_cloning(cloning);
            let (a, b) = (&data[..100_000], &data[100_000..]);
            w.splice(Arc::clone(&src), 0, 100_000, Some(crc32fast::hash(a)))
                .expect("splice");
            w.splice(
                Arc::clone(&src),
                100_000,
                200_000,
                Some(crc32fast::hash(b) ^ 1),
            )
            .expect("splice");
            w.splice(Arc::clone(&src), 0, 10, None).expect("splice");
            let f = w.finish_spliced().expect("finish");
            assert_eq!(
                f.mismatched,
                vec![100_000],
                "only the range with a wrong crc32 (cloning: {cloning})"
            );
            // the bytes are written either way; the caller decides
            assert_eq!(f.inner, [&data[..], &data[..10]].concat());
            // no base: the hash thread hashes every range, so the output thread copies them
            assert_eq!(
                (f.spliced.cloned, f.spliced.copied, f.spliced.written),
                (0, 300_010, 0)
            );
        }
    }

    /// `n` bytes that do not repeat soon, and a file holding them.
    fn pseudo_source(n: u32) -> (Vec<u8>, Arc<File>) {
        let data: Vec<u8> = (0..n)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
            .collect();
        let mut f = tempfile::tempfile().expect("tempfile");
        f.write_all(&data).expect("write");
        (data, Arc::new(f))
    }

    #[test]
    fn ranges_only_checked_are_written_from_the_hash_threads_reads_and_hashed_ones_copied() {
        let (data, src) = pseudo_source(700_000);
        let base = Base {
            file: Arc::clone(&src),
            checkpoints: Vec::new(),
        };
        let mut w = OffloadWriter::with_base(Vec::new(), Some(base)).expect("thread");
        // the base's own first 600,000 bytes: a copy of it so far, the sha256 not needed yet
        let (a, b) = (&data[..300_000], &data[300_000..600_000]);
        w.splice(Arc::clone(&src), 0, 300_000, Some(crc32fast::hash(a)))
            .expect("splice");
        w.splice(Arc::clone(&src), 300_000, 300_000, Some(crc32fast::hash(b)))
            .expect("splice");
        // 7 bytes unlike the base's: from here on hashed. The next splice is still at its own
        // offset (only the hash thread knows the bytes differed: it lets the output thread
        // copy it), the one after is not (copied without waiting for the hash thread)
        w.write_all(b"changed").expect("write");
        let c = &data[600_007..];
        w.splice(Arc::clone(&src), 600_007, 99_993, Some(crc32fast::hash(c)))
            .expect("splice");
        w.splice(Arc::clone(&src), 0, 300_000, Some(crc32fast::hash(a) ^ 1))
            .expect("splice");
        let f = w.finish_spliced().expect("finish");
        let want = [&data[..600_000], b"changed", c, a].concat();
        assert!(f.inner == want, "the bytes, in order");
        assert_eq!(f.sha256, to_hex(&Sha256::digest(&want)));
        assert_eq!(f.mismatched, vec![0], "the copied ranges are checked too");
        assert_eq!(
            (f.spliced.cloned, f.spliced.copied, f.spliced.written),
            (0, 399_993, 600_000)
        );
    }

    #[test]
    fn pieces_across_read_blocks_are_each_checked_and_reported_where_they_start() {
        // pieces longer than a read block, shorter, ending inside one, and an empty one
        let (data, src) = pseudo_source(3_500_001);
        let pieces = [
            (0, 700_000, true),
            (700_000, 1_500_000, false),
            (2_200_000, 0, false),
            (2_200_000, 1_300_001, true),
        ];
        for cloning in [false, true] {
            let mut w = OffloadWriter::new(Vec::new()).expect("thread");
            w.set_cloning(cloning);
            for (off, len, right) in pieces {
                let crc = crc32fast::hash(&data[off..off + len]) ^ u32::from(!right);
                w.splice(Arc::clone(&src), off as u64, len as u64, Some(crc))
                    .expect("splice");
            }
            let f = w.finish_spliced().expect("finish");
            assert_eq!(f.mismatched, vec![700_000, 2_200_000], "cloning: {cloning}");
            assert!(f.inner == data, "cloning: {cloning}");
        }
    }

    #[test]
    fn a_splice_past_the_end_of_its_source_fails_with_the_read_error() {
        let mut f = tempfile::tempfile().expect("tempfile");
        f.write_all(&[7u8; 1000]).expect("write");
        let src = Arc::new(f);
        for cloning in [false, true] {
            let mut w = OffloadWriter::new(Vec::new()).expect("thread");
            w.set_cloning(cloning);
            w.splice(Arc::clone(&src), 0, 5000, None).expect("splice");
            let e = w.finish_spliced().err().expect("an error");
            // the hash thread's read error, not the output thread's "hash thread stopped"
            assert_eq!(
                e.kind(),
                io::ErrorKind::UnexpectedEof,
                "cloning {cloning}: {e}"
            );
        }
    }

    /// An output that has no room from its first byte on.
    fn failing() -> super::props::FailingAt {
        super::props::FailingAt::at(0)
    }

    #[test]
    fn offload_writer_reports_the_inner_error_not_a_panic() {
        let mut w = OffloadWriter::new(failing()).expect("thread");
        let mut kind = None;
        for _ in 0..20 {
            if let Err(e) = w.write_all(&[0u8; 1 << 20]) {
                kind = Some(e.kind());
                break;
            }
        }
        let kind = match kind {
            Some(k) => k,
            None => w.finish().err().map(|e| e.kind()).expect("an error"),
        };
        assert_eq!(kind, io::ErrorKind::StorageFull);
    }

    #[test]
    fn an_output_error_is_reported_without_the_hash_thread_working_through_its_queue_first() {
        // 66 ranges of ~32 MiB to hash (a sparse file: zeros), an output failing at once
        let f = tempfile::tempfile().expect("tempfile");
        f.set_len(3 << 30).expect("set_len");
        let src = Arc::new(f);
        let mut w = OffloadWriter::new(failing()).expect("thread");
        let t = std::time::Instant::now();
        let mut failed = None;
        for i in 0..66u64 {
            // not continuing each other: one message each
            if let Err(e) = w.splice(Arc::clone(&src), i * (32 << 20), (32 << 20) - 4096, None) {
                failed = Some(e);
                break;
            }
        }
        let e = match failed {
            Some(e) => e,
            None => w.finish_spliced().err().expect("the output failed"),
        };
        // the output's own error, not the hash thread's "abandoned"
        assert_eq!(e.kind(), io::ErrorKind::StorageFull, "{e}");
        // hashing the 2 GiB queued would take seconds
        let took = t.elapsed();
        assert!(took < std::time::Duration::from_secs(1), "{took:?}");
    }

    /// An output whose copies take time: `fixed_ms` a call, plus `ms_per_step` per
    /// `MAX_SPLICE` of its length (a `copy_file_range` takes time in proportion); it records
    /// the length of each call.
    struct Timed {
        fixed_ms: u64,
        ms_per_step: u64,
        calls: Arc<std::sync::Mutex<Vec<u64>>>,
    }
    impl Timed {
        /// The output, and the lengths of its calls.
        fn new(fixed_ms: u64, ms_per_step: u64) -> (Timed, Arc<std::sync::Mutex<Vec<u64>>>) {
            let calls = Arc::new(std::sync::Mutex::new(Vec::new()));
            let t = Timed {
                fixed_ms,
                ms_per_step,
                calls: Arc::clone(&calls),
            };
            (t, calls)
        }
    }
    impl SpliceTarget for Timed {
        fn splice_from(
            &mut self,
            _: &File,
            _: u64,
            len: u64,
            _: u64,
            _: &mut bool,
        ) -> io::Result<SpliceStats> {
            let ms = self.fixed_ms + self.ms_per_step * len / MAX_SPLICE;
            std::thread::sleep(std::time::Duration::from_millis(ms));
            if let Ok(mut calls) = self.calls.lock() {
                calls.push(len);
            }
            Ok(SpliceStats {
                copied: len,
                ..SpliceStats::default()
            })
        }
    }
    impl Write for Timed {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn count(calls: &std::sync::Mutex<Vec<u64>>) -> usize {
        calls.lock().map(|c| c.len()).unwrap_or(0)
    }

    #[test]
    fn a_stop_during_the_copy_of_one_large_range_waits_for_one_step_not_the_range() {
        // one reused file of 4 GiB is one range; its whole copy would take 1.28 s here
        let f = tempfile::tempfile().expect("tempfile");
        f.set_len(4 << 30).expect("set_len");
        let (out, calls) = Timed::new(0, 10);
        let mut w = OffloadWriter::new(out).expect("thread");
        w.splice(Arc::new(f), 0, 4 << 30, None).expect("splice");
        w.flush().expect("flush");
        std::thread::sleep(std::time::Duration::from_millis(100));
        let t = std::time::Instant::now();
        let e = w.finish_spliced_unless(&|| true).err().expect("given up");
        let took = t.elapsed();
        assert_eq!(e.kind(), io::ErrorKind::Interrupted);
        let calls = calls.lock().expect("lock").clone();
        assert!(calls.iter().all(|&n| n <= MAX_SPLICE), "{calls:?}");
        assert!(
            calls.len() < 128,
            "stopped before the range's end: {} calls",
            calls.len()
        );
        assert!(took < std::time::Duration::from_millis(500), "{took:?}");
    }

    /// 200 ranges of 9 ms of copy each, handed to an output with `stop`: the queue (64) fills
    /// at once, and the caller would wait for the copy of the rest before it could see a stop.
    /// What the last hand-over returned, when, and how many ranges were copied.
    fn ranges_behind_a_full_queue(stop: StopSignal) -> (io::Result<()>, std::time::Instant, usize) {
        let f = tempfile::tempfile().expect("tempfile");
        f.set_len(200 * MAX_SPLICE).expect("set_len");
        let src = Arc::new(f);
        let (out, calls) = Timed::new(0, 10);
        let mut w = OffloadWriter::new(out).expect("thread");
        w.set_stop(stop);
        let mut result = Ok(());
        for i in 0..200u64 {
            // not continuing each other: one message each
            result = w.splice(Arc::clone(&src), i * MAX_SPLICE, MAX_SPLICE - 4096, None);
            if result.is_err() {
                break;
            }
        }
        let returned = std::time::Instant::now();
        drop(w);
        (result, returned, count(&calls))
    }

    #[test]
    fn a_cancel_while_the_caller_waits_for_room_in_the_queue_gives_the_output_up() {
        let ctl = Arc::new(crate::archive::JobControl::new());
        let canceller = {
            let ctl = Arc::clone(&ctl);
            std::thread::spawn(move || {
                std::thread::sleep(std::time::Duration::from_millis(100));
                ctl.cancel();
                std::time::Instant::now()
            })
        };
        let (result, returned, copied) = ranges_behind_a_full_queue(ctl.stop_signal());
        let cancelled = canceller.join().expect("canceller");
        let e = result.expect_err("given up while waiting");
        assert!(is_abandoned(&e), "{e}");
        let late = returned.saturating_duration_since(cancelled);
        assert!(
            late < std::time::Duration::from_millis(200),
            "{late:?} after the cancel"
        );
        assert!(
            copied < 200,
            "stopped before the queue was worked through: {copied}"
        );
    }

    #[test]
    fn a_deadline_passing_while_the_caller_waits_for_room_gives_the_output_up_too() {
        // as above, the job stopped by its deadline (copied into the stop signal) instead
        let limit = std::time::Duration::from_millis(100);
        let ctl = crate::archive::JobControl::with_timeout(limit);
        let started = std::time::Instant::now();
        let (result, returned, copied) = ranges_behind_a_full_queue(ctl.stop_signal());
        let took = returned - started;
        let e = result.expect_err("given up while waiting");
        assert!(is_abandoned(&e), "{e}");
        assert!(took < limit * 3, "{took:?} for a deadline of {limit:?}");
        assert!(copied < 200);
    }

    #[test]
    fn continuing_splices_are_handed_over_every_max_splice_bytes() {
        // 4 splices of half a range each, continuing each other: two ranges, so the output
        // threads start on the first before the caller has planned the rest
        let f = tempfile::tempfile().expect("tempfile");
        f.set_len(2 * MAX_SPLICE).expect("set_len");
        let src = Arc::new(f);
        let (out, done) = Timed::new(20, 0);
        let mut w = OffloadWriter::new(out).expect("thread");
        for i in 0..4u64 {
            w.splice(Arc::clone(&src), i * MAX_SPLICE / 2, MAX_SPLICE / 2, None)
                .expect("splice");
        }
        let f = w.finish_spliced().expect("finish");
        assert_eq!(count(&done), 2);
        assert_eq!(f.count, 2 * MAX_SPLICE);
    }

    #[test]
    fn an_output_dropped_unfinished_skips_what_is_queued() {
        let (_, src) = pseudo_source(1 << 20);
        let (out, done) = Timed::new(20, 0);
        let mut w = OffloadWriter::new(out).expect("thread");
        // 60 ranges that do not continue each other (not merged): 1.2 s of work queued
        for i in 0..60u64 {
            w.splice(Arc::clone(&src), (i % 2) * 4096, 4096, None)
                .expect("splice");
        }
        drop(w);
        let n = count(&done);
        assert!(n < 10, "{n} of 60 queued splices copied after the drop");
    }

    #[test]
    fn waiting_for_checkpoints_or_the_end_gives_up_when_told_to_stop() {
        // 2 GiB to hash (a sparse file) and 60 slow copies: seconds of work queued
        let f = tempfile::tempfile().expect("tempfile");
        f.set_len(2 << 30).expect("set_len");
        let src = Arc::new(f);
        for at_end in [false, true] {
            let (out, done) = Timed::new(20, 0);
            let mut w = OffloadWriter::new(out).expect("thread");
            for i in 0..60u64 {
                w.splice(Arc::clone(&src), i * (32 << 20), 32 << 20, None)
                    .expect("splice");
            }
            // a job cancelled meanwhile: its check says stop after the first look
            let looked = std::sync::atomic::AtomicUsize::new(0);
            let stop = || looked.fetch_add(1, Ordering::SeqCst) > 0;
            let e = match at_end {
                false => w.checkpoints(&stop).err(),
                true => w.finish_spliced_unless(&stop).err(),
            }
            .expect("given up");
            assert_eq!(e.kind(), io::ErrorKind::Interrupted, "at end: {at_end}");
            let n = count(&done);
            assert!(n < 10, "at end {at_end}: {n} of 60 queued splices copied");
        }
    }

    #[test]
    fn output_blocks_stay_within_the_pool_and_come_back_intact() {
        let (data, _) = pseudo_source(40 << 20);
        let mut w = OffloadWriter::new(Vec::new()).expect("thread");
        // uneven writes, so blocks are filled, queued, recycled and refilled many times
        for piece in data.chunks(777_777) {
            w.write_all(piece).expect("write");
            assert!(w.blocks <= MAX_BLOCKS, "{} blocks", w.blocks);
        }
        let (out, hex, n) = w.finish().expect("finish");
        assert_eq!(n, data.len() as u64);
        assert!(out == data, "output differs");
        assert_eq!(hex, to_hex(&Sha256::digest(&data)));
    }

    #[test]
    fn a_written_splice_into_a_failing_output_reports_its_error_without_hanging() {
        let mut f = tempfile::tempfile().expect("tempfile");
        f.write_all(&vec![3u8; 3 << 20]).expect("write");
        let src = Arc::new(f);
        // handed over as blocks (a copy of the base: only checked) and spliced by the output
        // thread (no base: hashed)
        for based in [true, false] {
            let base = based.then(|| Base {
                file: Arc::clone(&src),
                checkpoints: Vec::new(),
            });
            let mut w = OffloadWriter::with_base(failing(), base).expect("thread");
            let crc = crc32fast::hash(&vec![3u8; 3 << 20]);
            w.splice(Arc::clone(&src), 0, 3 << 20, Some(crc))
                .expect("splice");
            let e = w.finish_spliced().err().expect("an error");
            assert_eq!(e.kind(), io::ErrorKind::StorageFull, "based: {based}");
        }
    }
}
