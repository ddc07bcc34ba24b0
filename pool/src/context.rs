//! Per-CPU compression contexts.
//!
//! **Lifetime.** One context per possible CPU, created with the pool (and when the topology
//! names a CPU not seen before), kept in an append-only table and freed only when the pool is
//! dropped. CPU offline/online never touches them; the current CPU is only a hint for which
//! context to lock, and a thread may use any context it has locked.
//!
//! **Locking.** A context's mutex guards its codec, its 8 destination buffers and its decoders.
//! It is the outermost lock of a store or load (context → index chunk → allocator class).
//! Nothing is ever allocated or freed while it is held: a new codec (compressor switch) or a
//! decoder for another format is built before locking and swapped in under the lock, and the
//! codec it replaces is dropped after unlocking. The table's lock is held only to look up or
//! append a context.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};

use software_fallback::{CodecId, CodecSpec, PageCodec, MAX_BATCH, PAGE_SIZE};

use crate::config::CodecFactory;
use crate::error::Result;
use crate::topology::CpuTopology;

/// The state a context's lock guards.
pub(crate) struct CtxInner {
    /// The compressor for new stores.
    pub codec: Box<dyn PageCodec>,
    /// Generation of the compressor setting `codec` was built for.
    pub codec_gen: u64,
    /// Destination buffers, one per page of a batch (also used to stage objects for loads).
    pub dst: [Box<[u8]>; MAX_BATCH],
    /// Decoders for formats other than the compressor's, built on first need.
    pub decoders: [Option<Box<dyn PageCodec>>; 3],
}

impl CtxInner {
    /// A codec that decodes `id`: the compressor itself, or a decoder for that format.
    pub fn decoder(&mut self, id: CodecId) -> Option<&mut (dyn PageCodec + 'static)> {
        if self.codec.id() == id {
            return Some(self.codec.as_mut());
        }
        self.decoders[decoder_slot(id)].as_deref_mut()
    }
}

pub(crate) fn decoder_slot(id: CodecId) -> usize {
    id.as_u8() as usize - 1
}

/// One CPU's context.
pub(crate) struct Context {
    pub cpu: usize,
    inner: Mutex<CtxInner>,
}

impl Context {
    pub fn lock(&self) -> MutexGuard<'_, CtxInner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The current compressor setting: a spec and a generation bumped on every switch.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CodecSetting {
    pub spec: CodecSpec,
    pub gen: u64,
}

/// All contexts, indexed by CPU id.
pub(crate) struct Contexts {
    table: RwLock<Vec<Option<Arc<Context>>>>,
    setting: RwLock<CodecSetting>,
    factory: Arc<dyn CodecFactory>,
    topology: Arc<dyn CpuTopology>,
    created: AtomicU64,
    /// Live entries per format (index `id - 1`): decoders of a format that is not current go
    /// when its last entry does.
    pub live: [AtomicU64; 3],
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(PoisonError::into_inner)
}

impl Contexts {
    /// Creates one context per possible CPU. On error nothing is left behind (everything
    /// built so far is dropped with the partial table; no hotplug teardown is involved).
    pub fn new(
        spec: CodecSpec,
        factory: Arc<dyn CodecFactory>,
        topology: Arc<dyn CpuTopology>,
    ) -> Result<Contexts> {
        let cpus = topology.possible()?;
        let ctxs = Contexts {
            table: RwLock::new(Vec::new()),
            setting: RwLock::new(CodecSetting { spec, gen: 1 }),
            factory,
            topology,
            created: AtomicU64::new(0),
            live: Default::default(),
        };
        for cpu in cpus {
            ctxs.add(cpu)?;
        }
        Ok(ctxs)
    }

    fn build(&self, cpu: usize) -> Result<Arc<Context>> {
        let setting = self.setting();
        let codec = self.factory.build(setting.spec)?;
        Ok(Arc::new(Context {
            cpu,
            inner: Mutex::new(CtxInner {
                codec,
                codec_gen: setting.gen,
                dst: std::array::from_fn(|_| vec![0u8; PAGE_SIZE].into_boxed_slice()),
                decoders: Default::default(),
            }),
        }))
    }

    /// Adds a context for `cpu` unless one exists. Builds it before taking the table lock.
    fn add(&self, cpu: usize) -> Result<Arc<Context>> {
        if let Some(Some(c)) = read(&self.table).get(cpu) {
            return Ok(c.clone());
        }
        let ctx = self.build(cpu)?;
        let mut t = write(&self.table);
        if t.len() <= cpu {
            t.resize(cpu + 1, None);
        }
        match &t[cpu] {
            Some(existing) => Ok(existing.clone()), // lost a race; ours is dropped below
            None => {
                t[cpu] = Some(ctx.clone());
                self.created.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(cpu, "created compression context");
                Ok(ctx)
            }
        }
    }

