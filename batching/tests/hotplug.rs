//! Workers follow the online CPUs; the pool's contexts stay.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use batching::{Engine, Workers};
use common::*;
use pool::{LoadMode, TestTopology};
use software_fallback::PAGE_SIZE;

fn sorted(mut v: Vec<usize>) -> Vec<usize> {
    v.sort_unstable();
    v
}

fn store_and_check(e: &Engine, slot: u64, version: u64) {
    let c = builtin();
    let data = folio(&c, slot, 16, version);
    let d = e.store(0, slot, data.clone()).unwrap().wait();
    assert!(d.is_ok(), "{:?}", d.outcome);
    let mut back = vec![0; 16 * PAGE_SIZE];
    e.pool()
        .load_run(0, slot, &mut back, LoadMode::KeepCopy)
        .unwrap();
    assert_eq!(back, data);
}

#[test]
fn workers_follow_online_cpus_and_contexts_stay() {
    let topo = Arc::new(TestTopology::new(&[0, 1, 2, 3]));
    let pool = software_pool(Arc::clone(&topo));
    pool.swapon(0, 4096, None).unwrap();
    let mut cfg = engine_cfg(Arc::clone(&topo));
    cfg.hotplug_poll = Duration::from_secs(3600); // only explicit rescans in this test
    let e = Engine::start(Arc::clone(&pool), cfg).unwrap();
    assert_eq!(sorted(e.worker_cpus()), vec![0, 1, 2, 3]);
    assert_eq!(pool.stats().contexts_created, 4);
    store_and_check(&e, 0, 1);

    topo.offline(1);
    topo.offline(3);
    e.rescan_cpus().unwrap();
    assert_eq!(sorted(e.worker_cpus()), vec![0, 2]);
    assert_eq!(
        sorted(pool.context_cpus()),
        vec![0, 1, 2, 3],
        "contexts stay"
    );
    store_and_check(&e, 100, 1);

    topo.online(3);
    topo.online(5); // hot-added
    e.rescan_cpus().unwrap();
    assert_eq!(sorted(e.worker_cpus()), vec![0, 2, 3, 5]);
    for k in 0..8 {
        store_and_check(&e, 200 + k * 16, 1);
    }
    assert!(
        pool.context_cpus().contains(&5),
        "the new CPU got a context"
    );
    assert_eq!(pool.stats().contexts_created, 5, "no context was rebuilt");

    for cpu in [0, 2, 3, 5] {
        topo.offline(cpu);
    }
    e.rescan_cpus().unwrap();
    assert_eq!(
        e.worker_cpus().len(),
        1,
        "one worker stays with no CPU online"
    );
    store_and_check(&e, 400, 1);
    let m = e.metrics();
    assert_eq!(m.workers, 1);
    // Started: 4, then 3 and 5; retired: 1 and 3, then 0, 2 and 3 (one of 0/2/3/5 stays).
    assert_eq!(m.workers_started, 6);
    assert_eq!(m.workers_retired, 5);
    let report = e.shutdown();
    assert_eq!(report.stragglers, 0);
    assert_eq!(pool.stats().contexts_created, 5);
}

#[test]
fn the_supervisor_notices_hotplug_by_itself() {
    let topo = Arc::new(TestTopology::new(&[0, 1, 2]));
    let pool = software_pool(Arc::clone(&topo));
    pool.swapon(0, 4096, None).unwrap();
    let e = Engine::start(Arc::clone(&pool), engine_cfg(Arc::clone(&topo))).unwrap();
    topo.offline(2);
    // The bound only turns a hang into a failure; the supervisor polls every 10 ms.
    let deadline = Instant::now() + Duration::from_secs(60);
    while sorted(e.worker_cpus()) != vec![0, 1] {
        assert!(
            Instant::now() < deadline,
            "supervisor did not retire CPU 2's worker"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    topo.online(2);
    while sorted(e.worker_cpus()) != vec![0, 1, 2] {
        assert!(
            Instant::now() < deadline,
            "supervisor did not start CPU 2's worker"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    store_and_check(&e, 0, 3);
}

#[test]
fn fixed_workers_spread_over_online_cpus() {
    let topo = Arc::new(TestTopology::new(&[0, 1]));
    let pool = software_pool(Arc::clone(&topo));
    pool.swapon(0, 4096, None).unwrap();
    let mut cfg = engine_cfg(Arc::clone(&topo));
    cfg.workers = Workers::Fixed(3);
    let e = Engine::start(Arc::clone(&pool), cfg).unwrap();
    assert_eq!(sorted(e.worker_cpus()), vec![0, 0, 1]);
    topo.offline(0);
    e.rescan_cpus().unwrap();
    assert_eq!(sorted(e.worker_cpus()), vec![1, 1, 1]);
    store_and_check(&e, 0, 1);
}
