//! Per-site zstd dictionaries for revision rows.
//!
//! The pages of one site share their keys, categories, HTML and vocabulary, and a stored row is
//! small (a keyframe a few KB, a delta tens of bytes): compressed alone, a row pays again for all
//! it shares with the others. A dictionary trained on the site's own rows holds what they share,
//! so each row stores only what is its own. The site keeps its dictionaries in its database
//! (`backup_revision_dict`), each under a small id that the rows written with it carry in their
//! header; a dictionary is never changed, and never deleted while a row names it.
//!
//! `Dictionary` is one prepared dictionary (decoder tables at once, encoder tables per
//! compression level when first used); `Dicts` the set a reader may need. `train` makes a
//! dictionary from sample payloads; `measure` tells what it would save.

use super::seal::{self, Kind};
use crate::term::Bytes;
use crate::{Error, Result};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock, RwLockReadGuard};
use zstd::zstd_safe::{CDict, DDict};

/// Ids are stored as a varint of at most two bytes in a row's header.
pub const MAX_ID: u32 = (1 << 14) - 1;
/// Dictionaries larger than this are refused (zstd's own trainer defaults to 110 KiB).
pub const MAX_BYTES: usize = 1 << 20;
/// The compression levels rows are written at (see `seal::level`), each with its encoder table.
pub const LEVELS: [i32; 4] = [15, 12, 9, 3];

/// A prepared dictionary.
pub struct Dictionary {
    id: u32,
    raw: Vec<u8>,
    ddict: DDict<'static>,
    cdicts: [OnceLock<Option<CDict<'static>>>; LEVELS.len()],
}

impl std::fmt::Debug for Dictionary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dictionary")
            .field("id", &self.id)
            .field("bytes", &self.raw.len())
            .finish()
    }
}

impl Dictionary {
    /// Prepares the dictionary stored under `id`. Bytes that are not a zstd dictionary (its
    /// magic, its own id, entropy tables zstd accepts) are `BadDictionary`.
    pub fn new(id: u32, raw: Vec<u8>) -> Result<Self> {
        let bad = |why: &str| Error::BadDictionary {
            id,
            reason: why.into(),
        };
        if id == 0 || id > MAX_ID {
            return Err(bad("the id is out of range"));
        }
        if raw.len() > MAX_BYTES {
            return Err(bad("it is larger than 1 MiB"));
        }
        if zstd::zstd_safe::get_dict_id_from_dict(&raw).is_none() {
            return Err(bad("it is not a zstd dictionary"));
        }
        let ddict = DDict::try_create(&raw).ok_or_else(|| bad("zstd refuses its tables"))?;
        Ok(Dictionary {
            id,
            raw,
            ddict,
            cdicts: Default::default(),
        })
    }

    pub fn id(&self) -> u32 {
        self.id
    }

    pub fn bytes(&self) -> &[u8] {
        &self.raw
    }

    pub(crate) fn ddict(&self) -> &DDict<'static> {
        &self.ddict
    }

    /// The encoder table for `LEVELS[i]`, made on first use (milliseconds at level 15).
    pub(crate) fn cdict(&self, i: usize) -> Result<&CDict<'static>> {
        let slot = self.cdicts.get(i).ok_or_else(|| Error::BadDictionary {
            id: self.id,
            reason: "no such compression level".into(),
        })?;
        slot.get_or_init(|| CDict::try_create(&self.raw, LEVELS[i]))
            .as_ref()
            .ok_or_else(|| Error::BadDictionary {
                id: self.id,
                reason: "zstd refuses it for compression".into(),
            })
    }

    /// Makes every encoder table now, so that no later save pays for it.
    pub fn warm(&self) -> Result<()> {
        (0..LEVELS.len()).try_for_each(|i| self.cdict(i).map(|_| ()))
    }
}

/// The dictionaries a codec call may use, by id.
#[derive(Default, Debug, Clone)]
pub struct Dicts {
    by_id: HashMap<u32, Arc<Dictionary>>,
}

impl Dicts {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn insert(&mut self, d: Arc<Dictionary>) {
        self.by_id.insert(d.id(), d);
    }

    pub fn contains(&self, id: u32) -> bool {
        self.by_id.contains_key(&id)
    }

    /// The dictionary `id`, or `MissingDictionary` naming it.
    pub fn get(&self, id: u32) -> Result<&Arc<Dictionary>> {
        self.by_id.get(&id).ok_or(Error::MissingDictionary(id))
    }

