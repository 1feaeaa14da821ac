//! Where recordings live: the [`Storage`] trait (objects addressed by relative keys such as
//! `<video-id>/video/12.m4s`) and its filesystem backend. Calls block; async code runs them on
//! the blocking pool ([`run`]). An object-store backend implements the same trait.

use bytes::Bytes;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Objects by key. Keys are `/`-separated relative paths of `[A-Za-z0-9._-]` components that do
/// not start with a dot; anything else is refused with `InvalidInput`, so no key can leave the
/// storage root.
pub trait Storage: Send + Sync + 'static {
    /// Appends `bytes` to the object, creating it (and its parents) if needed.
    fn append(&self, key: &str, bytes: &[&[u8]]) -> io::Result<()>;
    /// Writes a whole object atomically: readers see the old or the new content, never a mix.
    fn put(&self, key: &str, bytes: &[u8]) -> io::Result<()>;
    /// Makes what was written to the object durable.
    fn sync(&self, key: &str) -> io::Result<()>;
    /// The object's size in bytes.
    fn size(&self, key: &str) -> io::Result<u64>;
    /// Bytes `range` of the object (the range must lie within it).
    fn read(&self, key: &str, range: Range<u64>) -> io::Result<Bytes>;
    /// Cuts the object to `len` bytes (crash recovery drops a torn fragment).
    fn truncate(&self, key: &str, len: u64) -> io::Result<()>;
    /// Names of the entries directly under `prefix` (objects and "directories"), sorted.
    fn list(&self, prefix: &str) -> io::Result<Vec<String>>;
    /// Removes the object or every object under the prefix. Missing is not an error.
    fn remove_all(&self, prefix: &str) -> io::Result<()>;
}

/// Runs a blocking storage call on the blocking thread pool.
pub async fn run<T: Send + 'static>(
    storage: &Arc<dyn Storage>,
    call: impl FnOnce(&dyn Storage) -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    let storage = storage.clone();
    tokio::task::spawn_blocking(move || call(&*storage)).await.map_err(io::Error::other)?
}

/// Objects as files under a root directory.
pub struct FsStorage {
    root: PathBuf,
}

impl FsStorage {
    /// Storage rooted at `root` (created if missing).
    pub fn open(root: impl Into<PathBuf>) -> io::Result<FsStorage> {
        let root = root.into();
        fs::create_dir_all(&root)?;
        Ok(FsStorage { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, key: &str) -> io::Result<PathBuf> {
        let valid = !key.is_empty()
            && key.split('/').all(|part| {
                !part.is_empty()
                    && !part.starts_with('.')
                    && part.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
            });
        if !valid {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("invalid storage key {key:?}")));
        }
        Ok(self.root.join(key))
    }

    fn with_path<T>(&self, key: &str, call: impl FnOnce(&Path) -> io::Result<T>) -> io::Result<T> {
        let path = self.path(key)?;
        call(&path).map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))
    }
}

fn create_parent(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(parent) => fs::create_dir_all(parent),
        None => Ok(()),
    }
}

impl Storage for FsStorage {
    fn append(&self, key: &str, bytes: &[&[u8]]) -> io::Result<()> {
        self.with_path(key, |path| {
            create_parent(path)?;
            let mut file = OpenOptions::new().create(true).append(true).open(path)?;
            for chunk in bytes {
                file.write_all(chunk)?;
            }
            Ok(())
        })
    }

    fn put(&self, key: &str, bytes: &[u8]) -> io::Result<()> {
        self.with_path(key, |path| {
            create_parent(path)?;
            let mut temporary = path.as_os_str().to_owned();
            temporary.push(".tmp");
            let temporary = PathBuf::from(temporary);
            let mut file = File::create(&temporary)?;
            file.write_all(bytes)?;
            file.sync_data()?;
            fs::rename(&temporary, path)
        })
    }

    fn sync(&self, key: &str) -> io::Result<()> {
        self.with_path(key, |path| File::open(path)?.sync_data())
    }

    fn size(&self, key: &str) -> io::Result<u64> {
        self.with_path(key, |path| Ok(fs::metadata(path)?.len()))
    }

    fn read(&self, key: &str, range: Range<u64>) -> io::Result<Bytes> {
        self.with_path(key, |path| {
            let mut file = File::open(path)?;
            let len = usize::try_from(range.end.saturating_sub(range.start))
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "range too large"))?;
            file.seek(SeekFrom::Start(range.start))?;
            let mut buffer = vec![0; len];
            file.read_exact(&mut buffer)?;
            Ok(Bytes::from(buffer))
        })
    }

    fn truncate(&self, key: &str, len: u64) -> io::Result<()> {
        self.with_path(key, |path| {
            let file = OpenOptions::new().write(true).open(path)?;
            file.set_len(len)?;
            file.sync_data()
        })
    }

    fn list(&self, prefix: &str) -> io::Result<Vec<String>> {
        self.with_path(prefix, |path| {
            let mut names = match fs::read_dir(path) {
                Ok(entries) => entries
                    .filter_map(|e| e.ok()?.file_name().into_string().ok())
                    .filter(|name| !name.ends_with(".tmp"))
                    .collect::<Vec<_>>(),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
                Err(e) => return Err(e),
            };
            names.sort();
            Ok(names)
        })
    }

    fn remove_all(&self, prefix: &str) -> io::Result<()> {
        self.with_path(prefix, |path| {
            let result = match fs::symlink_metadata(path) {
                Ok(meta) if meta.is_dir() => fs::remove_dir_all(path),
                Ok(_) => fs::remove_file(path),
                Err(e) => Err(e),
            };
            match result {
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                other => other,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_storage(name: &str) -> FsStorage {
        let root = std::env::temp_dir().join(format!("rill-storage-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        FsStorage::open(root).unwrap()
    }

    #[test]
    fn objects_append_read_truncate_list_and_remove() {
        let storage = temp_storage("basic");
        storage.append("v1/video/0.m4s", &[b"hello ", b"world"]).unwrap();
        storage.append("v1/video/0.m4s", &[b"!"]).unwrap();
        storage.put("v1/video/init-0.mp4", b"init").unwrap();
        assert_eq!(storage.size("v1/video/0.m4s").unwrap(), 12);
        assert_eq!(&storage.read("v1/video/0.m4s", 6..11).unwrap()[..], b"world");
        assert!(storage.read("v1/video/0.m4s", 6..13).is_err(), "a range past the end is an error");
        storage.truncate("v1/video/0.m4s", 5).unwrap();
        assert_eq!(&storage.read("v1/video/0.m4s", 0..5).unwrap()[..], b"hello");
        assert_eq!(storage.list("v1").unwrap(), vec!["video"]);
        assert_eq!(storage.list("v1/video").unwrap(), vec!["0.m4s", "init-0.mp4"]);
        assert!(storage.list("v2").unwrap().is_empty());
        storage.remove_all("v1").unwrap();
        storage.remove_all("v1").unwrap();
        assert!(storage.list("v1").unwrap().is_empty());
        fs::remove_dir_all(storage.root()).unwrap();
    }

    #[test]
    fn keys_cannot_escape_the_root() {
        let storage = temp_storage("hostile");
        for key in ["", "/etc/passwd", "../x", "a/../../x", "a//b", ".hidden", "a/.b", "a\\b", "a b", "ä"] {
            let err = storage.append(key, &[b"x"]).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{key:?}");
            assert!(storage.remove_all(key).is_err(), "{key:?}");
        }
        fs::remove_dir_all(storage.root()).unwrap();
    }
}
