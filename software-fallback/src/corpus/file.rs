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
    /// The corpus holds (or its zstd frames expand to) more than the limit: a file of
    /// that size, or a decompression bomb.
    #[error("corpus {path} holds more than {limit} bytes (the limit for a corpus)")]
    TooLarge {
        /// The file being read.
        path: PathBuf,
        /// The limit, bytes.
        limit: u64,
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

/// Reads a file (decompressing `.zst`) onto `data`, never past `limit` bytes in all: a
/// zstd frame that expands beyond it is refused while it is read, not after.
fn read_file(path: &Path, data: &mut Vec<u8>, limit: u64) -> Result<(), CorpusError> {
    let file = File::open(path).map_err(io_err(path))?;
    let start = data.len();
    let room = limit.saturating_sub(start as u64);
    // One byte more than the room tells "exactly full" from "too much".
    if path.extension().is_some_and(|e| e == "zst") {
        let dec = zstd::stream::read::Decoder::with_buffer(BufReader::new(file)).map_err(|e| {
            CorpusError::BadZstd {
                path: path.to_path_buf(),
                reason: e.to_string(),
            }
        })?;
        dec.take(room.saturating_add(1))
            .read_to_end(data)
            .map_err(|e| CorpusError::BadZstd {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })?;
    } else {
        BufReader::new(file)
            .take(room.saturating_add(1))
            .read_to_end(data)
            .map_err(io_err(path))?;
    }
    let len = data.len() - start;
    if len as u64 > room {
        data.truncate(start);
        return Err(CorpusError::TooLarge {
            path: path.to_path_buf(),
            limit,
        });
    }
    if len % PAGE_SIZE != 0 {
        return Err(CorpusError::NotWholePages {
            name: path.display().to_string(),
            len: len as u64,
        });
    }
    Ok(())
}

/// Loads a file, or every regular file of a folder in name order.
pub(super) fn load(path: &Path, limit: u64) -> Result<Corpus, CorpusError> {
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
            read_file(f, &mut data, limit)?;
        }
        data
    } else {
        let mut data = Vec::new();
        read_file(path, &mut data, limit)?;
        data
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
    fn a_zstd_bomb_is_refused_while_read() {
        let d = tmpdir("bomb");
        // 256 MiB of zeros: a few KiB of zstd.
        let mut enc = zstd::stream::write::Encoder::new(Vec::new(), 19).unwrap();
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..256 {
            std::io::Write::write_all(&mut enc, &zeros).unwrap();
        }
        let bomb = enc.finish().unwrap();
        assert!(bomb.len() < 64 << 10, "{}", bomb.len());
        let p = d.join("bomb.pages.zst");
        std::fs::write(&p, &bomb).unwrap();
        let e = load(&p, 16 << 20).unwrap_err();
        assert!(
            matches!(e, CorpusError::TooLarge { limit, .. } if limit == 16 << 20),
            "{e}"
        );
        // Exactly at the limit is fine; a raw file past it is refused too.
        let pages = vec![7u8; 4 * PAGE_SIZE];
        std::fs::write(d.join("raw.pages"), &pages).unwrap();
        assert_eq!(
            load(&d.join("raw.pages"), 4 * PAGE_SIZE as u64)
                .unwrap()
                .len(),
            4
        );
        assert!(matches!(
            load(&d.join("raw.pages"), 3 * PAGE_SIZE as u64),
            Err(CorpusError::TooLarge { .. })
        ));
    }

    #[test]
    fn reads_zst_raw_and_folder() {
        let d = tmpdir("ok");
        let pages: Vec<u8> = (0..3 * PAGE_SIZE).map(|i| (i / 7) as u8).collect();
        std::fs::write(d.join("a.pages"), &pages).unwrap();
        let z = zstd::encode_all(&pages[..], 3).unwrap();
        std::fs::write(d.join("b.pages.zst"), z).unwrap();
        assert_eq!(
            load(&d.join("a.pages"), u64::MAX).unwrap().as_bytes(),
            &pages[..]
        );
        assert_eq!(
            load(&d.join("b.pages.zst"), u64::MAX).unwrap().as_bytes(),
            &pages[..]
        );
        assert_eq!(load(&d, u64::MAX).unwrap().len(), 6);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn errors_are_typed() {
        let d = tmpdir("bad");
        std::fs::write(d.join("short.pages"), [1u8; 100]).unwrap();
        std::fs::write(d.join("junk.pages.zst"), [1u8; 100]).unwrap();
        assert!(matches!(
            load(&d.join("short.pages"), u64::MAX),
            Err(CorpusError::NotWholePages { len: 100, .. })
        ));
        assert!(matches!(
            load(&d.join("junk.pages.zst"), u64::MAX),
            Err(CorpusError::BadZstd { .. })
        ));
        assert!(matches!(
            load(&d.join("missing"), u64::MAX),
            Err(CorpusError::Io { .. })
        ));
        std::fs::remove_dir_all(&d).unwrap();
    }
}
