//! Property test of `OffloadWriter` as a whole (its two threads, the block pool, the hand-over
//! of `written` splices, the resumed sha256, the give-up paths): any sequence of writes,
//! splices (of the base at the same offset with a right or wrong crc32, of the base elsewhere,
//! of another file), cloning switches, flushes and checkpoint requests, ended by `finish`, a
//! stop or a drop, into an output that may fail at any byte, must end within a minute (a
//! watchdog), never report a failed output as done, and when done give exactly the bytes put
//! in, their count, sha256 and checkpoints, and the offsets of the splices with a wrong crc32.

use super::*;
use crate::archive::sha_resume::Sha256Stream;
use crate::archive::testdata::pseudo_random as bytes;
use proptest::prelude::*;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

const BASE_LEN: usize = 20 << 20;
const OTHER_LEN: usize = 4 << 20;

/// A `Vec` output that fails (no space) once it would pass `fail_at` bytes; also the failing
/// output of the other tests of the module (`at(0)`).
pub(super) struct FailingAt {
    out: Vec<u8>,
    fail_at: Option<u64>,
}

impl FailingAt {
    pub(super) fn at(n: u64) -> FailingAt {
        FailingAt {
            out: Vec::new(),
            fail_at: Some(n),
        }
    }

    fn room(&self, n: u64) -> io::Result<()> {
        match self.fail_at {
            Some(f) if self.out.len() as u64 + n > f => {
                Err(io::Error::from(io::ErrorKind::StorageFull))
            }
            _ => Ok(()),
        }
    }
}

impl Write for FailingAt {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.room(b.len() as u64)?;
        self.out.extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl SpliceTarget for FailingAt {
    fn splice_from(
        &mut self,
        src: &File,
        off: u64,
        len: u64,
        at: u64,
        try_clone: &mut bool,
    ) -> io::Result<SpliceStats> {
        self.room(len)?;
        self.out.splice_from(src, off, len, at, try_clone)
    }
}

fn file_of(data: &[u8]) -> Arc<File> {
    let mut f = tempfile::tempfile().expect("tempfile");
    f.write_all(data).expect("write");
    Arc::new(f)
}

/// The checkpoints a hash of `data` records (one per whole `CHECKPOINT`).
fn checkpoints_of(data: &[u8]) -> Vec<Midstate> {
    let mut s = Sha256Stream::new();
    let mut out = Vec::new();
    for c in data.chunks(CHECKPOINT as usize) {
        s.update(c);
        if c.len() as u64 == CHECKPOINT {
            out.extend(s.midstate());
        }
    }
    out
}

/// One step; lengths and offsets are fractions (per mille) of what fits where the step lands.
#[derive(Debug, Clone)]
enum Op {
    /// `len` bytes, the base's at this offset (when it has them) or new ones.
    Write {
        len: u64,
        as_base: bool,
        seed: u64,
    },
    /// The base's bytes at this offset, spliced with their crc32, or a wrong one.
    SpliceSame {
        len: u64,
        wrong_crc: bool,
    },
    /// The base's bytes from elsewhere.
    SpliceBase {
        at: u64,
        len: u64,
    },
    /// Bytes of another file, with no crc32.
    SpliceOther {
        at: u64,
        len: u64,
    },
    Cloning(bool),
    Flush,
    Checkpoints,
}

#[derive(Debug, Clone)]
enum End {
    Finish,
    /// `finish_spliced_unless` with a stop that says yes after this many looks.
    StopAfter(usize),
    Drop,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (1..3u64 << 20, any::<bool>(), any::<u64>()).prop_map(|(len, as_base, seed)| Op::Write {
            len,
            as_base,
            seed
        }),
        (1..2u64 << 20, prop::bool::weighted(0.15))
            .prop_map(|(len, wrong_crc)| Op::SpliceSame { len, wrong_crc }),
        (0..1000u64, 1..2u64 << 20).prop_map(|(at, len)| Op::SpliceBase { at, len }),
        (0..1000u64, 1..1u64 << 20).prop_map(|(at, len)| Op::SpliceOther { at, len }),
        any::<bool>().prop_map(Op::Cloning),
        Just(Op::Flush),
        Just(Op::Checkpoints),
    ]
}

fn end() -> impl Strategy<Value = End> {
    prop_oneof![
        Just(End::Finish),
        (0..5usize).prop_map(End::StopAfter),
        Just(End::Drop)
    ]
}

