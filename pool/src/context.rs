//! Per-CPU compression contexts.
//!
//! **Lifetime.** One context per possible CPU, created with the pool (and when the topology
//! names a CPU not seen before) in a fixed table of write-once cells, and freed only when the
//! pool is dropped. CPU offline/online never touches them; the current CPU is only a hint for
//! which context to lock, and a thread may use any context it has locked. Because cells are
//! written once and never cleared, a `&Context` stays valid as long as the pool.
//!
//! **Locking.** A context's mutex guards its codec, its 8 destination buffers and its decoders.
//! It is the outermost lock of a store or load's data path (context → index chunk → allocator
//! class). Nothing is ever allocated or freed while it is held: a new codec (compressor switch)
//! or a decoder for another format is built before locking and swapped in under the lock, and
//! the codec it replaces is dropped after unlocking.

use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock, PoisonError};

use crate::sync::{AtomicU64, Mutex, MutexGuard, RwLock};

use software_fallback::{CodecId, CodecSpec, PageCodec, MAX_BATCH, MAX_COMPRESS_ROOM, PAGE_SIZE};

use crate::config::CodecFactory;
use crate::error::{PoolError, Result};
use crate::stats::Counters;
use crate::topology::CpuTopology;

/// Bytes of each of a context's destination buffers: a page, or the largest worst-case
/// output a software codec declares ([`PageCodec::compress_room`]), so that every software
/// codec compresses straight into them (no staging copy). A codec declaring more room than
/// this gets the pool's cutoff as its destination and stages on its own.
pub(crate) const DST_LEN: usize = if MAX_COMPRESS_ROOM > PAGE_SIZE {
    MAX_COMPRESS_ROOM
} else {
    PAGE_SIZE
};

/// Highest CPU id + 1 the pool serves (the kernel's largest `NR_CPUS`). A hint beyond it maps
/// onto an existing context.
pub const MAX_CPUS: usize = 8192;

/// The state a context's lock guards.
pub(crate) struct CtxInner {
    /// The compressor for new stores.
    pub codec: Box<dyn PageCodec>,
    /// Generation of the compressor setting `codec` was built for.
    pub codec_gen: u64,
    /// Destination buffers of [`DST_LEN`] bytes, one per page of a batch (also used to stage
    /// objects for loads).
    pub dst: [Box<[u8]>; MAX_BATCH],
    /// Decoders for formats other than the compressor's, built on first need.
    pub decoders: Decoders,
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

/// How many formats the pool knows: one decoder slot and one live-entry gauge each. Sized
/// from the codec list, so that a new format grows every per-format table with it.
pub(crate) const FORMATS: usize = CodecId::ALL.len();

/// One optional decoder per format, indexed by [`decoder_slot`].
pub(crate) type Decoders = [Option<Box<dyn PageCodec>>; FORMATS];

/// No decoder for any format.
pub(crate) fn no_decoders() -> Decoders {
    std::array::from_fn(|_| None)
}

/// A format's index in the per-format tables: its position in [`CodecId::ALL`], always
/// below [`FORMATS`] (the id's byte is not used: ids need not be dense).
pub(crate) fn decoder_slot(id: CodecId) -> usize {
    // Every `CodecId` is in `ALL` (software-fallback's `all_lists_every_id_a_byte_decodes_to`);
    // `FORMATS - 1` is only reached if that test fails, and is still in bounds.
    CodecId::ALL
        .iter()
        .position(|&c| c == id)
        .unwrap_or(FORMATS - 1)
}

/// One CPU's context.
pub(crate) struct Context {
    inner: Mutex<CtxInner>,
}

impl Context {
    pub fn lock(&self) -> MutexGuard<'_, CtxInner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// All contexts, indexed by CPU id.
pub(crate) struct Contexts {
    /// One write-once cell per CPU id (8 bytes each when empty: the context is boxed).
    table: Box<[OnceLock<Box<Context>>]>,
    /// Serialises context creation (never held while a context is in use).
    grow: Mutex<()>,
    spec: RwLock<CodecSpec>,
    spec_gen: AtomicU64,
    factory: Arc<dyn CodecFactory>,
    topology: Arc<dyn CpuTopology>,
    created: AtomicU64,
    counters: Arc<Counters>,
}

impl Contexts {
    /// Creates one context per possible CPU. On error nothing is left behind (everything
    /// built so far is dropped with the table; no hotplug teardown is involved).
    pub fn new(
        spec: CodecSpec,
        factory: Arc<dyn CodecFactory>,
        topology: Arc<dyn CpuTopology>,
        counters: Arc<Counters>,
    ) -> Result<Contexts> {
        let cpus = topology.possible()?;
        if cpus.is_empty() {
            // Refused now rather than at every later call (no context would ever exist).
            return Err(PoolError::Topology(
                "the topology names no possible CPU: a pool needs at least one context".into(),
            ));
        }
        let ctxs = Contexts {
            table: (0..MAX_CPUS).map(|_| OnceLock::new()).collect(),
            grow: Mutex::new(()),
            spec: RwLock::new(spec),
            spec_gen: AtomicU64::new(1),
            factory,
            topology,
            created: AtomicU64::new(0),
            counters,
        };
        for cpu in cpus {
            if cpu >= MAX_CPUS {
                return Err(PoolError::Topology(format!("CPU id {cpu} ≥ {MAX_CPUS}")));
            }
            ctxs.add(cpu)?;
        }
        Ok(ctxs)
    }

