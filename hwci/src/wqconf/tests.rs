//! Configure and restore on fixture trees, behind a model of the kernel's rules, including
//! runs interrupted by a real SIGTERM, killed runs and failed restores.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::io;
use std::path::Path;
use std::sync::atomic::AtomicBool;

use hwtests::fixtures::TempTree;

use super::*;

/// Called before each write with its number.
type WriteHook = Box<dyn Fn(usize)>;

/// sysfs files on a temporary tree, with the idxd driver's rules (`drivers/dma/idxd/sysfs.c`,
/// `device.c`) applied to writes: queue attributes only while the queue is disabled,
/// `group_id`s only while the device is disabled, threshold only on shared queues, queue
/// sizes within `max_work_queues_size`, empty writes refused (`strlen(buf) == 0`), a type
/// change clearing the name, `mode=dedicated` zeroing the threshold, bind/unbind changing
/// `state` and `driver`.
struct FakeKernel {
    files: RootedSysfs,
    writes: Cell<usize>,
    log: RefCell<Vec<String>>,
    /// Called with the number of the write about to happen (1-based).
    hook: RefCell<Option<WriteHook>>,
    /// Writes to these paths fail with EIO.
    broken: RefCell<Vec<String>>,
}

fn err(code: i32) -> io::Error {
    io::Error::from_raw_os_error(code)
}

impl FakeKernel {
    fn new(root: &Path) -> FakeKernel {
        FakeKernel {
            files: RootedSysfs::new(root),
            writes: Cell::new(0),
            log: RefCell::new(Vec::new()),
            hook: RefCell::new(None),
            broken: RefCell::new(Vec::new()),
        }
    }
    fn get(&self, name: &str, attr: &str) -> String {
        self.files
            .read(&sysfs::attr_path(name, attr))
            .unwrap_or_default()
    }
    fn put(&self, name: &str, attr: &str, v: &str) -> io::Result<()> {
        self.files.write(&sysfs::attr_path(name, attr), v)
    }
    fn device_of(obj: &str) -> String {
        let id = obj
            .trim_start_matches("wq")
            .trim_start_matches("engine")
            .split('.')
            .next()
            .unwrap_or("");
        format!("iax{id}")
    }
    fn wqs_of(&self, dev: &str) -> Vec<String> {
        let id = dev.trim_start_matches("iax");
        self.files
            .list("bus/dsa/devices")
            .unwrap()
            .into_iter()
            .filter(|n| n.starts_with(&format!("wq{id}.")))
            .collect()
    }
    fn kernel_write(&self, rel: &str, value: &str) -> io::Result<()> {
        if value.is_empty() {
            return Err(err(libc::EINVAL));
        }
        let value = value.trim();
        if let Some(rest) = rel.strip_prefix("bus/dsa/drivers/") {
            let (driver, op) = rest.split_once('/').ok_or_else(|| err(libc::ENOENT))?;
            if !self
                .files
                .root()
                .join("bus/dsa/drivers")
                .join(driver)
                .is_dir()
            {
                return Err(err(libc::ENOENT));
            }
            return match (op, value.starts_with("iax")) {
                ("bind", true) => {
                    if self.get(value, "state") != "disabled" {
                        return Err(err(libc::EBUSY));
                    }
                    self.put(value, "state", "enabled")
                }
                ("unbind", true) => {
                    for w in self.wqs_of(value) {
                        self.put(&w, "state", "disabled")?;
                        self.put(&w, "driver", "")?;
                    }
                    self.put(value, "state", "disabled")
                }
                ("bind", false) => {
                    let dev = Self::device_of(value);
                    if self.get(&dev, "state") != "enabled"
                        || self.get(value, "state") != "disabled"
                        || self.get(value, "size") == "0"
                    {
                        return Err(err(libc::EINVAL));
                    }
                    if driver == "user" && self.get(value, "type") != "user" {
                        return Err(err(libc::EINVAL));
                    }
                    self.put(value, "state", "enabled")?;
                    self.put(value, "driver", driver)
                }
                ("unbind", false) => {
                    if self.get(value, "driver") != driver {
                        return Err(err(libc::ENODEV));
                    }
                    self.put(value, "state", "disabled")?;
                    self.put(value, "driver", "")
                }
                _ => Err(err(libc::EINVAL)),
            };
        }
        let rest = rel
            .strip_prefix("bus/dsa/devices/")
            .ok_or_else(|| err(libc::ENOENT))?;
        let (obj, attr) = rest.split_once('/').ok_or_else(|| err(libc::ENOENT))?;
        if !self.files.root().join(rel).is_file() {
            return Err(err(libc::ENOENT));
        }
        let dev = Self::device_of(obj);
        if (obj.starts_with("engine") || attr == "group_id")
            && self.get(&dev, "state") != "disabled"
        {
            return Err(err(libc::EPERM));
        }
        if obj.starts_with("wq") {
            if self.get(obj, "state") != "disabled" {
                return Err(err(libc::EPERM));
            }
            match attr {
                "threshold" if self.get(obj, "mode") != "shared" => return Err(err(libc::EINVAL)),
                "type" if value.is_empty() => return Err(err(libc::EINVAL)),
                "size" => {
                    let n: u64 = value.parse().map_err(|_| err(libc::EINVAL))?;
                    let others: u64 = self
                        .wqs_of(&dev)
                        .iter()
                        .filter(|w| w.as_str() != obj)
                        .map(|w| self.get(w, "size").parse::<u64>().unwrap_or(0))
                        .sum();
                    let max: u64 = self.get(&dev, "max_work_queues_size").parse().unwrap();
                    if n + others > max {
                        return Err(err(libc::EINVAL));
                    }
                }
                _ => {}
            }
        }
        let old = self.files.read(rel).unwrap_or_default();
        self.files.write(rel, value)?;
        // wq_type_store: a change of type clears the name.
        if obj.starts_with("wq") && attr == "type" && old != value {
            self.put(obj, "name", "")?;
        }
        // wq_mode_store: "dedicated" also zeroes the threshold.
        if obj.starts_with("wq") && attr == "mode" && value == "dedicated" {
            self.put(obj, "threshold", "0")?;
        }
        Ok(())
    }
}

