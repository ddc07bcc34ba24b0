//! Reading and writing the idxd configuration attributes under a sysfs root.
//!
//! Paths are relative to the sysfs root (`/sys`, or a fixture tree in tests); every device,
//! queue and engine is reached as `bus/dsa/devices/<name>` (the kernel links all three
//! there: `Documentation/ABI/stable/sysfs-driver-dma-idxd`). Drivers are bound and unbound
//! by writing a name to `bus/dsa/drivers/<driver>/{bind,unbind}` (the driver core's
//! `bind_store`/`unbind_store`, `drivers/base/bus.c`).

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Access to sysfs attributes. The real one writes files; tests put a model of the
/// kernel's rules behind it.
pub trait SysfsIo {
    /// Reads an attribute (trailing newline removed).
    fn read(&self, rel: &str) -> io::Result<String>;
    /// Writes an attribute.
    fn write(&self, rel: &str, value: &str) -> io::Result<()>;
    /// Names under a directory, sorted.
    fn list(&self, rel: &str) -> io::Result<Vec<String>>;
    /// The driver bound to `bus/dsa/devices/<name>` (its `driver` link), if any.
    fn bound_driver(&self, name: &str) -> io::Result<Option<String>>;
    /// The root, for messages.
    fn root(&self) -> &Path;
}

/// sysfs (or a tree shaped like it) on the file system.
#[derive(Clone, Debug)]
pub struct RootedSysfs {
    root: PathBuf,
}

impl RootedSysfs {
    /// Attributes under `root` (`/sys` on a real host).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        RootedSysfs { root: root.into() }
    }
}

impl SysfsIo for RootedSysfs {
    fn read(&self, rel: &str) -> io::Result<String> {
        Ok(std::fs::read_to_string(self.root.join(rel))?
            .trim_end()
            .to_string())
    }
    fn write(&self, rel: &str, value: &str) -> io::Result<()> {
        // sysfs stores take the whole value in one write(2); no create, no truncate
        // semantics beyond what the attribute does.
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(self.root.join(rel))?;
        f.write_all(value.as_bytes())
    }
    fn list(&self, rel: &str) -> io::Result<Vec<String>> {
        let mut v: Vec<String> = std::fs::read_dir(self.root.join(rel))?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        Ok(v)
    }
    fn bound_driver(&self, name: &str) -> io::Result<Option<String>> {
        let link = self.root.join(attr_path(name, "driver"));
        match std::fs::read_link(&link) {
            Ok(target) => Ok(target.file_name().map(|n| n.to_string_lossy().into_owned())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            // Not a link: a fixture tree names the driver in a plain file.
            Err(_) => {
                Ok(Some(std::fs::read_to_string(&link)?.trim().to_string())
                    .filter(|s| !s.is_empty()))
            }
        }
    }
    fn root(&self) -> &Path {
        &self.root
    }
}

/// `bus/dsa/devices/<name>/<attr>`.
pub fn attr_path(name: &str, attr: &str) -> String {
    format!("bus/dsa/devices/{name}/{attr}")
}

/// Queue attributes recorded and restored, in the order they are written back (mode before
/// threshold; `state` is not written, it follows from binding).
pub const WQ_ATTRS: &[&str] = &[
    "group_id",
    "mode",
    "size",
    "priority",
    "block_on_fault",
    "type",
    "name",
    "driver_name",
    "threshold",
];

/// One queue as found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WqSnapshot {
    /// `wqN.M`.
    pub name: String,
    /// `state` (enabled/disabled).
    pub state: String,
    /// The driver bound to it (`user`, `crypto`, `dmaengine`), if any.
    pub driver: Option<String>,
    /// The attributes of [`WQ_ATTRS`] that exist on this kernel.
    pub attrs: BTreeMap<String, String>,
}

/// One IAA device as found: its state, queues and engines.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceSnapshot {
    /// `iaxN`.
    pub name: String,
    /// N.
    pub id: u32,
    /// `state`.
    pub state: String,
    /// Every queue of the device.
    pub wqs: Vec<WqSnapshot>,
    /// Every engine's `group_id`, by engine name.
    pub engines: BTreeMap<String, String>,
}

/// IAA device names (`iaxN`) on the bus, in numeric order.
pub fn iaa_devices(io: &dyn SysfsIo) -> io::Result<Vec<(String, u32)>> {
    let mut v: Vec<(String, u32)> = io
        .list("bus/dsa/devices")?
        .into_iter()
        .filter_map(|n| {
            let id = n.strip_prefix("iax")?.parse().ok()?;
            Some((n, id))
        })
        .collect();
    v.sort_by_key(|d| d.1);
    Ok(v)
}

fn children(io: &dyn SysfsIo, prefix: &str, id: u32) -> io::Result<Vec<String>> {
    let p = format!("{prefix}{id}.");
    let mut v: Vec<(u32, String)> = io
        .list("bus/dsa/devices")?
        .into_iter()
        .filter_map(|n| Some((n.strip_prefix(&p)?.parse().ok()?, n.clone())))
        .collect();
    v.sort();
    Ok(v.into_iter().map(|x| x.1).collect())
}

/// Records a device's configuration.
pub fn snapshot(io: &dyn SysfsIo, name: &str, id: u32) -> io::Result<DeviceSnapshot> {
    let state = io.read(&attr_path(name, "state"))?;
    let mut wqs = Vec::new();
    for wq in children(io, "wq", id)? {
        let mut attrs = BTreeMap::new();
        for a in WQ_ATTRS {
            // driver_name exists from kernel 6.7 on; others are always there.
            if let Ok(v) = io.read(&attr_path(&wq, a)) {
                attrs.insert((*a).to_string(), v);
            }
        }
        wqs.push(WqSnapshot {
            state: io.read(&attr_path(&wq, "state"))?,
            driver: io.bound_driver(&wq)?,
            name: wq,
            attrs,
        });
    }
    let mut engines = BTreeMap::new();
    for e in children(io, "engine", id)? {
        engines.insert(e.clone(), io.read(&attr_path(&e, "group_id"))?);
    }
    Ok(DeviceSnapshot {
        name: name.to_string(),
        id,
        state,
        wqs,
        engines,
    })
}
