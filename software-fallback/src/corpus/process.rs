//! Pages of a live process: its anonymous writable mappings, read through `/proc/PID/mem`.
//!
//! The mappings come from `/proc/PID/maps`: writable, not backed by a file (inode 0), and not
//! the stack or a kernel-provided area (`[vvar]`, `[vdso]`, …); the heap and named anonymous
//! areas (`[anon:…]`) count. Reading needs ptrace access to the process (the same user with
//! `kernel.yama.ptrace_scope` permitting it, or CAP_SYS_PTRACE); a refusal is a typed error
//! that says so. Untouched pages read as zeros, as the process would see them.

use std::fs::File;
use std::io::ErrorKind;
use std::os::unix::fs::FileExt;

use super::{Corpus, CorpusError, ReadNote, MAX_PAGES};
use crate::PAGE_SIZE;

/// One mapping to sample from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AnonRange {
    /// First address.
    pub start: u64,
    /// One past the last address.
    pub end: u64,
}

impl AnonRange {
    fn pages(&self) -> u64 {
        (self.end - self.start) / PAGE_SIZE as u64
    }
}

/// Parses `/proc/PID/maps` text into the anonymous writable mappings.
pub fn anon_writable_ranges(maps: &str) -> Vec<AnonRange> {
    let mut out = Vec::new();
    for line in maps.lines() {
        let mut f = line.split_whitespace();
        let (Some(range), Some(perms), Some(_off), Some(_dev), Some(inode)) =
            (f.next(), f.next(), f.next(), f.next(), f.next())
        else {
            continue;
        };
        let name = f.collect::<Vec<_>>().join(" ");
        let writable = perms.as_bytes().get(1) == Some(&b'w');
        let anonymous =
            inode == "0" && (name.is_empty() || name == "[heap]" || name.starts_with("[anon:"));
        if !writable || !anonymous {
            continue;
        }
        let Some((a, b)) = range.split_once('-') else {
            continue;
        };
        if let (Ok(start), Ok(end)) = (u64::from_str_radix(a, 16), u64::from_str_radix(b, 16)) {
            if end > start {
                out.push(AnonRange { start, end });
            }
        }
    }
    out
}

/// This process's effective uid (`/proc/self/status`, `Uid:` real, effective, ...).
fn effective_uid() -> Option<u32> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let uids = s.lines().find_map(|l| l.strip_prefix("Uid:"))?;
    uids.split_whitespace().nth(1)?.parse().ok()
}

/// What would let a process running as `euid` read another's memory. Root refused already has
/// ptrace access: the target is out of its reach (proc(5), ptrace(2) "Ptrace access mode
/// checking": another user namespace, or a security module's policy).
fn permission_hint(euid: Option<u32>) -> &'static str {
    if euid == Some(0) {
        "refused even to root: the process is outside this one's reach (in another user \
         namespace or container, or protected by a security module); pick a process of this \
         namespace, e.g. pid:self"
    } else {
        "reading /proc/PID/mem needs ptrace access: run as root (CAP_SYS_PTRACE), or as the \
         same user with kernel.yama.ptrace_scope=0"
    }
}

fn proc_err(pid: u32, what: &str, e: std::io::Error) -> CorpusError {
    if matches!(e.kind(), ErrorKind::PermissionDenied) || e.raw_os_error() == Some(1) {
        CorpusError::ProcessPermission {
            pid,
            detail: format!("{what}: {e}"),
            hint: permission_hint(effective_uid()),
        }
    } else if e.kind() == ErrorKind::NotFound {
        CorpusError::NoSuchProcess { pid }
    } else {
        CorpusError::Io {
            path: format!("/proc/{pid}/{what}").into(),
            source: e,
        }
    }
}

