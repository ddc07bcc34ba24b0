//! What `swapaccel bench` can measure: software codecs, IAA work queues, the device
//! emulator (only when asked for, and always labelled as such), and Intel QPL's software and
//! hardware paths (feature `qpl`).

use std::sync::Arc;

use accel::discovery::{DiscoveryConfig, Report, WqInfo};
use accel::emu::{Emulator, EmulatorConfig};
use accel::wq::PathKind;
use accel::{ContextConfig, IaaCodec, WorkQueue};
use software_fallback::{CodecError, CodecSpec, PageCodec};

use super::queue_room::WaitForRoom;

/// A backend to measure.
#[derive(Clone, Debug)]
pub enum Backend {
    /// A software codec.
    Software(CodecSpec),
    /// A real IAA work queue (raw DEFLATE, fixed Huffman).
    Iaa(Box<WqInfo>),
    /// A real IAA work queue driven over a forced submission path (`iaa-portal`,
    /// `iaa-write`; the hardware CI measures both).
    IaaOn(Box<WqInfo>, PathKind),
    /// The device emulator in `accel::emu`: a test aid that models no device latency.
    IaaEmu,
    /// Intel QPL (`qpl`, `qpl:dynamic`, `qpl-hw`, ...): the peer our direct IAA path and the
    /// software codecs are measured against.
    #[cfg(feature = "qpl")]
    Qpl(qpl_codec::QplConfig),
}

/// Why a backend could not be chosen or set up.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// A name that is no backend.
    #[error(
        "unknown backend `{0}`: expected iaa, iaa-portal, iaa-write, iaa-emu, deflate[:LEVEL], \
         zstd[:LEVEL], lz4, or with the qpl feature qpl[:dynamic], qpl-hw[:dynamic], \
         qpl-auto[:dynamic]"
    )]
    Unknown(String),
    /// A QPL backend was asked for in a build without the `qpl` feature.
    #[error("backend `{0}` needs QPL: build with `--features qpl` (see docs/qpl.md)")]
    QplNotBuilt(String),
    /// The backend cannot run on this machine (QPL's hardware path without IAA); the bench
    /// skips it and prints the reason.
    #[error("{backend} unavailable: {reason}")]
    Unavailable {
        /// Backend label.
        backend: String,
        /// Why, in the words of the library that said so.
        reason: String,
    },
    /// `iaa` was asked for and there is none.
    #[error("backend iaa asked for, but no IAA work queue is usable: {0}")]
    NoIaa(String),
    /// A software codec rejected its settings.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// The device or emulator could not be opened.
    #[error("cannot open {backend}: {source}")]
    Accel {
        /// Backend label.
        backend: String,
        /// The accel layer's error.
        #[source]
        source: accel::AccelError,
    },
}

impl Backend {
    /// The label printed in tables and files.
    pub fn label(&self) -> String {
        match self {
            Backend::Software(spec) => spec.to_string(),
            Backend::Iaa(wq) => format!("iaa:{}", wq.name),
            Backend::IaaOn(wq, PathKind::Portal) => format!("iaa:{}@portal", wq.name),
            Backend::IaaOn(wq, PathKind::Write) => format!("iaa:{}@write", wq.name),
            Backend::IaaEmu => "iaa-emu".into(),
            #[cfg(feature = "qpl")]
            Backend::Qpl(config) => config.to_string(),
        }
    }

    /// True for the emulator, whose figures measure our own overhead only.
    pub fn is_emulator(&self) -> bool {
        matches!(self, Backend::IaaEmu)
    }

