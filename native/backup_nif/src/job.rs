//! Long work off the schedulers: a job runs on a Rust thread of its own and reports by message.
//!
//! `spawn` returns at once (well under 1 ms on a normal scheduler). The job thread sends
//! `{backup_archive, Ref, ProgressMap}` to the progress pid at most every 250 ms and, when the work ends,
//! `{backup_job_done, Ref, Result}` to the owner. The job is cancelled when `cancel` is
//! called, when its owner process dies (a monitor on the resource), and when the handle is
//! garbage collected unfinished (Drop). Cleanup of partial output is the work's own duty: it
//! sees the cancel flag and removes its `.tmp` before it returns `Error::Cancelled`.

use crate::term;
use backup_core::archive::{JobControl, Progress};
use backup_core::Error;
use rustler::env::{OwnedEnv, SavedTerm};
use rustler::{Encoder, Env, LocalPid, Monitor, NifResult, Resource, ResourceArc, Term};
use std::collections::HashSet;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// At most this many jobs run at once; more get `busy`. Each job has a thread of its own plus
/// the work's pool, so this bounds threads and memory whatever the callers do.
pub const MAX_JOBS: usize = 8;
/// The nice value of job threads where SCHED_IDLE is not allowed (0 = normal, 19 = lowest).
const JOB_NICE: libc::c_int = 19;
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

static RUNNING: AtomicUsize = AtomicUsize::new(0);
/// Output files being written by a running job: a second job on the same file would share
/// its `.tmp` and corrupt both, so it gets `busy`.
static OUTPUTS: Mutex<Option<HashSet<PathBuf>>> = Mutex::new(None);

mod atoms {
    rustler::atoms! { backup_archive, backup_job_done, running, done, undefined }
}

/// The handle Erlang holds.
pub struct Job {
    control: Arc<JobControl>,
    finished: Arc<AtomicBool>,
}

#[rustler::resource_impl]
impl Resource for Job {
    fn down<'a>(&'a self, _env: Env<'a>, _pid: LocalPid, _monitor: Monitor) {
        self.control.cancel();
    }
}

impl Drop for Job {
    fn drop(&mut self) {
        if !self.finished.load(Ordering::Acquire) {
            self.control.cancel();
        }
    }
}

impl Job {
    pub fn cancel(&self) {
        self.control.cancel();
    }

    pub fn is_finished(&self) -> bool {
        self.finished.load(Ordering::Acquire)
    }

    pub fn progress(&self) -> Progress {
        self.control.progress()
    }
}

/// Releases the job slot and the output claim when the job thread ends, however it ends.
struct Slot {
    output: Option<PathBuf>,
}

