//! **The IAA device emulator** — a test and benchmarking aid, not a production engine.
//!
//! It takes the same 64-byte descriptors through the same [`WorkQueue`] submission code as
//! hardware: over an emulated portal (MOVDIR64B posts into a dedicated queue that drops what
//! exceeds its size; ENQCMD into a shared queue that refuses when full), or over `write(2)`
//! to a socket the emulator owns, behind which an emulated kernel write path validates each
//! descriptor as `idxd_cdev_write` does (EINVAL for a completion record not 64-byte aligned,
//! EAGAIN when a shared queue keeps refusing). Engine threads of its own execute the
//! descriptors and write completion records asynchronously, status byte last with release
//! ordering. Compression uses the Huffman tables of the descriptor's AECS (its own LZ77
//! encoder, not a library); decompression is its own inflater with IAA's 4 KiB history.
//! Faults are injected on request ([`FaultInjector`]). The submission path is chosen by the
//! production code (`open_path.rs`) from [`EmulatorConfig`]: the portal when the "CPU" has the
//! instruction and the "kernel" permits the mapping (`mmap_permitted`), else `write(2)`,
//! confirmed by a NOOP, or no path at all when the "kernel" has no `write()`
//! (`kernel_write`). A dedicated queue has one opener ([`Emulator::open_again`] refuses).
//!
//! It models **no device latency**: anything timed on it measures this crate's overhead
//! plus the emulator's software work, never IAA.

mod crc;
mod deflate;
mod engine;
mod faults;
mod inflate;
mod mem;

pub use faults::{Fault, FaultInjector, Target};
pub use inflate::HISTORY as DECOMPRESS_HISTORY;
/// The emulator's DEFLATE decoder, for the fuzz targets (`fuzz/`) only.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub use inflate::{inflate, InflateError, InflateMode};

/// The error a non-success completion record of `op` becomes, for the fuzz targets only.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub fn completion_error(
    op: crate::Op,
    c: &crate::raw::completion::Completion,
) -> crate::AccelError {
    crate::AccelError::from_completion(op, c)
}

use std::collections::VecDeque;
use std::os::unix::net::UnixDatagram;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::discovery::{PortalInsn, SubmitMethod, WqMode, WritePathReason};
use crate::raw::descriptor::{Descriptor, DESCRIPTOR_SIZE};
use crate::raw::portal::Doorbell;
use crate::wq::{Health, Path, PathKind, WorkQueue};
use crate::write_path::{CharDevWriter, DescriptorWriter};
use crate::AccelError;
use faults::lock;

/// Emulated queue settings.
#[derive(Clone, Debug)]
pub struct EmulatorConfig {
    /// Dedicated (MOVDIR64B, drops beyond `size`) or shared (ENQCMD, refuses when full).
    pub mode: WqMode,
    /// Queue entries.
    pub size: u32,
    /// Whether the CPU has the instruction the queue needs: `Portal` = yes, so the portal
    /// is tried first (and used unless `mmap_permitted` is false); `Write` = no, `write(2)`.
    /// The choice goes through the production code (`open_path.rs`).
    pub path: PathKind,
    /// The kernel lets this process map the portal. `false` answers the mmap with EPERM, as
    /// a kernel with the INTEL-SA-01084 fix does for a process without CAP_SYS_RAWIO.
    pub mmap_permitted: bool,
    /// The kernel's idxd char device has `write()`. `false` answers every `write(2)` with
    /// EINVAL, as a kernel from before the INTEL-SA-01084 series.
    pub kernel_write: bool,
    /// Engine threads.
    pub engines: usize,
    /// ENQCMD retries before the submitter reports the queue busy (and the emulated kernel
    /// write path's own `enqcmds_retries`).
    pub enqcmd_retries: u32,
    /// Largest `src1_size` accepted (the device's `max_transfer_size`).
    pub max_transfer_size: u32,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        EmulatorConfig {
            mode: WqMode::Dedicated,
            size: 32,
            path: PathKind::Portal,
            mmap_permitted: true,
            kernel_write: true,
            engines: 2,
            enqcmd_retries: crate::wq::DEFAULT_ENQCMD_RETRIES,
            max_transfer_size: 2 * 1024 * 1024,
        }
    }
}

/// Event counts of an emulator.
#[derive(Debug, Default)]
pub struct EmuCounters {
    /// Descriptors accepted into the queue.
    pub accepted: AtomicU64,
    /// Descriptors a full dedicated queue dropped without a word.
    pub dropped_full: AtomicU64,
    /// ENQCMD attempts refused.
    pub refused: AtomicU64,
    /// Descriptors the emulated kernel write path rejected.
    pub write_rejected: AtomicU64,
    /// Descriptors that got no completion record (no or misaligned record address).
    pub no_record: AtomicU64,
    /// Completion records written.
    pub completed: AtomicU64,
}

