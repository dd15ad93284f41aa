//! The backup engine of zotonic_mod_backup.
//!
//! Everything that can run without an Erlang VM lives here, so it can be tested with plain
//! `cargo test` and used by the `zbackup` command-line tool as well as the NIF.

pub mod archive;
pub mod crypto;
pub mod digest;
pub mod dump;
pub mod error;
pub mod fsutil;
/// The hostile-input harness of `zbackup fuzz` (and its counting allocator): the CLI's only.
#[cfg(feature = "cli")]
pub mod fuzz;
pub mod jobs;
pub mod revision;
pub mod setcheck;
pub mod term;

pub use digest::{file_digest, Digest};
pub use error::{Error, Result};
