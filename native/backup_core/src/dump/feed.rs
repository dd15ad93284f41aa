//! A dump inflated into a command's standard input (psql), between a prologue and an epilogue:
//! the restore's single transaction (`BEGIN ... <dump> ... COMMIT`).
//!
//! The epilogue (which commits) is written only when the whole dump streamed through and passed
//! `DumpRule` as it went by: the file may have changed since the restore checked it. On any
//! failure before that -- a damaged or unfinished dump, a cancel, the deadline -- the command's
//! process group is killed before its stdin is closed, so psql can never take the end of its
//! input for the end of a complete script; the server then rolls the open transaction back.
//! A command that stops by itself (psql with ON_ERROR_STOP on a failing statement) ends the
//! feed at once and is reported with its exit status and the end of its messages.

use super::check::{self, DumpReport};
use super::{process, CommandSpec};
use crate::archive::JobControl;
use crate::error::{Error, Result};
use crate::term::Bytes;
use std::io::{self, Write};
use std::path::PathBuf;
use std::process::{ChildStdin, Stdio};
use std::time::Instant;

/// What to run and what to feed it.
#[derive(Debug, Clone, Default)]
pub struct FeedSpec {
    pub command: CommandSpec,
    /// The `.sql.gz` to inflate into the command.
    pub dump: PathBuf,
    /// Written before the dump (e.g. `BEGIN; ALTER SCHEMA ... RENAME ...`).
    pub prologue: Vec<u8>,
    /// Written after the dump, only when it passed the rule (e.g. `...; COMMIT; \q`).
    pub epilogue: Vec<u8>,
}

/// A feed that the command took whole and exited 0 on: the dump's `DumpReport` and what the
/// command said.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "nif", derive(rustler::NifMap), rustler(encode))]
pub struct FeedSummary {
    pub schema: Bytes,
    pub size: u64,
    /// The end of the command's messages (psql's warnings).
    pub output: String,
    pub seconds: f64,
}

/// Why the feed stopped before the epilogue.
enum Stop {
    /// The command closed its input (it exited): its status says why.
    Gone,
    Failed(Error),
}

impl From<Error> for Stop {
    fn from(e: Error) -> Self {
        Stop::Failed(e)
    }
}

/// Runs the command and feeds it; `Error::CommandFailed` when it exits non-zero or before it
/// took all its input, `bad_dump`/`no_schema` when the dump fails the rule on the way.
pub fn feed(spec: &FeedSpec, ctl: &JobControl) -> Result<FeedSummary> {
    let started = Instant::now();
    // A dump that cannot be opened fails before the command starts.
    let mut sql = check::open(&spec.dump, ctl)?;
    let mut running = process::spawn(&spec.command, Stdio::piped(), Stdio::null())?;
    let Some(mut stdin) = running.child().stdin.take() else {
        running.kill();
        running.wait();
        return Err(Error::io(
            &spec.command.program,
            io::Error::other("no stdin pipe"),
        ));
    };
    let pgid = running.pgid();
    let fed = process::watched(pgid, ctl, || -> std::result::Result<DumpReport, Stop> {
        write(&mut stdin, &spec.prologue)?;
        let report = sql.stream(ctl, |block| write(&mut stdin, block))?;
        ctl.check()?;
        write(&mut stdin, &spec.epilogue)?;
        Ok(report)
    });
    let program = spec.command.program.display().to_string();
    match fed {
        Ok(report) => {
            // All input given: closing stdin lets psql finish (the epilogue ends with \q).
            drop(stdin);
            let ended = process::watched(pgid, ctl, || running.wait());
            if ended.status == Some(0) {
                ctl.add_files(1);
                Ok(FeedSummary {
                    schema: report.schema,
                    size: report.size,
                    output: ended.stderr,
                    seconds: started.elapsed().as_secs_f64(),
                })
            } else if let Some(stop) = ctl.stop_reason() {
                Err(stop)
            } else {
                Err(Error::CommandFailed {
                    program,
                    status: ended.status,
                    stderr: ended.stderr,
                })
            }
        }
        Err(Stop::Gone) => {
            drop(stdin);
            let ended = running.wait();
            Err(ctl.stop_reason().unwrap_or(Error::CommandFailed {
                program,
                status: ended.status,
                stderr: ended.stderr,
            }))
        }
        Err(Stop::Failed(e)) => {
            // Killed before its input ends: it cannot commit what it was given.
            running.kill();
            drop(stdin);
            running.wait();
            Err(e)
        }
    }
}