impl SysfsIo for FakeKernel {
    fn read(&self, rel: &str) -> io::Result<String> {
        self.files.read(rel)
    }
    fn write(&self, rel: &str, value: &str) -> io::Result<()> {
        let n = self.writes.get() + 1;
        self.writes.set(n);
        if let Some(h) = self.hook.borrow().as_ref() {
            h(n);
        }
        if self.broken.borrow().iter().any(|b| b == rel) {
            return Err(err(libc::EIO));
        }
        let r = self.kernel_write(rel, value);
        self.log.borrow_mut().push(format!(
            "{rel} <- {value}{}",
            match &r {
                Ok(()) => String::new(),
                Err(e) => format!(" ({e})"),
            }
        ));
        r
    }
    fn list(&self, rel: &str) -> io::Result<Vec<String>> {
        self.files.list(rel)
    }
    fn bound_driver(&self, name: &str) -> io::Result<Option<String>> {
        self.files.bound_driver(name)
    }
    fn root(&self) -> &Path {
        self.files.root()
    }
}

/// iax1 enabled: wq1.0 owned by iaa_crypto, wq1.1 a user queue, wq1.2..7 unconfigured;
/// iax3 disabled and unconfigured.
fn fixture() -> TempTree {
    let t = TempTree::new("hwci-wqconf").unwrap();
    for d in ["idxd", "user", "crypto"] {
        t.dir(&format!("sys/bus/dsa/drivers/{d}")).unwrap();
    }
    let put = |obj: &str, attrs: &[(&str, &str)]| {
        for (k, v) in attrs {
            t.file(&format!("sys/bus/dsa/devices/{obj}/{k}"), &format!("{v}\n"))
                .unwrap();
        }
    };
    for (dev, state) in [("iax1", "enabled"), ("iax3", "disabled")] {
        put(dev, &[("state", state), ("max_work_queues_size", "128")]);
        let id = &dev[3..];
        for m in 0..8 {
            let wq = format!("wq{id}.{m}");
            put(
                &wq,
                &[
                    ("state", "disabled"),
                    ("driver", ""),
                    ("group_id", "-1"),
                    ("mode", "dedicated"),
                    ("size", "0"),
                    ("priority", "0"),
                    ("block_on_fault", "0"),
                    ("type", "none"),
                    ("name", ""),
                    ("driver_name", ""),
                    ("threshold", "0"),
                ],
            );
            put(
                &format!("engine{id}.{m}"),
                &[("group_id", if m < 4 && dev == "iax1" { "0" } else { "-1" })],
            );
        }
    }
    put(
        "wq1.0",
        &[
            ("state", "enabled"),
            ("driver", "crypto"),
            ("group_id", "0"),
            ("size", "16"),
            ("priority", "10"),
            ("type", "kernel"),
            ("name", "iaa_crypto"),
            ("driver_name", "crypto"),
        ],
    );
    put(
        "wq1.1",
        &[
            ("state", "enabled"),
            ("driver", "user"),
            ("group_id", "0"),
            ("mode", "shared"),
            ("size", "64"),
            ("threshold", "48"),
            ("priority", "5"),
            ("block_on_fault", "1"),
            ("type", "user"),
            ("name", "someone-elses"),
            ("driver_name", "user"),
        ],
    );
    t
}

