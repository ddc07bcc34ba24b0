//! Reading page corpora from files, bounded.
//!
//! Rules every path here keeps (a corpus is user input: a device, a zstd bomb or a huge sparse
//! file must fail fast with a typed error, never exhaust memory):
//!
//! * At most [`MAX_PAGES`] pages are ever held; with a page limit, at most that many are read
//!   from a regular file (positioned reads of the sampled pages) and held.
//! * A zstd stream is decompressed at most [`MAX_SCAN_PAGES`] pages far: a first frame that
//!   declares more fails before anything is decompressed, and a stream that turns out longer
//!   fails when it passes the mark. Decompressed pages not sampled are dropped as they come.
//! * A device or pipe (no size known in advance) is read only under a page limit, and then
//!   its first pages; without one it is an error.
//! * A folder holds `*.pages` and `*.pages.zst` files, read in name order as one run of pages;
//!   anything else in it is skipped and named in a [`ReadNote`].
//!
//! Sampling: with `total` pages and a limit `n < total`, page `k * total / n` is taken for each
//! `k < n`, as [`Corpus::sample`] does, so a limit gives the same pages whether it is applied
//! while reading or afterwards.

use std::fs::File;
use std::io::{BufReader, ErrorKind, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::{Corpus, CorpusError, ReadNote, MAX_PAGES, MAX_SCAN_PAGES};
use crate::PAGE_SIZE;

/// The bounds of one read (the public constants, smaller in tests).
#[derive(Clone, Copy, Debug)]
pub(super) struct Limits {
    /// Most pages held.
    pub hold: usize,
    /// Most pages a compressed stream is decompressed to.
    pub scan: u64,
}

impl Limits {
    pub(super) const DEFAULT: Limits = Limits {
        hold: MAX_PAGES,
        scan: MAX_SCAN_PAGES as u64,
    };
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> CorpusError + '_ {
    move |source| CorpusError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn zstd_err(path: &Path) -> impl FnOnce(std::io::Error) -> CorpusError + '_ {
    move |e| CorpusError::BadZstd {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

fn is_zst(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "zst")
}

/// True for the names a folder corpus reads.
pub fn is_page_file_name(name: &str) -> bool {
    !name.starts_with('.') && (name.ends_with(".pages") || name.ends_with(".pages.zst"))
}

/// One file of a corpus and the pages it holds.
struct Source {
    path: PathBuf,
    zst: bool,
    pages: u64,
}

fn decoder(
    path: &Path,
) -> Result<zstd::stream::read::Decoder<'static, BufReader<File>>, CorpusError> {
    let file = File::open(path).map_err(io_err(path))?;
    zstd::stream::read::Decoder::with_buffer(BufReader::new(file)).map_err(zstd_err(path))
}

/// The content size the first zstd frame of `path` declares, if it declares one.
fn declared_size(path: &Path) -> Result<Option<u64>, CorpusError> {
    let mut head = Vec::with_capacity(18);
    File::open(path)
        .map_err(io_err(path))?
        .take(18) // ZSTD_FRAMEHEADERSIZE_MAX
        .read_to_end(&mut head)
        .map_err(io_err(path))?;
    match zstd::zstd_safe::get_frame_content_size(&head) {
        Ok(size) => Ok(size),
        Err(_) => Err(CorpusError::BadZstd {
            path: path.to_path_buf(),
            reason: "no zstd frame header".into(),
        }),
    }
}

/// Decompresses `path` once, counting its pages, up to `limits.scan` pages.
fn count_zst(path: &Path, limits: Limits) -> Result<u64, CorpusError> {
    let name = path.display().to_string();
    if let Some(size) = declared_size(path)? {
        if size / PAGE_SIZE as u64 > limits.scan {
            return Err(CorpusError::ScanLimit {
                name,
                declared: true,
            });
        }
    }
    let mut dec = decoder(path)?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut bytes = 0u64;
    loop {
        let n = match dec.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(zstd_err(path)(e)),
        };
        bytes += n as u64;
        if bytes > limits.scan * PAGE_SIZE as u64 {
            return Err(CorpusError::ScanLimit {
                name,
                declared: false,
            });
        }
    }
    if bytes % PAGE_SIZE as u64 != 0 {
        return Err(CorpusError::NotWholePages { name, len: bytes });
    }
    Ok(bytes / PAGE_SIZE as u64)
}

