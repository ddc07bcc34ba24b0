//! Test data: corpora and fixture sysfs/dev trees in temporary directories.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use software_fallback::corpus::Corpus;

/// The real-heap corpus file, or why it is missing (found as
/// `software_fallback::corpus::shared` says).
pub fn py_heap_path() -> Result<PathBuf, String> {
    software_fallback::corpus::shared::file("py-heap.pages.zst")
}

/// Pages of the real-heap corpus used in the default run (set
/// `SWAPACCEL_HWTESTS_PAGES` for more).
pub fn py_heap_sample_size() -> usize {
    std::env::var("SWAPACCEL_HWTESTS_PAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

/// Loads `n` pages sampled from the real-heap corpus.
pub fn py_heap_sample(n: usize) -> Result<Corpus, String> {
    let p = py_heap_path()?;
    let c = Corpus::load(&p).map_err(|e| format!("{}: {e}", p.display()))?;
    Ok(c.sample(n))
}

/// Deterministic pseudo-random (incompressible) bytes.
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 32) as u8
        })
        .collect()
}

/// A temporary directory tree, removed on drop.
pub struct TempTree {
    root: PathBuf,
}

impl TempTree {
    /// A fresh empty directory.
    pub fn new(tag: &str) -> std::io::Result<TempTree> {
        static N: AtomicU32 = AtomicU32::new(0);
        let root = std::env::temp_dir().join(format!(
            "swapaccel-hwtests-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&root)?;
        Ok(TempTree { root })
    }

    /// The root.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// Writes `rel` (creating parents) with `content`.
    pub fn file(&self, rel: &str, content: &str) -> std::io::Result<PathBuf> {
        let p = self.root.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&p, content)?;
        Ok(p)
    }

    /// Creates directory `rel`.
    pub fn dir(&self, rel: &str) -> std::io::Result<PathBuf> {
        let p = self.root.join(rel);
        std::fs::create_dir_all(&p)?;
        Ok(p)
    }
}

impl Drop for TempTree {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// Builder for a fixture sysfs + /dev tree shaped like a real idxd system.
pub struct IdxdFixture {
    /// The tree.
    pub tree: TempTree,
}

impl IdxdFixture {
    /// An empty tree (no `bus/dsa`: no driver).
    pub fn new() -> std::io::Result<IdxdFixture> {
        Ok(IdxdFixture {
            tree: TempTree::new("sysfs")?,
        })
    }
    /// `<root>/sys`.
    pub fn sys(&self) -> PathBuf {
        self.tree.path().join("sys")
    }
    /// `<root>/dev`.
    pub fn dev(&self) -> PathBuf {
        self.tree.path().join("dev")
    }
    /// Registers the idxd bus with drivers.
    pub fn bus(&self, drivers: &[&str]) -> std::io::Result<()> {
        self.tree.dir("sys/bus/dsa/devices")?;
        for d in drivers {
            self.tree.dir(&format!("sys/bus/dsa/drivers/{d}"))?;
        }
        Ok(())
    }
    /// Adds a device (`iaxN`/`dsaN`) with attributes.
    pub fn device(&self, name: &str, attrs: &[(&str, &str)]) -> std::io::Result<()> {
        self.tree.dir(&format!("sys/bus/dsa/devices/{name}"))?;
        for (k, v) in attrs {
            self.tree.file(
                &format!("sys/bus/dsa/devices/{name}/{k}"),
                &format!("{v}\n"),
            )?;
        }
        Ok(())
    }
    /// Adds a work queue with attributes.
    pub fn wq(&self, name: &str, attrs: &[(&str, &str)]) -> std::io::Result<()> {
        self.device(name, attrs)
    }
    /// Adds the char device node (a plain file standing in) with a mode.
    pub fn cdev(&self, name: &str, mode: u32) -> std::io::Result<PathBuf> {
        use std::os::unix::fs::PermissionsExt;
        let p = self.tree.file(&format!("dev/iax/{name}"), "")?;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode))?;
        Ok(p)
    }
}

/// Attributes of an enabled IAA device supporting compress and decompress.
pub const IAX_ENABLED: &[(&str, &str)] = &[
    ("state", "enabled"),
    (
        "op_cap",
        "00000000,00000000,00000000,00000000,00000000,0000000c,00000000,00000001",
    ),
    ("max_transfer_size", "2147483648"),
    ("pasid_enabled", "1"),
    ("version", "0x100"),
];

/// Attributes of an enabled user-type dedicated queue of size 32.
pub const WQ_DEDICATED_USER: &[(&str, &str)] = &[
    ("mode", "dedicated"),
    ("type", "user"),
    ("driver_name", "user"),
    ("name", "swapaccel"),
    ("size", "32"),
    ("threshold", "0"),
    ("block_on_fault", "1"),
    ("state", "enabled"),
    ("max_transfer_size", "2097152"),
];
