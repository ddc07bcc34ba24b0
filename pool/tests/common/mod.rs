//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::fs::{File, OpenOptions};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use pool::{Pool, PoolConfig, TestTopology};
use software_fallback::corpus::Corpus;
use software_fallback::{CodecSpec, PAGE_SIZE};

/// A pool with a test topology of CPUs `cpus`.
pub fn pool_with(codec: CodecSpec, cpus: &[usize]) -> (Pool, Arc<TestTopology>) {
    let topo = Arc::new(TestTopology::new(cpus));
    let cfg = PoolConfig {
        codec,
        topology: topo.clone(),
        ..PoolConfig::default()
    };
    (Pool::new(cfg).expect("pool"), topo)
}

/// The built-in corpus (zero, same-filled, text, heap-like, random pages).
pub fn corpus() -> Corpus {
    Corpus::builtin()
}

/// A real heap corpus if the shared one is present, else the built-in one.
pub fn real_corpus(n: usize) -> Corpus {
    let p = std::path::Path::new("/work/shared/corpus/py-heap.pages.zst");
    match Corpus::load(p) {
        Ok(c) => c.sample(n),
        Err(_) => Corpus::builtin(),
    }
}

/// A distinct page for (slot, version): heap-like, compressible, never same-filled.
pub fn page_for(slot: u64, version: u64) -> Vec<u8> {
    let mut p = vec![0u8; PAGE_SIZE];
    let mut x =
        slot.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ version.wrapping_mul(0xd1b5_4a32_d192_ed03) | 1;
    for (i, w) in p.chunks_exact_mut(8).enumerate() {
        if i % 4 == 0 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
        }
        let v = if i % 4 == 0 {
            x
        } else {
            (i as u64) << 3 | (version & 0xff) << 40
        };
        w.copy_from_slice(&v.to_le_bytes());
    }
    p[0..8].copy_from_slice(&slot.to_le_bytes());
    p[8..16].copy_from_slice(&version.to_le_bytes());
    p
}

static N: AtomicU64 = AtomicU64::new(0);

/// A fresh temporary file path (removed by `TempFile`'s drop).
pub struct TempFile {
    pub path: PathBuf,
}

impl TempFile {
    pub fn new(tag: &str) -> TempFile {
        let path = std::env::temp_dir().join(format!(
            "pool-test-{}-{}-{tag}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        TempFile { path }
    }

    pub fn open_rw(&self) -> File {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&self.path)
            .expect("temp file")
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
