//! Who we are, as far as opening a work queue is concerned: effective uid/gids and the two
//! capabilities that matter (CAP_DAC_OVERRIDE for the char device's mode bits,
//! CAP_SYS_RAWIO for mmap of the portal since INTEL-SA-01084, `idxd_cdev_mmap` in
//! `drivers/dma/idxd/cdev.c`).

use std::path::Path;

/// Capability numbers (`linux/capability.h`).
const CAP_DAC_OVERRIDE: u32 = 1;
const CAP_SYS_RAWIO: u32 = 17;

/// The credentials discovery checks queues against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Privileges {
    /// Effective user id.
    pub uid: u32,
    /// Effective group id and supplementary groups.
    pub gids: Vec<u32>,
    /// CAP_DAC_OVERRIDE is effective (mode bits do not apply).
    pub dac_override: bool,
    /// CAP_SYS_RAWIO is effective (the portal may be mmapped).
    pub sys_rawio: bool,
}

impl Privileges {
    /// Reads this process's credentials from `/proc/self/status`.
    pub fn current() -> Privileges {
        match std::fs::read_to_string("/proc/self/status") {
            Ok(s) => Self::from_proc_status(&s),
            Err(e) => {
                tracing::warn!(
                    error = &e as &dyn std::error::Error,
                    "cannot read /proc/self/status; assuming no privileges"
                );
                Privileges {
                    uid: u32::MAX,
                    gids: Vec::new(),
                    dac_override: false,
                    sys_rawio: false,
                }
            }
        }
    }

    /// Parses the `Uid:`, `Gid:`, `Groups:` and `CapEff:` lines of a `/proc/PID/status` text.
    pub fn from_proc_status(text: &str) -> Privileges {
        let mut p = Privileges {
            uid: u32::MAX,
            gids: Vec::new(),
            dac_override: false,
            sys_rawio: false,
        };
        for line in text.lines() {
            let Some((key, val)) = line.split_once(':') else {
                continue;
            };
            let mut fields = val.split_whitespace();
            match key {
                // Real, effective, saved, filesystem: take the effective one.
                "Uid" => {
                    if let Some(v) = fields.nth(1).and_then(|f| f.parse().ok()) {
                        p.uid = v;
                    }
                }
                "Gid" => {
                    if let Some(v) = fields.nth(1).and_then(|f| f.parse().ok()) {
                        p.gids.push(v);
                    }
                }
                "Groups" => p.gids.extend(fields.filter_map(|f| f.parse::<u32>().ok())),
                "CapEff" => {
                    if let Some(caps) = fields.next().and_then(|f| u64::from_str_radix(f, 16).ok())
                    {
                        p.dac_override = caps & (1 << CAP_DAC_OVERRIDE) != 0;
                        p.sys_rawio = caps & (1 << CAP_SYS_RAWIO) != 0;
                    }
                }
                _ => {}
            }
        }
        p
    }

    /// Whether these credentials may open `path` for reading and writing, judged from its
    /// owner, group and mode bits (what the kernel's permission check does for a device node
    /// without ACLs).
    pub fn can_read_write(&self, path: &Path) -> std::io::Result<bool> {
        use std::os::unix::fs::MetadataExt;
        let md = std::fs::metadata(path)?;
        if self.dac_override {
            return Ok(true);
        }
        let mode = md.mode();
        let bits = if md.uid() == self.uid {
            (mode >> 6) & 0o7
        } else if self.gids.contains(&md.gid()) {
            (mode >> 3) & 0o7
        } else {
            mode & 0o7
        };
        Ok(bits & 0o6 == 0o6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_status() {
        let s = "Name:\tx\nUid:\t1000\t1001\t1000\t1000\nGid:\t100\t100\t100\t100\n\
                 Groups:\t4 24 27\nCapEff:\t0000000000020000\n";
        let p = Privileges::from_proc_status(s);
        assert_eq!(p.uid, 1001);
        assert_eq!(p.gids, vec![100, 4, 24, 27]);
        assert!(p.sys_rawio);
        assert!(!p.dac_override);
    }
}
