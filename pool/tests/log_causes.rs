//! Log lines keep the cause of the error they report. Error messages do not repeat their
//! `#[source]` (so the CLI prints each cause once); a log line that recorded the error with
//! `%e` (its `Display`) would therefore drop the cause. The pool records errors as
//! `&dyn Error`, whose source chain tracing-subscriber's formatter prints
//! (`error.sources=[...]`, tracing-subscriber 0.3 `fmt/format/mod.rs`, `record_error`).
// Under the `shuttle` feature the pool runs on shuttle primitives: only tests/shuttle.rs runs.
#![cfg(not(feature = "shuttle"))]

mod common;

use std::fs::OpenOptions;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex};

use common::{page_for, pool_with, TempFile};
use pool::PoolError;
use software_fallback::CodecSpec;

/// A `MakeWriter` that keeps everything written to it.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

#[test]
fn writeback_failure_log_line_names_the_os_error() {
    let f = TempFile::new("log-causes");
    let rw = f.open_rw();
    let pool_fd = rw.as_raw_fd();
    let ro = OpenOptions::new().read(true).open(&f.path).unwrap();
    let (pool, _) = pool_with(CodecSpec::LZ4, &[0]);
    pool.swapon(0, 16, Some(rw)).unwrap();
    // As in api.rs `writeback_io_error_keeps_the_entry`: the pool's descriptor now refers to
    // a read-only open of its file, so the write-back fails with EBADF.
    // SAFETY: dup2 onto a descriptor the pool's `File` owns and keeps open; it atomically
    // replaces what that number refers to and touches no memory.
    assert_eq!(unsafe { libc::dup2(ro.as_raw_fd(), pool_fd) }, pool_fd);
    pool.store(0, 2, &page_for(2, 1)).unwrap();

    let out = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(out.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::WARN)
        .finish();
    let err = tracing::subscriber::with_default(subscriber, || pool.reclaim(1).unwrap_err());

    let PoolError::Io { source, .. } = &err else {
        panic!("expected an I/O error, got {err}");
    };
    let cause = source.to_string();
    assert!(
        !err.to_string().contains(&cause),
        "the message leaves the cause to source()"
    );
    let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
    let line = text
        .lines()
        .find(|l| l.contains("writeback failed; entry kept"))
        .unwrap_or_else(|| panic!("no writeback line in {text:?}"));
    assert!(line.contains(&err.to_string()), "{line}");
    assert!(
        line.contains(&cause),
        "the log line lost the cause {cause:?}: {line}"
    );
}