/// Every attribute file under `bus/dsa/devices` with its content (bind/unbind files are
/// write-only on a real kernel and are not part of the configuration).
fn tree_state(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let devices = root.join("bus/dsa/devices");
    for obj in std::fs::read_dir(&devices).unwrap() {
        let obj = obj.unwrap().path();
        for f in std::fs::read_dir(&obj).unwrap() {
            let f = f.unwrap().path();
            out.insert(
                f.strip_prefix(root).unwrap().display().to_string(),
                std::fs::read_to_string(&f).unwrap().trim().to_string(),
            );
        }
    }
    out
}

fn sys(t: &TempTree) -> std::path::PathBuf {
    t.path().join("sys")
}

fn state_dir(t: &TempTree) -> std::path::PathBuf {
    t.path().join("run")
}

#[test]
fn configure_applies_the_plan_and_restore_puts_everything_back() {
    let t = fixture();
    let k = FakeKernel::new(&sys(&t));
    let before = tree_state(&sys(&t));
    let conf = SysfsConfigurator::new(&k);
    let journal = Journal::in_dir(&state_dir(&t));
    let plan = Plan::committed().unwrap();
    let stop = AtomicBool::new(false);

    let mut s = Session::begin(&k, &conf, journal.clone(), &[]).unwrap();
    assert_eq!(journal.load().unwrap().unwrap().phase, Phase::Configuring);
    let wqs = s.configure(&plan, &stop).unwrap();
    assert_eq!(wqs, ["wq1.0", "wq1.1", "wq3.0", "wq3.1"]);
    assert_eq!(journal.load().unwrap().unwrap().phase, Phase::Configured);
    for dev in ["iax1", "iax3"] {
        assert_eq!(k.get(dev, "state"), "enabled", "{dev}");
    }
    for wq in ["wq1.0", "wq3.0"] {
        assert_eq!(k.get(wq, "mode"), "dedicated");
    }
    for wq in &wqs {
        assert_eq!(k.get(wq, "state"), "enabled", "{wq}");
        assert_eq!(k.get(wq, "driver"), "user", "{wq}");
        assert_eq!(k.get(wq, "type"), "user");
        assert_eq!(k.get(wq, "block_on_fault"), "0");
        assert_eq!(k.get(wq, "size"), "32");
    }
    assert_eq!(k.get("wq1.1", "mode"), "shared");
    assert_eq!(k.get("wq1.1", "threshold"), "32");
    assert_eq!(k.get("engine1.7", "group_id"), "0");
    // What discovery makes of it, once the char devices exist.
    for wq in &wqs {
        t.file(&format!("dev/iax/{wq}"), "").unwrap();
    }

    s.restore().unwrap();
    assert_eq!(
        tree_state(&sys(&t)),
        before,
        "log:\n{}",
        k.log.borrow().join("\n")
    );
    assert!(
        journal.load().unwrap().is_none(),
        "journal left after a verified restore"
    );
}

#[test]
fn sigterm_during_configure_stops_and_restores() {
    let t = fixture();
    let k = FakeKernel::new(&sys(&t));
    let before = tree_state(&sys(&t));
    let conf = SysfsConfigurator::new(&k);
    let journal = Journal::in_dir(&state_dir(&t));
    let stop = crate::signals::install().unwrap();
    // A real SIGTERM, delivered to this process in the middle of the configuration.
    *k.hook.borrow_mut() = Some(Box::new(|n| {
        if n == 6 {
            // SAFETY: raise(3) with a valid signal number; the handler only stores a flag.
            unsafe { libc::raise(libc::SIGTERM) };
        }
    }));
    let mut s = Session::begin(&k, &conf, journal.clone(), &["iax1".into()]).unwrap();
    let e = s
        .configure(&Plan::committed().unwrap(), stop.flag())
        .unwrap_err();
    assert!(matches!(e, WqConfError::Interrupted), "{e}");
    assert_eq!(stop.signal(), Some(libc::SIGTERM));
    assert!(
        k.writes.get() < 10,
        "configuration went on after the signal: {} writes",
        k.writes.get()
    );
    *k.hook.borrow_mut() = None;
    s.restore().unwrap();
    assert_eq!(
        tree_state(&sys(&t)),
        before,
        "log:\n{}",
        k.log.borrow().join("\n")
    );
    assert!(journal.load().unwrap().is_none());
    stop.reset();
}

