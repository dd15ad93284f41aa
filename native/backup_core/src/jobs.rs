//! How long work runs beside its caller (the NIF's jobs): the engine's bound on running jobs,
//! the claim on output files, the threads' priority and the progress beat. The NIF glue only
//! turns these into Erlang messages.

use crate::archive::{JobControl, Progress};
use crate::{Error, Result};
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Mutex};
use std::time::Duration;

/// At most this many jobs run at once; more get `busy`. Each job has a thread of its own plus
/// the work's pool, so this bounds threads and memory whatever the callers do.
pub const MAX_JOBS: usize = 8;
/// How often a running job reports its progress.
pub const PROGRESS_EVERY: Duration = Duration::from_millis(250);
/// The nice value of job threads where SCHED_IDLE is not allowed (0 = normal, 19 = lowest).
const JOB_NICE: libc::c_int = 19;

static RUNNING: AtomicUsize = AtomicUsize::new(0);
/// Output files being written by a running job. `OUT.tmp` is unlinked and made again when a
/// leftover is found (`fsutil::create_tmp`), so a second job on the same output would take the
/// first one's `.tmp` from under it: it gets `busy` instead.
static OUTPUTS: Mutex<Option<HashSet<PathBuf>>> = Mutex::new(None);

/// Number of jobs running now.
pub fn running() -> usize {
    RUNNING.load(Ordering::Acquire)
}

/// A job's place among the running ones and its claim on its output; both are given back when
/// it is dropped, however the job ends.
pub struct Slot {
    output: Option<PathBuf>,
}

impl Slot {
    pub fn acquire(output: Option<PathBuf>) -> Result<Slot> {
        if RUNNING.fetch_add(1, Ordering::AcqRel) >= MAX_JOBS {
            RUNNING.fetch_sub(1, Ordering::AcqRel);
            return Err(Error::Busy(format!("{MAX_JOBS} jobs are running")));
        }
        let mut slot = Slot { output: None };
        if let Some(out) = output {
            let mut claimed = OUTPUTS.lock().unwrap_or_else(|p| p.into_inner());
            if !claimed.get_or_insert_with(HashSet::new).insert(out.clone()) {
                // `slot` is dropped here and gives the running count back.
                return Err(Error::Busy(format!(
                    "{} is being written by another job",
                    out.display()
                )));
            }
            slot.output = Some(out);
        }
        Ok(slot)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(out) = self.output.take() {
            let mut claimed = OUTPUTS.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(set) = claimed.as_mut() {
                set.remove(&out);
            }
        }
        RUNNING.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Backups are background work: the job thread, and every thread it starts (Linux threads
/// inherit the policy), runs under SCHED_IDLE, so a VM scheduler thread that wakes up takes the
/// CPU from it at once. At nice 19 alone, the kernel (EEVDF) let the job finish its slice first:
/// a 1 ms timer in the VM was then up to 5 ms late on 2 busy cores. Where SCHED_IDLE is refused,
/// nice 19 is the fallback.
pub fn lower_priority() {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: `param` is a valid sched_param that outlives the call; pid 0 is the calling
    // thread. A refusal (e.g. a seccomp filter) only leaves the policy unchanged.
    let idle = unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) } == 0;
    if !idle {
        // SAFETY: setpriority takes no pointers; `who = 0` is the calling thread on Linux.
        unsafe {
            libc::setpriority(libc::PRIO_PROCESS, 0, JOB_NICE);
        }
    }
}

/// Runs `work` on a scoped thread and calls `report` with `control`'s progress every
/// `PROGRESS_EVERY` until it ends. A panic in `work` is an `Error::Panicked`.
pub fn run_reporting<T, W>(
    control: &JobControl,
    work: W,
    mut report: impl FnMut(Progress),
) -> Result<T>
where
    T: Send,
    W: FnOnce(&JobControl) -> Result<T> + Send,
{
    std::thread::scope(|scope| {
        let (tx, rx) = mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name("zb-work".into())
            .spawn_scoped(scope, move || {
                let run = std::panic::AssertUnwindSafe(|| work(control));
                let result = std::panic::catch_unwind(run)
                    .unwrap_or_else(|_| Err(Error::Panicked("the job panicked".into())));
                let _ = tx.send(result);
            });
        if let Err(e) = spawned {
            return Err(Error::io("<work thread>", e));
        }
        loop {
            match rx.recv_timeout(PROGRESS_EVERY) {
                Ok(result) => return result,
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(Error::Panicked(
                        "the work thread ended without a result".into(),
                    ))
                }
                Err(mpsc::RecvTimeoutError::Timeout) => report(control.progress()),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_job_on_the_same_output_is_busy_until_the_first_ends() {
        let out = PathBuf::from("/nonexistent/zb-jobs-test/out.tar.gz");
        let first = Slot::acquire(Some(out.clone())).expect("first slot");
        assert!(matches!(
            Slot::acquire(Some(out.clone())),
            Err(Error::Busy(_))
        ));
        drop(first);
        assert!(Slot::acquire(Some(out)).is_ok());
    }

    #[test]
    fn a_panicking_work_is_an_error_and_progress_is_reported_meanwhile() {
        let ctl = JobControl::new();
        let mut beats = 0;
        let r: Result<()> = run_reporting(
            &ctl,
            |_| {
                std::thread::sleep(PROGRESS_EVERY * 3);
                panic!("boom")
            },
            |_| beats += 1,
        );
        assert!(matches!(r, Err(Error::Panicked(_))));
        assert!(beats >= 2, "{beats} progress reports");
    }
}
