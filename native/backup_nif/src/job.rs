//! Jobs as Erlang sees them: a `*_start` NIF returns `{ok, Job}` at once; the work runs on a
//! thread of its own (`backup_core::jobs::spawn` sets its bounds, priority and beat) and sends
//! `{backup_archive, Ref, Progress}` to the progress pid every 250 ms and
//! `{backup_job_done, Ref, Result}` to its owner at the end. The job is cancelled by `cancel`,
//! by its owner's death (a monitor on the resource), and when the handle is garbage collected
//! unfinished; the work then removes its `.tmp` and returns `Error::Cancelled`.

use backup_core::archive::{JobControl, Progress};
use backup_core::jobs::{self, Event};
use backup_core::term::{Done, Reply};
use backup_core::Error;
use rustler::env::OwnedEnv;
use rustler::{Atom, Encoder, Env, LocalPid, Monitor, Resource, ResourceArc, Term};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

rustler::atoms! { ok, backup_archive, backup_job_done, running, done }

/// Why a macro: the job NIFs differ only in their own arguments, the file they write, their
/// deadline and their work, and share the frame around that (the caller's env, the trailing
/// `Ref` and `ProgressPid` arguments, the start). `job_nif!` writes the frame once:
/// `#[rustler::nif] fn $name(Env, $args.., Ref, ProgressPid) -> {ok, Job} | {error, _}`, each
/// argument decoded as its type (`badarg` when it is not; by hand, as `#[rustler::nif]` takes
/// no type through a macro), then `$work` started as a job (`start`).
macro_rules! job_nif {
    ($(#[$doc:meta])* fn $name:ident($($arg:ident: $ty:ty),* $(,)?)
     writing: $output:expr, within: $timeout:expr => |$ctl:ident| $work:expr) => {
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
            Ok(crate::job::start(env, reference, progress.0, $output, $timeout, move |$ctl| $work))
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

/// A handle collected while its job runs cancels it (once the job ended, a cancel is a no-op).
impl Drop for Job {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// Starts `work` for the calling process: `{ok, Job}`, or `{error, {busy, _}}` etc. when it
/// could not start. It claims `output` while it runs (a second job on it is `busy`) and stops
/// itself after `timeout` (`{error, {timeout, _}}`).
pub fn start<'a, T, W>(
    env: Env<'a>,
    reference: Term<'a>,
    progress: Option<LocalPid>,
    output: Option<PathBuf>,
    timeout: Option<Duration>,
    work: W,
) -> Term<'a>
where
    T: Encoder + Send + 'static,
    W: FnOnce(&JobControl) -> Result<T, Error> + Send + 'static,
{
    let control = Arc::new(timeout.map_or_else(JobControl::new, JobControl::with_timeout));
    let handle = ResourceArc::new(Job(control.clone()));
    let owner = env.pid();
    // Without the monitor an owner that dies would leave the work running.
    if env.monitor(&handle, &owner).is_none() {
        let dead = Error::InvalidArgument("the owner process is not alive".into());
        return Done::from(Err(dead)).encode(env);
    }
    let ref_env = OwnedEnv::new();
    let saved_ref = ref_env.save(reference);
    let mut msg_env = OwnedEnv::new();
    // Sends `{Tag, Ref, Value}` to `to`; a dead receiver is nothing to act on.
    let mut send = move |to: &LocalPid, tag: Atom, value: &dyn Encoder| {
        let _ = msg_env.send_and_clear(to, |env| {
            let r = ref_env.run(|renv| saved_ref.load(renv).in_env(env));
            // Encoding panics only when the VM cannot allocate the value.
            let encode = std::panic::AssertUnwindSafe(|| value.encode(env));
            let value = std::panic::catch_unwind(encode).unwrap_or_else(|_| {
                let failed = Error::Panicked("encoding the result failed".into());
                Done::from(Err(failed)).encode(env)
            });
            (tag, r, value).encode(env)
        });
    };
    let started = jobs::spawn(output, control, work, move |event| match event {
        Event::Progress(p) => {
            if let Some(pid) = &progress {
                send(pid, backup_archive(), &p);
            }
        }
        Event::Done(result) => send(&owner, backup_job_done(), &result),
    });
    Reply::from(started.map(|()| handle)).encode(env)
}

#[rustler::nif]
fn job_cancel(job: ResourceArc<Job>) -> Atom {
    job.0.cancel();
    ok()
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
