//! Opening each usable queue once, for `probe`: what sysfs cannot tell — whether another
//! process holds a dedicated queue (EBUSY at open), whether the kernel maps the portal, and
//! whether its `write(2)` path exists (a NOOP at open) — only opening the queue says.

use std::fmt;

use software_fallback::Causes;

use super::Report;
use crate::{AccelError, WorkQueue};

/// What opening one usable queue gave.
#[derive(Debug)]
pub struct OpenCheck {
    /// Queue name.
    pub name: String,
    /// The path chosen (and why), or why it could not be opened; `None` when the node is
    /// not a character device (a fixture tree), so no open was attempted.
    pub outcome: Option<Result<String, AccelError>>,
}

/// Opens (and closes again) every queue of `report` that discovery judged usable.
pub fn open_usable(report: &Report) -> Vec<OpenCheck> {
    use std::os::unix::fs::FileTypeExt;
    report
        .usable()
        .map(|info| {
            let is_cdev = std::fs::metadata(&info.cdev)
                .map(|m| m.file_type().is_char_device())
                .unwrap_or(false);
            let outcome = is_cdev
                .then(|| WorkQueue::open(info, report.cpu).map(|wq| wq.path_reason().to_string()));
            OpenCheck {
                name: info.name.clone(),
                outcome,
            }
        })
        .collect()
}

impl fmt::Display for OpenCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.outcome {
            None => write!(f, "  {}: not a character device; not opened", self.name),
            Some(Ok(path)) => write!(f, "  {}: opened: {path}", self.name),
            Some(Err(e)) => write!(f, "  {}: cannot be used: {}", self.name, Causes(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_open_names_the_os_error() {
        let denied = || std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        let check = OpenCheck {
            name: "wq1.0".into(),
            outcome: Some(Err(AccelError::Open {
                path: "/dev/iax/wq1.0".into(),
                source: denied(),
            })),
        };
        let line = check.to_string();
        assert!(line.contains("/dev/iax/wq1.0"), "{line}");
        assert!(line.contains(&denied().to_string()), "{line}");
    }
}
