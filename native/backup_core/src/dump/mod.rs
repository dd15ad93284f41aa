//! Database dumps, both ways, and the one rule for "is this dump good".
//!
//! - `gzip_command`: a command's standard output (pg_dump) streamed through the parallel gzip
//!   writer into `OUT`, with the sha256 of the output computed while writing. The output is
//!   written to `OUT.tmp` and renamed only when complete; on any error, a failing command or a
//!   cancel, the `.tmp` is removed and `OUT` is untouched.
//! - `check` (check.rs): the rule a restore and `zbackup restore-check` both apply to a
//!   `.sql.gz`.
//! - `feed` (feed.rs): a dump inflated into psql's standard input between a prologue and an
//!   epilogue (the restore's transaction), the epilogue sent only when the streamed dump passed
//!   the same rule.

mod check;
mod feed;
mod process;

pub use check::{check, DumpReport, DumpRule};
pub use feed::{feed, FeedSpec, FeedSummary};

use crate::archive::{
    tmp_path, GzOptions, JobControl, ParallelGzWriter, Sha256Writer, Summary, TmpFile,
};
use crate::error::{Error, Result};
use std::ffi::OsString;
use std::fs;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Instant;

const BLOCK: usize = 256 * 1024;

/// A command to run: program, arguments and extra environment (e.g. `PGPASSFILE`).
#[derive(Debug, Clone, Default)]
pub struct CommandSpec {
    pub program: PathBuf,
    pub args: Vec<OsString>,
    pub env: Vec<(OsString, OsString)>,
}

/// Runs `cmd` and gzips its standard output into `out`. A non-zero exit fails with
/// `Error::CommandFailed`, carrying the end of the command's stderr. The summary is an
/// archive's of one file.
pub fn gzip_command(
    cmd: &CommandSpec,
    out: &Path,
    opts: GzOptions,
    ctl: &JobControl,
) -> Result<Summary> {
    let mut running = process::spawn(cmd, Stdio::null(), Stdio::piped())?;
    let Some(stdout) = running.child().stdout.take() else {
        running.kill();
        running.wait();
        return Err(Error::io(&cmd.program, io::Error::other("no stdout pipe")));
    };
    let result = process::watched(running.pgid(), ctl, || {
        gzip_reader(stdout, &cmd.program, out, opts, ctl)
    });
    if result.is_err() {
        running.kill();
    }
    let ended = running.wait();
    // Checked before the rename: a failed command never replaces (or removes) an existing OUT.
    let written = result?;
    if ended.status != Some(0) {
        return Err(Error::CommandFailed {
            program: cmd.program.display().to_string(),
            status: ended.status,
            stderr: ended.stderr,
        });
    }
    let summary = written.commit(out)?;
    ctl.add_files(1);
    Ok(summary)
}

/// A complete, fsynced `OUT.tmp` not yet renamed: dropped, it is removed.
struct Written {
    tmp: PathBuf,
    guard: TmpFile,
    summary: Summary,
}

impl Written {
    /// Renames the tmp file into place.
    fn commit(self, out: &Path) -> Result<Summary> {
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
        summary: Summary {
            files: 1,
            bytes_in: stats.bytes_in,
            bytes_out,
            sha256,
            skipped: Vec::new(),
            seconds: started.elapsed().as_secs_f64(),
            reuse: None,
        },
    })
}

/// What the dump tests share: commands and the cancel check.
#[cfg(test)]
pub(super) mod testing {
    use super::CommandSpec;
    use crate::archive::JobControl;
    use crate::Result;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    /// `sh -c script`.
    pub fn sh(script: &str) -> CommandSpec {
        CommandSpec {
            program: "sh".into(),
            args: vec!["-c".into(), script.into()],
            env: vec![],
        }
    }

    /// Runs `work` on a command that reads and writes nothing (`sleep 30`) and cancels it after
    /// 200 ms: it must end `cancelled` within 5 s.
    pub fn cancel_ends<T: std::fmt::Debug>(
        work: impl FnOnce(CommandSpec, &JobControl) -> Result<T>,
    ) {
        let ctl = Arc::new(JobControl::new());
        let canceller = {
            let ctl = ctl.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(200));
                ctl.cancel();
            })
        };
        let sleeper = CommandSpec {
            program: "sleep".into(),
            args: vec!["30".into()],
            env: vec![],
        };
        let started = Instant::now();
        let e = work(sleeper, &ctl).expect_err("cancelled");
        canceller.join().expect("join");
        assert_eq!(e.reason(), "cancelled");
        let took = started.elapsed();
        assert!(took < Duration::from_secs(5), "{took:?}");
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{cancel_ends, sh};
    use super::*;
    use std::process::Command;

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
    fn gzip_command_streams_stdout_of_the_command() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("dump.sql.gz");
        let cmd = CommandSpec {
            env: vec![("ZB_X".into(), "x".into())],
            ..sh("for i in $(seq 1 20000); do echo \"row $i $ZB_X\"; done")
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
        let cmd = sh("echo partial; echo 'FATAL: password authentication failed' >&2; exit 1");
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
        cancel_ends(|cmd, ctl| gzip_command(&cmd, &out, GzOptions::default(), ctl));
        assert!(!out.exists() && !tmp_path(&out).exists());
    }

    #[test]
    fn cancelled_dump_removes_tmp_and_kills_the_command() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("dump.sql.gz");
        let ctl = JobControl::new();
        ctl.cancel();
        let cmd = sh("yes row");
        let e = gzip_command(&cmd, &out, GzOptions::default(), &ctl).expect_err("cancelled");
        assert_eq!(e.reason(), "cancelled");
        assert!(!out.exists());
        assert!(!tmp_path(&out).exists());
    }
}
