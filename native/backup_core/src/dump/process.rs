//! External commands of the dump jobs (pg_dump, psql): started so that their exit status is
//! known inside the Erlang VM, killed as a group on cancel, their stderr's end kept.
//!
//! Inside the Erlang VM SIGCHLD is ignored, so the kernel reaps our children at once and
//! `wait` cannot see their exit status. A command therefore runs under `/bin/sh`, which (with
//! SIGCHLD back to default) waits for it and writes the status as the last line of stderr.

use super::CommandSpec;
use crate::archive::JobControl;
use crate::error::{Error, Result};
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// Most of a command's stderr that is kept for the error message.
const STDERR_KEEP: usize = 16 * 1024;
const STATUS_MARKER: &str = "zbackup-exit-status=";

/// A started command: the wrapper shell, leader of a process group of its own.
pub(super) struct Running {
    child: Child,
    pgid: libc::pid_t,
    stderr: Option<JoinHandle<Vec<u8>>>,
}

/// How a command ended: its exit status (None when killed or unknown) and its stderr's end.
pub(super) struct Ended {
    pub status: Option<i32>,
    pub stderr: String,
}

/// Starts `cmd` with the given stdin and stdout; stderr is collected (its end kept).
pub(super) fn spawn(cmd: &CommandSpec, stdin: Stdio, stdout: Stdio) -> Result<Running> {
    let program = resolve_program(&cmd.program)?;
    let mut command = Command::new("/bin/sh");
    command
        .arg("-c")
        .arg(format!(
            "\"$0\" \"$@\"; s=$?; printf '\\n{STATUS_MARKER}%d\\n' \"$s\" >&2; exit \"$s\""
        ))
        .arg(&program)
        .args(&cmd.args)
        .envs(cmd.env.iter().map(|(k, v)| (k, v)))
        .stdin(stdin)
        .stdout(stdout)
        .stderr(Stdio::piped());
    // SAFETY: the closure runs in the forked child before exec and only calls `signal`,
    // `setpgid` and reads errno, which are async-signal-safe; it touches no memory shared with
    // the parent. The own process group lets a cancel kill the shell and the command together,
    // so a child that could not get one is not started (the spawn fails with the errno).
    unsafe {
        command.pre_exec(|| {
            libc::signal(libc::SIGCHLD, libc::SIG_DFL);
            if libc::setpgid(0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command.spawn().map_err(|e| Error::io("/bin/sh", e))?;
    let stderr = child.stderr.take().map(|mut err| {
        std::thread::spawn(move || {
            let mut kept = Vec::new();
            let mut buf = [0u8; 4096];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                // Keep the end: that is where a tool says what went wrong.
                kept.extend_from_slice(&buf[..n]);
                if kept.len() > 2 * STDERR_KEEP {
                    kept.drain(..kept.len() - STDERR_KEEP);
                }
            }
            kept
        })
    });
    let pgid = child.id() as libc::pid_t;
    Ok(Running {
        child,
        pgid,
        stderr,
    })
}

impl Running {
    pub fn child(&mut self) -> &mut Child {
        &mut self.child
    }

    /// Kills the shell and the command (the whole process group) at once.
    pub fn kill(&mut self) {
        kill_group(self.pgid);
        let _ = self.child.kill();
    }

    pub fn pgid(&self) -> libc::pid_t {
        self.pgid
    }

    /// Waits for the command (its stdin must be closed or it must be killed first).
    pub fn wait(&mut self) -> Ended {
        let waited = self.child.wait().ok().and_then(|s| s.code());
        let bytes = self
            .stderr
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default();
        let (reported, stderr) = split_status(&bytes);
        Ended {
            status: reported.or(waited),
            stderr,
        }
    }
}

/// Runs `work` while a watcher kills the process group `pgid` as soon as `ctl` is cancelled or
/// its deadline passes: a command that hangs (pg_dump waiting on a lock, psql on a lock or a
/// full pipe) would otherwise block the job's reads, writes or wait forever.
pub(super) fn watched<T>(pgid: libc::pid_t, ctl: &JobControl, work: impl FnOnce() -> T) -> T {
    let finished = AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            while !finished.load(Ordering::Acquire) {
                if ctl.is_cancelled() {
                    kill_group(pgid);
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        let r = work();
        finished.store(true, Ordering::Release);
        r
    })
}

fn kill_group(pgid: libc::pid_t) {
    // SAFETY: kill takes no pointers; -pgid is the group made in pre_exec.
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    }
}

/// The program as a path: as given when it has a slash, else found on `PATH`; `enoent` when
/// there is no such file, so a missing pg_dump or psql is reported as such.
fn resolve_program(program: &Path) -> Result<PathBuf> {
    let missing = || Error::io(program, io::Error::from(io::ErrorKind::NotFound));
    if program.as_os_str().as_bytes().contains(&b'/') {
        return if program.is_file() {
            Ok(program.to_path_buf())
        } else {
            Err(missing())
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
        .ok_or_else(missing)
}

/// The exit status the wrapper shell reported, and the rest of stderr (its end, trimmed).
fn split_status(stderr: &[u8]) -> (Option<i32>, String) {
    let text = String::from_utf8_lossy(stderr);
    let (body, status) = match text.rfind(STATUS_MARKER) {
        Some(i) => (
            &text[..i],
            text[i + STATUS_MARKER.len()..].trim().parse::<i32>().ok(),
        ),
        None => (&text[..], None),
    };
    let body = body.trim();
    let start = body.len().saturating_sub(STDERR_KEEP);
    let start = (start..body.len())
        .find(|&i| body.is_char_boundary(i))
        .unwrap_or(body.len());
    (status, body[start..].to_string())
}
