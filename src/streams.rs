//! Streams, their publish keys and playback settings: streams from config and from the API
//! (persisted in `<data_dir>/streams.json`), what the access decision asks of them
//! ([`StreamRegistry::stream_of_key`], [`StreamRegistry::playback`]), and the admin token.

use crate::config::{AuthMode, Config};
use anyhow::{Context, Result};
use rill_ingest::keys::SrtPassphrases;
use rill_media::access::{constant_time_eq, Denied, Playback};
use rill_media::path::is_valid_stream_name;
use rill_media::persist::write_private;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::{Mutex, PoisonError, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};
use thiserror::Error;

/// Where a stream was defined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    Config,
    Api,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StreamEntry {
    pub name: String,
    pub key: String,
    pub origin: Origin,
    pub created_at: u64,
    /// Who may watch (`None`: `[access] playback`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub playback: Option<Playback>,
}

#[derive(Debug, Error)]
pub enum RegistryError {
    #[error("invalid stream name (allowed: [A-Za-z0-9_-]{{1,64}})")]
    InvalidName,
    #[error("stream {0:?} already exists")]
    Exists(String),
    #[error("stream {0:?} does not exist")]
    NotFound(String),
    #[error("stream {0:?} is defined in the config file; change it there")]
    FromConfig(String),
    #[error("cannot store streams: {0}")]
    Store(#[from] std::io::Error),
}

/// The registry of known streams.
pub struct StreamRegistry {
    mode: AuthMode,
    file: PathBuf,
    /// Read by every publisher's authentication: held only to copy or swap the list, never
    /// across a file write.
    entries: RwLock<Vec<StreamEntry>>,
    /// Serializes changes (each is computed, stored, then swapped in), so the file write and
    /// its fsync happen outside `entries`.
    writer: Mutex<()>,
    /// `[[streams]] srt_passphrase` by stream name.
    srt_passphrases: std::collections::HashMap<String, String>,
}

impl StreamRegistry {
    pub fn load(config: &Config) -> Result<Self> {
        let file = config.server.data_dir.join("streams.json");
        let mut entries: Vec<StreamEntry> = config
            .streams
            .iter()
            .map(|s| StreamEntry {
                name: s.name.clone(),
                key: s.key.clone(),
                origin: Origin::Config,
                created_at: 0,
                playback: s.playback,
            })
            .collect();
        if file.exists() {
            let text = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
            let stored: Vec<StreamEntry> =
                serde_json::from_str(&text).with_context(|| format!("parsing {}", file.display()))?;
            for s in stored {
                if entries.iter().any(|e| e.name == s.name) {
                    tracing::warn!(stream = %s.name, "stream in streams.json is also in the config; the config wins");
                    continue;
                }
                entries.push(StreamEntry { origin: Origin::Api, ..s });
            }
        }
        let srt_passphrases =
            config.streams.iter().filter_map(|s| Some((s.name.clone(), s.srt_passphrase.clone()?))).collect();
        Ok(StreamRegistry {
            mode: config.auth.mode,
            file,
            entries: RwLock::new(entries),
            writer: Mutex::new(()),
            srt_passphrases,
        })
    }

    pub fn mode(&self) -> AuthMode {
        self.mode
    }