    /// The context for `cpu_hint`: that CPU's, a newly created one if the CPU is new, or any
    /// existing one if the hint names no possible CPU. May block to build a context.
    pub fn get(&self, cpu_hint: usize) -> Result<Arc<Context>> {
        #[cfg(feature = "unprotected-hotplug")]
        self.hotplug_teardown();
        {
            let t = read(&self.table);
            if let Some(Some(c)) = t.get(cpu_hint) {
                return Ok(c.clone());
            }
        }
        if self.topology.possible()?.contains(&cpu_hint) {
            return self.add(cpu_hint);
        }
        let t = read(&self.table);
        let present: Vec<&Arc<Context>> = t.iter().flatten().collect();
        match present.len() {
            0 => {
                drop(t);
                self.add(cpu_hint)
            }
            n => Ok(present[cpu_hint % n].clone()),
        }
    }

    /// The context of the CPU the caller is probably on.
    pub fn current(&self) -> Result<Arc<Context>> {
        self.get(self.topology.current())
    }

    pub fn setting(&self) -> CodecSetting {
        *read(&self.setting)
    }

    /// Switches the compressor: checks `spec` builds, then publishes it; contexts pick it up
    /// the next time they are used. May block (builds a codec).
    pub fn switch(&self, spec: CodecSpec) -> Result<()> {
        drop(self.factory.build(spec)?);
        let mut s = write(&self.setting);
        s.spec = spec;
        s.gen += 1;
        tracing::info!(%spec, gen = s.gen, "compressor switched");
        Ok(())
    }

    /// Locks `ctx`, first bringing its compressor up to the current setting and making sure it
    /// has a decoder for `need` (if given). Builds and frees codecs only outside the lock.
    pub fn lock_ready<'a>(
        &self,
        ctx: &'a Context,
        need: Option<CodecId>,
    ) -> Result<MutexGuard<'a, CtxInner>> {
        loop {
            let setting = self.setting();
            let mut g = ctx.lock();
            let stale_codec = g.codec_gen != setting.gen;
            let missing = need.filter(|&id| g.decoder(id).is_none());
            // Decoders of formats with no live entries left (and not current) go now.
            let mut unused: [Option<Box<dyn PageCodec>>; 3] = Default::default();
            for id in CodecId::ALL {
                let i = decoder_slot(id);
                if g.decoders[i].is_some()
                    && self.live[i].load(Ordering::Relaxed) == 0
                    && Some(id) != need
                {
                    unused[i] = g.decoders[i].take();
                }
            }
            if !stale_codec && missing.is_none() {
                if unused.iter().any(Option::is_some) {
                    drop(g);
                    drop(unused);
                    continue;
                }
                return Ok(g);
            }
            drop(g);
            drop(unused);
            let new_codec = if stale_codec {
                Some(self.factory.build(setting.spec)?)
            } else {
                None
            };
            let new_decoder = match missing {
                Some(id) => Some(self.factory.build(CodecSpec::default_for(id))?),
                None => None,
            };
            let mut g = ctx.lock();
            let mut old_codec = None;
            if let Some(c) = new_codec {
                if g.codec_gen != setting.gen {
                    old_codec = Some(std::mem::replace(&mut g.codec, c));
                    g.codec_gen = setting.gen;
                }
            }
            let mut old_decoder = None;
            if let (Some(id), Some(d)) = (missing, new_decoder) {
                old_decoder = g.decoders[decoder_slot(id)].replace(d);
            }
            drop(g);
            drop(old_codec);
            drop(old_decoder);
        }
    }

    /// Contexts created since the pool was.
    pub fn created(&self) -> u64 {
        self.created.load(Ordering::Relaxed)
    }

    /// CPU ids that have a context.
    pub fn cpus(&self) -> Vec<usize> {
        read(&self.table).iter().flatten().map(|c| c.cpu).collect()
    }

    /// Test-only broken behaviour: tears a CPU's context down when the CPU goes offline and
    /// builds a fresh one when it comes back, as zswap once did with its hotplug callbacks.
    #[cfg(feature = "unprotected-hotplug")]
    pub fn hotplug_teardown(&self) {
        let Ok(online) = self.topology.online() else {
            return;
        };
        let mut t = write(&self.table);
        for (cpu, slot) in t.iter_mut().enumerate() {
            if slot.is_some() && !online.contains(&cpu) {
                if let Some(ctx) = slot.take() {
                    // Free the context's buffers even if someone is using it.
                    if let Ok(mut g) = ctx.inner.try_lock() {
                        for d in g.dst.iter_mut() {
                            *d = Box::new([]);
                        }
                    }
                }
            }
        }
    }
}