    /// Opens what the backend needs once (a work queue, an emulator), shared by every thread.
    pub fn open(&self, report: &Report) -> Result<Opened, BackendError> {
        let accel_err = |source| BackendError::Accel {
            backend: self.label(),
            source,
        };
        Ok(match self {
            Backend::Software(spec) => {
                spec.build()?;
                Opened::Software(*spec)
            }
            Backend::IaaOn(info, path) => Opened::Device(
                WorkQueue::open_on(info, report.cpu, Some(*path)).map_err(accel_err)?,
            ),
            Backend::Iaa(info) => {
                Opened::Device(WorkQueue::open(info, report.cpu).map_err(accel_err)?)
            }
            Backend::IaaEmu => {
                let emu = Emulator::start(EmulatorConfig::default()).map_err(accel_err)?;
                Opened::Emulator(Arc::new(emu))
            }
            #[cfg(feature = "qpl")]
            Backend::Qpl(config) => {
                // One job now, to report an unusable path before measuring; each thread
                // makes its own.
                qpl_codec::QplCodec::new(*config).map_err(|e| BackendError::Unavailable {
                    backend: self.label(),
                    reason: e.to_string(),
                })?;
                Opened::Qpl(*config)
            }
        })
    }
}

/// A backend opened for a run: makes one codec context per thread.
pub enum Opened {
    /// Software: each thread builds its own context.
    Software(CodecSpec),
    /// A real work queue, shared by the threads' contexts.
    Device(Arc<WorkQueue>),
    /// The emulator, shared by the threads' contexts; kept alive by every context.
    Emulator(Arc<Emulator>),
    /// QPL: each thread makes its own job.
    #[cfg(feature = "qpl")]
    Qpl(qpl_codec::QplConfig),
}

/// Completion deadline for contexts on the emulator.
const EMULATOR_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// An IAA context on the emulator, holding the emulator alive for as long as it exists.
struct EmulatedCodec {
    // Field order is drop order: the context (and its in-flight slots) goes before the
    // emulator that serves them.
    codec: IaaCodec,
    _emu: Arc<Emulator>,
}

impl PageCodec for EmulatedCodec {
    fn id(&self) -> software_fallback::CodecId {
        self.codec.id()
    }
    fn compress(
        &mut self,
        page: &[u8],
        dst: &mut [u8],
    ) -> Result<software_fallback::Compressed, CodecError> {
        self.codec.compress(page, dst)
    }
    fn decompress(
        &mut self,
        src: &[u8],
        page: &mut [u8],
    ) -> Result<software_fallback::Decompressed, CodecError> {
        self.codec.decompress(src, page)
    }
    fn compress_batch(
        &mut self,
        pages: &[&[u8]],
        dsts: &mut [&mut [u8]],
    ) -> Result<software_fallback::BatchResults<software_fallback::Compressed>, CodecError> {
        self.codec.compress_batch(pages, dsts)
    }
    fn decompress_batch(
        &mut self,
        srcs: &[&[u8]],
        pages: &mut [&mut [u8]],
    ) -> Result<software_fallback::BatchResults<software_fallback::Decompressed>, CodecError> {
        self.codec.decompress_batch(srcs, pages)
    }
}

impl Opened {
    /// A fresh codec context for one thread.
    pub fn codec(&self) -> Result<Box<dyn PageCodec>, CodecError> {
        Ok(match self {
            Opened::Software(spec) => Box::new(spec.build()?),
            // The threads share the queue: a page refused for want of room waits for it.
            Opened::Device(wq) => Box::new(WaitForRoom::new(IaaCodec::new(
                wq.clone(),
                ContextConfig::default(),
            ))),
            Opened::Emulator(emu) => Box::new(WaitForRoom::new(EmulatedCodec {
                codec: IaaCodec::new(
                    emu.work_queue(),
                    ContextConfig {
                        // The emulator's engine threads share the CPUs with the measuring
                        // threads; the hardware deadline would time out on a busy host.
                        timeout: EMULATOR_TIMEOUT,
                        ..ContextConfig::default()
                    },
                ),
                _emu: emu.clone(),
            })),
            // QPL's hardware path refuses a page when its queues are full (Busy), as ours does.
            #[cfg(feature = "qpl")]
            Opened::Qpl(config) => Box::new(WaitForRoom::new(qpl_codec::QplCodec::new(*config)?)),
        })
    }
}

/// The NUMA node of the CPU we run on, if the kernel says.
fn local_node() -> Option<u32> {
    let cpu = rustix::thread::sched_getcpu();
    let dir = std::fs::read_dir(format!("/sys/devices/system/cpu/cpu{cpu}")).ok()?;
    dir.filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.strip_prefix("node")?.parse().ok())
        .next()
}

