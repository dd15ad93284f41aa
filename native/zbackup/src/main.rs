//! `zbackup`: the command-line face of backup_core. Exit status 0 on success; otherwise one
//! line `zbackup: <reason>: <message>` on stderr and status 1 (2 for usage errors).

mod cmd_archive;
mod cmd_bench;
mod cmd_crypto;
mod cmd_fuzz;
mod cmd_restore_check;

/// Counts heap bytes (two relaxed atomic adds per allocation) so `zbackup fuzz` can measure
/// the peak each input costs.
#[global_allocator]
static ALLOC: backup_core::fuzz::alloc::CountingAlloc = backup_core::fuzz::alloc::CountingAlloc;

use std::path::Path;
use std::process::ExitCode;

const USAGE: &str = "usage: zbackup <command> [args]

commands:
  archive [--format gz|zst] [--threads N] [--level N] [--chunk-size BYTES] [--no-fsync] [--reuse PREV.tar.gz] SRC_DIR OUT_FILE
                     tar SRC_DIR (like tar -C SRC_DIR -c .) into OUT_FILE; prints a JSON summary;
                     --reuse copies the compressed bytes of files unchanged since PREV (checked
                     first; cloned where the file system shares extents), compresses the rest
  verify FILE        check a .tar.gz/.tar.zst: stream checksum, tar structure, per-file crc32s
  list FILE          one JSON line per entry
  extract [--overwrite] FILE DEST_DIR
                     safe extract via a staging dir beside DEST_DIR
  bench [--size MiB] [--dir D] [--runs N] [--threads N] [--incremental] [--reflink]
                     compare with tar -czf, tar|pigz, tar|zstd and tar -cf on generated trees;
                     --incremental: sets with --reuse (unchanged, 5% changed) beside tar -czf,
                     tar -cf and cp; --reflink: 11 sets on a loop-mounted XFS image
  digest FILE...     print sha256, crc32 and size of each file as one JSON line
  encrypt [--password-file F] IN OUT
                     encrypt IN into OUT as a Z1 .enc file (Zotonic's format)
  decrypt [--password-file F] [--hmac HEX] IN [OUT]
                     decrypt a Z1 .enc file (also Zotonic's); OUT defaults to IN without .enc;
                     with --hmac, only if the stored file has that HMAC-SHA256 (backup.json);
                     password: --password-file F, else $ZBACKUP_PASSWORD, else a prompt
  hmac [--password-file F] FILE.enc...
                     the HMAC-SHA256 of each stored .enc file, as backup.json keeps it
  restore-check [--password-file F] BACKUP_DIR|backup.json|FILE...
                     check backup sets offline as a restore would read them: sha256 against
                     backup.json, decryptability of .enc files, gzip/pg_dump and archive integrity
  fuzz [--inputs N] [--seed S] [--dir D] [--timeout-ms T]
                     fuzz the archive reader (default 100000 inputs); prints the counts as JSON;
                     exit 1 if any input crashed, hung, used too much memory, made verify and
                     extract disagree or extracted something else than verify vouched for
  fuzz --write-bombs DIR [--full]
                     write the hostile archives of issue 14 into DIR (--full: at full scale)
  help               this text";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `zbackup CMD --help` (or -h): that command's part of the usage, on stdout, status 0.
    if let Some(cmd) = args.first() {
        if args[1..].iter().any(|a| a == "--help" || a == "-h") {
            return match command_help(cmd) {
                Some(text) => {
                    println!("usage: zbackup {text}");
                    ExitCode::SUCCESS
                }
                None => {
                    eprintln!("{USAGE}");
                    ExitCode::from(2)
                }
            };
        }
    }
    match args.first().map(String::as_str) {
        Some("digest") if args.len() > 1 => run(digest(&args[1..])),
        Some("archive") => cmd_archive::exit(cmd_archive::archive(&args[1..])),
        Some("verify") => cmd_archive::exit(cmd_archive::verify(&args[1..])),
        Some("list") => cmd_archive::exit(cmd_archive::list(&args[1..])),
        Some("extract") => cmd_archive::exit(cmd_archive::extract(&args[1..])),
        Some("bench") => cmd_archive::exit(cmd_bench::bench(&args[1..])),
        Some("encrypt") => cmd_crypto::encrypt(&args[1..]),
        Some("decrypt") => cmd_crypto::decrypt(&args[1..]),
        Some("hmac") => cmd_crypto::hmac(&args[1..]),
        Some("restore-check") => cmd_restore_check::restore_check(&args[1..]),
        Some("fuzz") => match cmd_fuzz::fuzz(&args[1..]) {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::from(1),
            Err(e) => cmd_archive::exit(Err(e)),
        },
        Some("help") | Some("--help") | Some("-h") => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

/// The lines of USAGE that describe `cmd`: its synopsis and the indented lines under it.
fn command_help(cmd: &str) -> Option<String> {
    let mut lines = USAGE.lines().skip_while(|l| {
        let l = l.trim_start();
        !(l == cmd || l.starts_with(&format!("{cmd} ")))
    });
    let first = lines.next()?.trim();
    // One-line entries hold the description after a run of spaces.
    let (synopsis, description) = match first.find("  ") {
        Some(i) => (&first[..i], Some(first[i..].trim())),
        None => (first, None),
    };
    let rest = lines
        .take_while(|l| l.starts_with("                "))
        .map(str::trim);
    let body: Vec<&str> = description.into_iter().chain(rest).collect();
    Some(format!("{synopsis}\n  {}", body.join("\n  ")))
}

fn run(result: backup_core::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("zbackup: {}: {}", e.reason(), e);
            ExitCode::from(1)
        }
    }
}

fn digest(files: &[String]) -> backup_core::Result<()> {
    for f in files {
        let d = backup_core::file_digest(Path::new(f))?;
        let line =
            serde_json::json!({"file": f, "sha256": d.sha256, "crc32": d.crc32, "size": d.size});
        println!("{line}");
    }
    Ok(())
}
