//! Backing files at `swapon`: what is refused (write-only, read-only, `O_APPEND`, not a
//! regular file, non-empty and too short) with a typed error and nothing turned on; what is
//! allowed but counted (permissions looser than 0600); an empty file grown sparse to the
//! area's size; an area created from a path by the pool, written back and read again through
//! its handle.
// Under the `shuttle` feature the pool runs on shuttle primitives: only tests/shuttle.rs runs.
#![cfg(not(feature = "shuttle"))]

mod common;

use std::fs::{File, OpenOptions, Permissions};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::sync::Arc;

use common::{page_for, pool_with, TempFile};
use pool::{BackingProblem, LoadMode, PoolError, SwapArea};
use software_fallback::{CodecSpec, PAGE_SIZE};

fn refused(file: File, slots: u64) -> BackingProblem {
    let (pool, _) = pool_with(CodecSpec::LZ4, &[0]);
    match pool.swapon(0, slots, Some(file)) {
        Err(PoolError::BadBackingFile { ty: 0, problem }) => {
            // Nothing was turned on: the type is free for a good file.
            assert!(pool.swapon(0, slots, None).is_ok());
            problem
        }
        other => panic!("expected BadBackingFile, got {other:?}"),
    }
}

#[test]
fn write_only_file_is_refused() {
    let f = TempFile::new("wo");
    let wo = File::create(&f.path).unwrap(); // the natural way, and write-only
    assert_eq!(refused(wo, 16), BackingProblem::WriteOnly);
}

#[test]
fn read_only_file_is_refused() {
    let f = TempFile::new("ro");
    drop(f.open_rw());
    let ro = File::open(&f.path).unwrap();
    assert_eq!(refused(ro, 16), BackingProblem::ReadOnly);
}

#[test]
fn append_mode_file_is_refused() {
    let f = TempFile::new("app");
    let app = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(&f.path)
        .unwrap();
    assert_eq!(refused(app, 16), BackingProblem::Append);
}

#[test]
fn not_a_regular_file_is_refused() {
    let null = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .unwrap();
    assert_eq!(refused(null, 16), BackingProblem::NotRegularFile);
    let dir = File::open(std::env::temp_dir()).unwrap();
    assert_eq!(refused(dir, 16), BackingProblem::NotRegularFile);
}

/// `swapon(0, 1 << 20, file)` on a file holding data is not silently grown to 4 GiB.
#[test]
fn short_nonempty_file_is_refused_not_grown() {
    let f = TempFile::new("short");
    let file = f.open_rw();
    file.set_len(3 * PAGE_SIZE as u64).unwrap();
    let probe = file.try_clone().unwrap();
    assert_eq!(
        refused(file, 1 << 20),
        BackingProblem::TooSmall {
            len: 3 * PAGE_SIZE as u64,
            need: pool::seal::backing_len(1 << 20).unwrap()
        }
    );
    assert_eq!(probe.metadata().unwrap().len(), 3 * PAGE_SIZE as u64);
}

/// An empty file becomes the area's size, sparse: no disk blocks until writeback.
#[test]
fn empty_file_is_grown_sparse() {
    let f = TempFile::new("sparse");
    let file = f.open_rw();
    let probe = file.try_clone().unwrap();
    let (pool, _) = pool_with(CodecSpec::LZ4, &[0]);
    pool.swapon(0, 1 << 20, Some(file)).unwrap();
    let m = probe.metadata().unwrap();
    assert_eq!(m.len(), pool::seal::backing_len(1 << 20).unwrap());
    assert!(m.blocks() * 512 < 1 << 20, "{} blocks", m.blocks());
    // A file already as large as the area (or larger) is taken as it is.
    pool.swapoff(0).unwrap();
    pool.swapon(0, 16, Some(probe)).unwrap();
}

#[test]
fn loose_permissions_are_counted_not_refused() {
    let (pool, _) = pool_with(CodecSpec::LZ4, &[0]);
    let tight = TempFile::new("0600");
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tight.path)
        .unwrap();
    file.set_permissions(Permissions::from_mode(0o600)).unwrap();
    pool.swapon(0, 16, Some(file)).unwrap();
    assert_eq!(pool.stats().loose_backing_files, 0);
    let loose = TempFile::new("0644");
    let file = loose.open_rw();
    file.set_permissions(Permissions::from_mode(0o644)).unwrap();
    pool.swapon(1, 16, Some(file)).unwrap();
    assert_eq!(pool.stats().loose_backing_files, 1);
    assert!(pool
        .stats()
        .prometheus()
        .contains("swapaccel_pool_loose_backing_files_total 1"));
}

/// The pool creates the file (0600) from a path; pages written back come back whole through
/// the area handle; the ratio reflects what is held.
#[test]
fn area_from_path_writes_back_and_loads() {
    let f = TempFile::new("path");
    let (pool, _) = pool_with(CodecSpec::DEFLATE, &[0]);
    let pool = Arc::new(pool);
    let area = SwapArea::with_file(&pool, 2, 64, &f.path).unwrap();
    let m = std::fs::metadata(&f.path).unwrap();
    assert_eq!(m.permissions().mode() & 0o777, 0o600);
    assert_eq!(m.len(), pool::seal::backing_len(64).unwrap());
    for s in 0..16 {
        area.store(s, &page_for(s, 1)).unwrap();
    }
    let s = pool.stats();
    assert!(s.ratio() > 1.0, "{s:?}");
    assert_eq!(s.stored_bytes(), 16 * PAGE_SIZE as u64);
    assert_eq!(pool.reclaim(4).unwrap(), 4);
    assert_eq!(pool.stats().on_disk_pages, 4);
    let mut out = vec![0u8; PAGE_SIZE];
    for s in 0..16 {
        area.load(s, &mut out, LoadMode::Exclusive).unwrap();
        assert_eq!(out, page_for(s, 1), "slot {s}");
    }
    assert!(matches!(
        area.load(3, &mut out, LoadMode::KeepCopy),
        Err(PoolError::AbsentSlot { ty: 2, slot: 3 })
    ));
    let g = area.store(7, &page_for(7, 2)).unwrap();
    area.invalidate_if(7, g).unwrap();
    area.swapoff().unwrap();
    assert_eq!(pool.stats().stored_pages, 0);
}
