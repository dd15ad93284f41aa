//! Jobs as Erlang sees them: a `*_start` NIF returns `{ok, Job}` at once; the work runs on a
//! thread of its own (`backup_core::jobs` sets its bounds and priority) and sends
//! `{backup_archive, Ref, ProgressMap}` to the progress pid every 250 ms and
//! `{backup_job_done, Ref, Result}` to its owner at the end. The job is cancelled by `cancel`,
//! by its owner's death (a monitor on the resource), and when the handle is garbage collected
//! unfinished; the work then removes its `.tmp` and returns `Error::Cancelled`.

use crate::term;
use backup_core::archive::{JobControl, Progress};
use backup_core::jobs::{self, Slot};
use backup_core::Error;
use rustler::env::OwnedEnv;
use rustler::Term;
use rustler::{Atom, Encoder, Env, LocalPid, Monitor, NifMap, NifResult, Resource, ResourceArc};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod atoms {
    rustler::atoms! { backup_archive, backup_job_done, running, done }
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

/// What a job needs besides its work: the reference its messages carry, the pid that gets
/// progress (`undefined` or a pid), the file it writes (claimed while it runs) and its deadline.
pub struct Start<'a> {
    reference: Term<'a>,
    progress: Term<'a>,
    output: Option<PathBuf>,
    timeout: Option<Duration>,
}

impl<'a> Start<'a> {
    pub fn new(reference: Term<'a>, progress: Term<'a>) -> Self {
        Start {
            reference,
            progress,
            output: None,
            timeout: None,
        }
    }

    /// The job writes `output`: a second job on it gets `busy` while this one runs.
    pub fn writing(self, output: &Path) -> Self {
        let output = Some(output.to_path_buf());
        Start { output, ..self }
    }

    /// The job stops itself with `{error, {timeout, _}}` after `timeout`.
    pub fn within(self, timeout: Option<Duration>) -> Self {
        Start { timeout, ..self }
    }
}

/// `#{files_done, files_total, bytes_done, bytes_total}`.
#[derive(NifMap)]
#[rustler(encode)]
struct ProgressMap {
    files_done: u64,
    files_total: u64,
    bytes_done: u64,
    bytes_total: u64,
}

impl From<Progress> for ProgressMap {
    fn from(p: Progress) -> Self {
        let Progress {
            files_done,
            files_total,
            bytes_done,
            bytes_total,
        } = p;
        ProgressMap {
            files_done,
            files_total,
            bytes_done,
            bytes_total,
        }
    }
}

/// Starts `work` for the calling process: `{ok, Job}`, or `{error, {busy, _}}` etc. when it
/// could not start.
pub fn start<'a, T, W>(env: Env<'a>, job: Start<'a>, work: W) -> NifResult<Term<'a>>
where
    T: Encoder + Send + 'static,
    W: FnOnce(&JobControl) -> Result<T, Error> + Send + 'static,
{
    let progress_to = match term::is_undefined(job.progress) {
        true => None,
        false => Some(job.progress.decode::<LocalPid>()?),
    };
    let control = Arc::new(JobControl::new());
    if let Some(t) = job.timeout {
        control.set_deadline(Instant::now() + t);
    }
    let started = spawn(env, job.reference, progress_to, job.output, control, work);
    Ok(term::reply(started).encode(env))
}

fn spawn<'a, T, W>(
    env: Env<'a>,
    reference: Term<'a>,
    progress_to: Option<LocalPid>,
    output: Option<PathBuf>,
    control: Arc<JobControl>,
    work: W,
) -> Result<ResourceArc<Job>, Error>
where
    T: Encoder + Send + 'static,
    W: FnOnce(&JobControl) -> Result<T, Error> + Send + 'static,
{
    let slot = Slot::acquire(output)?;
    let finished = Arc::new(AtomicBool::new(false));
    let job = ResourceArc::new(Job {
        control: control.clone(),
        finished: finished.clone(),
    });
    let owner = env.pid();
    // Without the monitor an owner that dies would leave the work running.
    if env.monitor(&job, &owner).is_none() {
        return Err(Error::InvalidArgument(
            "the owner process is not alive".into(),
        ));
    }
    let ref_env = OwnedEnv::new();
    let saved_ref = ref_env.save(reference);
    let mut msg_env = OwnedEnv::new();
    // Sends `{Tag, Ref, Value}` to `to`; a dead receiver is nothing to act on.
    let mut send = move |to: &LocalPid, tag: Atom, value: &dyn Fn(Env) -> Term| {
        let _ = msg_env.send_and_clear(to, |env| {
            let r = ref_env.run(|renv| saved_ref.load(renv).in_env(env));
            (tag, r, value(env)).encode(env)
        });
    };
    std::thread::Builder::new()
        .name("zb-job".into())
        .spawn(move || {
            jobs::lower_priority();
            let result = jobs::run_reporting(&control, work, |p| {
                if let Some(pid) = &progress_to {
                    send(pid, atoms::backup_archive(), &|env| {
                        ProgressMap::from(p).encode(env)
                    });
                }
            });
            finished.store(true, Ordering::Release);
            // Free the slot and the output before the owner hears of the result, so it can
            // start the next job on the same file at once.
            drop(slot);
            let reply = term::reply(result);
            send(&owner, atoms::backup_job_done(), &|env| {
                // Encoding panics only when the VM cannot allocate the reply.
                let encode = std::panic::AssertUnwindSafe(|| reply.encode(env));
                let encoded = std::panic::catch_unwind(encode);
                encoded.unwrap_or_else(|_| {
                    term::error(env, Error::Panicked("encoding the result failed".into()))
                })
            });
        })
        .map_err(|e| Error::io("<job thread>", e))?;
    Ok(job)
}

#[rustler::nif]
fn job_cancel(job: ResourceArc<Job>) -> Atom {
    job.control.cancel();
    term::atom_ok()
}

/// `job_progress(Job) -> {running | done, ProgressMap}`.
#[rustler::nif]
fn job_progress(job: ResourceArc<Job>) -> (Atom, ProgressMap) {
    let state = match job.finished.load(Ordering::Acquire) {
        true => atoms::done(),
        false => atoms::running(),
    };
    (state, job.control.progress().into())
}

/// Number of jobs running now (for tests and the admin page).
#[rustler::nif]
fn job_count() -> usize {
    jobs::running()
}
