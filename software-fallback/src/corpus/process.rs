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

use super::{Corpus, CorpusError};
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

/// Reads up to `max_pages` pages (evenly spread over the mappings) of process `pid`.
pub fn load(pid: u32, max_pages: usize) -> Result<Corpus, CorpusError> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps"))
        .map_err(|e| proc_err(pid, "maps", e))?;
    let ranges = anon_writable_ranges(&maps);
    let total: u64 = ranges.iter().map(AnonRange::pages).sum();
    let name = format!("pid:{pid}");
    if total == 0 {
        return Err(CorpusError::Empty { name });
    }
    let mem = File::open(format!("/proc/{pid}/mem")).map_err(|e| proc_err(pid, "mem", e))?;
    let want = (max_pages.max(1) as u64).min(total);
    let mut data = Vec::with_capacity(want as usize * PAGE_SIZE);
    let mut page = vec![0u8; PAGE_SIZE];
    // Page k of the sample is page k*total/want of the concatenated mappings.
    let (mut r, mut before) = (0usize, 0u64);
    for k in 0..want {
        let idx = k * total / want;
        while before + ranges[r].pages() <= idx {
            before += ranges[r].pages();
            r += 1;
        }
        let addr = ranges[r].start + (idx - before) * PAGE_SIZE as u64;
        match mem.read_exact_at(&mut page, addr) {
            Ok(()) => data.extend_from_slice(&page),
            // The mapping changed or is not readable (guard pages, PROT_NONE remaps): skip it.
            Err(e) if e.raw_os_error() == Some(EIO) || e.kind() == ErrorKind::UnexpectedEof => {}
            Err(e) => return Err(proc_err(pid, "mem", e)),
        }
    }
    Corpus::from_bytes(name, data)
}

/// EIO on Linux: what reading an unreadable range of `/proc/PID/mem` returns.
const EIO: i32 = 5;

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
        let c = load(std::process::id(), usize::MAX).expect("read own process");
        let found = c
            .pages()
            .any(|p| p[..64] == marker[..64] || p.windows(64).any(|w| w == &marker[..64]));
        std::hint::black_box(&marker);
        assert!(found, "marker page not found among {} pages", c.len());
        assert!(c.name().starts_with("pid:"));
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
