//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::fs::{File, OpenOptions};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use pool::{CodecFactory, Pool, PoolConfig, PoolError, TestTopology};
use software_fallback::corpus::Corpus;
use software_fallback::{
    CodecError, CodecId, CodecSpec, Compressed, Decompressed, PageCodec, SoftwareCodec, PAGE_SIZE,
};

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

/// A small lz4 pool on one CPU (128 KiB limit, accept threshold 50 %) with swap type 0 on
/// `file` (256 slots): the setting of the background-reclaimer tests.
pub fn small_pool_on_file(file: &TempFile) -> Arc<Pool> {
    let pool = Arc::new(
        Pool::new(PoolConfig {
            codec: CodecSpec::LZ4,
            max_pool_bytes: 128 * 1024,
            accept_threshold_percent: 50,
            topology: Arc::new(TestTopology::new(&[0])),
            ..PoolConfig::default()
        })
        .expect("pool"),
    );
    pool.swapon(0, 256, Some(file.open_rw())).expect("swapon");
    pool
}

/// The built-in corpus (zero, same-filled, text, heap-like, random pages).
pub fn corpus() -> Corpus {
    Corpus::builtin()
}

/// `n` pages of the real py-heap corpus, or the built-in ones where it is missing (said on
/// stderr; a failure under `SWAPACCEL_REQUIRE_CORPUS=1`). See `software_fallback::corpus::shared`.
pub fn real_corpus(n: usize) -> Corpus {
    software_fallback::corpus::shared::sample_or_builtin("py-heap.pages.zst", n)
}

/// `n` pages of the real py-heap corpus for a test that means nothing on synthetic pages:
/// `None` (a skip, said on stderr) where it is missing; a failure under
/// `SWAPACCEL_REQUIRE_CORPUS=1`.
pub fn real_corpus_or_skip(n: usize) -> Option<Corpus> {
    software_fallback::corpus::shared::sample_or_skip("py-heap.pages.zst", n)
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

/// What a test controls in the codecs its pool builds (see [`factory`]).
pub struct CodecEnv {
    /// The factory fails while this is set.
    pub fail_build: AtomicBool,
    /// Live codec instances per format id.
    pub live: [AtomicUsize; 4],
    /// Runs before every compress (any context, any thread); an error fails that page.
    pub on_compress: Box<dyn Fn() -> Result<(), CodecError> + Send + Sync>,
    /// Runs before every decompress (contexts' and the reclaimer's decoders).
    pub on_decompress: Box<dyn Fn() + Send + Sync>,
    /// Runs at the start of every build, with the spec asked for.
    pub on_build: Box<dyn Fn(CodecSpec) + Send + Sync>,
    /// Runs when a codec is dropped, with its format.
    pub on_drop: Box<dyn Fn(CodecId) + Send + Sync>,
}

impl Default for CodecEnv {
    fn default() -> Self {
        CodecEnv {
            fail_build: AtomicBool::new(false),
            live: Default::default(),
            on_compress: Box::new(|| Ok(())),
            on_decompress: Box::new(|| {}),
            on_build: Box::new(|_| {}),
            on_drop: Box::new(|_| {}),
        }
    }
}

impl CodecEnv {
    /// Live codec instances of format `id`.
    pub fn live(&self, id: CodecId) -> usize {
        self.live[id.as_u8() as usize].load(Ordering::SeqCst)
    }

    /// Makes the factory fail (`true`) or work again.
    pub fn fail_build(&self, on: bool) {
        self.fail_build.store(on, Ordering::SeqCst);
    }
}

/// A software codec that runs its environment's hooks and counts itself in.
struct TestCodec {
    inner: SoftwareCodec,
    env: Arc<CodecEnv>,
}

impl Drop for TestCodec {
    fn drop(&mut self) {
        self.env.live[self.inner.id().as_u8() as usize].fetch_sub(1, Ordering::SeqCst);
        (self.env.on_drop)(self.inner.id());
    }
}

impl PageCodec for TestCodec {
    fn id(&self) -> CodecId {
        self.inner.id()
    }
    fn compress(&mut self, page: &[u8], dst: &mut [u8]) -> Result<Compressed, CodecError> {
        (self.env.on_compress)()?;
        self.inner.compress(page, dst)
    }
    fn decompress(&mut self, src: &[u8], page: &mut [u8]) -> Result<Decompressed, CodecError> {
        (self.env.on_decompress)();
        self.inner.decompress(src, page)
    }
}

/// A codec factory building software codecs under `env`'s control.
pub fn factory(env: Arc<CodecEnv>) -> Arc<dyn CodecFactory> {
    let f = move |spec: CodecSpec| -> pool::Result<Box<dyn PageCodec>> {
        (env.on_build)(spec);
        if env.fail_build.load(Ordering::SeqCst) {
            return Err(PoolError::Factory {
                spec: spec.to_string(),
                reason: "injected".into(),
            });
        }
        let inner = spec.build()?;
        env.live[spec.id.as_u8() as usize].fetch_add(1, Ordering::SeqCst);
        Ok(Box::new(TestCodec {
            inner,
            env: env.clone(),
        }))
    };
    Arc::new(f)
}

/// A pool of `codec` on topology `topo` whose codecs come from [`factory`]`(env)`.
pub fn env_pool(codec: CodecSpec, topo: Arc<TestTopology>, env: Arc<CodecEnv>) -> Pool {
    Pool::new(PoolConfig {
        codec,
        factory: factory(env),
        topology: topo,
        ..PoolConfig::default()
    })
    .expect("pool")
}

/// The generic error a hook injects.
pub fn injected() -> CodecError {
    CodecError::Backend {
        codec: CodecId::Lz4,
        reason: "injected".into(),
    }
}