pub(crate) struct Shared {
    queue: Mutex<VecDeque<Descriptor>>,
    cv: Condvar,
    pub(crate) occupancy: AtomicU32,
    size: u32,
    pub(crate) stop: AtomicBool,
    pub(crate) unplugged: AtomicBool,
    pub(crate) faults: FaultInjector,
    pub(crate) counters: EmuCounters,
    pub(crate) max_transfer: u32,
}

impl Shared {
    /// A posted write (MOVDIR64B): accepted if there is room, else silently dropped.
    fn post(&self, d: Descriptor) {
        if self.take_entry() {
            self.enqueue(d);
        } else {
            self.counters.dropped_full.fetch_add(1, Ordering::AcqRel);
            tracing::debug!("emulator: dedicated queue full; descriptor dropped");
        }
    }

    /// An ENQCMD: `true` when accepted.
    fn try_enqueue(&self, d: Descriptor) -> bool {
        if self.faults.take_enqcmd_reject() || !self.take_entry() {
            self.counters.refused.fetch_add(1, Ordering::AcqRel);
            return false;
        }
        self.enqueue(d);
        true
    }

    fn take_entry(&self) -> bool {
        self.occupancy
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |o| {
                (o < self.size).then_some(o + 1)
            })
            .is_ok()
    }

    fn enqueue(&self, d: Descriptor) {
        self.counters.accepted.fetch_add(1, Ordering::AcqRel);
        lock(&self.queue).push_back(d);
        self.cv.notify_one();
    }

    /// Blocks until a descriptor is available; `None` when stopping.
    pub(crate) fn next_descriptor(&self) -> Option<Descriptor> {
        let mut q = lock(&self.queue);
        loop {
            if self.stop.load(Ordering::Acquire) {
                return None;
            }
            if let Some(d) = q.pop_front() {
                return Some(d);
            }
            q = self.cv.wait(q).unwrap_or_else(|e| e.into_inner());
        }
    }
}

struct EmuPortal(Arc<Shared>);

impl Doorbell for EmuPortal {
    fn movdir64b(&self, d: &Descriptor) {
        self.0.post(*d);
    }
    fn enqcmd(&self, d: &Descriptor) -> bool {
        self.0.try_enqueue(*d)
    }
}

/// The submitter's end of the emulated char device. Descriptors go out through the
/// production [`CharDevWriter`] — the same `write(2)` call that feeds `/dev/iax/wqN.M`, here
/// on a socket the emulator owns — and the emulated kernel's return value (bytes accepted,
/// or `-errno`) is then read back from the same socket.
struct EmuWriter {
    dev: Mutex<(CharDevWriter, UnixDatagram)>,
}

impl EmuWriter {
    fn new(ours: UnixDatagram) -> std::io::Result<EmuWriter> {
        let file = std::fs::File::from(std::os::fd::OwnedFd::from(ours.try_clone()?));
        Ok(EmuWriter {
            dev: Mutex::new((CharDevWriter { file }, ours)),
        })
    }
}

impl DescriptorWriter for EmuWriter {
    fn write_descriptors(&self, bytes: &[u8]) -> std::io::Result<usize> {
        let dev = lock(&self.dev);
        let (writer, sock) = &*dev;
        let sent = writer.write_descriptors(bytes)?;
        if sent != bytes.len() {
            return Err(std::io::Error::from_raw_os_error(libc::EIO));
        }
        let mut r = [0u8; 8];
        let n = sock.recv(&mut r)?;
        if n != 8 {
            return Err(std::io::Error::from_raw_os_error(libc::EIO));
        }
        let v = i64::from_le_bytes(r);
        if v < 0 {
            Err(std::io::Error::from_raw_os_error((-v) as i32))
        } else {
            Ok(v as usize)
        }
    }
}

/// The emulated char device as `open_path` sees it.
struct EmuNode {
    shared: Arc<Shared>,
    mmap_permitted: bool,
    sock: Option<UnixDatagram>,
}

impl crate::open_path::QueueNode for EmuNode {
    fn map_portal(&mut self) -> std::io::Result<Box<dyn Doorbell>> {
        if !self.mmap_permitted {
            return Err(std::io::Error::from_raw_os_error(libc::EPERM));
        }
        Ok(Box::new(EmuPortal(Arc::clone(&self.shared))))
    }

