//! `zbackup restore-check [--password-file F] PATH...`: checks backup sets offline, the way a
//! restore would read them, and prints a report. PATH is a backup directory, its `backup.json`,
//! or files of a set (the `backup.json` beside them supplies the recorded hashes).
//!
//! The index is read strictly: a set that is not an object, has no integer timestamp or names
//! no file, a file name that is not a string, a missing or malformed sha256, a malformed HMAC
//! and an unsafe file name are each a failure of that set or file (and make the exit status 1),
//! never a pass; the other sets and files are still checked.

use crate::cmd_crypto::{password, PasswordArgs};
use backup_core::archive::JobControl;
use backup_core::fsutil::display_name;
use backup_core::setcheck::{self, FileReport, HmacCheck};
use backup_core::{Error, Result};
use clap::Args;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The parts of a set, as backup.json names them.
const PARTS: [&str; 3] = ["database", "config_files", "files"];

/// One file to check, with the set it belongs to and what the index recorded for it.
struct Item {
    set: String,
    /// The file name (for the report).
    name: String,
    path: PathBuf,
    expected: Option<String>,
    hmac: Option<String>,
    /// Why the index entry itself fails (the file is then not read): reason and message.
    problem: Option<(&'static str, String)>,
}

fn problem_of(e: Error) -> Option<(&'static str, String)> {
    Some((e.reason(), e.to_string()))
}

/// check backup sets offline as a restore would read them
///
/// sha256 against backup.json, decryptability of .enc files, gzip/pg_dump and archive
/// integrity. Exit status 1 if any set or file fails.
#[derive(Args)]
pub struct RestoreCheckArgs {
    #[command(flatten)]
    password: PasswordArgs,
    #[arg(value_name = "BACKUP_DIR|backup.json|FILE", required = true)]
    paths: Vec<PathBuf>,
}

pub fn restore_check(a: RestoreCheckArgs) -> Result<bool> {
    run(&a.paths, a.password.password_file.as_deref())
}

fn run(paths: &[PathBuf], password_file: Option<&Path>) -> Result<bool> {
    let mut items = Vec::new();
    for p in paths {
        items.extend(items_for(p)?);
    }
    let needs_password = items
        .iter()
        .any(|i| i.problem.is_none() && i.path.to_string_lossy().ends_with(".enc"));
    // A password is only asked for when a file needs it; a given --password-file must be
    // readable, otherwise encrypted files without a password get a header check only.
    let password = match (needs_password, password_file) {
        (false, _) => None,
        (true, Some(file)) => Some(password(Some(file), true)?),
        (true, None) => password(None, true).ok(),
    };
    let ctl = JobControl::new();
    let (mut ok, mut failed, mut partial) = (0, 0, 0);
    let mut current_set = None;
    for item in &items {
        if current_set.as_deref() != Some(item.set.as_str()) {
            println!("set {}", display_name(item.set.as_bytes()));
            current_set = Some(item.set.clone());
        }
        let name = display_name(item.name.as_bytes());
        if let Some((reason, message)) = &item.problem {
            failed += 1;
            println!("  FAIL   {name}  {reason}: {message}");
            continue;
        }
        let result = setcheck::check_file(
            &item.path,
            item.expected.as_deref(),
            item.hmac.as_deref(),
            password.as_deref(),
            &ctl,
        );
        match result {
            Ok(r) => {
                let status = if r.content_checked { "ok" } else { "header" };
                if r.content_checked {
                    ok += 1;
                } else {
                    partial += 1;
                }
                println!("  {status:<6} {name}  {}", describe(&r));
            }
            Err(e) => {
                failed += 1;
                println!("  FAIL   {name}  {}: {e}", e.reason());
            }
        }
    }
    println!("restore-check: {ok} passed, {failed} failed, {partial} skipped");
    Ok(failed == 0)
}

fn describe(r: &FileReport) -> String {
    let hash = if r.hash_checked {
        "sha256 matches backup.json"
    } else {
        "not in a backup.json: hash not compared"
    };
    match r.hmac {
        HmacCheck::NotApplicable => format!("{} bytes; {hash}; {}", r.size, r.detail),
        h => format!("{} bytes; {hash}; {}; {}", r.size, h.describe(), r.detail),
    }
}

/// The files a PATH stands for: every file of every set for a directory or `backup.json`, the
/// file itself (with its set's recorded hash, when the index beside it names it) otherwise.
fn items_for(path: &Path) -> Result<Vec<Item>> {
    let index_path = if path.is_dir() {
        Some(path.join("backup.json"))
    } else if path.file_name().is_some_and(|n| n == "backup.json") {
        Some(path.to_path_buf())
    } else {
        None
    };
    if let Some(index_path) = index_path {
        let dir = index_path.parent().unwrap_or(Path::new("."));
        let items = read_index(&index_path, dir)?;
        if items.is_empty() {
            return Err(Error::InvalidArgument(format!(
                "{}: no backup sets in the index",
                index_path.display()
            )));
        }
        return Ok(items);
    }
    // A single file: look for it in the index beside it.
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
    let dir = dir.unwrap_or(Path::new("."));
    let index_path = dir.join("backup.json");
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if index_path.is_file() {
        if let Some(mut item) = read_index(&index_path, dir)?
            .into_iter()
            .find(|i| i.name == name)
        {
            item.path = path.to_path_buf();
            return Ok(vec![item]);
        }
    }
    Ok(vec![Item {
        set: "(no index)".into(),
        name,
        path: path.to_path_buf(),
        expected: None,
        hmac: None,
        problem: None,
    }])
}

/// Every file of every set of Zotonic's backup.json (contract section 3), each with what the
/// index recorded for it or why its entry is unusable. Only a file that is not a JSON object
/// at all is an error of the whole check.
fn read_index(path: &Path, dir: &Path) -> Result<Vec<Item>> {
    let text = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let json: Value = serde_json::from_slice(&text)
        .map_err(|e| Error::InvalidArgument(format!("{}: not valid JSON: {e}", path.display())))?;
    let Value::Object(sets) = json else {
        return Err(Error::InvalidArgument(format!(
            "{}: not a backup index (expected an object of sets)",
            path.display()
        )));
    };
    let sorted: BTreeMap<String, Value> = sets.into_iter().collect();
    let mut items = Vec::new();
    for (set, entry) in sorted {
        let set_problem = |msg: &str| Item {
            set: set.clone(),
            name: "(set)".into(),
            path: PathBuf::new(),
            expected: None,
            hmac: None,
            problem: problem_of(Error::InvalidArgument(msg.to_string())),
        };
        let Value::Object(entry) = entry else {
            items.push(set_problem("the set is not a JSON object"));
            continue;
        };
        if !entry.get("timestamp").is_some_and(Value::is_i64) {
            items.push(set_problem("the set has no integer timestamp"));
        }
        let before = items.len();
        for part in PARTS {
            if let Some(item) = part_item(&set, &entry, part, dir) {
                items.push(item);
            }
        }
        if items.len() == before {
            items.push(set_problem("the set names no file"));
        }
    }
    Ok(items)
}

/// The item of one part of a set, `None` when the set has no such part (absent or null).
fn part_item(set: &str, entry: &Map<String, Value>, part: &str, dir: &Path) -> Option<Item> {
    let problem = |name: String, e: Error| Item {
        set: set.to_string(),
        name,
        path: PathBuf::new(),
        expected: None,
        hmac: None,
        problem: problem_of(e),
    };
    let name = match entry.get(part) {
        None | Some(Value::Null) => return None,
        Some(Value::String(s)) => s.clone(),
        Some(other) => {
            return Some(problem(
                format!("({part})"),
                Error::InvalidArgument(format!("{part} is {other}, not a file name")),
            ))
        }
    };
    // Names come from the index: never let one point outside the directory.
    if name.is_empty() || name.contains('/') || name.starts_with('.') || name.contains('\0') {
        return Some(problem(
            name.clone(),
            Error::UnsafePath(format!("{part} names {}", display_name(name.as_bytes()))),
        ));
    }
    let hash_key = format!("{part}_hash");
    let expected = match entry.get(&hash_key) {
        Some(Value::String(h)) if h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()) => {
            h.to_ascii_lowercase()
        }
        Some(Value::String(_)) => {
            return Some(problem(
                name,
                Error::InvalidArgument(format!("{hash_key} is not a sha256 (64 hex digits)")),
            ))
        }
        None | Some(Value::Null) => {
            return Some(problem(
                name,
                Error::InvalidArgument(format!("the index records no sha256 ({hash_key})")),
            ))
        }
        Some(other) => {
            return Some(problem(
                name,
                Error::InvalidArgument(format!("{hash_key} is {other}, not a sha256")),
            ))
        }
    };
    let hmac_key = format!("{part}_hmac");
    let hmac = match entry.get(&hmac_key) {
        None | Some(Value::Null) => None,
        Some(Value::String(h)) if h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()) => {
            Some(h.to_ascii_lowercase())
        }
        Some(other) => {
            return Some(problem(
                name,
                Error::InvalidArgument(format!("{hmac_key} is {other}, not an HMAC-SHA256")),
            ))
        }
    };
    Some(Item {
        set: set.to_string(),
        path: dir.join(&name),
        name,
        expected: Some(expected),
        hmac,
        problem: None,
    })
}
