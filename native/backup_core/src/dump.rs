//! Compressed dumps: a command's standard output (pg_dump) or any reader streamed through the
//! parallel gzip writer into `OUT`, with the sha256 of the output computed while writing.
//!
//! The output is written to `OUT.tmp` and renamed only when complete; on any error, a failing
//! command or a cancel, the `.tmp` is removed and `OUT` is untouched.

use crate::archive::{tmp_path, GzOptions, JobControl, ParallelGzWriter, Sha256Writer, TmpFile};
use crate::error::{Error, Result};
use std::ffi::OsString;
use std::fs;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Most of a failing command's stderr that is kept for the error message.
const STDERR_KEEP: usize = 16 * 1024;
const BLOCK: usize = 256 * 1024;

/// What a finished dump holds.
#[derive(Debug, Clone, PartialEq)]
pub struct DumpSummary {
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Lower-case hex sha256 of the compressed output file.
    pub sha256: String,
    pub seconds: f64,
}

/// A command to run: program, arguments and extra environment (e.g. `PGPASSFILE`).
#[derive(Debug, Clone, Default)]
pub struct CommandSpec {
    pub program: PathBuf,
    pub args: Vec<OsString>,
    pub env: Vec<(OsString, OsString)>,
}

/// Gzips `input` into `out`.
pub fn gzip_file(
    input: &Path,
    out: &Path,
    opts: GzOptions,
    ctl: &JobControl,
) -> Result<DumpSummary> {
    let file = crate::fsutil::open_regular(input)?;
    let total = file.metadata().map(|m| m.len()).unwrap_or(0);
    ctl.set_totals(1, total);
    let summary = gzip_reader(file, input, out, opts, ctl)?.commit(out)?;
    ctl.add_files(1);
    Ok(summary)
}