    fn build(&self) -> Result<Box<Context>> {
        let (spec, gen) = self.setting();
        let codec = self.factory.build(spec)?;
        Ok(Box::new(Context {
            inner: Mutex::new(CtxInner {
                codec,
                codec_gen: gen,
                dst: std::array::from_fn(|_| vec![0u8; DST_LEN].into_boxed_slice()),
                decoders: no_decoders(),
            }),
        }))
    }

    /// Adds a context for `cpu` (< MAX_CPUS) unless one exists. Builds it before publishing.
    fn add(&self, cpu: usize) -> Result<&Context> {
        let cell = &self.table[cpu];
        if let Some(c) = cell.get() {
            return Ok(c.as_ref());
        }
        let _g = self.grow.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(c) = cell.get() {
            return Ok(c.as_ref());
        }
        let ctx = self.build()?;
        self.created.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(cpu, "created compression context");
        Ok(cell.get_or_init(|| ctx))
    }

    /// The context for `cpu_hint`: that CPU's, a newly created one if the CPU is new, or an
    /// existing one if the hint names no possible CPU — or if the topology cannot be read or
    /// the new CPU's context cannot be built (the CPU is only a hint; that is logged, and
    /// the next call for the CPU tries again). Blocks only to build a new context.
    pub fn get(&self, cpu_hint: usize) -> Result<&Context> {
        #[cfg(swapaccel_unprotected = "hotplug")]
        self.hotplug_teardown(cpu_hint)?;
        if let Some(c) = self.table.get(cpu_hint).and_then(OnceLock::get) {
            return Ok(c.as_ref());
        }
        let possible = match self.topology.possible() {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(
                    error = &e as &dyn std::error::Error,
                    cpu_hint,
                    "CPU topology unreadable; using another context"
                );
                return self.any(cpu_hint, self.cpus());
            }
        };
        if cpu_hint < MAX_CPUS && possible.contains(&cpu_hint) {
            match self.add(cpu_hint) {
                Ok(c) => return Ok(c),
                Err(e) => {
                    tracing::warn!(
                        error = &e as &dyn std::error::Error,
                        cpu_hint,
                        "cannot build the CPU's context; using another"
                    );
                }
            }
        }
        self.any(cpu_hint, possible)
    }

    /// An existing context among `cpus`, spread by `cpu_hint`.
    fn any(&self, cpu_hint: usize, cpus: Vec<usize>) -> Result<&Context> {
        let existing: Vec<&Context> = cpus
            .iter()
            .filter_map(|&c| self.table.get(c)?.get())
            .map(AsRef::as_ref)
            .collect();
        match existing.get(cpu_hint % existing.len().max(1)) {
            Some(c) => Ok(*c),
            None => Err(PoolError::Topology("no compression context exists".into())),
        }
    }

    /// The context of the CPU the caller is probably on.
    pub fn current(&self) -> Result<&Context> {
        self.get(self.topology.current())
    }

    /// The current compressor setting and its generation.
    pub fn setting(&self) -> (CodecSpec, u64) {
        let spec = self.spec.read().unwrap_or_else(PoisonError::into_inner);
        (*spec, self.spec_gen.load(Ordering::Acquire))
    }

    /// Switches the compressor: checks `spec` builds, then publishes it; contexts pick it up
    /// the next time they are used. Blocks while building a codec.
    pub fn switch(&self, spec: CodecSpec) -> Result<()> {
        drop(self.factory.build(spec)?);
        let mut s = self.spec.write().unwrap_or_else(PoisonError::into_inner);
        *s = spec;
        let gen = self.spec_gen.fetch_add(1, Ordering::AcqRel) + 1;
        tracing::info!(%spec, gen, "compressor switched");
        Ok(())
    }

