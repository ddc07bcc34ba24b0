//! What the run's child processes do: the conformance suite writing its results, and a
//! process holding a heap for the bench to read.

use std::collections::VecDeque;
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

use hwtests::suite::{plan, Outcome, Selection};
use serde::{Deserialize, Serialize};

use crate::report::{CaseRecord, Status};

/// One line of the suite child's results file.
#[derive(Debug, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SuiteLine {
    /// First line: every case name, in plan order.
    Plan {
        /// The names.
        plan: Vec<String>,
    },
    /// A finished case.
    Case {
        /// Its index in the plan.
        index: usize,
        /// Its result.
        case: CaseRecord,
    },
}

/// Runs the suite for the selection in the environment (`hwtests::suite`), writing one
/// JSON line per finished case to `out` as it finishes, so a crash loses only the cases
/// still running. Cases run on as many threads as there are CPUs (a device's cases
/// serialise on its lock). Returns whether every case passed or was skipped.
pub fn run_suite(out: &Path) -> Result<bool, String> {
    let sel = Selection::from_env().map_err(|e| e.to_string())?;
    let cases = plan(&sel);
    let mut file = std::fs::File::create(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let names: Vec<String> = cases.iter().map(|c| c.name.clone()).collect();
    let line = |f: &mut std::fs::File, l: &SuiteLine| -> Result<(), String> {
        let mut s = serde_json::to_string(l).map_err(|e| e.to_string())?;
        s.push('\n');
        f.write_all(s.as_bytes())
            .and_then(|()| f.flush())
            .map_err(|e| format!("{}: {e}", out.display()))
    };
    line(&mut file, &SuiteLine::Plan { plan: names })?;
    let queue = Mutex::new(cases.into_iter().enumerate().collect::<VecDeque<_>>());
    let file = Mutex::new(file);
    let ok = Mutex::new(Ok(true));
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let next = queue.lock().unwrap_or_else(|e| e.into_inner()).pop_front();
                let Some((index, case)) = next else { break };
                let name = case.name.clone();
                let t = Instant::now();
                let status = match case.execute() {
                    Outcome::Passed => Status::Passed,
                    Outcome::Failed(m) => Status::Failed(m),
                    Outcome::Skipped(m) => Status::Skipped(m),
                };
                let failed = matches!(status, Status::Failed(_));
                let rec = CaseRecord::new(name, status).timed(t.elapsed());
                let mut f = file.lock().unwrap_or_else(|e| e.into_inner());
                let written = line(&mut f, &SuiteLine::Case { index, case: rec });
                let mut ok = ok.lock().unwrap_or_else(|e| e.into_inner());
                match written {
                    Err(e) => *ok = Err(e),
                    Ok(()) if failed => {
                        if let Ok(v) = ok.as_mut() {
                            *v = false;
                        }
                    }
                    Ok(()) => {}
                }
            });
        }
    });
    ok.into_inner().unwrap_or_else(|e| e.into_inner())
}

/// Reads a suite child's results: every planned case, those never reported (the child
/// crashed or was killed) as failures naming `why_missing`.
pub fn read_suite(path: &Path, why_missing: &str) -> Result<Vec<CaseRecord>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut lines = text.lines();
    let first = lines
        .next()
        .ok_or_else(|| format!("{} is empty", path.display()))?;
    let SuiteLine::Plan { plan } = serde_json::from_str(first).map_err(|e| e.to_string())? else {
        return Err(format!("{}: first line is not the plan", path.display()));
    };
    let mut got: Vec<Option<CaseRecord>> = vec![None; plan.len()];
    for l in lines {
        // A line cut short by a crash is the last one; ignore it.
        if let Ok(SuiteLine::Case { index, case }) = serde_json::from_str(l) {
            if let Some(slot) = got.get_mut(index) {
                *slot = Some(case);
            }
        }
    }
    Ok(plan
        .into_iter()
        .zip(got)
        .map(|(name, c)| {
            c.unwrap_or_else(|| CaseRecord::new(name, Status::Failed(why_missing.to_string())))
        })
        .collect())
}

/// Builds a heap shaped like a service's (records as text, an index, numeric columns),
/// lets any process read its memory (PR_SET_PTRACER_ANY, so a sibling bench may open
/// `/proc/PID/mem` under Yama ptrace_scope 1), prints `ready`, and waits for stdin to
/// close; the heap stays alive until then.
pub fn hold_heap() -> Result<(), String> {
    use std::collections::{BTreeMap, HashMap};
    let mut records: Vec<String> = Vec::new();
    let mut index: BTreeMap<String, usize> = BTreeMap::new();
    let mut columns: HashMap<u64, Vec<f64>> = HashMap::new();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut rnd = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let words = [
        "alpha", "beta", "gamma", "delta", "swap", "page", "zone", "queue", "cold", "hot",
    ];
    for i in 0..60_000u64 {
        let r = rnd();
        let rec = format!(
            "{{\"id\":{i},\"user\":\"{}-{}\",\"score\":{},\"tags\":[\"{}\",\"{}\"],\"active\":{}}}",
            words[(r % 10) as usize],
            r % 1000,
            (r >> 20) % 100_000,
            words[((r >> 8) % 10) as usize],
            words[((r >> 16) % 10) as usize],
            r % 3 == 0
        );
        index.insert(format!("key:{:08}", r % 10_000_000), records.len());
        records.push(rec);
        if i % 8 == 0 {
            columns.insert(
                i,
                (0..64)
                    .map(|k| (k as f64) * 0.5 + (r % 97) as f64)
                    .collect(),
            );
        }
    }
    // SAFETY: prctl(2) with PR_SET_PTRACER and an integer argument reads no memory of ours.
    let rc = unsafe { libc::prctl(libc::PR_SET_PTRACER, libc::PR_SET_PTRACER_ANY, 0, 0, 0) };
    if rc != 0 {
        // Without Yama the call fails with EINVAL and nothing is needed.
        tracing::debug!(
            error = &std::io::Error::last_os_error() as &dyn std::error::Error,
            "PR_SET_PTRACER"
        );
    }
    let mut out = std::io::stdout();
    writeln!(out, "ready {} records", records.len()).map_err(|e| e.to_string())?;
    out.flush().map_err(|e| e.to_string())?;
    let mut sink = Vec::new();
    let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink);
    std::hint::black_box((&records, &index, &columns));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cases_a_crashed_suite_never_reported_are_failures() {
        let t = hwtests::fixtures::TempTree::new("hwci-suite").unwrap();
        let plan = SuiteLine::Plan {
            plan: vec!["a".into(), "b".into(), "c".into()],
        };
        let done = SuiteLine::Case {
            index: 2,
            case: CaseRecord::new("c", Status::Passed),
        };
        let text = format!(
            "{}\n{}\n{{\"index\":0,\"case\":{{\"name\":\"a\",\"sta",
            serde_json::to_string(&plan).unwrap(),
            serde_json::to_string(&done).unwrap()
        );
        let p = t.file("s.jsonl", &text).unwrap();
        let got = read_suite(&p, "not reported: crashed").unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!(
            got[0].status,
            Status::Failed("not reported: crashed".into())
        );
        assert_eq!(got[1].name, "b");
        assert_eq!(got[2].status, Status::Passed);
        let empty = t.file("e.jsonl", "").unwrap();
        assert!(read_suite(&empty, "x").unwrap_err().contains("empty"));
    }
}