    fn writer(&mut self) -> std::io::Result<Box<dyn DescriptorWriter>> {
        let sock = self
            .sock
            .take()
            .ok_or_else(|| std::io::Error::other("emulated char device already handed out"))?;
        Ok(Box::new(EmuWriter::new(sock)?))
    }
}

struct EmuHealth(Arc<Shared>);

impl Health for EmuHealth {
    fn check(&self) -> Result<(), String> {
        if self.0.unplugged.load(Ordering::Acquire) {
            Err("emulated IAA device unplugged".into())
        } else if self.0.stop.load(Ordering::Acquire) {
            Err("emulated IAA device shut down".into())
        } else {
            Ok(())
        }
    }
}

/// The emulated kernel write path (`idxd_cdev_write`): validates and submits each
/// descriptor of a write, answers bytes accepted or `-errno`.
fn kernel_write_path(
    shared: Arc<Shared>,
    sock: UnixDatagram,
    mode: WqMode,
    retries: u32,
    has_write: bool,
) {
    let mut buf = vec![0u8; 64 * DESCRIPTOR_SIZE];
    while !shared.stop.load(Ordering::Acquire) {
        let n = match sock.recv(&mut buf) {
            Ok(n) => n,
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut
                    || e.kind() == std::io::ErrorKind::Interrupted =>
            {
                continue
            }
            Err(_) => return,
        };
        let mut accepted = 0usize;
        let mut rc: i64 = 0;
        // No `.write` in the file operations: `vfs_write` answers EINVAL before any
        // descriptor is looked at (`fs/read_write.c`).
        let descriptors = if has_write { &buf[..n] } else { &buf[..0] };
        if !has_write {
            rc = -i64::from(libc::EINVAL);
        }
        for chunk in descriptors.chunks_exact(DESCRIPTOR_SIZE) {
            let mut bytes = [0u8; DESCRIPTOR_SIZE];
            bytes.copy_from_slice(chunk);
            let mut d = Descriptor::from_bytes(&bytes);
            // "the completion address must be aligned to 32 or 64 bytes" (cdev.c): IAA 64.
            if d.completion_addr() % crate::raw::completion::COMPLETION_ALIGN as u64 != 0 {
                shared
                    .counters
                    .write_rejected
                    .fetch_add(1, Ordering::AcqRel);
                rc = -i64::from(libc::EINVAL);
                break;
            }
            match mode {
                WqMode::Dedicated => shared.post(d),
                WqMode::Shared => {
                    // The kernel submits with ENQCMDS for the process's PASID, unprivileged.
                    d.set_pasid_priv(0, false);
                    if !(0..=retries).any(|_| shared.try_enqueue(d)) {
                        rc = -i64::from(libc::EAGAIN);
                        break;
                    }
                }
            }
            accepted += 1;
        }
        let reply = if accepted == 0 {
            rc
        } else {
            (accepted * DESCRIPTOR_SIZE) as i64
        };
        if sock.send(&reply.to_le_bytes()).is_err() {
            return;
        }
    }
}

/// A running emulated IAA device with one work queue.
pub struct Emulator {
    shared: Arc<Shared>,
    // Held for its `Drop`: stops and joins the threads when the emulator goes.
    _running: Running,
    wq: Arc<WorkQueue>,
}

/// The emulator's threads; dropping it stops them and waits for them (an engine finishes
/// the descriptor it is executing, so no emulated device write outlives the emulator).
struct Running {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Emulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emulator").field("wq", &self.wq).finish()
    }
}