fn measure(path: &Path, limits: Limits) -> Result<Source, CorpusError> {
    let zst = is_zst(path);
    let pages = if zst {
        count_zst(path, limits)?
    } else {
        let len = std::fs::metadata(path).map_err(io_err(path))?.len();
        if len % PAGE_SIZE as u64 != 0 {
            return Err(CorpusError::NotWholePages {
                name: path.display().to_string(),
                len,
            });
        }
        len / PAGE_SIZE as u64
    };
    Ok(Source {
        path: path.to_path_buf(),
        zst,
        pages,
    })
}

/// Appends to `data` the pages of `src` whose corpus-wide index (`before` + index in the
/// file) `picks` yields next, leaving later picks for the next file.
fn read_picks(
    src: &Source,
    before: u64,
    picks: &mut std::iter::Peekable<impl Iterator<Item = u64>>,
    data: &mut Vec<u8>,
) -> Result<(), CorpusError> {
    let end = before + src.pages;
    let mut page = vec![0u8; PAGE_SIZE];
    if src.zst {
        let mut dec = decoder(&src.path)?;
        let mut at = before; // index of the next page the stream yields
        while let Some(&k) = picks.peek().filter(|&&k| k < end) {
            while at <= k {
                dec.read_exact(&mut page).map_err(zstd_err(&src.path))?;
                at += 1;
            }
            data.extend_from_slice(&page);
            picks.next();
        }
    } else {
        let file = File::open(&src.path).map_err(io_err(&src.path))?;
        while let Some(&k) = picks.peek().filter(|&&k| k < end) {
            file.read_exact_at(&mut page, (k - before) * PAGE_SIZE as u64)
                .map_err(io_err(&src.path))?;
            data.extend_from_slice(&page);
            picks.next();
        }
    }
    Ok(())
}

/// The first `n` pages of a device or pipe (decompressed if the name ends in `.zst`).
fn read_prefix(path: &Path, n: usize) -> Result<Vec<u8>, CorpusError> {
    let file = File::open(path).map_err(io_err(path))?;
    let mut reader: Box<dyn Read> = if is_zst(path) {
        Box::new(zstd::stream::read::Decoder::new(file).map_err(zstd_err(path))?)
    } else {
        Box::new(file)
    };
    let mut data = Vec::new();
    (&mut reader)
        .take((n * PAGE_SIZE) as u64)
        .read_to_end(&mut data)
        .map_err(io_err(path))?;
    if data.len() % PAGE_SIZE != 0 {
        return Err(CorpusError::NotWholePages {
            name: path.display().to_string(),
            len: data.len() as u64,
        });
    }
    Ok(data)
}

/// The page files of a folder in name order, and the names of everything else in it.
fn folder_files(path: &Path) -> Result<(Vec<PathBuf>, Vec<String>), CorpusError> {
    let mut files = Vec::new();
    let mut skipped = Vec::new();
    for entry in std::fs::read_dir(path).map_err(io_err(path))? {
        let p = entry.map_err(io_err(path))?.path();
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if p.is_file() && is_page_file_name(&name) {
            files.push(p);
        } else {
            skipped.push(if p.is_dir() { format!("{name}/") } else { name });
        }
    }
    files.sort();
    skipped.sort();
    if files.is_empty() {
        return Err(CorpusError::NoPageFiles {
            path: path.to_path_buf(),
            skipped,
        });
    }
    Ok((files, skipped))
}

