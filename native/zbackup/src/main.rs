//! `zbackup`: the command-line face of backup_core. Exit status 0 on success; otherwise one
//! line `zbackup: <reason>: <message>` on stderr and status 1 (2 for usage errors).

mod cmd_crypto;

use std::path::Path;
use std::process::ExitCode;

const USAGE: &str = "usage: zbackup <command> [args]

commands:
  digest FILE...     print sha256, crc32 and size of each file as one JSON line
  encrypt [--password-file F] IN OUT
                     encrypt IN into OUT as a Z1 .enc file (Zotonic's format)
  decrypt [--password-file F] IN [OUT]
                     decrypt a Z1 .enc file (also Zotonic's); OUT defaults to IN without .enc;
                     password: --password-file F, else $ZBACKUP_PASSWORD, else a prompt
  help               this text";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("digest") if args.len() > 1 => run(digest(&args[1..])),
        Some("encrypt") => cmd_crypto::encrypt(&args[1..]),
        Some("decrypt") => cmd_crypto::decrypt(&args[1..]),
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
