//! Jobs as Erlang sees them: a `*_start` NIF returns `{ok, Job}` at once; the work runs on a
//! thread of its own (`backup_core::jobs::spawn` sets its bounds, priority and beat) and sends
//! `{backup_archive, Ref, Progress}` to the progress pid every 250 ms and
//! `{backup_job_done, Ref, Result}` to its owner at the end. The job is cancelled by `cancel`,
//! by its owner's death (a monitor on the resource), and when the handle is garbage collected
//! unfinished; the work then removes its `.tmp` and returns `Error::Cancelled`.

use crate::term;
use backup_core::archive::{JobControl, Progress};
use backup_core::jobs::{self, Event};
use backup_core::Error;
use rustler::env::OwnedEnv;
use rustler::{Atom, Encoder, Env, LocalPid, Monitor, NifResult, Resource, ResourceArc, Term};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

rustler::atoms! { backup_archive, backup_job_done, running, done }

/// Why a macro: the job NIFs differ only in their own arguments, the file they write and their
/// work, and share the frame around that (the caller's env, the trailing `Ref` and
/// `ProgressPid` arguments, the start). `job_nif!` writes the frame once:
/// `#[rustler::nif] fn $name(Env, $args.., Ref, ProgressPid) -> {ok, Job} | {error, _}`, each
/// argument decoded as its type (`badarg` when it is not; by hand, as `#[rustler::nif]` takes
/// no type through a macro), then `$work` run as a job started with the builder calls given.
macro_rules! job_nif {
    ($(#[$doc:meta])* fn $name:ident($($arg:ident: $ty:ty),* $(,)?)
     $(.$method:ident($($param:expr),*))* => |$ctl:ident| $work:expr) => {
        $(#[$doc])*
        #[rustler::nif]
        #[allow(clippy::too_many_arguments)] // the Erlang function's arity
        fn $name<'a>(
            env: rustler::Env<'a>,
            $($arg: rustler::Term<'a>,)*
            reference: rustler::Term<'a>,
            progress: rustler::Term<'a>,
        ) -> rustler::NifResult<rustler::Term<'a>> {
            $(let $arg: $ty = $arg.decode()?;)*
            let progress: backup_core::term::OrUndefined<_> = progress.decode()?;
            let start = crate::job::Start::new(reference, progress.0)$(.$method($($param),*))*;
            crate::job::start(env, start, move |$ctl| $work)
        }
    };
}
pub(crate) use job_nif;

/// The handle Erlang holds.
pub struct Job(Arc<JobControl>);

#[rustler::resource_impl]
impl Resource for Job {
    fn down<'a>(&'a self, _env: Env<'a>, _pid: LocalPid, _monitor: Monitor) {
        self.0.cancel();
    }
}

impl Drop for Job {
    fn drop(&mut self) {
        if !self.0.is_finished() {
            self.0.cancel();
        }
    }
}

/// What a job needs besides its work: the reference its messages carry, the pid that gets
/// progress, the file it writes and its deadline.
pub struct Start<'a> {
    reference: Term<'a>,
    progress: Option<LocalPid>,
    output: Option<PathBuf>,
    timeout: Option<Duration>,
}

impl<'a> Start<'a> {
    pub fn new(reference: Term<'a>, progress: Option<LocalPid>) -> Self {
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

/// Starts `work` for the calling process: `{ok, Job}`, or `{error, {busy, _}}` etc. when it
/// could not start.
pub fn start<'a, T, W>(env: Env<'a>, job: Start<'a>, work: W) -> NifResult<Term<'a>>
where
    T: Encoder + Send + 'static,
    W: FnOnce(&JobControl) -> Result<T, Error> + Send + 'static,
{
    let control = Arc::new(JobControl::new());
    if let Some(t) = job.timeout {
        control.set_deadline(Instant::now() + t);
    }
    let handle = ResourceArc::new(Job(control.clone()));
    let owner = env.pid();
    // Without the monitor an owner that dies would leave the work running.
    if env.monitor(&handle, &owner).is_none() {
        let dead = Error::InvalidArgument("the owner process is not alive".into());
        return Ok((term::error(), dead).encode(env));
    }
    let ref_env = OwnedEnv::new();
    let saved_ref = ref_env.save(job.reference);
    let mut msg_env = OwnedEnv::new();
    // Sends `{Tag, Ref, Value}` to `to`; a dead receiver is nothing to act on.
    let mut send = move |to: &LocalPid, tag: Atom, value: &dyn Encoder| {
        let _ = msg_env.send_and_clear(to, |env| {
            let r = ref_env.run(|renv| saved_ref.load(renv).in_env(env));
            // Encoding panics only when the VM cannot allocate the value.
            let encode = std::panic::AssertUnwindSafe(|| value.encode(env));
            let value = std::panic::catch_unwind(encode).unwrap_or_else(|_| {
                let failed = Error::Panicked("encoding the result failed".into());
                (term::error(), failed).encode(env)
            });
            (tag, r, value).encode(env)
        });
    };
    let progress_to = job.progress;
    let started = jobs::spawn(job.output, control, work, move |event| match event {
        Event::Progress(p) => {
            if let Some(pid) = &progress_to {
                send(pid, backup_archive(), &p);
            }
        }
        Event::Done(result) => send(&owner, backup_job_done(), &result),
    });
    Ok(term::reply(started.map(|()| handle)).encode(env))
}

#[rustler::nif]
fn job_cancel(job: ResourceArc<Job>) -> Atom {
    job.0.cancel();
    term::ok()
}

/// `job_progress(Job) -> {running | done, Progress}`.
#[rustler::nif]
fn job_progress(job: ResourceArc<Job>) -> (Atom, Progress) {
    let state = match job.0.is_finished() {
        true => done(),
        false => running(),
    };
    (state, job.0.progress())
}

/// Number of jobs running now (for tests and the admin page).
#[rustler::nif]
fn job_count() -> usize {
    jobs::running()
}