/// Loads a file, a folder of page files, or (under a page limit) a device or pipe.
pub(super) fn load(
    path: &Path,
    max_pages: Option<usize>,
    limits: Limits,
) -> Result<Corpus, CorpusError> {
    if let Some(n) = max_pages {
        if n == 0 || n > limits.hold {
            return Err(CorpusError::PageLimit { asked: n });
        }
    }
    let meta = std::fs::metadata(path).map_err(io_err(path))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string());
    let mut notes = Vec::new();
    let files = if meta.is_dir() {
        let (files, skipped) = folder_files(path)?;
        if !skipped.is_empty() {
            notes.push(ReadNote::SkippedFiles(skipped));
        }
        files
    } else if meta.is_file() {
        vec![path.to_path_buf()]
    } else {
        let Some(n) = max_pages else {
            return Err(CorpusError::Unbounded { name });
        };
        let data = read_prefix(path, n)?;
        notes.push(ReadNote::StreamPrefix {
            pages: data.len() / PAGE_SIZE,
        });
        return Ok(Corpus::from_bytes(name, data)?.with_notes(notes));
    };
    let sources = files
        .iter()
        .map(|f| measure(f, limits))
        .collect::<Result<Vec<_>, _>>()?;
    let total: u64 = sources.iter().map(|s| s.pages).sum();
    if total == 0 {
        return Err(CorpusError::Empty { name });
    }
    let want = match max_pages {
        None if total > limits.hold as u64 => {
            return Err(CorpusError::TooLarge { name, pages: total })
        }
        None => total,
        Some(n) => (n as u64).min(total),
    };
    let mut data = Vec::with_capacity(want as usize * PAGE_SIZE);
    let mut picks = (0..want).map(|k| k * total / want).peekable();
    let mut before = 0;
    for s in &sources {
        read_picks(s, before, &mut picks, &mut data)?;
        before += s.pages;
    }
    let name = if want < total {
        format!("{name}[{want} of {total}]")
    } else {
        name
    };
    Ok(Corpus::from_bytes(name, data)?.with_notes(notes))
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

    fn pages(n: usize) -> Vec<u8> {
        (0..n * PAGE_SIZE)
            .map(|i| (i / 7 + i / PAGE_SIZE) as u8)
            .collect()
    }

    fn all(path: &Path) -> Result<Corpus, CorpusError> {
        load(path, None, Limits::DEFAULT)
    }

    #[test]
    fn reads_zst_raw_and_folder() {
        let d = tmpdir("ok");
        let pages = pages(3);
        std::fs::write(d.join("a.pages"), &pages).unwrap();
        let z = zstd::encode_all(&pages[..], 3).unwrap();
        std::fs::write(d.join("b.pages.zst"), z).unwrap();
        assert_eq!(all(&d.join("a.pages")).unwrap().as_bytes(), &pages[..]);
        assert_eq!(all(&d.join("b.pages.zst")).unwrap().as_bytes(), &pages[..]);
        let c = all(&d).unwrap();
        assert_eq!(c.len(), 6);
        assert!(c.notes().is_empty());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_limit_reads_the_same_pages_as_sampling_afterwards() {
        let d = tmpdir("sample");
        let p = pages(40);
        std::fs::write(d.join("a.pages"), &p[..17 * PAGE_SIZE]).unwrap();
        let z = zstd::encode_all(&p[17 * PAGE_SIZE..], 3).unwrap();
        std::fs::write(d.join("b.pages.zst"), z).unwrap();
        let whole = all(&d).unwrap();
        for n in [1, 6, 17, 39, 40, 100] {
            let limited = load(&d, Some(n), Limits::DEFAULT).unwrap();
            assert_eq!(limited.as_bytes(), whole.sample(n).as_bytes(), "n={n}");
            assert_eq!(limited.len(), n.min(40));
        }
        assert!(load(&d, Some(6), Limits::DEFAULT)
            .unwrap()
            .name()
            .ends_with("[6 of 40]"));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_folder_skips_what_is_not_a_page_file_and_says_so() {
        let d = tmpdir("skip");
        std::fs::write(
            d.join("a.pages.zst"),
            zstd::encode_all(&pages(2)[..], 3).unwrap(),
        )
        .unwrap();
        std::fs::write(d.join("README.md"), "# not pages\n").unwrap();
        std::fs::create_dir(d.join("sub")).unwrap();
        let c = all(&d).unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(
            c.notes(),
            &[ReadNote::SkippedFiles(vec![
                "README.md".into(),
                "sub/".into()
            ])]
        );
        assert!(c.notes()[0].to_string().contains("README.md"));
        std::fs::remove_file(d.join("a.pages.zst")).unwrap();
        match all(&d) {
            Err(CorpusError::NoPageFiles { skipped, .. }) => assert_eq!(skipped.len(), 2),
            other => panic!("{other:?}"),
        }
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn errors_are_typed() {
        let d = tmpdir("bad");
        std::fs::write(d.join("short.pages"), [1u8; 100]).unwrap();
        std::fs::write(d.join("junk.pages.zst"), [1u8; 100]).unwrap();
        std::fs::write(
            d.join("short.pages.zst"),
            zstd::encode_all(&[1u8; 100][..], 1).unwrap(),
        )
        .unwrap();
        std::fs::write(d.join("empty.pages"), []).unwrap();
        assert!(matches!(
            all(&d.join("short.pages")),
            Err(CorpusError::NotWholePages { len: 100, .. })
        ));
        assert!(matches!(
            all(&d.join("short.pages.zst")),
            Err(CorpusError::NotWholePages { len: 100, .. })
        ));
        assert!(matches!(
            all(&d.join("junk.pages.zst")),
            Err(CorpusError::BadZstd { .. })
        ));
        assert!(matches!(
            all(&d.join("missing")),
            Err(CorpusError::Io { .. })
        ));
        assert!(matches!(
            all(&d.join("empty.pages")),
            Err(CorpusError::Empty { .. })
        ));
        for n in [0, MAX_PAGES + 1] {
            assert!(matches!(
                load(&d.join("short.pages"), Some(n), Limits::DEFAULT),
                Err(CorpusError::PageLimit { .. })
            ));
        }
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_device_is_read_only_under_a_limit_and_only_that_far() {
        let zero = Path::new("/dev/zero");
        assert!(matches!(all(zero), Err(CorpusError::Unbounded { .. })));
        let c = load(zero, Some(4), Limits::DEFAULT).unwrap();
        assert_eq!(c.len(), 4);
        assert_eq!(c.notes(), &[ReadNote::StreamPrefix { pages: 4 }]);
    }

    #[test]
    fn more_pages_than_may_be_held_need_a_limit() {
        let d = tmpdir("hold");
        std::fs::write(d.join("a.pages"), pages(9)).unwrap();
        let small = Limits { hold: 8, scan: 100 };
        assert!(matches!(
            load(&d.join("a.pages"), None, small),
            Err(CorpusError::TooLarge { pages: 9, .. })
        ));
        assert_eq!(load(&d.join("a.pages"), Some(8), small).unwrap().len(), 8);
        std::fs::remove_dir_all(&d).unwrap();
    }

    /// A zstd stream of `pages` zero pages, with or without the content size in its header.
    fn zeros_zst(pages: usize, declare: bool) -> Vec<u8> {
        let mut enc = zstd::stream::write::Encoder::new(Vec::new(), 1).unwrap();
        enc.include_contentsize(declare).unwrap();
        if declare {
            enc.set_pledged_src_size(Some((pages * PAGE_SIZE) as u64))
                .unwrap();
        }
        let zero = [0u8; PAGE_SIZE];
        for _ in 0..pages {
            std::io::Write::write_all(&mut enc, &zero).unwrap();
        }
        enc.finish().unwrap()
    }

    #[test]
    fn a_stream_that_expands_too_far_stops_at_the_scan_limit() {
        let d = tmpdir("bomb");
        let small = Limits { hold: 8, scan: 64 };
        std::fs::write(d.join("declared.pages.zst"), zeros_zst(65, true)).unwrap();
        std::fs::write(d.join("streamed.pages.zst"), zeros_zst(65, false)).unwrap();
        std::fs::write(d.join("fits.pages.zst"), zeros_zst(64, false)).unwrap();
        for limit in [None, Some(4)] {
            assert!(matches!(
                load(&d.join("declared.pages.zst"), limit, small),
                Err(CorpusError::ScanLimit { declared: true, .. })
            ));
            assert!(matches!(
                load(&d.join("streamed.pages.zst"), limit, small),
                Err(CorpusError::ScanLimit {
                    declared: false,
                    ..
                })
            ));
        }
        assert_eq!(
            load(&d.join("fits.pages.zst"), Some(4), small)
                .unwrap()
                .len(),
            4
        );
        std::fs::remove_dir_all(&d).unwrap();
    }
}
