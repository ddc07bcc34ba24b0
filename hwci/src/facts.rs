//! Reading the fact check's JSON report (`swapaccel hwcheck --json`) into one case per fact.
//!
//! The report is read by shape rather than by a shared type, so that the run does not
//! depend on the fact check's crate: a list of objects (at the top or under `facts`,
//! `checks` or `results`), each with a name (`name`, `id`, `fact` or `title`) and a verdict
//! (`verdict`, `status`, `outcome` or `result`). A verdict saying the fact was contradicted
//! or failed is a failure, one saying it was confirmed or passed a pass, anything else
//! (not checked, emulated, not applicable) a skip; the detail (`detail`, `evidence`,
//! `message`, `observed`, `reason`, and `what_to_change`) goes with it. This reads the report
//! of `hwtests::facts` (`name`, `verdict` pass/contradicted/emulated/skipped, `observed`,
//! `what_to_change`). A report of another shape gives `None`, and the
//! caller falls back to one case for the whole check.

use serde_json::Value;

use crate::report::{CaseRecord, Status};

fn field<'a>(v: &'a Value, names: &[&str]) -> Option<&'a Value> {
    names.iter().find_map(|n| v.get(*n))
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// One case per fact, or `None` when the report has no recognisable list of facts.
pub fn cases(report: &Value) -> Option<Vec<CaseRecord>> {
    let list = match report {
        Value::Array(a) => a,
        Value::Object(_) => field(report, &["facts", "checks", "results"])?.as_array()?,
        _ => return None,
    };
    let mut out = Vec::new();
    for (i, item) in list.iter().enumerate() {
        let name = field(item, &["name", "id", "fact", "title"])
            .map(text)
            .unwrap_or_else(|| format!("fact-{i}"));
        let verdict = text(field(item, &["verdict", "status", "outcome", "result"])?);
        let mut detail = field(
            item,
            &["detail", "evidence", "message", "observed", "reason"],
        )
        .map(text)
        .unwrap_or_default();
        if let Some(change) = field(item, &["what_to_change", "change"]).filter(|c| !c.is_null()) {
            detail = format!("{detail}; change: {}", text(change));
        }
        let v = verdict.to_ascii_lowercase();
        let with = |s: &str| {
            if detail.is_empty() {
                s.to_string()
            } else {
                format!("{s}: {detail}")
            }
        };
        let status = if ["contradict", "fail", "wrong", "mismatch", "error"]
            .iter()
            .any(|k| v.contains(k))
        {
            Status::Failed(with(&verdict))
        } else if ["confirm", "pass", "agree", "hold", "ok"]
            .iter()
            .any(|k| v == *k || v.starts_with(k))
        {
            Status::Passed
        } else {
            Status::Skipped(with(&verdict))
        };
        out.push(CaseRecord::new(name, status));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_become_cases_by_verdict() {
        let r = serde_json::json!({
            "machine": "x",
            "facts": [
                {"id": "compress-status-on-overflow", "verdict": "confirmed"},
                {"id": "crc-of-verify", "verdict": "contradicted", "evidence": "crc 0x1 != 0x2",
                 "what_to_change": "accel/src/context/round.rs: compare output_size"},
                {"name": "noop", "verdict": "pass", "observed": "status 1", "what_to_change": null},
                {"id": "portal-needs-rawio", "verdict": "not-checked", "reason": "no IAA"}
            ]
        });
        let c = cases(&r).unwrap();
        assert_eq!(c.len(), 4);
        assert_eq!(c[0].status, Status::Passed);
        assert_eq!(
            c[1].status,
            Status::Failed(
                "contradicted: crc 0x1 != 0x2; change: accel/src/context/round.rs: compare \
                 output_size"
                    .into()
            )
        );
        assert_eq!(c[2].status, Status::Passed);
        assert_eq!(c[3].status, Status::Skipped("not-checked: no IAA".into()));
        assert_eq!(c[1].name, "crc-of-verify");
        assert!(cases(&serde_json::json!({"something": 1})).is_none());
        assert!(cases(&serde_json::json!([{"name": "no verdict"}])).is_none());
    }
}