    /// Locks `ctx`, first making sure it has a decoder for `need` (if given) and bringing its
    /// compressor up to the current setting — which only a store (`compress`) needs: a load
    /// whose new compressor cannot be built goes on with the old one. Builds and frees codecs
    /// only outside the lock.
    pub fn lock_ready<'a>(
        &self,
        ctx: &'a Context,
        need: Option<CodecId>,
        compress: bool,
    ) -> Result<MutexGuard<'a, CtxInner>> {
        // A load whose refresh failed goes on with the stale compressor.
        let mut keep_stale = false;
        loop {
            let gen = self.spec_gen.load(Ordering::Acquire);
            let mut g = ctx.lock();
            let stale_codec = !keep_stale && g.codec_gen != gen;
            let missing = need.filter(|&id| g.decoder(id).is_none());
            // Decoders of formats with no live entries left go now (outside the lock).
            let mut unused: Decoders = no_decoders();
            for id in CodecId::ALL {
                let i = decoder_slot(id);
                if g.decoders[i].is_some() && Some(id) != need && self.counters.live(i) == 0 {
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
            let (spec, gen) = self.setting();
            let new_codec = match stale_codec.then(|| self.factory.build(spec)) {
                Some(Ok(c)) => Some(c),
                Some(Err(e)) if !compress => {
                    tracing::warn!(error = &e as &dyn std::error::Error, %spec, "cannot build the new compressor; load goes on");
                    keep_stale = true;
                    None
                }
                Some(Err(e)) => return Err(e),
                None => None,
            };
            let new_decoder = match missing {
                Some(id) => Some(self.factory.build(CodecSpec::default_for(id))?),
                None => None,
            };
            let mut g = ctx.lock();
            // Whatever is not installed (another user of the context got there first) and
            // whatever is replaced is dropped after unlocking.
            let mut spare_codec = new_codec;
            if g.codec_gen < gen {
                if let Some(c) = spare_codec.take() {
                    spare_codec = Some(std::mem::replace(&mut g.codec, c));
                    g.codec_gen = gen;
                }
            }
            let mut spare_decoder = new_decoder;
            if let (Some(id), Some(d)) = (missing, spare_decoder.take()) {
                spare_decoder = g.decoders[decoder_slot(id)].replace(d);
            }
            drop(g);
            drop(spare_codec);
            drop(spare_decoder);
        }
    }

    /// Contexts created since the pool was.
    pub fn created(&self) -> u64 {
        self.created.load(Ordering::Relaxed)
    }

    /// The topology the contexts follow.
    pub fn topology(&self) -> &Arc<dyn CpuTopology> {
        &self.topology
    }

    /// CPU ids that have a context.
    pub fn cpus(&self) -> Vec<usize> {
        (0..MAX_CPUS)
            .filter(|&c| self.table[c].get().is_some())
            .collect()
    }

    /// Test-only broken behaviour: frees a context's buffers when its CPU goes offline and
    /// rebuilds them when it comes back, as zswap's hotplug callbacks once did — while a
    /// thread that picked the context before the CPU went away may still be about to use it.
    #[cfg(swapaccel_unprotected = "hotplug")]
    fn hotplug_teardown(&self, cpu_hint: usize) -> Result<()> {
        let online = self.topology.online()?;
        for cpu in self.cpus() {
            let Some(ctx) = self.table[cpu].get() else {
                continue;
            };
            let Ok(mut g) = ctx.inner.try_lock() else {
                continue;
            };
            let torn_down = g.dst[0].is_empty();
            if !online.contains(&cpu) && !torn_down {
                for d in g.dst.iter_mut() {
                    *d = Box::new([]);
                }
            } else if online.contains(&cpu) && torn_down && cpu == cpu_hint {
                for d in g.dst.iter_mut() {
                    *d = vec![0u8; DST_LEN].into_boxed_slice();
                }
                self.created.fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok(())
    }
}

// The unit tests use the primitives directly; under `shuttle` they need a shuttle runtime.
#[cfg(all(test, not(feature = "shuttle")))]
mod tests {
    use super::*;

    /// Every format an entry's stored byte can name, however many the codec list holds (a
    /// fourth format is covered as soon as it decodes from a byte), has its own slot inside
    /// every per-format table: the decoders and the live-entry gauges.
    #[test]
    fn every_format_a_stored_byte_names_has_its_own_slot_in_every_per_format_table() {
        let formats: Vec<CodecId> = (0..=u8::MAX)
            .filter_map(|b| CodecId::try_from(b).ok())
            .collect();
        assert_eq!(formats.len(), FORMATS, "the codec list misses a format");
        let counters = Counters::default();
        let mut decoders = no_decoders();
        let mut seen = [false; FORMATS];
        for (n, &id) in formats.iter().enumerate() {
            let slot = decoder_slot(id);
            assert!(slot < FORMATS, "{id:?} has slot {slot} of {FORMATS}");
            assert!(!seen[slot], "{id:?} shares slot {slot}");
            seen[slot] = true;
            assert!(decoders[slot].is_none());
            decoders[slot] = Some(Box::new(
                software_fallback::SoftwareCodec::decoder_for(id).unwrap(),
            ));
            counters.add_live(slot, n as u64 + 1);
        }
        for (n, &id) in formats.iter().enumerate() {
            let slot = decoder_slot(id);
            assert_eq!(decoders[slot].as_ref().map(|d| d.id()), Some(id));
            assert_eq!(counters.live(slot), n as u64 + 1, "{id:?}'s gauge");
        }
    }
}
