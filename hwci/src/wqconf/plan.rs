//! The committed work-queue configuration (`hwci/iaa-wqs.json`) and what it asks of sysfs.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::WqConfError;

/// The configuration compiled into the binary: `hwci/iaa-wqs.json`.
pub const DEFAULT_PLAN_JSON: &str = include_str!("../../iaa-wqs.json");

/// Queue mode, as sysfs spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// `dedicated`.
    Dedicated,
    /// `shared`.
    Shared,
}

impl Mode {
    /// The sysfs value.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Dedicated => "dedicated",
            Mode::Shared => "shared",
        }
    }
}

/// One work queue to configure on each device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WqSpec {
    /// M in `wqN.M`.
    pub index: u32,
    /// Dedicated or shared.
    pub mode: Mode,
    /// Entries (the device's `max_work_queues_size` is shared by its queues).
    pub size: u32,
    /// Shared queues: entries a client may fill before ENQCMD is refused (≤ size).
    #[serde(default)]
    pub threshold: Option<u32>,
    /// Priority 1..=15.
    pub priority: u32,
    /// Block on page faults (off: a fault comes back as status 0x03, which accel handles).
    pub block_on_fault: bool,
    /// Client name (`wqN.M/name`).
    pub name: String,
}

/// The whole committed configuration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// Free text for readers of the file.
    #[serde(default)]
    pub comment: String,
    /// The group every queue and engine goes into.
    pub group: u32,
    /// Queues per device.
    pub wqs: Vec<WqSpec>,
}

impl Plan {
    /// The committed default.
    pub fn committed() -> Result<Plan, WqConfError> {
        Self::parse(DEFAULT_PLAN_JSON, Path::new("hwci/iaa-wqs.json (built in)"))
    }

    /// Reads a plan from a file.
    pub fn load(path: &Path) -> Result<Plan, WqConfError> {
        let text = std::fs::read_to_string(path).map_err(|source| WqConfError::Io {
            what: format!("read {}", path.display()),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses and checks a plan.
    pub fn parse(text: &str, origin: &Path) -> Result<Plan, WqConfError> {
        let plan: Plan = serde_json::from_str(text).map_err(|e| WqConfError::BadPlan {
            origin: origin.display().to_string(),
            why: e.to_string(),
        })?;
        plan.check().map_err(|why| WqConfError::BadPlan {
            origin: origin.display().to_string(),
            why,
        })?;
        Ok(plan)
    }

    fn check(&self) -> Result<(), String> {
        if self.wqs.is_empty() {
            return Err("no work queue in the plan".into());
        }
        let mut seen = std::collections::BTreeSet::new();
        for w in &self.wqs {
            if !seen.insert(w.index) {
                return Err(format!("wq index {} twice", w.index));
            }
            if w.size == 0 {
                return Err(format!("wq {}: size 0", w.index));
            }
            if !(1..=15).contains(&w.priority) {
                return Err(format!(
                    "wq {}: priority {} not in 1..=15",
                    w.index, w.priority
                ));
            }
            if w.name.is_empty() || w.name.len() > 64 || w.name.contains(char::is_whitespace) {
                return Err(format!(
                    "wq {}: name must be 1..=64 characters without spaces",
                    w.index
                ));
            }
            match (w.mode, w.threshold) {
                (Mode::Shared, Some(t)) if t == 0 || t > w.size => {
                    return Err(format!(
                        "wq {}: threshold {t} must be in 1..=size ({})",
                        w.index, w.size
                    ))
                }
                (Mode::Dedicated, Some(_)) => {
                    return Err(format!(
                        "wq {}: threshold is for shared queues only",
                        w.index
                    ))
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The attribute writes that configure queue `w` of device `dev_id`, in the order the
    /// kernel accepts them: mode before threshold (the kernel refuses a threshold on a
    /// dedicated queue), every attribute while the queue is disabled
    /// (`drivers/dma/idxd/sysfs.c`: the `wq_*_store` handlers return -EPERM otherwise).
    pub fn wq_writes(&self, w: &WqSpec) -> Vec<(&'static str, String)> {
        let mut v = vec![
            ("group_id", self.group.to_string()),
            ("mode", w.mode.as_str().to_string()),
            ("size", w.size.to_string()),
            ("priority", w.priority.to_string()),
            ("block_on_fault", u8::from(w.block_on_fault).to_string()),
            ("type", "user".to_string()),
            ("name", w.name.clone()),
            ("driver_name", "user".to_string()),
        ];
        if let (Mode::Shared, Some(t)) = (w.mode, w.threshold) {
            v.push(("threshold", t.to_string()));
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn committed_plan_parses_one_dedicated_one_shared() {
        let p = Plan::committed().unwrap();
        assert_eq!(p.wqs.len(), 2);
        assert_eq!(p.wqs[0].mode, Mode::Dedicated);
        assert_eq!(p.wqs[1].mode, Mode::Shared);
        assert!(p.wqs.iter().all(|w| !w.block_on_fault));
    }

    #[test]
    fn bad_plans_are_refused_with_the_reason() {
        let o = Path::new("t");
        let base = r#"{"group":0,"wqs":[{"index":0,"mode":"dedicated","size":8,"priority":10,"block_on_fault":false,"name":"x"}]}"#;
        assert!(Plan::parse(base, o).is_ok());
        for (bad, needle) in [
            (base.replace("\"size\":8", "\"size\":0"), "size 0"),
            (
                base.replace("\"priority\":10", "\"priority\":16"),
                "priority",
            ),
            (base.replace("dedicated", "both"), "unknown variant"),
            (
                base.replace("\"size\":8", "\"size\":8,\"threshold\":4"),
                "shared queues only",
            ),
            (base.replace("\"name\":\"x\"", "\"name\":\"a b\""), "name"),
            (
                base.replace("\"group\":0", "\"group\":0,\"extra\":1"),
                "unknown field",
            ),
            ("{".to_string(), "EOF"),
        ] {
            let e = Plan::parse(&bad, o).unwrap_err().to_string();
            assert!(e.contains(needle), "{bad}: {e}");
        }
    }
}