#[test]
fn killed_run_makes_the_next_refuse_until_restored() {
    let t = fixture();
    let k = FakeKernel::new(&sys(&t));
    let before = tree_state(&sys(&t));
    let conf = SysfsConfigurator::new(&k);
    let journal = Journal::in_dir(&state_dir(&t));
    let stop = AtomicBool::new(false);
    let mut s = Session::begin(&k, &conf, journal.clone(), &[]).unwrap();
    s.configure(&Plan::committed().unwrap(), &stop).unwrap();
    // The process dies here (SIGKILL): no restore runs.
    drop(s);
    assert_ne!(tree_state(&sys(&t)), before);

    let e = Session::begin(&k, &conf, journal.clone(), &[])
        .err()
        .expect("a second run must refuse");
    let msg = e.to_string();
    assert!(
        matches!(
            e,
            WqConfError::HalfRestored {
                phase: Phase::Configured,
                ..
            }
        ),
        "{msg}"
    );
    assert!(msg.contains("--restore"), "{msg}");

    assert!(restore_stale(&k, &conf, &journal).unwrap());
    assert_eq!(
        tree_state(&sys(&t)),
        before,
        "log:\n{}",
        k.log.borrow().join("\n")
    );
    assert!(
        !restore_stale(&k, &conf, &journal).unwrap(),
        "nothing left to restore"
    );
    Session::begin(&k, &conf, journal, &[])
        .unwrap()
        .restore()
        .unwrap();
}

#[test]
fn failed_restore_keeps_the_journal_and_names_the_problem() {
    let t = fixture();
    let k = FakeKernel::new(&sys(&t));
    let before = tree_state(&sys(&t));
    let conf = SysfsConfigurator::new(&k);
    let journal = Journal::in_dir(&state_dir(&t));
    let stop = AtomicBool::new(false);
    let mut s = Session::begin(&k, &conf, journal.clone(), &["iax1".into()]).unwrap();
    s.configure(&Plan::committed().unwrap(), &stop).unwrap();
    k.broken
        .borrow_mut()
        .push("bus/dsa/devices/wq1.1/name".into());
    let e = s.restore().unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, WqConfError::RestoreIncomplete { .. }), "{msg}");
    assert!(msg.contains("wq1.1/name"), "{msg}");
    let r = journal.load().unwrap().expect("journal kept");
    assert_eq!(r.phase, Phase::Restoring);
    assert!(!r.restore_errors.is_empty());

    let e = Session::begin(&k, &conf, journal.clone(), &[])
        .err()
        .unwrap();
    assert!(e.to_string().contains("its restore failed"), "{e}");

    k.broken.borrow_mut().clear();
    assert!(restore_stale(&k, &conf, &journal).unwrap());
    assert_eq!(tree_state(&sys(&t)), before);
}

#[test]
fn halted_device_and_missing_queue_are_refused() {
    let t = fixture();
    t.file("sys/bus/dsa/devices/iax3/state", "halted\n")
        .unwrap();
    let k = FakeKernel::new(&sys(&t));
    let conf = SysfsConfigurator::new(&k);
    let journal = Journal::in_dir(&state_dir(&t));
    let e = Session::begin(&k, &conf, journal.clone(), &[])
        .err()
        .unwrap();
    assert!(e.to_string().contains("halted"), "{e}");
    assert!(
        journal.load().unwrap().is_none(),
        "no journal for a run that never started"
    );
    let e = Session::begin(&k, &conf, journal.clone(), &["iax9".into()])
        .err()
        .unwrap();
    assert!(e.to_string().contains("no such IAA device"), "{e}");

    let mut plan = Plan::committed().unwrap();
    plan.wqs[1].index = 12;
    let before = tree_state(&sys(&t));
    let mut s = Session::begin(&k, &conf, journal.clone(), &["iax1".into()]).unwrap();
    let e = s.configure(&plan, &AtomicBool::new(false)).unwrap_err();
    assert!(e.to_string().contains("has no wq1.12"), "{e}");
    s.restore().unwrap();
    assert_eq!(tree_state(&sys(&t)), before);
}

struct Recorder(RefCell<Vec<String>>);

impl ToolRunner for Recorder {
    fn run(&self, args: &[String]) -> Result<(), String> {
        self.0.borrow_mut().push(args.join(" "));
        Ok(())
    }
}

