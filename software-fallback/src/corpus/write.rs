//! Writing a corpus in the `*.pages.zst` format the readers take: one zstd frame of raw
//! 4096-byte pages, its content size in the frame header (so a reader can refuse a frame too
//! large before decompressing it) and a checksum.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::{Corpus, CorpusError};

/// zstd level for written corpora: small files quickly.
const LEVEL: i32 = 3;

/// Writes `corpus` to `path` as `*.pages.zst` and returns the bytes written. The file
/// appears whole or not at all: it is written beside `path` and renamed into place.
pub fn write_pages_zst(corpus: &Corpus, path: &Path) -> Result<u64, CorpusError> {
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    let io = |source| CorpusError::Io {
        path: path.to_path_buf(),
        source,
    };
    let result = (|| {
        let file = std::fs::File::create(&partial)?;
        let mut enc = zstd::stream::write::Encoder::new(std::io::BufWriter::new(file), LEVEL)?;
        enc.include_checksum(true)?;
        enc.set_pledged_src_size(Some(corpus.as_bytes().len() as u64))?;
        enc.write_all(corpus.as_bytes())?;
        let mut out = enc.finish()?;
        out.flush()?;
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        let len = file.metadata()?.len();
        std::fs::rename(&partial, path)?;
        Ok(len)
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&partial);
        io(e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_corpus_reads_back_the_same_with_its_size_declared() {
        let dir = std::env::temp_dir().join(format!("swapaccel-write-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("b.pages.zst");
        let c = Corpus::builtin();
        let n = write_pages_zst(&c, &path).unwrap();
        assert_eq!(n, std::fs::metadata(&path).unwrap().len());
        let head = std::fs::read(&path).unwrap();
        assert_eq!(
            zstd::zstd_safe::get_frame_content_size(&head).unwrap(),
            Some(c.as_bytes().len() as u64)
        );
        assert_eq!(Corpus::load(&path).unwrap().as_bytes(), c.as_bytes());
        assert!(!dir.join("b.pages.zst.partial").exists());
        // A folder that does not exist: a typed error, nothing left behind.
        let bad = dir.join("missing/x.pages.zst");
        assert!(matches!(
            write_pages_zst(&c, &bad),
            Err(CorpusError::Io { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
