//! `zbackup restore-check [--password-file F] PATH...`: checks backup sets offline, the way a
//! restore would read them, and prints a report. PATH is a backup directory, its `backup.json`,
//! or files of a set (the `backup.json` beside them supplies the recorded hashes).

use crate::cmd_crypto::password;
use backup_core::archive::JobControl;
use backup_core::setcheck::{self, FileReport};
use backup_core::{Error, Result};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// One file to check, with the set it belongs to and the hash the index recorded.
struct Item {
    set: String,
    path: PathBuf,
    expected: Option<String>,
}

pub fn restore_check(args: &[String]) -> ExitCode {
    let mut password_file = None;
    let mut paths = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--password-file" => match it.next() {
                Some(f) => password_file = Some(PathBuf::from(f)),
                None => return usage(),
            },
            s if s.starts_with("--") => return usage(),
            s => paths.push(PathBuf::from(s)),
        }
    }
    if paths.is_empty() {
        return usage();
    }
    match run(&paths, password_file.as_deref()) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("zbackup: {}: {}", e.reason(), e);
            ExitCode::from(1)
        }
    }
}

fn usage() -> ExitCode {
    eprintln!("usage: zbackup restore-check [--password-file F] BACKUP_DIR|backup.json|FILE...");
    ExitCode::from(2)
}

fn run(paths: &[PathBuf], password_file: Option<&Path>) -> Result<bool> {
    let mut items = Vec::new();
    let mut needs_password = false;
    for p in paths {
        for item in items_for(p)? {
            needs_password |= item.path.to_string_lossy().ends_with(".enc");
            items.push(item);
        }
    }
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
            println!("set {}", item.set);
            current_set = Some(item.set.clone());
        }
        let name = item
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        match setcheck::check_file(
            &item.path,
            item.expected.as_deref(),
            password.as_deref(),
            &ctl,
        ) {
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
    format!("{} bytes; {hash}; {}", r.size, r.detail)
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
        let index = read_index(&index_path)?;
        if index.is_empty() {
            return Err(Error::InvalidArgument(format!(
                "{}: no backup sets in the index",
                index_path.display()
            )));
        }
        return Ok(index
            .into_iter()
            .flat_map(|(set, files)| {
                files.into_iter().map(move |(file, hash)| Item {
                    set: set.clone(),
                    path: dir.join(file),
                    expected: hash,
                })
            })
            .collect());
    }
    // A single file: look for it in the index beside it.
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
    let index_path = dir.unwrap_or(Path::new(".")).join("backup.json");
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if index_path.is_file() {
        for (set, files) in read_index(&index_path)? {
            if let Some((_, hash)) = files.into_iter().find(|(f, _)| *f == name) {
                return Ok(vec![Item {
                    set,
                    path: path.to_path_buf(),
                    expected: hash,
                }]);
            }
        }
    }
    Ok(vec![Item {
        set: "(no index)".into(),
        path: path.to_path_buf(),
        expected: None,
    }])
}

type Index = BTreeMap<String, Vec<(String, Option<String>)>>;

/// Set name -> [(file, recorded sha256)], from Zotonic's backup.json (contract section 3).
fn read_index(path: &Path) -> Result<Index> {
    let text = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let json: Value = serde_json::from_slice(&text)
        .map_err(|e| Error::InvalidArgument(format!("{}: not valid JSON: {e}", path.display())))?;
    let Value::Object(sets) = json else {
        return Err(Error::InvalidArgument(format!(
            "{}: not a backup index (expected an object of sets)",
            path.display()
        )));
    };
    let mut index = Index::new();
    for (set, entry) in sets {
        let mut files = Vec::new();
        for (key, hash_key) in [
            ("database", "database_hash"),
            ("config_files", "config_files_hash"),
            ("files", "files_hash"),
        ] {
            if let Some(Value::String(file)) = entry.get(key) {
                // Names come from the index: never let one point outside the directory.
                if file.contains('/') || file.starts_with('.') {
                    return Err(Error::UnsafePath(file.clone()));
                }
                let hash = entry
                    .get(hash_key)
                    .and_then(Value::as_str)
                    .map(str::to_string);
                files.push((file.clone(), hash));
            }
        }
        index.insert(set, files);
    }
    Ok(index)
}