impl Slot {
    fn acquire(output: Option<PathBuf>) -> Result<Slot, Error> {
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

/// How a finished job's value becomes a term; called on the job thread in a process-free env.
pub type Encode<T> = for<'a> fn(Env<'a>, T) -> NifResult<Term<'a>>;

pub struct Spec<T> {
    pub owner: LocalPid,
    pub progress_to: Option<LocalPid>,
    /// The output file the job writes, claimed for its lifetime.
    pub output: Option<PathBuf>,
    pub control: Arc<JobControl>,
    pub encode: Encode<T>,
}

/// The spec of a job started by the calling process, reporting progress to `progress`
/// (`undefined` or a pid) as `{backup_archive, Ref, Map}`.
pub fn spec<T>(
    env: Env<'_>,
    progress: Term<'_>,
    output: Option<PathBuf>,
    encode: Encode<T>,
) -> NifResult<Spec<T>> {
    Ok(Spec {
        owner: env.pid(),
        progress_to: decode_progress(progress)?,
        output,
        control: Arc::new(JobControl::new()),
        encode,
    })
}

/// `undefined` or a pid.
fn decode_progress(term: Term<'_>) -> NifResult<Option<LocalPid>> {
    if let Ok(a) = term.decode::<rustler::Atom>() {
        if a == atoms::undefined() {
            return Ok(None);
        }
    }
    term.decode::<LocalPid>().map(Some)
}

/// Starts `work` on a thread of its own. Returns `{error, {busy, _}}`-worthy errors at once.
pub fn spawn<'a, T, W>(
    env: Env<'a>,
    reference: Term<'a>,
    spec: Spec<T>,
    work: W,
) -> Result<ResourceArc<Job>, Error>
where
    T: Send + 'static,
    W: FnOnce(&JobControl) -> Result<T, Error> + Send + 'static,
{
    let slot = Slot::acquire(spec.output.clone())?;
    let finished = Arc::new(AtomicBool::new(false));
    let job = ResourceArc::new(Job {
        control: spec.control.clone(),
        finished: finished.clone(),
    });
    // Without the monitor an owner that dies would leave the work running.
    if env.monitor(&job, &spec.owner).is_none() {
        return Err(Error::InvalidArgument(
            "the owner process is not alive".into(),
        ));
    }
    let ref_env = OwnedEnv::new();
    let saved_ref = ref_env.save(reference);
    let thread_ctl = spec.control.clone();
    std::thread::Builder::new()
        .name("zb-job".into())
        .spawn(move || {
            lower_priority();
            let result = run_reporting(&spec, &ref_env, &saved_ref, move || {
                catch_unwind(AssertUnwindSafe(|| work(&thread_ctl)))
                    .unwrap_or_else(|_| Err(Error::Panicked("the job panicked".into())))
            });
            finished.store(true, Ordering::Release);
            // Free the slot and the output before the owner hears of the result, so it can
            // start the next job on the same file at once.
            drop(slot);
            let mut msg_env = OwnedEnv::new();
            let encode = spec.encode;
            // A dead owner cannot receive; nothing else is left to do then.
            let _ = msg_env.send_and_clear(&spec.owner, |env| {
                let r = ref_env.run(|renv| saved_ref.load(renv).in_env(env));
                let value = match result {
                    Ok(v) => match encode(env, v) {
                        Ok(t) => term::ok(env, t),
                        Err(_) => term::error(env, &Error::Panicked("encoding failed".into())),
                    },
                    Err(e) => term::error(env, &e),
                };
                (atoms::backup_job_done(), r, value).encode(env)
            });
        })
        .map_err(|e| Error::io("<job thread>", e))?;
    Ok(job)
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

/// Runs `work` on a scoped thread and reports progress from this one until it ends.
fn run_reporting<T: Send, F>(
    spec: &Spec<T>,
    ref_env: &OwnedEnv,
    saved_ref: &SavedTerm,
    work: F,
) -> Result<T, Error>
where
    F: FnOnce() -> Result<T, Error> + Send,
{
    std::thread::scope(|scope| {
        let (tx, rx) = mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name("zb-work".into())
            .spawn_scoped(scope, move || {
                let _ = tx.send(work());
            });
        if let Err(e) = spawned {
            return Err(Error::io("<work thread>", e));
        }
        let mut msg_env = OwnedEnv::new();
        loop {
            match rx.recv_timeout(PROGRESS_EVERY) {
                Ok(result) => return result,
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(Error::Panicked(
                        "the work thread ended without a result".into(),
                    ))
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if let Some(pid) = spec.progress_to {
                        let p = spec.control.progress();
                        let _ = msg_env.send_and_clear(&pid, |env| {
                            let r = ref_env.run(|renv| saved_ref.load(renv).in_env(env));
                            (atoms::backup_archive(), r, progress_map(env, p)).encode(env)
                        });
                    }
                }
            }
        }
    })
}

pub fn progress_map(env: Env<'_>, p: Progress) -> Term<'_> {
    let pairs = [
        ("files_done", p.files_done.encode(env)),
        ("files_total", p.files_total.encode(env)),
        ("bytes_done", p.bytes_done.encode(env)),
        ("bytes_total", p.bytes_total.encode(env)),
    ];
    term::map(env, &pairs).unwrap_or_else(|_| atoms::running().encode(env))
}

/// Spawns the job: `{ok, Job}`, or `{error, {busy, _}}` etc. when it could not start.
pub fn start<'a, T, W>(env: Env<'a>, reference: Term<'a>, spec: Spec<T>, work: W) -> Term<'a>
where
    T: Send + 'static,
    W: FnOnce(&JobControl) -> Result<T, Error> + Send + 'static,
{
    match spawn(env, reference, spec, work) {
        Ok(job) => term::ok(env, job.encode(env)),
        Err(e) => term::error(env, &e),
    }
}

/// Number of jobs running now (for tests and the admin page).
pub fn running() -> usize {
    RUNNING.load(Ordering::Acquire)
}

#[rustler::nif]
fn job_cancel(job: ResourceArc<Job>) -> rustler::Atom {
    job.cancel();
    term::atom_ok()
}

#[rustler::nif]
fn job_progress(env: Env<'_>, job: ResourceArc<Job>) -> Term<'_> {
    let state = if job.is_finished() {
        atoms::done()
    } else {
        atoms::running()
    };
    (state, progress_map(env, job.progress())).encode(env)
}

#[rustler::nif]
fn job_count() -> usize {
    running()
}