/// Writes to the command; a closed pipe means it exited.
fn write(stdin: &mut ChildStdin, data: &[u8]) -> std::result::Result<(), Stop> {
    match stdin.write_all(data) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Err(Stop::Gone),
        Err(e) => Err(Stop::Failed(Error::io("<stdin of the command>", e))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dump::testing::{cancel_ends, sh};
    use std::path::Path;
    use std::time::Duration;

    const SQL: &[u8] = b"--\n-- PostgreSQL database dump\n--\nCREATE SCHEMA \"public\";\n\
        CREATE TABLE \"public\".\"t\" (\"id\" int);\n--\n-- PostgreSQL database dump complete\n--\n";

    fn gz(dir: &Path, body: &[u8]) -> PathBuf {
        let p = dir.join("site-1.sql.gz");
        let mut e = flate2::write::GzEncoder::new(
            std::fs::File::create(&p).expect("create"),
            flate2::Compression::fast(),
        );
        e.write_all(body).expect("write");
        e.finish().expect("finish");
        p
    }

    /// A stand-in for psql: copies its input to `out`, then appends "EOF" once its input
    /// ended (which a killed command never does).
    fn recorder(out: &Path) -> CommandSpec {
        CommandSpec {
            program: "sh".into(),
            args: vec![
                "-c".into(),
                "cat > \"$0\"; echo EOF >> \"$0\"".into(),
                out.as_os_str().to_owned(),
            ],
            env: vec![],
        }
    }

    fn spec(command: CommandSpec, dump: PathBuf) -> FeedSpec {
        FeedSpec {
            command,
            dump,
            prologue: b"BEGIN;\n".to_vec(),
            epilogue: b"COMMIT;\n".to_vec(),
        }
    }

    #[test]
    fn a_good_dump_reaches_the_command_between_prologue_and_epilogue() {
        let d = tempfile::tempdir().expect("tmp");
        let out = d.path().join("got.sql");
        let s = spec(recorder(&out), gz(d.path(), SQL));
        let r = feed(&s, &JobControl::new()).expect("fed");
        assert_eq!(*r.schema, *b"public");
        let mut expected = b"BEGIN;\n".to_vec();
        expected.extend_from_slice(SQL);
        expected.extend_from_slice(b"COMMIT;\nEOF\n");
        assert_eq!(std::fs::read(&out).expect("read"), expected);
    }

    #[test]
    fn an_unfinished_dump_never_gets_the_epilogue_nor_an_end_of_input() {
        let d = tempfile::tempdir().expect("tmp");
        let out = d.path().join("got.sql");
        let cut = SQL.len() - 20;
        let s = spec(recorder(&out), gz(d.path(), &SQL[..cut]));
        let e = feed(&s, &JobControl::new()).expect_err("refused");
        assert_eq!(e.reason(), "bad_dump");
        let got = std::fs::read(&out).unwrap_or_default();
        assert!(!got.ends_with(b"EOF\n"), "the command saw an end of input");
        assert!(!got.windows(7).any(|w| w == b"COMMIT;"), "epilogue sent");
    }

    #[test]
    fn a_dump_damaged_after_its_start_stops_the_feed_without_commit() {
        let d = tempfile::tempdir().expect("tmp");
        let out = d.path().join("got.sql");
        let big: Vec<u8> = SQL[..60]
            .iter()
            .copied()
            .chain((0..200_000u32).flat_map(|i| format!("INSERT {i};\n").into_bytes()))
            .chain(SQL[60..].iter().copied())
            .collect();
        let dump = gz(d.path(), &big);
        let len = std::fs::metadata(&dump).expect("meta").len();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&dump)
            .and_then(|f| f.set_len(len * 2 / 3))
            .expect("truncate");
        let e = feed(&spec(recorder(&out), dump), &JobControl::new()).expect_err("refused");
        assert_eq!(e.reason(), "bad_dump");
        let got = std::fs::read(&out).unwrap_or_default();
        assert!(!got.ends_with(b"EOF\n") && !got.windows(7).any(|w| w == b"COMMIT;"));
    }

    #[test]
    fn a_command_that_stops_on_an_error_is_command_failed_with_its_message() {
        let d = tempfile::tempdir().expect("tmp");
        let cmd = sh("head -c 10 >/dev/null; echo 'ERROR: relation does not exist' >&2; exit 3");
        let big: Vec<u8> = SQL[..60]
            .iter()
            .copied()
            .chain(std::iter::repeat_n(b'x', 4 << 20))
            .chain(SQL[60..].iter().copied())
            .collect();
        let e = feed(&spec(cmd, gz(d.path(), &big)), &JobControl::new()).expect_err("fails");
        assert_eq!(e.reason(), "command_failed");
        match e {
            Error::CommandFailed { status, stderr, .. } => {
                assert_eq!(status, Some(3));
                assert!(stderr.contains("relation does not exist"), "{stderr}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_missing_dump_fails_before_the_command_starts() {
        let d = tempfile::tempdir().expect("tmp");
        let out = d.path().join("got.sql");
        let s = spec(recorder(&out), d.path().join("missing.sql.gz"));
        let e = feed(&s, &JobControl::new()).expect_err("missing");
        assert_eq!(e.reason(), "enoent");
        assert!(!out.exists());
    }

    /// A command that takes no input (psql blocked on a lock): the feed blocks on the full pipe
    /// until a cancel kills the command's process group.
    #[test]
    fn cancel_ends_a_feed_blocked_on_a_command_that_reads_nothing() {
        let d = tempfile::tempdir().expect("tmp");
        let big: Vec<u8> = SQL[..60]
            .iter()
            .copied()
            .chain(std::iter::repeat_n(b'x', 8 << 20))
            .collect();
        let dump = gz(d.path(), &big);
        cancel_ends(|cmd, ctl| feed(&spec(cmd, dump), ctl));
    }

    /// All input taken, then the command hangs (a COMMIT waiting on a lock): the deadline kills it.
    #[test]
    fn the_deadline_ends_a_command_that_hangs_after_its_input() {
        let d = tempfile::tempdir().expect("tmp");
        let cmd = sh("cat >/dev/null; sleep 30");
        let ctl = JobControl::with_timeout(Duration::from_millis(300));
        let started = Instant::now();
        let e = feed(&spec(cmd, gz(d.path(), SQL)), &ctl).expect_err("timeout");
        assert_eq!(e.reason(), "timeout");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
    }
}