    pub fn list(&self) -> Vec<StreamEntry> {
        self.entries.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn get(&self, name: &str) -> Option<StreamEntry> {
        self.list().into_iter().find(|e| e.name == name)
    }

    pub fn create(&self, name: &str) -> Result<StreamEntry, RegistryError> {
        if !is_valid_stream_name(name) {
            return Err(RegistryError::InvalidName);
        }
        self.change(|entries| {
            if entries.iter().any(|e| e.name == name) {
                return Err(RegistryError::Exists(name.into()));
            }
            let entry = StreamEntry {
                name: name.into(),
                key: new_secret("sk_"),
                origin: Origin::Api,
                created_at: unix_now(),
                playback: None,
            };
            entries.push(entry.clone());
            Ok(entry)
        })
    }

    pub fn delete(&self, name: &str) -> Result<(), RegistryError> {
        self.change(|entries| {
            let index = api_entry(entries, name)?;
            entries.remove(index);
            Ok(())
        })
    }

    pub fn rotate_key(&self, name: &str) -> Result<StreamEntry, RegistryError> {
        self.change(|entries| {
            let index = api_entry(entries, name)?;
            entries[index].key = new_secret("sk_");
            Ok(entries[index].clone())
        })
    }

    /// Sets who may watch API-created stream `name` (stored with it).
    pub fn set_playback(&self, name: &str, playback: Playback) -> Result<StreamEntry, RegistryError> {
        self.change(|entries| {
            let index = api_entry(entries, name)?;
            entries[index].playback = Some(playback);
            Ok(entries[index].clone())
        })
    }

    /// Stream `name`'s own playback setting, if it has one.
    pub fn playback(&self, name: &str) -> Option<Playback> {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        entries.iter().find(|e| e.name == name).and_then(|e| e.playback)
    }

    /// The public name of the stream `key` publishes (open mode: the key is the name). Every
    /// key is compared in constant time.
    pub fn stream_of_key(&self, key: &str) -> Result<String, Denied> {
        match self.mode {
            AuthMode::Open if is_valid_stream_name(key) => Ok(key.to_string()),
            AuthMode::Open => Err(Denied::InvalidName),
            AuthMode::Keys => {
                let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
                // No early exit: the time taken does not say which entry matched.
                let found = entries.iter().fold(None, |found, e| {
                    let hit = constant_time_eq(e.key.as_bytes(), key.as_bytes());
                    found.or(hit.then(|| e.name.clone()))
                });
                found.ok_or(Denied::UnknownKey)
            }
        }
    }

    /// Applies `edit` to a copy of the entries, stores the API-created ones atomically (temp
    /// file + fsync + rename) and only then makes the copy current: readers never wait for the
    /// disk, and a failed write changes nothing.
    fn change<T>(
        &self,
        edit: impl FnOnce(&mut Vec<StreamEntry>) -> Result<T, RegistryError>,
    ) -> Result<T, RegistryError> {
        let _writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let mut next = self.list();
        let answer = edit(&mut next)?;
        let api: Vec<&StreamEntry> = next.iter().filter(|e| e.origin == Origin::Api).collect();
        let json = serde_json::to_vec_pretty(&api).map_err(std::io::Error::other)?;
        write_private(&self.file, &json)?;
        *self.entries.write().unwrap_or_else(PoisonError::into_inner) = next;
        Ok(answer)
    }
}

/// The index of API-created stream `name` (config streams are changed in the config file).
fn api_entry(entries: &[StreamEntry], name: &str) -> Result<usize, RegistryError> {
    let index = entries.iter().position(|e| e.name == name).ok_or_else(|| RegistryError::NotFound(name.into()))?;
    if entries[index].origin == Origin::Config {
        return Err(RegistryError::FromConfig(name.into()));
    }
    Ok(index)
}

impl SrtPassphrases for StreamRegistry {
    fn srt_passphrase(&self, name: &str) -> Option<String> {
        self.srt_passphrases.get(name).cloned()
    }
}

/// The admin token: from config, else `<data_dir>/admin_token`, else newly generated there.
/// Returns the token and whether it was just generated (to print it once).
pub fn admin_token(config: &Config) -> Result<(String, bool)> {
    if !config.auth.admin_token.is_empty() {
        return Ok((config.auth.admin_token.clone(), false));
    }
    let file = config.server.data_dir.join("admin_token");
    if let Ok(token) = std::fs::read_to_string(&file) {
        let token = token.trim().to_string();
        if !token.is_empty() {
            return Ok((token, false));
        }
    }
    let token = new_secret("");
    write_private(&file, token.as_bytes()).with_context(|| format!("storing admin token in {}", file.display()))?;
    Ok((token, true))
}

/// 128 random bits as hex, with a prefix.
fn new_secret(prefix: &str) -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the OS provides randomness");
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{prefix}{hex}")
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn config(mode: AuthMode, dir: &Path) -> Config {
        let mut c = Config::load(None, []).unwrap();
        c.auth.mode = mode;
        c.server.data_dir = dir.to_path_buf();
        c.streams = vec![crate::config::StreamConfig {
            name: "studio".into(),
            key: "secret-key-1".into(),
            record: None,
            transcode: None,
            ladder: None,
            srt_passphrase: None,
            playback: None,
        }];
        c
    }

    fn tempdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("rill-streams-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn keys_mode_maps_keys_to_names() {
        let dir = tempdir("keys");
        let reg = StreamRegistry::load(&config(AuthMode::Keys, &dir)).unwrap();
        assert_eq!(reg.stream_of_key("secret-key-1"), Ok("studio".into()));
        assert_eq!(reg.stream_of_key("studio"), Err(Denied::UnknownKey));
    }

    #[test]
    fn open_mode_key_is_the_name() {
        let dir = tempdir("open");
        let reg = StreamRegistry::load(&config(AuthMode::Open, &dir)).unwrap();
        assert_eq!(reg.stream_of_key("anything"), Ok("anything".into()));
        assert_eq!(reg.stream_of_key("../x"), Err(Denied::InvalidName));
    }

    #[test]
    fn api_streams_persist_and_rotate() {
        let dir = tempdir("persist");
        let c = config(AuthMode::Keys, &dir);
        let reg = StreamRegistry::load(&c).unwrap();
        let created = reg.create("show").unwrap();
        assert!(matches!(reg.create("show"), Err(RegistryError::Exists(_))));
        assert!(matches!(reg.create("../x"), Err(RegistryError::InvalidName)));
        assert!(matches!(reg.delete("studio"), Err(RegistryError::FromConfig(_))));
        let reg = StreamRegistry::load(&c).unwrap();
        assert_eq!(reg.stream_of_key(&created.key), Ok("show".into()));
        let rotated = reg.rotate_key("show").unwrap();
        assert_ne!(rotated.key, created.key);
        assert_eq!(reg.stream_of_key(&created.key), Err(Denied::UnknownKey));
        assert_eq!(reg.playback("show"), None);
        reg.set_playback("show", Playback::Token).unwrap();
        assert!(matches!(reg.set_playback("studio", Playback::Token), Err(RegistryError::FromConfig(_))));
        assert_eq!(StreamRegistry::load(&c).unwrap().playback("show"), Some(Playback::Token), "stored");
        reg.delete("show").unwrap();
        assert!(StreamRegistry::load(&c).unwrap().get("show").is_none());
    }

    #[test]
    fn a_failed_write_changes_nothing() {
        let dir = tempdir("readonly");
        let c = config(AuthMode::Keys, &dir);
        let reg = StreamRegistry::load(&c).unwrap();
        let kept = reg.create("kept").unwrap();
        // A directory where the temp file must go makes every write fail.
        std::fs::create_dir_all(dir.join("streams.tmp")).unwrap();
        assert!(matches!(reg.create("lost"), Err(RegistryError::Store(_))));
        assert!(matches!(reg.rotate_key("kept"), Err(RegistryError::Store(_))));
        assert!(reg.get("lost").is_none());
        assert_eq!(reg.stream_of_key(&kept.key), Ok("kept".into()), "the old key still publishes");
    }
}