#[test]
fn accel_config_tool_gets_the_same_changes_as_commands() {
    let t = fixture();
    let k = FakeKernel::new(&sys(&t));
    let tool = AccelConfigTool::new(Recorder(RefCell::new(Vec::new())), &k);
    let journal = Journal::in_dir(&state_dir(&t));
    let mut s = Session::begin(&k, &tool, journal.clone(), &["iax1".into()]).unwrap();
    assert_eq!(
        journal.load().unwrap().unwrap().configurator,
        "accel-config"
    );
    s.configure(&Plan::committed().unwrap(), &AtomicBool::new(false))
        .unwrap();
    let cmds = tool.runner().0.borrow().clone();
    let pos = |c: &str| {
        cmds.iter()
            .position(|x| x == c)
            .unwrap_or_else(|| panic!("`{c}` not run:\n{}", cmds.join("\n")))
    };
    assert!(pos("disable-wq iax1/wq1.0") < pos("disable-device iax1"));
    assert!(pos("disable-device iax1") < pos("config-wq iax1/wq1.1 --mode=shared"));
    assert!(pos("config-wq iax1/wq1.1 --mode=shared") < pos("config-wq iax1/wq1.1 --threshold=32"));
    pos("config-engine iax1/engine1.5 --group-id=0");
    pos("config-wq iax1/wq1.0 --block-on-fault=0");
    pos("config-wq iax1/wq1.0 --driver-name=user");
    assert!(pos("enable-device iax1") < pos("enable-wq iax1/wq1.1"));
    // The tool changed nothing in this tree, so the restore puts back what is already
    // there and the verification passes; the commands show it was attempted.
    s.restore().unwrap();
    let cmds = tool.runner().0.borrow().clone();
    assert!(cmds
        .iter()
        .any(|c| c == "config-wq iax1/wq1.1 --name=someone-elses"));
    assert!(cmds
        .iter()
        .any(|c| c == "config-wq iax1/wq1.0 --driver-name=crypto"));
}

#[test]
fn a_live_run_holding_the_journal_is_named_as_in_progress() {
    let t = fixture();
    let k = FakeKernel::new(&sys(&t));
    let conf = SysfsConfigurator::new(&k);
    let journal = Journal::in_dir(&state_dir(&t));
    // A child of this same program stands for the other run; it lives until its stdin
    // closes, and says when it is running.
    let mut other = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "wqconf::tests::helper_waits_for_stdin_eof",
            "--nocapture",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    let mut r = std::io::BufReader::new(other.stdout.take().unwrap());
    while !line.contains("helper waiting") {
        line.clear();
        assert!(
            std::io::BufRead::read_line(&mut r, &mut line).unwrap() > 0,
            "helper ended"
        );
    }
    let s = Session::begin(&k, &conf, journal.clone(), &[]).unwrap();
    let mut rec = journal.load().unwrap().unwrap();
    rec.pid = other.id();
    journal.store(&rec).unwrap();
    // The lock goes with the session (as with a process that died); the journal stays and
    // names the live helper.
    drop(s);
    let e = Session::begin(&k, &conf, journal.clone(), &[])
        .err()
        .unwrap();
    assert!(
        matches!(e, WqConfError::InProgress { pid, .. } if pid == other.id()),
        "{e}"
    );
    assert!(e.to_string().contains("wait for it"), "{e}");
    drop(other.stdin.take());
    other.wait().unwrap();
    // Once that process is gone, the same record is a half-restored run.
    let e = Session::begin(&k, &conf, journal.clone(), &[])
        .err()
        .unwrap();
    assert!(matches!(e, WqConfError::HalfRestored { .. }), "{e}");
    assert!(restore_stale(&k, &conf, &journal).unwrap());
}

/// Run by `a_live_run_holding_the_journal_is_named_as_in_progress` as a stand-in process.
#[test]
#[ignore = "helper process for another test"]
fn helper_waits_for_stdin_eof() {
    println!("helper waiting");
    let mut sink = Vec::new();
    let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink);
}

#[test]
fn two_sessions_never_overlap() {
    let t = fixture();
    let k = FakeKernel::new(&sys(&t));
    let conf = SysfsConfigurator::new(&k);
    let journal = Journal::in_dir(&state_dir(&t));
    let a = Session::begin(&k, &conf, journal.clone(), &[]).unwrap();
    // A second run (here: a second lock on its own descriptor) is refused while the first
    // holds the lock, whatever the journal says.
    let e = Session::begin(&k, &conf, journal.clone(), &[])
        .err()
        .unwrap();
    assert!(
        matches!(e, WqConfError::InProgress { pid, .. } if pid == std::process::id()),
        "{e}"
    );
    let e = restore_stale(&k, &conf, &journal).unwrap_err();
    assert!(matches!(e, WqConfError::InProgress { .. }), "{e}");
    a.restore().unwrap();
    Session::begin(&k, &conf, journal, &[])
        .unwrap()
        .restore()
        .unwrap();
}
