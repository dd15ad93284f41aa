//! `zbackup`: the command-line face of backup_core. Exit status 0 on success; otherwise one
//! line `zbackup: <reason>: <message>` on stderr (sometimes a hint line after it) and status 1.
//! Usage errors (unknown option, missing or malformed value) are clap's `error: ...` with the
//! command's usage on stderr and status 2. Each command's arguments are a clap `Args` struct
//! next to its code in `cmd_*.rs`; its doc comment is the command's help.

mod cmd_archive;
mod cmd_bench;
mod cmd_crypto;
mod cmd_fuzz;
mod cmd_restore_check;

/// Counts heap bytes (two relaxed atomic adds per allocation) so `zbackup fuzz` can measure
/// the peak each input costs.
#[global_allocator]
static ALLOC: backup_core::fuzz::alloc::CountingAlloc = backup_core::fuzz::alloc::CountingAlloc;

use backup_core::Error;
use clap::{CommandFactory, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// Works on Zotonic mod_backup sets without a running Zotonic: archives, Z1 .enc files and
/// offline checks of backup sets.
#[derive(Parser)]
#[command(name = "zbackup", version, arg_required_else_help = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Archive(cmd_archive::ArchiveArgs),
    Verify(cmd_archive::VerifyArgs),
    List(cmd_archive::ListArgs),
    Extract(cmd_archive::ExtractArgs),
    Bench(cmd_bench::BenchArgs),
    Digest(DigestArgs),
    Encrypt(cmd_crypto::EncryptArgs),
    Decrypt(cmd_crypto::DecryptArgs),
    Hmac(cmd_crypto::HmacArgs),
    RestoreCheck(cmd_restore_check::RestoreCheckArgs),
    Fuzz(cmd_fuzz::FuzzArgs),
}

/// What a command ends in: `Ok(true)` success, `Ok(false)` a check failed (the command has
/// reported which), `Err` a failure reported here.
type Outcome = backup_core::Result<bool>;

fn main() -> ExitCode {
    let done = |r: backup_core::Result<()>| r.map(|()| true);
    let outcome: Outcome = match Cli::parse().command {
        Command::Archive(a) => done(cmd_archive::archive(a)),
        Command::Verify(a) => done(cmd_archive::verify(a)),
        Command::List(a) => done(cmd_archive::list(a)),
        Command::Extract(a) => done(cmd_archive::extract(a)),
        Command::Bench(a) => done(cmd_bench::bench(a)),
        Command::Digest(a) => done(digest(a)),
        Command::Encrypt(a) => done(cmd_crypto::encrypt(a)),
        Command::Decrypt(a) => done(cmd_crypto::decrypt(a)),
        Command::Hmac(a) => done(cmd_crypto::hmac(a)),
        Command::RestoreCheck(a) => cmd_restore_check::restore_check(a),
        Command::Fuzz(a) => cmd_fuzz::fuzz(a),
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("zbackup: {}: {}", e.reason(), e);
            if matches!(e, Error::WrongPassword) {
                eprintln!("zbackup: the backup password is in the admin: System > Config, mod_backup.backup_encrypt_password");
            }
            ExitCode::from(1)
        }
    }
}

/// A usage error that only shows after parsing (a value the core rejects, a missing argument
/// that depends on another): reported like clap's own, with `command`'s usage, status 2.
fn usage_error(command: &str, message: impl std::fmt::Display) -> ! {
    let mut cli = Cli::command();
    cli.build();
    let kind = clap::error::ErrorKind::ValueValidation;
    let err = match cli.find_subcommand_mut(command) {
        Some(sub) => sub.error(kind, message),
        None => Cli::command().error(kind, message),
    };
    err.exit()
}

/// print sha256, crc32 and size of each file as one JSON line
#[derive(clap::Args)]
struct DigestArgs {
    #[arg(value_name = "FILE", required = true)]
    files: Vec<PathBuf>,
}

fn digest(a: DigestArgs) -> backup_core::Result<()> {
    for f in &a.files {
        let d = backup_core::file_digest(f)?;
        let line = serde_json::json!({
            "file": f.to_string_lossy(), "sha256": d.sha256, "crc32": d.crc32, "size": d.size,
        });
        println!("{line}");
    }
    Ok(())
}