/// Runs `cmd` and gzips its standard output into `out`. A non-zero exit fails with
/// `Error::CommandFailed`, carrying the end of the command's stderr.
///
/// Inside the Erlang VM SIGCHLD is ignored, so the kernel reaps our children at once and
/// `wait` cannot see their exit status. The command therefore runs under `/bin/sh`, which (with
/// SIGCHLD back to default) waits for it and writes the status as the last line of stderr.
pub fn gzip_command(
    cmd: &CommandSpec,
    out: &Path,
    opts: GzOptions,
    ctl: &JobControl,
) -> Result<DumpSummary> {
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
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: the closure runs in the forked child before exec and only calls `signal` and
    // `setpgid`, which are async-signal-safe; it touches no memory shared with the parent.
    // The own process group lets a cancel kill the shell and the command together.
    unsafe {
        command.pre_exec(|| {
            libc::signal(libc::SIGCHLD, libc::SIG_DFL);
            libc::setpgid(0, 0);
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
    let Some(stdout) = child.stdout.take() else {
        kill(&mut child);
        return Err(Error::io(&cmd.program, io::Error::other("no stdout pipe")));
    };
    let pgid = child.id() as libc::pid_t;
    let finished = AtomicBool::new(false);
    let result = std::thread::scope(|scope| {
        // A command that hangs without output (pg_dump waiting on a lock) would block the read
        // below forever: on cancel the whole process group is killed, which ends the read.
        scope.spawn(|| {
            while !finished.load(Ordering::Acquire) {
                if ctl.is_cancelled() {
                    // SAFETY: kill takes no pointers; -pgid is the group made in pre_exec.
                    unsafe {
                        libc::kill(-pgid, libc::SIGKILL);
                    }
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        let r = gzip_reader(stdout, &cmd.program, out, opts, ctl);
        finished.store(true, Ordering::Release);
        r
    });
    if result.is_err() {
        kill(&mut child);
    }
    let waited = child.wait().ok().and_then(|s| s.code());
    let stderr_bytes = stderr.and_then(|h| h.join().ok()).unwrap_or_default();
    let (reported, stderr_text) = split_status(&stderr_bytes);
    // Checked before the rename: a failed command never replaces (or removes) an existing OUT.
    let written = result?;
    let status = reported.or(waited);
    if status != Some(0) {
        return Err(Error::CommandFailed {
            program: cmd.program.display().to_string(),
            status,
            stderr: stderr_text,
        });
    }
    let summary = written.commit(out)?;
    ctl.add_files(1);
    Ok(summary)
}

/// The program as a path: as given when it has a slash, else found on `PATH`; `enoent` when
/// there is no such file, so a missing pg_dump is reported as such.
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

const STATUS_MARKER: &str = "zbackup-exit-status=";

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

fn kill(child: &mut Child) {
    let _ = child.kill();
}

/// A complete, fsynced `OUT.tmp` not yet renamed: dropped, it is removed.
struct Written {
    tmp: PathBuf,
    guard: TmpFile,
    summary: DumpSummary,
}

impl Written {
    /// Renames the tmp file into place.
    fn commit(self, out: &Path) -> Result<DumpSummary> {
        fs::rename(&self.tmp, out).map_err(|e| Error::io(out, e))?;
        self.guard.disarm();
        Ok(self.summary)
    }
}

/// Streams `input` through gzip into `out.tmp` (fsynced, not yet renamed). `source` names the
/// input in errors.
fn gzip_reader<R: Read>(
    mut input: R,
    source: &Path,
    out: &Path,
    opts: GzOptions,
    ctl: &JobControl,
) -> Result<Written> {
    let started = Instant::now();
    let tmp = tmp_path(out);
    let guard = TmpFile::new(tmp.clone());
    // O_EXCL|O_NOFOLLOW: never written through a symlink planted at OUT.tmp
    let file = crate::fsutil::create_tmp(&tmp)?;
    let hashed = Sha256Writer::new(BufWriter::with_capacity(BLOCK, file));
    let mut gz = ParallelGzWriter::new(hashed, opts).map_err(|e| Error::io(&tmp, e))?;
    let mut buf = vec![0u8; BLOCK];
    loop {
        ctl.check()?;
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io(source, e)),
        };
        gz.write_all(&buf[..n]).map_err(|e| Error::io(&tmp, e))?;
        ctl.add_bytes(n as u64);
    }
    // The input may have ended because a cancel killed the command.
    ctl.check()?;
    let (hashed, stats) = gz.finish().map_err(|e| Error::io(&tmp, e))?;
    let (mut writer, sha256, bytes_out) = hashed.finish();
    writer.flush().map_err(|e| Error::io(&tmp, e))?;
    let file = writer
        .into_inner()
        .map_err(|e| Error::io(&tmp, e.into_error()))?;
    file.sync_all().map_err(|e| Error::io(&tmp, e))?;
    Ok(Written {
        tmp,
        guard,
        summary: DumpSummary {
            bytes_in: stats.bytes_in,
            bytes_out,
            sha256,
            seconds: started.elapsed().as_secs_f64(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gunzip(path: &Path) -> Vec<u8> {
        let out = Command::new("gzip")
            .arg("-dc")
            .arg(path)
            .output()
            .expect("gzip runs");
        assert!(out.status.success(), "gzip -dc failed");
        out.stdout
    }

    #[test]
    fn gzip_file_output_is_read_by_gnu_gzip_and_hash_matches() {
        let dir = tempfile::tempdir().expect("tempdir");
        let input = dir.path().join("in.sql");
        let data: Vec<u8> = (0..3_000_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        std::fs::File::create(&input)
            .and_then(|mut f| f.write_all(&data))
            .expect("write");
        let out = dir.path().join("out.sql.gz");
        let ctl = JobControl::new();
        let s = gzip_file(&input, &out, GzOptions::default(), &ctl).expect("gzip");
        assert_eq!(gunzip(&out), data);
        assert_eq!(s.sha256, crate::file_digest(&out).expect("digest").sha256);
        assert_eq!(s.bytes_in, data.len() as u64);
        assert!(!tmp_path(&out).exists());
    }

    #[test]
    fn gzip_command_streams_stdout_of_the_command() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("dump.sql.gz");
        let cmd = CommandSpec {
            program: "sh".into(),
            args: vec![
                "-c".into(),
                "for i in $(seq 1 20000); do echo \"row $i $ZB_X\"; done".into(),
            ],
            env: vec![("ZB_X".into(), "x".into())],
        };
        gzip_command(&cmd, &out, GzOptions::default(), &JobControl::new()).expect("dump");
        let text = String::from_utf8(gunzip(&out)).expect("utf8");
        assert!(text.starts_with("row 1 x\n"));
        assert!(text.ends_with("row 20000 x\n"));
    }

    #[test]
    fn failing_command_leaves_no_output_and_reports_stderr() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("dump.sql.gz");
        let cmd = CommandSpec {
            program: "sh".into(),
            args: vec![
                "-c".into(),
                "echo partial; echo 'FATAL: password authentication failed' >&2; exit 1".into(),
            ],
            env: vec![],
        };
        let e =
            gzip_command(&cmd, &out, GzOptions::default(), &JobControl::new()).expect_err("fails");
        assert_eq!(e.reason(), "command_failed");
        assert!(e.to_string().contains("password authentication failed"));
        assert!(!out.exists());
        // Last night's dump under the same name survives a failed one, untouched.
        fs::write(&out, b"last night").expect("write");
        gzip_command(&cmd, &out, GzOptions::default(), &JobControl::new()).expect_err("fails");
        assert_eq!(fs::read(&out).expect("read"), b"last night");
        assert!(!tmp_path(&out).exists());
    }

    #[test]
    fn missing_program_is_enoent_before_anything_runs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cmd = CommandSpec {
            program: "/nonexistent/pg_dump".into(),
            ..Default::default()
        };
        let e = gzip_command(
            &cmd,
            &dir.path().join("x.gz"),
            GzOptions::default(),
            &JobControl::new(),
        )
        .expect_err("fails");
        assert_eq!(e.reason(), "enoent");
    }

    #[test]
    fn cancel_kills_a_command_that_hangs_without_output() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("dump.sql.gz");
        let ctl = std::sync::Arc::new(JobControl::new());
        let canceller = {
            let ctl = ctl.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(200));
                ctl.cancel();
            })
        };
        let cmd = CommandSpec {
            program: "sleep".into(),
            args: vec!["30".into()],
            env: vec![],
        };
        let started = std::time::Instant::now();
        let e = gzip_command(&cmd, &out, GzOptions::default(), &ctl).expect_err("cancelled");
        canceller.join().expect("join");
        assert_eq!(e.reason(), "cancelled");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        assert!(!out.exists() && !tmp_path(&out).exists());
    }

    #[test]
    fn cancelled_dump_removes_tmp_and_kills_the_command() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("dump.sql.gz");
        let ctl = JobControl::new();
        ctl.cancel();
        let cmd = CommandSpec {
            program: "sh".into(),
            args: vec!["-c".into(), "yes row".into()],
            env: vec![],
        };
        let e = gzip_command(&cmd, &out, GzOptions::default(), &ctl).expect_err("cancelled");
        assert_eq!(e.reason(), "cancelled");
        assert!(!out.exists());
        assert!(!tmp_path(&out).exists());
    }
}
