//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use accel::discovery::WqMode;
use accel::emu::{Emulator, EmulatorConfig};
use accel::wq::PathKind;
use accel::ContextConfig;
use batching::{DeviceBackend, Engine, EngineConfig, FullPolicy, Workers};
use pool::{CodecFactory, CpuTopology, Pool, PoolConfig, TestTopology};
use software_fallback::corpus::Corpus;
use software_fallback::{
    BatchResults, CodecError, CodecId, CodecSpec, Compressed, Decompressed, PageCodec, PAGE_SIZE,
};

/// A page whose content is determined by (`slot`, `version`): corpus-like content with the
/// identity stamped in so every store of every slot is distinct.
pub fn page(corpus: &Corpus, slot: u64, version: u64) -> Vec<u8> {
    if version % 5 == 4 {
        // Same-filled (never reaches a codec), still distinct per (slot, version).
        let fill = (slot << 20 | version) | 1;
        return fill.to_le_bytes().repeat(PAGE_SIZE / 8);
    }
    let i = (slot.wrapping_mul(31).wrapping_add(version)) as usize % corpus.len();
    let mut p = corpus.page(i).to_vec();
    p[..8].copy_from_slice(&slot.to_le_bytes());
    p[8..16].copy_from_slice(&(version + 1).to_le_bytes());
    p
}

/// A folio of `n` pages from `slot` at `version`.
pub fn folio(corpus: &Corpus, slot: u64, n: usize, version: u64) -> Vec<u8> {
    let mut v = Vec::with_capacity(n * PAGE_SIZE);
    for k in 0..n as u64 {
        v.extend_from_slice(&page(corpus, slot + k, version));
    }
    v
}

pub fn builtin() -> Corpus {
    Corpus::builtin()
}

/// A software pool over a test topology of `cpus`.
pub fn software_pool(topo: Arc<TestTopology>) -> Arc<Pool> {
    Arc::new(
        Pool::new(PoolConfig {
            topology: topo as Arc<dyn CpuTopology>,
            ..PoolConfig::default()
        })
        .expect("pool"),
    )
}

pub fn engine_cfg(topo: Arc<TestTopology>) -> EngineConfig {
    let mut c = EngineConfig::new(topo as Arc<dyn CpuTopology>);
    c.hotplug_poll = Duration::from_millis(10);
    c
}

/// An emulator, a device backend on it, a pool whose contexts use it.
pub struct DeviceRig {
    pub emu: Emulator,
    pub backend: Arc<DeviceBackend>,
    pub pool: Arc<Pool>,
}

pub fn device_rig(
    topo: Arc<TestTopology>,
    mode: WqMode,
    size: u32,
    timeout: Duration,
    probe: Duration,
) -> DeviceRig {
    let emu = Emulator::start(EmulatorConfig {
        mode,
        path: PathKind::Portal,
        size,
        ..EmulatorConfig::default()
    })
    .expect("emulator");
    let backend = DeviceBackend::new(
        emu.work_queue(),
        ContextConfig {
            timeout,
            drain_on_drop: Duration::from_millis(20),
            ..ContextConfig::default()
        },
        probe,
    );
    let pool = Arc::new(
        Pool::new(PoolConfig {
            topology: topo as Arc<dyn CpuTopology>,
            factory: backend.factory(),
            ..PoolConfig::default()
        })
        .expect("pool"),
    );
    DeviceRig { emu, backend, pool }
}

/// A gate that codecs wait on while closed: makes "the worker is busy" deterministic.
#[derive(Default)]
pub struct Gate {
    state: Mutex<(bool, usize)>, // (closed, waiting)
    cv: Condvar,
}

impl Gate {
    pub fn close(&self) {
        self.state.lock().unwrap().0 = true;
    }
    pub fn open(&self) {
        self.state.lock().unwrap().0 = false;
        self.cv.notify_all();
    }
    fn pass(&self) {
        let mut s = self.state.lock().unwrap();
        s.1 += 1;
        self.cv.notify_all();
        while s.0 {
            s = self.cv.wait(s).unwrap();
        }
        s.1 -= 1;
        self.cv.notify_all();
    }
    /// Blocks until `n` codec calls are waiting at the gate.
    pub fn wait_for_waiters(&self, n: usize) {
        let mut s = self.state.lock().unwrap();
        while s.1 < n {
            s = self.cv.wait_timeout(s, Duration::from_secs(5)).unwrap().0;
        }
    }
}

pub struct GatedCodec {
    inner: software_fallback::SoftwareCodec,
    gate: Arc<Gate>,
}

impl PageCodec for GatedCodec {
    fn id(&self) -> CodecId {
        self.inner.id()
    }
    fn compress(&mut self, page: &[u8], dst: &mut [u8]) -> Result<Compressed, CodecError> {
        self.gate.pass();
        self.inner.compress(page, dst)
    }
    fn decompress(&mut self, src: &[u8], page: &mut [u8]) -> Result<Decompressed, CodecError> {
        self.inner.decompress(src, page)
    }
    fn compress_batch(
        &mut self,
        pages: &[&[u8]],
        dsts: &mut [&mut [u8]],
    ) -> Result<BatchResults<Compressed>, CodecError> {
        self.gate.pass();
        self.inner.compress_batch(pages, dsts)
    }
}

/// A pool whose compressors wait at `gate`.
pub fn gated_pool(topo: Arc<TestTopology>, gate: Arc<Gate>) -> Arc<Pool> {
    let factory = move |spec: CodecSpec| -> pool::Result<Box<dyn PageCodec>> {
        Ok(Box::new(GatedCodec {
            inner: spec.build()?,
            gate: Arc::clone(&gate),
        }))
    };
    Arc::new(
        Pool::new(PoolConfig {
            topology: topo as Arc<dyn CpuTopology>,
            factory: Arc::new(factory) as Arc<dyn CodecFactory>,
            ..PoolConfig::default()
        })
        .expect("pool"),
    )
}

/// An engine with one worker over a gated pool, and the gate closed with the worker parked
/// in the codec on a store of `park_slot` (so everything submitted next stays queued).
pub fn parked_engine(
    policy: FullPolicy,
    capacity: usize,
    park_slot: u64,
) -> (Engine, Arc<Gate>, batching::Ticket) {
    parked_engine_with(policy, capacity, park_slot, batching::MergePolicy::Always)
}

pub fn parked_engine_with(
    policy: FullPolicy,
    capacity: usize,
    park_slot: u64,
    merge: batching::MergePolicy,
) -> (Engine, Arc<Gate>, batching::Ticket) {
    let topo = Arc::new(TestTopology::new(&[0]));
    let gate = Arc::new(Gate::default());
    let pool = gated_pool(Arc::clone(&topo), Arc::clone(&gate));
    pool.swapon(0, 1 << 16, None).expect("swapon");
    let mut cfg = engine_cfg(topo);
    cfg.workers = Workers::Fixed(1);
    cfg.full_policy = policy;
    cfg.queue_capacity = capacity;
    cfg.merge = merge;
    let engine = Engine::start(pool, cfg).expect("engine");
    gate.close();
    let c = builtin();
    let t = engine
        .store(0, park_slot, page(&c, park_slot, 0))
        .expect("park store");
    gate.wait_for_waiters(1);
    (engine, gate, t)
}

/// A small deterministic random source (xorshift64), so a failing seed replays.
pub struct Rng(pub u64);

impl Rng {
    /// The next value.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A value in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}