impl Emulator {
    /// Starts the engine threads (and the emulated kernel write path for `PathKind::Write`).
    pub fn start(cfg: EmulatorConfig) -> Result<Emulator, AccelError> {
        let shared = Arc::new(Shared {
            queue: Mutex::new(VecDeque::new()),
            cv: Condvar::new(),
            occupancy: AtomicU32::new(0),
            size: cfg.size.max(1),
            stop: AtomicBool::new(false),
            unplugged: AtomicBool::new(false),
            faults: FaultInjector::default(),
            counters: EmuCounters::default(),
            max_transfer: cfg.max_transfer_size,
        });
        // Owns the threads from the first spawn on: an error below stops and joins them.
        let mut running = Running {
            shared: Arc::clone(&shared),
            threads: Vec::new(),
        };
        let threads = &mut running.threads;
        let spawn_err = |e: std::io::Error| AccelError::Emulator(format!("spawn: {e}"));
        for i in 0..cfg.engines.max(1) {
            let s = Arc::clone(&shared);
            threads.push(
                std::thread::Builder::new()
                    .name(format!("iaa-emu-engine{i}"))
                    .spawn(move || engine::run(s))
                    .map_err(spawn_err)?,
            );
        }
        let (ours, kernel) =
            UnixDatagram::pair().map_err(|e| AccelError::Emulator(format!("socketpair: {e}")))?;
        kernel
            .set_read_timeout(Some(Duration::from_millis(20)))
            .map_err(|e| AccelError::Emulator(format!("socket timeout: {e}")))?;
        let s = Arc::clone(&shared);
        let (mode, retries, has_write) = (cfg.mode, cfg.enqcmd_retries, cfg.kernel_write);
        threads.push(
            std::thread::Builder::new()
                .name("iaa-emu-kernel".into())
                .spawn(move || kernel_write_path(s, kernel, mode, retries, has_write))
                .map_err(spawn_err)?,
        );
        let mut node = EmuNode {
            shared: Arc::clone(&shared),
            mmap_permitted: cfg.mmap_permitted,
            sock: Some(ours),
        };
        let insn = match cfg.mode {
            WqMode::Dedicated => PortalInsn::Movdir64b,
            WqMode::Shared => PortalInsn::Enqcmd,
        };
        let method = match cfg.path {
            PathKind::Portal => SubmitMethod::Portal(insn),
            PathKind::Write => SubmitMethod::Write(WritePathReason::MissingInstruction(insn)),
        };
        let name = format!("iaa-emulator-wq({:?},{:?})", cfg.mode, cfg.path).to_lowercase();
        let chosen = crate::open_path::choose(&mut node, &name, &method)?;
        let wq = Arc::new(WorkQueue::from_parts(
            name,
            cfg.mode,
            cfg.size,
            chosen,
            Box::new(EmuHealth(Arc::clone(&shared))),
            cfg.enqcmd_retries,
        ));
        tracing::info!(
            ?cfg,
            "IAA device emulator started (no device latency modelled)"
        );
        Ok(Emulator {
            shared,
            _running: running,
            wq,
        })
    }

    /// The emulated work queue, to build contexts on.
    pub fn work_queue(&self) -> Arc<WorkQueue> {
        Arc::clone(&self.wq)
    }

    /// Opens the emulated queue a second time, as another process would. A dedicated queue
    /// refuses, as the kernel does (`idxd_cdev_open`: a dedicated queue has one opener,
    /// EBUSY): [`AccelError::QueueHeld`]. A shared queue gives a new [`WorkQueue`] on the
    /// portal path with its own budget (the device arbitrates with ENQCMD).
    pub fn open_again(&self) -> Result<Arc<WorkQueue>, AccelError> {
        if self.wq.mode() == WqMode::Dedicated {
            return Err(AccelError::QueueHeld {
                path: format!("/dev/iax/{}", self.wq.name()).into(),
            });
        }
        Ok(Arc::new(WorkQueue::from_parts(
            format!("{}#2", self.wq.name()),
            self.wq.mode(),
            self.wq.size(),
            crate::open_path::Chosen {
                path: Path::Portal(Box::new(EmuPortal(Arc::clone(&self.shared)))),
                reason: "portal (second opener of the emulated shared queue)".into(),
            },
            Box::new(EmuHealth(Arc::clone(&self.shared))),
            crate::wq::DEFAULT_ENQCMD_RETRIES,
        )))
    }

    /// Test hook: takes up to `n` free entries of the emulated queue, as descriptors that
    /// bypassed this queue handle's in-flight budget would (a submitter that ignores it).
    /// Returns how many it took; they stay taken until [`Emulator::free_entries`].
    pub fn occupy_entries(&self, n: u32) -> u32 {
        (0..n).take_while(|_| self.shared.take_entry()).count() as u32
    }

    /// Gives back `n` entries taken by [`Emulator::occupy_entries`].
    pub fn free_entries(&self, n: u32) {
        let _ = self
            .shared
            .occupancy
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |o| {
                Some(o.saturating_sub(n))
            });
    }

    /// The fault plan.
    pub fn faults(&self) -> &FaultInjector {
        &self.shared.faults
    }

    /// Event counters.
    pub fn counters(&self) -> &EmuCounters {
        &self.shared.counters
    }

    /// Simulates the device disappearing: nothing more completes and its health check fails
    /// (as a real queue whose sysfs `state` left `enabled`).
    pub fn unplug(&self) {
        self.shared.unplugged.store(true, Ordering::Release);
    }

    /// Entries now occupied in the emulated queue.
    pub fn occupancy(&self) -> u32 {
        self.shared.occupancy.load(Ordering::Acquire)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        {
            let _q = lock(&self.shared.queue);
            self.shared.cv.notify_all();
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}
