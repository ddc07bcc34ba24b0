//! Reading page corpora from files.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use super::Corpus;
use crate::PAGE_SIZE;

/// Why a corpus could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum CorpusError {
    /// The file or folder could not be read.
    #[error("cannot read corpus {path}: {source}")]
    Io {
        /// The path being read.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A `.zst` file that is not a valid zstd stream.
    #[error("corpus {path} is not a valid zstd stream: {reason}")]
    BadZstd {
        /// The path being read.
        path: PathBuf,
        /// What the decoder reported.
        reason: String,
    },
    /// The pages' total length is not a multiple of 4096.
    #[error("corpus {name} is {len} bytes, not a whole number of 4096-byte pages")]
    NotWholePages {
        /// Corpus name.
        name: String,
        /// Its length in bytes.
        len: u64,
    },
    /// The process does not exist.
    #[error("no process with pid {pid}")]
    NoSuchProcess {
        /// The pid asked for.
        pid: u32,
    },
    /// The process's memory may not be read by us.
    #[error("no permission to read the memory of pid {pid} ({detail}): {hint}")]
    ProcessPermission {
        /// The pid asked for.
        pid: u32,
        /// The refused operation and its error.
        detail: String,
        /// What would give access, for the user this process runs as.
        hint: &'static str,
    },
    /// No page at all.
    #[error("corpus {name} holds no pages")]
    Empty {
        /// Corpus name.
        name: String,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> CorpusError + '_ {
    move |source| CorpusError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn read_file(path: &Path) -> Result<Vec<u8>, CorpusError> {
    let file = File::open(path).map_err(io_err(path))?;
    let mut data = Vec::new();
    if path.extension().is_some_and(|e| e == "zst") {
        let mut dec =
            zstd::stream::read::Decoder::with_buffer(BufReader::new(file)).map_err(|e| {
                CorpusError::BadZstd {
                    path: path.to_path_buf(),
                    reason: e.to_string(),
                }
            })?;
        dec.read_to_end(&mut data)
            .map_err(|e| CorpusError::BadZstd {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })?;
    } else {
        BufReader::new(file)
            .read_to_end(&mut data)
            .map_err(io_err(path))?;
    }
    if data.len() % PAGE_SIZE != 0 {
        return Err(CorpusError::NotWholePages {
            name: path.display().to_string(),
            len: data.len() as u64,
        });
    }
    Ok(data)
}

/// Loads a file, or every regular file of a folder in name order.
pub(super) fn load(path: &Path) -> Result<Corpus, CorpusError> {
    let meta = std::fs::metadata(path).map_err(io_err(path))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string());
    let data = if meta.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(io_err(path))?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()
            .map_err(io_err(path))?;
        files.retain(|p| p.is_file());
        files.sort();
        let mut data = Vec::new();
        for f in &files {
            data.extend_from_slice(&read_file(f)?);
        }
        data
    } else {
        read_file(path)?
    };
    Corpus::from_bytes(name, data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("swapaccel-corpus-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn reads_zst_raw_and_folder() {
        let d = tmpdir("ok");
        let pages: Vec<u8> = (0..3 * PAGE_SIZE).map(|i| (i / 7) as u8).collect();
        std::fs::write(d.join("a.pages"), &pages).unwrap();
        let z = zstd::encode_all(&pages[..], 3).unwrap();
        std::fs::write(d.join("b.pages.zst"), z).unwrap();
        assert_eq!(load(&d.join("a.pages")).unwrap().as_bytes(), &pages[..]);
        assert_eq!(load(&d.join("b.pages.zst")).unwrap().as_bytes(), &pages[..]);
        assert_eq!(load(&d).unwrap().len(), 6);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn errors_are_typed() {
        let d = tmpdir("bad");
        std::fs::write(d.join("short.pages"), [1u8; 100]).unwrap();
        std::fs::write(d.join("junk.pages.zst"), [1u8; 100]).unwrap();
        assert!(matches!(
            load(&d.join("short.pages")),
            Err(CorpusError::NotWholePages { len: 100, .. })
        ));
        assert!(matches!(
            load(&d.join("junk.pages.zst")),
            Err(CorpusError::BadZstd { .. })
        ));
        assert!(matches!(
            load(&d.join("missing")),
            Err(CorpusError::Io { .. })
        ));
        std::fs::remove_dir_all(&d).unwrap();
    }
}