/// The NUMA node of an IAA device (`numa_node` in its sysfs directory).
fn device_node(report: &Report, device: &str) -> Option<u32> {
    let dev = report.devices.iter().find(|d| d.name == device)?;
    std::fs::read_to_string(dev.dir.join("numa_node"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Usable IAA work queues, those on this CPU's NUMA node first.
pub fn iaa_backends(report: &Report) -> Vec<Backend> {
    let local = local_node();
    let mut wqs: Vec<&WqInfo> = report.usable().collect();
    wqs.sort_by_key(|w| (device_node(report, &w.device) != local, w.name.clone()));
    wqs.into_iter()
        .map(|w| Backend::Iaa(Box::new(w.clone())))
        .collect()
}

/// The QPL backends `all` includes when QPL is built in: QPL's software path with fixed and
/// dynamic Huffman, and its hardware path (skipped with QPL's reason where there is no IAA).
#[cfg(feature = "qpl")]
const QPL_IN_ALL: &[&str] = &["qpl", "qpl:dynamic", "qpl-hw"];
#[cfg(not(feature = "qpl"))]
const QPL_IN_ALL: &[&str] = &[];

/// A `qpl...` backend name.
#[cfg(feature = "qpl")]
fn qpl_backend(name: &str) -> Result<Backend, BackendError> {
    name.parse::<qpl_codec::QplConfig>()
        .map(Backend::Qpl)
        .map_err(|_| BackendError::Unknown(name.into()))
}

/// A `qpl...` backend name in a build without QPL.
#[cfg(not(feature = "qpl"))]
fn qpl_backend(name: &str) -> Result<Backend, BackendError> {
    Err(BackendError::QplNotBuilt(name.into()))
}

/// Resolves `--backend` names. `all` (the default) is every real backend: each usable IAA
/// work queue, then deflate:1, zstd:1, zstd:-1 and lz4, then (feature `qpl`) qpl,
/// qpl:dynamic and qpl-hw. `iaa-emu` is never implied.
pub fn resolve(names: &[String], report: &Report) -> Result<Vec<Backend>, BackendError> {
    let mut out = Vec::new();
    for name in names {
        match name.as_str() {
            "all" => {
                out.extend(iaa_backends(report));
                for s in ["deflate:1", "zstd:1", "zstd:-1", "lz4"] {
                    out.push(Backend::Software(s.parse()?));
                }
                for s in QPL_IN_ALL {
                    out.push(qpl_backend(s)?);
                }
            }
            "iaa" => {
                let found = iaa_backends(report);
                if found.is_empty() {
                    return Err(BackendError::NoIaa(
                        report.why_none().unwrap_or_else(|| "none found".into()),
                    ));
                }
                out.extend(found);
            }
            "iaa-portal" | "iaa-write" => {
                let path = if name == "iaa-portal" {
                    PathKind::Portal
                } else {
                    PathKind::Write
                };
                let found = iaa_backends(report);
                if found.is_empty() {
                    return Err(BackendError::NoIaa(
                        report.why_none().unwrap_or_else(|| "none found".into()),
                    ));
                }
                out.extend(found.into_iter().filter_map(|b| match b {
                    Backend::Iaa(w) => Some(Backend::IaaOn(w, path)),
                    _ => None,
                }));
            }
            "iaa-emu" => out.push(Backend::IaaEmu),
            qpl if qpl.starts_with("qpl") => out.push(qpl_backend(qpl)?),
            other => {
                let spec = other.parse::<CodecSpec>().map_err(|e| match e {
                    CodecError::UnknownCodecName(_) => BackendError::Unknown(other.into()),
                    e => BackendError::Codec(e),
                })?;
                out.push(Backend::Software(spec));
            }
        }
    }
    Ok(out)
}

/// Discovery with the system's roots.
pub fn discover() -> Report {
    accel::discovery::discover(&DiscoveryConfig::system())
}