/// Reads up to `max_pages` pages (`1..=MAX_PAGES`, evenly spread over the mappings) of
/// process `pid`. Memory grows with the pages read, whatever the size of the mappings (a
/// 1 TiB sparse mapping costs `max_pages` reads). A process that exits while it is read
/// gives the pages read before it, with a [`ReadNote::ProcessExited`]; unreadable pages
/// (guard pages, `PROT_NONE` remaps) are left out and counted in a [`ReadNote::Unreadable`].
pub fn load(pid: u32, max_pages: usize) -> Result<Corpus, CorpusError> {
    if max_pages == 0 || max_pages > MAX_PAGES {
        return Err(CorpusError::PageLimit { asked: max_pages });
    }
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps"))
        .map_err(|e| proc_err(pid, "maps", e))?;
    let ranges = anon_writable_ranges(&maps);
    let mem = File::open(format!("/proc/{pid}/mem")).map_err(|e| proc_err(pid, "mem", e))?;
    sample(
        pid,
        &ranges,
        max_pages,
        |addr, page| mem.read_exact_at(page, addr),
        || alive(pid),
    )
}

/// Whether `pid` still has its memory: it exists and is neither a zombie nor dead.
fn alive(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The state is the first field after the command name, which is in parentheses and may
    // itself hold ") ".
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next());
    !matches!(state, None | Some("Z") | Some("X") | Some("x"))
}

/// Reads the sampled pages through `read` (one page at an address); `alive` says whether the
/// process is still there when a read comes back short.
fn sample(
    pid: u32,
    ranges: &[AnonRange],
    max_pages: usize,
    mut read: impl FnMut(u64, &mut [u8]) -> std::io::Result<()>,
    alive: impl Fn() -> bool,
) -> Result<Corpus, CorpusError> {
    let total: u64 = ranges.iter().map(AnonRange::pages).sum();
    let name = format!("pid:{pid}");
    if total == 0 {
        return Err(CorpusError::Empty { name });
    }
    let want = (max_pages as u64).min(total);
    let mut data = Vec::new();
    let mut page = vec![0u8; PAGE_SIZE];
    let mut notes = Vec::new();
    let mut unreadable = 0usize;
    // Page k of the sample is page k*total/want of the concatenated mappings.
    let (mut r, mut before) = (0usize, 0u64);
    for k in 0..want {
        let idx = k * total / want;
        while before + ranges[r].pages() <= idx {
            before += ranges[r].pages();
            r += 1;
        }
        let addr = ranges[r].start + (idx - before) * PAGE_SIZE as u64;
        match read(addr, &mut page) {
            Ok(()) => data.extend_from_slice(&page),
            // EIO, a short read or ESRCH: the range is unreadable, or the process is gone
            // (its memory reads as end-of-file once it has exited).
            Err(e)
                if matches!(e.raw_os_error(), Some(EIO) | Some(ESRCH))
                    || e.kind() == ErrorKind::UnexpectedEof =>
            {
                if alive() {
                    unreadable += 1;
                    continue;
                }
                let read = data.len() / PAGE_SIZE;
                if read == 0 {
                    return Err(CorpusError::ProcessExited { pid });
                }
                tracing::warn!(pid, read, wanted = want, "process exited while it was read");
                notes.push(ReadNote::ProcessExited {
                    pid,
                    read,
                    wanted: want as usize,
                });
                break;
            }
            Err(e) => return Err(proc_err(pid, "mem", e)),
        }
    }
    if unreadable > 0 {
        notes.push(ReadNote::Unreadable { pages: unreadable });
    }
    Ok(Corpus::from_bytes(name, data)?.with_notes(notes))
}

