//! `--json` and `--csv`: every figure of the table, with the machine it came from.

use std::io::Write;
use std::path::Path;

use super::BenchReport;

/// Writes the whole report as JSON.
pub fn write_json(report: &BenchReport, path: &Path) -> std::io::Result<()> {
    let file = std::fs::File::create(path)?;
    let mut w = std::io::BufWriter::new(file);
    serde_json::to_writer_pretty(&mut w, report).map_err(std::io::Error::other)?;
    writeln!(w)?;
    w.flush()
}

fn field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Writes one CSV row per result; the machine and corpus are repeated on each row so that
/// files from several machines can be concatenated.
pub fn write_csv(report: &BenchReport, path: &Path) -> std::io::Result<()> {
    let mut w = std::io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(
        w,
        "backend,emulator,batch,threads,pages,incompressible,ratio,ratio_nonzero,\
         compress_mb_s,compress_mb_s_min,compress_mb_s_max,decompress_mb_s,decompress_mb_s_min,\
         decompress_mb_s_max,runs,compress_cpu_us,decompress_cpu_us,compress_p50_us,\
         compress_p99_us,compress_p999_us,decompress_p50_us,decompress_p99_us,\
         decompress_p999_us,corpus,corpus_pages,zero_pages,same_filled_pages,cpu_model,cores,\
         kernel,version,commit"
    )?;
    let m = &report.machine;
    let c = &report.corpus;
    for r in &report.results {
        writeln!(
            w,
            "{},{},{},{},{},{},{:.4},{:.4},{:.2},{:.2},{:.2},{:.2},{:.2},{:.2},{},{:.3},{:.3},{:.3},{:.3},{:.3},{:.3},{:.3},{:.3},{},{},{},{},{},{},{},{},{}",
            field(&r.backend),
            r.emulator,
            r.batch,
            r.threads,
            r.pages,
            r.incompressible,
            r.ratio,
            r.ratio_nonzero,
            r.compress_mb_s.median,
            r.compress_mb_s.min,
            r.compress_mb_s.max,
            r.decompress_mb_s.median,
            r.decompress_mb_s.min,
            r.decompress_mb_s.max,
            r.compress_mb_s.runs,
            r.compress_cpu_us,
            r.decompress_cpu_us,
            r.compress_us.p50,
            r.compress_us.p99,
            r.compress_us.p999,
            r.decompress_us.p50,
            r.decompress_us.p99,
            r.decompress_us.p999,
            field(&c.name),
            c.pages,
            c.zero_pages,
            c.same_filled_pages,
            field(&m.cpu_model),
            m.cores,
            field(&m.kernel),
            field(&m.version),
            field(&m.commit),
        )?;
    }
    w.flush()
}