    pub fn ids(&self) -> Vec<u32> {
        let mut ids: Vec<u32> = self.by_id.keys().copied().collect();
        ids.sort_unstable();
        ids
    }
}

/// The dictionaries of one site, shared by every thread that reads or writes its rows: a new
/// dictionary is prepared outside the lock (milliseconds to warm), then added.
#[derive(Default, Debug)]
pub struct SharedDicts(RwLock<Dicts>);

impl SharedDicts {
    /// The set as it is now (a poisoned lock is taken as it is: inserts are whole or not made).
    pub fn read(&self) -> RwLockReadGuard<'_, Dicts> {
        self.0.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Prepares dictionary `id` (`Dictionary::new`), and with `warm` its encoder tables, and
    /// adds it to the set.
    pub fn put(&self, id: u32, raw: Vec<u8>, warm: bool) -> Result<()> {
        let d = Dictionary::new(id, raw)?;
        if warm {
            d.warm()?;
        }
        let mut dicts = self.0.write().unwrap_or_else(|p| p.into_inner());
        dicts.insert(Arc::new(d));
        Ok(())
    }
}

/// A dictionary of at most `max_bytes` trained on `samples` (uncompressed row payloads).
/// Too few or too small samples are `InvalidArgument`.
pub fn train(samples: &[Vec<u8>], max_bytes: usize) -> Result<Vec<u8>> {
    if samples.len() < 16 {
        return Err(Error::InvalidArgument(format!(
            "{} samples are too few to train a dictionary",
            samples.len()
        )));
    }
    let max_bytes = max_bytes.clamp(1024, MAX_BYTES);
    zstd::dict::from_samples(samples, max_bytes)
        .map_err(|e| Error::InvalidArgument(format!("dictionary training: {e}")))
}

/// The bytes `payloads` take stored as rows of `kind`, written with `dict` (or none).
pub fn measure(payloads: &[(Kind, Vec<u8>)], dict: Option<&Dictionary>) -> Result<u64> {
    payloads.iter().try_fold(0u64, |total, (kind, p)| {
        Ok(total + seal::seal(*kind, p, dict)?.len() as u64)
    })
}

/// Candidate and current dictionary compared on held-out payloads.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "nif", derive(rustler::NifMap), rustler(encode))]
pub struct Trained {
    /// The new dictionary.
    pub dict: Bytes,
    /// Bytes of the training samples and of the held-out payloads, uncompressed.
    pub sample_bytes: u64,
    pub holdout_raw: u64,
    /// The held-out payloads stored with the current dictionary (none when there is none),
    /// and with the new one.
    pub holdout_current: u64,
    pub holdout_candidate: u64,
}

/// A dictionary takes a sixteenth of the bytes it is trained on (zstd advises samples of 10 to
/// 100 times its size), and at least this much.
const SAMPLE_BYTES_PER_BYTE: usize = 16;
const MIN_TRAINED_BYTES: usize = 4096;

/// Trains a dictionary on `train_set` (of a sixteenth of its bytes, within 4 KiB and
/// `max_bytes`) and measures it against `current` on `holdout`.
pub fn train_and_measure(
    train_set: &[(Kind, Vec<u8>)],
    holdout: &[(Kind, Vec<u8>)],
    current: Option<&Dictionary>,
    max_bytes: usize,
) -> Result<Trained> {
    let samples: Vec<Vec<u8>> = train_set.iter().map(|(_, p)| p.clone()).collect();
    let total: usize = samples.iter().map(Vec::len).sum();
    let size =
        (total / SAMPLE_BYTES_PER_BYTE).clamp(MIN_TRAINED_BYTES, max_bytes.max(MIN_TRAINED_BYTES));
    let dict = train(&samples, size)?;
    // Any id will do for measuring (it only names the dictionary in row headers); 1 takes
    // the one byte most ids will.
    let candidate = Dictionary::new(1, dict.clone())?;
    Ok(Trained {
        sample_bytes: samples.iter().map(|s| s.len() as u64).sum(),
        holdout_raw: holdout.iter().map(|(_, p)| p.len() as u64).sum(),
        holdout_current: measure(holdout, current)?,
        holdout_candidate: measure(holdout, Some(&candidate))?,
        dict: Bytes(dict),
    })
}
