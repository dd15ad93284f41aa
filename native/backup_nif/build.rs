//! Names the NIF library after its build, so that a new build can be loaded beside a running
//! one (the "pseudo-reload" of `backup_nif.erl`).
//!
//! The BEAM refuses to load a second library into a module that already has one unless the
//! library has an `upgrade` callback, which rustler does not provide. So every build gets its
//! own Erlang module name, `backup_nif_<BUILD>`: `native/build_nif.sh` sets `BACKUP_NIF_BUILD`
//! to a hash of the sources, and `rustler::init!` (which takes only a literal) is written here
//! into `$OUT_DIR/nif_init.rs` for `lib.rs` to include. Without the variable (plain `cargo
//! build`/`test`/`clippy`) the build is named `dev`.

use std::env;
use std::fs;
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=BACKUP_NIF_BUILD");
    let build = env::var("BACKUP_NIF_BUILD").unwrap_or_else(|_| "dev".to_string());
    let valid = !build.is_empty()
        && build.len() <= 64
        && build
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !valid {
        panic!("BACKUP_NIF_BUILD must be 1-64 characters of [a-z0-9_], got {build:?}");
    }
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR for build scripts"));
    let code = format!(
        "rustler::init!(\"backup_nif_{build}\");\n\n\
         /// The build this library was made for (the suffix of its Erlang module name).\n\
         pub const BUILD: &str = \"{build}\";\n"
    );
    fs::write(out.join("nif_init.rs"), code).expect("write $OUT_DIR/nif_init.rs");
}
