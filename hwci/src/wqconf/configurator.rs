//! The two ways a configuration reaches the kernel: sysfs writes, or the `accel-config`
//! tool when it is installed. Never libaccel-config: the tool is run as a program.
//!
//! Recording always reads sysfs directly (`super::sysfs::snapshot`), whichever way writes go.

use std::process::Command;

use super::sysfs::{attr_path, SysfsIo};

/// Changes to the idxd configuration, by object name (`iaxN`, `wqN.M`, `engineN.M`).
pub trait Configurator {
    /// What this is, for the report (`sysfs` / `accel-config`).
    fn kind(&self) -> &'static str;
    /// Unbinds a queue from `driver`.
    fn disable_wq(&self, device: &str, wq: &str, driver: &str) -> Result<(), String>;
    /// Unbinds a device from the idxd driver (the kernel disables its queues too).
    fn disable_device(&self, device: &str) -> Result<(), String>;
    /// Writes one queue or engine attribute (`object` is `wqN.M` or `engineN.M`).
    fn set(&self, device: &str, object: &str, attr: &str, value: &str) -> Result<(), String>;
    /// Empties a string attribute of a queue (`name`, `driver_name`).
    fn clear(&self, device: &str, object: &str, attr: &str) -> Result<(), String>;
    /// Binds a device to the idxd driver (loads its configuration into the device).
    fn enable_device(&self, device: &str) -> Result<(), String>;
    /// Binds a queue to `driver` (`user` makes `/dev/iax/wqN.M`).
    fn enable_wq(&self, device: &str, wq: &str, driver: &str) -> Result<(), String>;
}

/// Writes sysfs directly.
pub struct SysfsConfigurator<'a> {
    io: &'a dyn SysfsIo,
}

impl<'a> SysfsConfigurator<'a> {
    /// Over `io`.
    pub fn new(io: &'a dyn SysfsIo) -> Self {
        SysfsConfigurator { io }
    }

    fn put(&self, rel: &str, value: &str) -> Result<(), String> {
        self.io.write(rel, value).map_err(|e| {
            format!(
                "write `{value}` to {}: {e}",
                self.io.root().join(rel).display()
            )
        })
    }
}

impl Configurator for SysfsConfigurator<'_> {
    fn kind(&self) -> &'static str {
        "sysfs"
    }
    fn disable_wq(&self, _device: &str, wq: &str, driver: &str) -> Result<(), String> {
        self.put(&format!("bus/dsa/drivers/{driver}/unbind"), wq)
    }
    fn disable_device(&self, device: &str) -> Result<(), String> {
        self.put("bus/dsa/drivers/idxd/unbind", device)
    }
    fn set(&self, _device: &str, object: &str, attr: &str, value: &str) -> Result<(), String> {
        self.put(&attr_path(object, attr), value)
    }
    fn clear(&self, _device: &str, object: &str, attr: &str) -> Result<(), String> {
        // An empty write is refused (the store checks strlen(buf) == 0); a lone newline
        // passes and is stripped by strim() to the empty name (drivers/dma/idxd/sysfs.c,
        // wq_name_store / wq_driver_name_store).
        self.put(&attr_path(object, attr), "\n")
    }
    fn enable_device(&self, device: &str) -> Result<(), String> {
        self.put("bus/dsa/drivers/idxd/bind", device)
    }
    fn enable_wq(&self, _device: &str, wq: &str, driver: &str) -> Result<(), String> {
        self.put(&format!("bus/dsa/drivers/{driver}/bind"), wq)
    }
}

/// Runs a program with arguments (the real one spawns it; tests record the calls).
pub trait ToolRunner {
    /// Runs `accel-config` with `args`; `Err` carries its exit status and stderr.
    fn run(&self, args: &[String]) -> Result<(), String>;
}

/// Spawns `accel-config` from `PATH`.
pub struct SpawnAccelConfig;

impl ToolRunner for SpawnAccelConfig {
    fn run(&self, args: &[String]) -> Result<(), String> {
        let out = Command::new("accel-config")
            .args(args)
            .output()
            .map_err(|e| format!("accel-config {}: {e}", args.join(" ")))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "accel-config {}: {}: {}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }
}

/// Whether `accel-config` is on `PATH` and runs.
pub fn accel_config_installed() -> bool {
    Command::new("accel-config")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Drives the `accel-config` tool. Option names from accel-config's manual pages
/// (`Documentation/accfg/accel-config-config-wq.txt`, `-config-engine.txt`,
/// `-enable-device.txt`, `-enable-wq.txt`, `-disable-wq.txt`).
///
/// The tool has no way to empty a queue's name; that one write goes to sysfs directly.
pub struct AccelConfigTool<'a, R: ToolRunner> {
    runner: R,
    sysfs: SysfsConfigurator<'a>,
}

impl<'a, R: ToolRunner> AccelConfigTool<'a, R> {
    /// With a runner, and sysfs for what the tool cannot do.
    pub fn new(runner: R, io: &'a dyn SysfsIo) -> Self {
        AccelConfigTool {
            runner,
            sysfs: SysfsConfigurator::new(io),
        }
    }

    /// The runner (tests read what was run).
    pub fn runner(&self) -> &R {
        &self.runner
    }

    fn run(&self, args: &[&str]) -> Result<(), String> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        self.runner.run(&args)
    }
}

/// The `config-wq` option for a queue attribute.
fn wq_option(attr: &str) -> Option<&'static str> {
    Some(match attr {
        "group_id" => "--group-id",
        "mode" => "--mode",
        "size" => "--wq-size",
        "priority" => "--priority",
        "block_on_fault" => "--block-on-fault",
        "type" => "--type",
        "name" => "--name",
        "driver_name" => "--driver-name",
        "threshold" => "--threshold",
        _ => return None,
    })
}

impl<R: ToolRunner> Configurator for AccelConfigTool<'_, R> {
    fn kind(&self) -> &'static str {
        "accel-config"
    }
    fn disable_wq(&self, device: &str, wq: &str, _driver: &str) -> Result<(), String> {
        self.run(&["disable-wq", &format!("{device}/{wq}")])
    }
    fn disable_device(&self, device: &str) -> Result<(), String> {
        self.run(&["disable-device", device])
    }
    fn set(&self, device: &str, object: &str, attr: &str, value: &str) -> Result<(), String> {
        let target = format!("{device}/{object}");
        if object.starts_with("engine") && attr == "group_id" {
            return self.run(&["config-engine", &target, &format!("--group-id={value}")]);
        }
        let opt = wq_option(attr)
            .filter(|_| object.starts_with("wq"))
            .ok_or_else(|| format!("accel-config cannot set {object}/{attr}"))?;
        self.run(&["config-wq", &target, &format!("{opt}={value}")])
    }
    fn clear(&self, device: &str, object: &str, attr: &str) -> Result<(), String> {
        self.sysfs.clear(device, object, attr)
    }
    fn enable_device(&self, device: &str) -> Result<(), String> {
        self.run(&["enable-device", device])
    }
    fn enable_wq(&self, device: &str, wq: &str, _driver: &str) -> Result<(), String> {
        // The tool binds the queue to the driver its `driver_name` names (set before).
        self.run(&["enable-wq", &format!("{device}/{wq}")])
    }
}
