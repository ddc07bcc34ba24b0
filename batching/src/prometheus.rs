//! The metrics as Prometheus text (exposition format 0.0.4).

use std::fmt::Write as _;

use crate::metrics::MetricsSnapshot;

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Renders a snapshot. Never blocks.
pub fn render(m: &MetricsSnapshot) -> String {
    let mut o = String::with_capacity(4096);
    header(
        &mut o,
        "swapaccel_engine_accepted_total",
        "counter",
        "Requests accepted.",
    );
    let _ = writeln!(o, "swapaccel_engine_accepted_total {}", m.accepted);
    header(
        &mut o,
        "swapaccel_engine_refused_total",
        "counter",
        "Requests refused at submission (busy, shut down, invalid).",
    );
    let _ = writeln!(o, "swapaccel_engine_refused_total {}", m.refused);

    header(
        &mut o,
        "swapaccel_engine_requests_total",
        "counter",
        "Completed requests by operation and backend.",
    );
    for (op, b, n) in &m.requests {
        let _ = writeln!(
            o,
            "swapaccel_engine_requests_total{{op=\"{}\",backend=\"{}\"}} {n}",
            op.name(),
            b.name()
        );
    }
    header(
        &mut o,
        "swapaccel_engine_failed_total",
        "counter",
        "Completed requests that failed, by operation.",
    );
    for (op, n) in &m.failed {
        let _ = writeln!(
            o,
            "swapaccel_engine_failed_total{{op=\"{}\"}} {n}",
            op.name()
        );
    }
    header(
        &mut o,
        "swapaccel_engine_pages_total",
        "counter",
        "Completed pages by operation and backend.",
    );
    for (op, b, n) in &m.pages {
        let _ = writeln!(
            o,
            "swapaccel_engine_pages_total{{op=\"{}\",backend=\"{}\"}} {n}",
            op.name(),
            b.name()
        );
    }

    header(
        &mut o,
        "swapaccel_engine_batch_pages",
        "histogram",
        "Pages per worker batch.",
    );
    let mut cum = 0;
    let mut sum = 0;
    for (k, c) in m.batch_pages.iter().enumerate().skip(1) {
        cum += c;
        sum += k as u64 * c;
        let _ = writeln!(o, "swapaccel_engine_batch_pages_bucket{{le=\"{k}\"}} {cum}");
    }
    cum += m.batch_pages[0];
    let _ = writeln!(
        o,
        "swapaccel_engine_batch_pages_bucket{{le=\"+Inf\"}} {cum}"
    );
    let _ = writeln!(o, "swapaccel_engine_batch_pages_sum {sum}");
    let _ = writeln!(o, "swapaccel_engine_batch_pages_count {cum}");

    header(
        &mut o,
        "swapaccel_engine_queue_depth",
        "gauge",
        "Items queued, not yet taken by a worker.",
    );
    let _ = writeln!(o, "swapaccel_engine_queue_depth {}", m.queue_depth);
    header(
        &mut o,
        "swapaccel_engine_queue_capacity",
        "gauge",
        "Queue capacity in items.",
    );
    let _ = writeln!(o, "swapaccel_engine_queue_capacity {}", m.queue_capacity);
    header(
        &mut o,
        "swapaccel_engine_queue_depth_max",
        "gauge",
        "Largest queue depth seen.",
    );
    let _ = writeln!(o, "swapaccel_engine_queue_depth_max {}", m.max_queue_depth);
    header(
        &mut o,
        "swapaccel_engine_producers_waiting",
        "gauge",
        "Producers blocked now on a full queue.",
    );
    let _ = writeln!(
        o,
        "swapaccel_engine_producers_waiting {}",
        m.producers_waiting
    );
    header(
        &mut o,
        "swapaccel_engine_workers",
        "gauge",
        "Worker threads.",
    );
    let _ = writeln!(o, "swapaccel_engine_workers {}", m.workers);
    for (name, v, help) in [
        ("started", m.workers_started, "Worker threads started."),
        (
            "retired",
            m.workers_retired,
            "Workers retired because their CPU went offline.",
        ),
    ] {
        let full = format!("swapaccel_engine_workers_{name}_total");
        header(&mut o, &full, "counter", help);
        let _ = writeln!(o, "{full} {v}");
    }
    header(
        &mut o,
        "swapaccel_engine_pool_calls_total",
        "counter",
        "Calls workers made into the pool.",
    );
    let _ = writeln!(o, "swapaccel_engine_pool_calls_total {}", m.pool_calls);

    header(
        &mut o,
        "swapaccel_engine_page_latency_seconds",
        "summary",
        "Per-page latency, request acceptance to completion of the page's batch.",
    );
    for (q, d) in [("0.5", m.p50), ("0.99", m.p99), ("0.999", m.p999)] {
        let _ = writeln!(
            o,
            "swapaccel_engine_page_latency_seconds{{quantile=\"{q}\"}} {:.9}",
            d.as_secs_f64()
        );
    }
    let _ = writeln!(
        o,
        "swapaccel_engine_page_latency_seconds_count {}",
        m.latency_samples
    );

    if let Some(d) = &m.device {
        header(
            &mut o,
            "swapaccel_device_fallbacks_total",
            "counter",
            "Pages that went to software although a device is configured, by reason.",
        );
        for (r, c, dc) in &d.fallbacks {
            let _ = writeln!(
                o,
                "swapaccel_device_fallbacks_total{{reason=\"{}\",dir=\"compress\"}} {c}",
                r.name()
            );
            let _ = writeln!(
                o,
                "swapaccel_device_fallbacks_total{{reason=\"{}\",dir=\"decompress\"}} {dc}",
                r.name()
            );
        }
        header(
            &mut o,
            "swapaccel_codec_pages_total",
            "counter",
            "Pages by the engine that ran the codec.",
        );
        for (i, dir) in ["compress", "decompress"].iter().enumerate() {
            let _ = writeln!(
                o,
                "swapaccel_codec_pages_total{{engine=\"device\",dir=\"{dir}\"}} {}",
                d.device_pages[i]
            );
            let _ = writeln!(
                o,
                "swapaccel_codec_pages_total{{engine=\"software\",dir=\"{dir}\"}} {}",
                d.software_pages[i]
            );
        }
        header(
            &mut o,
            "swapaccel_device_in_flight",
            "histogram",
            "Descriptors in flight together per device submission round.",
        );
        let mut cum = 0;
        let mut sum = 0;
        for (k, c) in d.in_flight.iter().enumerate() {
            cum += c;
            sum += k as u64 * c;
            let _ = writeln!(o, "swapaccel_device_in_flight_bucket{{le=\"{k}\"}} {cum}");
        }
        let _ = writeln!(o, "swapaccel_device_in_flight_bucket{{le=\"+Inf\"}} {cum}");
        let _ = writeln!(o, "swapaccel_device_in_flight_sum {sum}");
        let _ = writeln!(o, "swapaccel_device_in_flight_count {cum}");
        header(
            &mut o,
            "swapaccel_device_down",
            "gauge",
            "1 while the device is marked down.",
        );
        let _ = writeln!(o, "swapaccel_device_down {}", u8::from(d.down));
        header(
            &mut o,
            "swapaccel_device_emulated",
            "gauge",
            "1 when the device is the emulator (no device latency modelled).",
        );
        let _ = writeln!(o, "swapaccel_device_emulated {}", u8::from(d.emulator));
        for (name, v, help) in [
            (
                "marked_down",
                d.marked_down,
                "Times the device was marked down.",
            ),
            ("probes", d.probes, "Probes made while down."),
            (
                "recoveries",
                d.recoveries,
                "Probes that found the device back.",
            ),
        ] {
            let full = format!("swapaccel_device_{name}_total");
            header(&mut o, &full, "counter", help);
            let _ = writeln!(o, "{full} {v}");
        }
    }
    o
}
