//! What a run found, as test cases grouped in suites: written as JUnit XML (quick-junit)
//! and as a short text summary.

use std::path::Path;
use std::time::Duration;

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
use serde::{Deserialize, Serialize};

/// How a case ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", content = "message", rename_all = "lowercase")]
pub enum Status {
    /// Passed.
    Passed,
    /// Failed, with the failure text.
    Failed(String),
    /// Not run, with the reason.
    Skipped(String),
}

/// One case.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CaseRecord {
    /// Name inside its suite.
    pub name: String,
    /// Outcome.
    #[serde(flatten)]
    pub status: Status,
    /// Seconds it took.
    pub seconds: f64,
    /// Output worth keeping with the case (a step's stderr tail).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub output: String,
}

impl CaseRecord {
    /// A case with no timing.
    pub fn new(name: impl Into<String>, status: Status) -> Self {
        CaseRecord {
            name: name.into(),
            status,
            seconds: 0.0,
            output: String::new(),
        }
    }
    /// With a duration.
    pub fn timed(mut self, d: Duration) -> Self {
        self.seconds = d.as_secs_f64();
        self
    }
    /// With output.
    pub fn with_output(mut self, out: impl Into<String>) -> Self {
        self.output = out.into();
        self
    }
}

/// Every suite of a run, in order.
#[derive(Debug, Default)]
pub struct Results {
    suites: Vec<(String, Vec<CaseRecord>)>,
}

impl Results {
    /// Adds a case to `suite` (created on first use).
    pub fn add(&mut self, suite: &str, case: CaseRecord) {
        match self.suites.iter_mut().find(|(n, _)| n == suite) {
            Some((_, v)) => v.push(case),
            None => self.suites.push((suite.to_string(), vec![case])),
        }
    }

    /// `suite::case` of every failure.
    pub fn failures(&self) -> Vec<String> {
        self.suites
            .iter()
            .flat_map(|(s, cases)| {
                cases
                    .iter()
                    .filter(|c| matches!(c.status, Status::Failed(_)))
                    .map(move |c| format!("{s}::{}", c.name))
            })
            .collect()
    }

    /// (passed, failed, skipped) over all suites.
    pub fn counts(&self) -> (usize, usize, usize) {
        let mut n = (0, 0, 0);
        for (_, cases) in &self.suites {
            for c in cases {
                match c.status {
                    Status::Passed => n.0 += 1,
                    Status::Failed(_) => n.1 += 1,
                    Status::Skipped(_) => n.2 += 1,
                }
            }
        }
        n
    }

    /// The suites.
    pub fn suites(&self) -> &[(String, Vec<CaseRecord>)] {
        &self.suites
    }

    /// The JUnit report.
    pub fn junit(&self, name: &str) -> Report {
        let mut report = Report::new(name);
        for (suite, cases) in &self.suites {
            let mut ts = TestSuite::new(suite.as_str());
            for c in cases {
                let status = match &c.status {
                    Status::Passed => TestCaseStatus::success(),
                    Status::Failed(msg) => {
                        let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                        s.set_message(first_line(msg)).set_description(msg.as_str());
                        s
                    }
                    Status::Skipped(why) => {
                        let mut s = TestCaseStatus::skipped();
                        s.set_message(why.as_str());
                        s
                    }
                };
                let mut tc = TestCase::new(c.name.as_str(), status);
                tc.set_classname(suite.as_str())
                    .set_time(Duration::from_secs_f64(c.seconds.max(0.0)));
                if !c.output.is_empty() {
                    tc.set_system_err_lossy(c.output.as_bytes());
                }
                ts.add_test_case(tc);
            }
            report.add_test_suite(ts);
        }
        report
    }

    /// Writes the JUnit XML.
    pub fn write_junit(&self, name: &str, path: &Path) -> Result<(), String> {
        let file = std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
        self.junit(name)
            .serialize(std::io::BufWriter::new(file))
            .map_err(|e| format!("{}: {e}", path.display()))
    }

    /// The summary: counts per suite, then every failure with its first line.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        for (suite, cases) in &self.suites {
            let (mut p, mut f, mut k) = (0, 0, 0);
            for c in cases {
                match c.status {
                    Status::Passed => p += 1,
                    Status::Failed(_) => f += 1,
                    Status::Skipped(_) => k += 1,
                }
            }
            s.push_str(&format!(
                "{suite:<40} {p:>4} passed {f:>4} failed {k:>4} skipped\n"
            ));
        }
        let (p, f, k) = self.counts();
        s.push_str(&format!(
            "{:<40} {p:>4} passed {f:>4} failed {k:>4} skipped\n",
            "total"
        ));
        let skipped: Vec<String> = self
            .suites
            .iter()
            .flat_map(|(suite, cases)| {
                cases.iter().filter_map(move |c| match &c.status {
                    Status::Skipped(why) if !suite.starts_with("conformance") => {
                        Some(format!("  {suite}::{}: {}", c.name, first_line(why)))
                    }
                    _ => None,
                })
            })
            .collect();
        if !skipped.is_empty() {
            s.push_str("\nskipped steps:\n");
            for l in skipped {
                s.push_str(&l);
                s.push('\n');
            }
        }
        let failures: Vec<String> = self
            .suites
            .iter()
            .flat_map(|(suite, cases)| {
                cases.iter().filter_map(move |c| match &c.status {
                    Status::Failed(msg) => {
                        Some(format!("  {suite}::{}: {}", c.name, first_line(msg)))
                    }
                    _ => None,
                })
            })
            .collect();
        if failures.is_empty() {
            s.push_str("\nresult: PASS\n");
        } else {
            s.push_str(&format!(
                "\nresult: FAIL ({} failing case(s))\n",
                failures.len()
            ));
            for l in failures {
                s.push_str(&l);
                s.push('\n');
            }
        }
        s
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn junit_round_trips_counts_and_failure_text() {
        let mut r = Results::default();
        r.add("host", CaseRecord::new("cpu", Status::Passed));
        r.add(
            "host",
            CaseRecord::new("kernel", Status::Failed("too old\nsecond line".into())),
        );
        r.add(
            "bench",
            CaseRecord::new("builtin", Status::Skipped("no corpus".into())),
        );
        let xml = r.junit("hwci").to_string().unwrap();
        let back = quick_junit::Report::deserialize_from_str(&xml).unwrap();
        assert_eq!(back.tests, 3);
        assert_eq!(back.failures, 1);
        assert_eq!(back.test_suites.len(), 2);
        assert!(xml.contains("too old"), "{xml}");
        assert_eq!(r.failures(), ["host::kernel"]);
        let s = r.summary();
        assert!(s.contains("result: FAIL (1 failing case(s))"), "{s}");
        assert!(s.contains("host::kernel: too old"), "{s}");
        assert!(s.contains("bench::builtin: no corpus"), "{s}");
    }
}
