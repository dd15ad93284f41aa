//! How long work runs beside its caller (the NIF's jobs): the engine's bound on running jobs,
//! the claim on output files, the threads' priority, the progress beat and the order of the
//! end. The NIF glue only turns a job's events into Erlang messages.

use crate::archive::{JobControl, Progress};
use crate::{Error, Result};
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
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

/// What a job tells its caller, from the job's thread.
pub enum Event<T> {
    /// Every `PROGRESS_EVERY` while the work runs.
    Progress(Progress),
    /// Once, at the end: after `JobControl::is_finished` turned true and the job gave back its
    /// slot and its claim on its output, so the caller can start the next job on the same
    /// output at once.
    Done(Result<T>),
}

/// Starts `work` on a thread of its own, at the lowest priority, and tells `events` how it goes.
/// `busy` when `MAX_JOBS` run or another job writes `output`.
pub fn spawn<T, W, E>(
    output: Option<PathBuf>,
    control: Arc<JobControl>,
    work: W,
    mut events: E,
) -> Result<()>
where
    T: Send + 'static,
    W: FnOnce(&JobControl) -> Result<T> + Send + 'static,
    E: FnMut(Event<T>) + Send + 'static,
{
    let slot = Slot::acquire(output)?;
    std::thread::Builder::new()
        .name("zb-job".into())
        .spawn(move || {
            lower_priority();
            let result = run_reporting(&control, work, |p| events(Event::Progress(p)));
            control.finish();
            drop(slot);
            events(Event::Done(result));
        })
        .map_err(|e| Error::io("<job thread>", e))?;
    Ok(())
}

/// A job's place among the running ones and its claim on its output; both are given back when
/// it is dropped, however the job ends.
struct Slot {
    output: Option<PathBuf>,
}

impl Slot {
    fn acquire(output: Option<PathBuf>) -> Result<Slot> {
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
fn lower_priority() {
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
fn run_reporting<T, W>(control: &JobControl, work: W, mut report: impl FnMut(Progress)) -> Result<T>
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
    fn a_spawned_job_is_finished_and_has_freed_its_output_when_it_says_done() {
        let out = PathBuf::from("/nonexistent/zb-jobs-test/spawned.tar.gz");
        let control = Arc::new(JobControl::new());
        let (tx, rx) = mpsc::channel();
        let seen = Arc::clone(&control);
        spawn(
            Some(out.clone()),
            control,
            |_| Ok(7),
            move |e| {
                if let Event::Done(r) = e {
                    let free = Slot::acquire(Some(out.clone())).is_ok();
                    let _ = tx.send((r.ok(), seen.is_finished(), free));
                }
            },
        )
        .expect("spawned");
        let got = rx.recv_timeout(Duration::from_secs(10)).expect("done");
        assert_eq!(got, (Some(7), true, true));
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
