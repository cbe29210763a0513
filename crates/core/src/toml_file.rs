//! Small TOML files, read whole and written atomically (a temporary file renamed over the
//! old one, so a crash never leaves half a file): the profiles here, the desktop app's
//! settings and remembered ports in `porthole-app`.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;

/// Why a TOML file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum TomlFileError {
    /// The file could not be read or written.
    #[error("cannot {action} {path}: {source}")]
    Io {
        /// read, write or remove
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The file is not valid TOML of the expected shape.
    #[error("{path} is not valid ({detail}); fix or delete it")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The parser's reason, on one line.
        detail: String,
    },
    /// The value cannot be written as TOML.
    #[error("cannot write {path} ({detail})")]
    Encode {
        /// The file.
        path: PathBuf,
        /// The encoder's reason.
        detail: String,
    },
}

/// Reads `path`; a missing file is the default value.
pub fn load<T: DeserializeOwned + Default>(path: &Path) -> Result<T, TomlFileError> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(T::default()),
        Err(source) => {
            return Err(TomlFileError::Io {
                action: "read",
                path: path.to_owned(),
                source,
            })
        }
    };
    toml::from_str(&text).map_err(|e| TomlFileError::Corrupt {
        path: path.to_owned(),
        detail: crate::api::one_line(&e.to_string(), 200),
    })
}

/// Writes `value` to `path` atomically, creating its directory.
pub fn save<T: Serialize>(path: &Path, value: &T) -> Result<(), TomlFileError> {
    let io_err = |source| TomlFileError::Io {
        action: "write",
        path: path.to_owned(),
        source,
    };
    let text = toml::to_string_pretty(value).map_err(|e| TomlFileError::Encode {
        path: path.to_owned(),
        detail: e.to_string(),
    })?;
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(io_err)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io_err)?;
    io::Write::write_all(&mut tmp, text.as_bytes()).map_err(io_err)?;
    tmp.persist(path).map_err(|e| io_err(e.error))?;
    Ok(())
}

/// Removes `path`; a missing file is no error.
pub fn remove(path: &Path) -> Result<(), TomlFileError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(TomlFileError::Io {
            action: "remove",
            path: path.to_owned(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_missing_and_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b.toml");
        let empty: std::collections::BTreeMap<String, u16> = load(&path).unwrap();
        assert!(empty.is_empty());
        let value: std::collections::BTreeMap<String, u16> = [("x".to_owned(), 1)].into();
        save(&path, &value).unwrap();
        assert_eq!(
            load::<std::collections::BTreeMap<String, u16>>(&path).unwrap(),
            value
        );
        fs::write(&path, "x = \"not a number\"").unwrap();
        assert!(matches!(
            load::<std::collections::BTreeMap<String, u16>>(&path),
            Err(TomlFileError::Corrupt { .. })
        ));
        remove(&path).unwrap();
        remove(&path).unwrap();
    }
}