/// Runs one sequence; panics on a wrong result.
fn run(ops: &[Op], fail_at: Option<u64>, with_base: bool, end: &End) {
    let base_data = bytes(BASE_LEN, 5);
    let other_data = bytes(OTHER_LEN, 77);
    let (base, other) = (file_of(&base_data), file_of(&other_data));
    let b = with_base.then(|| Base {
        file: Arc::clone(&base),
        checkpoints: checkpoints_of(&base_data),
    });
    let mut w = OffloadWriter::with_base(
        FailingAt {
            out: Vec::new(),
            fail_at,
        },
        b,
    )
    .expect("threads");
    let (mut want, mut mismatched) = (Vec::new(), Vec::new());
    let fails_at = |n: usize| fail_at.is_some_and(|f| f < n as u64);
    for op in ops {
        let pos = want.len();
        let r = match *op {
            Op::Write { len, as_base, seed } => {
                let len = len as usize;
                let v = match as_base && pos + len <= BASE_LEN {
                    true => base_data[pos..pos + len].to_vec(),
                    false => bytes(len, seed),
                };
                want.extend_from_slice(&v);
                w.write_all(&v)
            }
            Op::SpliceSame { len, wrong_crc } if pos < BASE_LEN => {
                let n = (len as usize).min(BASE_LEN - pos);
                let d = &base_data[pos..pos + n];
                if wrong_crc {
                    mismatched.push(pos as u64);
                }
                want.extend_from_slice(d);
                let crc = crc32fast::hash(d) ^ u32::from(wrong_crc);
                w.splice(Arc::clone(&base), pos as u64, n as u64, Some(crc))
            }
            Op::SpliceSame { .. } => Ok(()),
            Op::SpliceBase { at, len } => {
                let off = (BASE_LEN - 1) * at as usize / 1000;
                let n = (len as usize).min(BASE_LEN - off);
                let d = &base_data[off..off + n];
                want.extend_from_slice(d);
                let crc = crc32fast::hash(d);
                w.splice(Arc::clone(&base), off as u64, n as u64, Some(crc))
            }
            Op::SpliceOther { at, len } => {
                let off = (OTHER_LEN - 1) * at as usize / 1000;
                let n = (len as usize).min(OTHER_LEN - off);
                want.extend_from_slice(&other_data[off..off + n]);
                w.splice(Arc::clone(&other), off as u64, n as u64, None)
            }
            Op::Cloning(on) => {
                w.set_cloning(on);
                Ok(())
            }
            Op::Flush => w.flush(),
            Op::Checkpoints => w.checkpoints(&|| false).map(|c| {
                assert_eq!(c, checkpoints_of(&want), "checkpoints");
            }),
        };
        if let Err(e) = r {
            // only an output that ran out of room may fail
            assert!(fails_at(want.len()), "unexpected error: {e}");
            return;
        }
    }
    let looked = AtomicUsize::new(0);
    let r = match *end {
        End::Drop => {
            drop(w);
            return;
        }
        End::Finish => w.finish_spliced(),
        End::StopAfter(n) => {
            w.finish_spliced_unless(&|| looked.fetch_add(1, Ordering::SeqCst) >= n)
        }
    };
    match r {
        Ok(f) => {
            assert!(!fails_at(want.len()), "a failed output reported done");
            assert!(
                f.inner.out == want,
                "the output differs from what was put in"
            );
            assert_eq!(f.count, want.len() as u64);
            assert_eq!(f.sha256, to_hex(&Sha256::digest(&want)));
            assert_eq!(f.mismatched, mismatched);
        }
        Err(e) => assert!(
            fails_at(want.len()) || e.kind() == io::ErrorKind::Interrupted,
            "unexpected error: {e}"
        ),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn any_sequence_ends_and_a_done_output_is_exactly_what_was_put_in(
        ops in prop::collection::vec(op(), 1..40),
        fail_at in prop::option::weighted(0.3, 0..40u64 << 20),
        with_base in prop::bool::weighted(0.75),
        end in end(),
    ) {
        let (tx, rx) = std::sync::mpsc::channel();
        let case = std::thread::spawn(move || {
            run(&ops, fail_at, with_base, &end);
            let _ = tx.send(());
        });
        let ended = rx.recv_timeout(Duration::from_secs(60));
        // a panic in the case is its failure; a case that never ends, a hang
        prop_assert!(!matches!(ended, Err(std::sync::mpsc::RecvTimeoutError::Timeout)), "hung");
        prop_assert!(case.join().is_ok(), "the case failed");
    }
}