/// EIO on Linux: what reading an unreadable range of `/proc/PID/mem` returns.
const EIO: i32 = 5;
/// ESRCH on Linux: the process is gone.
const ESRCH: i32 = 3;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_is_not_told_to_run_as_root() {
        assert!(!permission_hint(Some(0)).contains("run as root"));
        assert!(permission_hint(Some(1000)).contains("run as root"));
        assert!(permission_hint(None).contains("run as root"));
        let e = proc_err(1, "maps", ErrorKind::PermissionDenied.into()).to_string();
        assert_eq!(e.contains("run as root"), effective_uid() != Some(0), "{e}");
    }

    #[test]
    fn parses_maps() {
        let maps = "\
55d0c0a00000-55d0c0a21000 rw-p 00000000 00:00 0                          [heap]
7f00000000-7f00004000 rw-p 00000000 00:00 0 
7f00004000-7f00008000 r--p 00000000 00:00 0 
7f00008000-7f0000a000 rw-p 00001000 08:01 1234                       /usr/lib/libc.so.6
7ffc00000000-7ffc00021000 rw-p 00000000 00:00 0                          [stack]
7f1000000000-7f1000002000 rw-p 00000000 00:00 0                          [anon:v8 heap]
garbage line
";
        let r = anon_writable_ranges(maps);
        assert_eq!(
            r,
            vec![
                AnonRange {
                    start: 0x55d0c0a00000,
                    end: 0x55d0c0a21000
                },
                AnonRange {
                    start: 0x7f00000000,
                    end: 0x7f00004000
                },
                AnonRange {
                    start: 0x7f1000000000,
                    end: 0x7f1000002000
                },
            ]
        );
    }

    #[test]
    fn reads_own_heap() {
        // A distinctive page on our own heap must show up when we read ourselves in full.
        let marker: Vec<u8> = (0..PAGE_SIZE * 4).map(|i| (i % 251) as u8 ^ 0x5c).collect();
        let c = load(std::process::id(), MAX_PAGES).expect("read own process");
        let found = c
            .pages()
            .any(|p| p[..64] == marker[..64] || p.windows(64).any(|w| w == &marker[..64]));
        std::hint::black_box(&marker);
        assert!(found, "marker page not found among {} pages", c.len());
        assert!(c.name().starts_with("pid:"));
    }

    fn range(pages: u64) -> Vec<AnonRange> {
        vec![AnonRange {
            start: 0x10000,
            end: 0x10000 + pages * PAGE_SIZE as u64,
        }]
    }

    #[test]
    fn a_process_that_exits_mid_read_gives_what_was_read_with_a_note() {
        let mut reads = 0;
        let c = sample(
            7,
            &range(100),
            10,
            |_, page| {
                reads += 1;
                if reads > 4 {
                    return Err(ErrorKind::UnexpectedEof.into());
                }
                page.fill(reads as u8);
                Ok(())
            },
            || false,
        )
        .unwrap();
        assert_eq!(c.len(), 4);
        assert_eq!(
            c.notes(),
            &[ReadNote::ProcessExited {
                pid: 7,
                read: 4,
                wanted: 10
            }]
        );
        assert!(c.notes()[0].to_string().contains("4 of 10"));
        // Gone before the first page: an error, not an empty corpus.
        assert!(matches!(
            sample(
                7,
                &range(100),
                10,
                |_, _| Err(ErrorKind::UnexpectedEof.into()),
                || false
            ),
            Err(CorpusError::ProcessExited { pid: 7 })
        ));
    }

    #[test]
    fn unreadable_pages_of_a_live_process_are_counted() {
        let mut n = 0;
        let c = sample(
            7,
            &range(10),
            10,
            |_, _| {
                n += 1;
                if n % 2 == 0 {
                    Err(std::io::Error::from_raw_os_error(EIO))
                } else {
                    Ok(())
                }
            },
            || true,
        )
        .unwrap();
        assert_eq!(c.len(), 5);
        assert_eq!(c.notes(), &[ReadNote::Unreadable { pages: 5 }]);
    }

    #[test]
    fn a_huge_sparse_mapping_costs_only_the_pages_asked_for() {
        // 1 TiB of mapping, 3 pages asked: 3 reads, evenly spread.
        let mut addrs = Vec::new();
        let c = sample(
            7,
            &range(1 << 28),
            3,
            |a, _| {
                addrs.push(a);
                Ok(())
            },
            || true,
        )
        .unwrap();
        assert_eq!(c.len(), 3);
        assert_eq!(addrs.len(), 3);
        assert_eq!(addrs[1] - addrs[0], (1u64 << 28) / 3 * PAGE_SIZE as u64);
        for n in [0, MAX_PAGES + 1] {
            assert!(matches!(
                load(std::process::id(), n),
                Err(CorpusError::PageLimit { .. })
            ));
        }
    }

    #[test]
    fn missing_process_is_typed() {
        // PIDs are at most 2^22 on Linux.
        assert!(matches!(
            load(u32::MAX - 1, 10),
            Err(CorpusError::NoSuchProcess { .. })
        ));
    }
}
