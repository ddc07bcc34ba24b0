//! A pool whose per-CPU contexts run on Intel QPL (feature `qpl`) through `QplFactory`.
#![cfg(not(feature = "shuttle"))]

mod common;

use std::sync::Arc;

use common::real_corpus;
use pool::{LoadMode, Pool, PoolConfig, QplFactory, TestTopology};
use qpl_codec::{Huffman, Path, QplConfig};
use software_fallback::{CodecSpec, PAGE_SIZE};

fn qpl_pool(config: QplConfig) -> pool::Result<Pool> {
    Pool::new(PoolConfig {
        codec: CodecSpec::DEFLATE,
        factory: Arc::new(QplFactory { config }),
        topology: Arc::new(TestTopology::new(&[0, 1])),
        ..PoolConfig::default()
    })
}

#[test]
fn qpl_contexts_store_and_load_and_survive_a_switch() {
    let c = real_corpus(512);
    for huffman in [Huffman::Fixed, Huffman::Dynamic] {
        let pool = qpl_pool(QplConfig::new(Path::Software, huffman)).unwrap();
        pool.swapon(0, c.len() as u64, None).unwrap();
        for (i, p) in c.pages().enumerate() {
            pool.store(0, i as u64, p).unwrap();
        }
        let s = pool.stats();
        assert_eq!(s.stored_pages, c.len() as u64);
        assert!(s.compressed_bytes > 0);
        // Entries stored by QPL are read after the compressor moves to another format (the
        // raw DEFLATE decoder is again a QPL context) ...
        pool.set_compressor(CodecSpec::ZSTD).unwrap();
        let mut out = vec![0u8; PAGE_SIZE];
        for (i, p) in c.pages().enumerate() {
            pool.load(0, i as u64, &mut out, LoadMode::KeepCopy)
                .unwrap();
            assert_eq!(out, p, "{huffman:?} page {i}");
        }
        // ... and zstd entries stored now come back too.
        for (i, p) in c.pages().enumerate().take(64) {
            pool.store(0, i as u64, p).unwrap();
            pool.load(0, i as u64, &mut out, LoadMode::Exclusive)
                .unwrap();
            assert_eq!(out, p);
        }
    }
}

#[test]
fn hardware_path_without_iaa_fails_the_pool_with_qpls_reason() {
    match qpl_pool(QplConfig::new(Path::Hardware, Huffman::Fixed)) {
        Ok(_) => eprintln!("QPL hardware path is available here"),
        Err(e) => assert!(e.to_string().contains("QPL_STS_INIT_"), "{e}"),
    }
}
