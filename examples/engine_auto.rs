//! The batching engine with the device chosen automatically: requests from several threads,
//! batched 8 pages per device submission when there is an IAA queue, in software otherwise;
//! every completion's outcome checked, and which engine did the work read from the stats.
//!
//! `cargo run --example engine_auto`

use std::sync::Arc;

use swapaccel::batching::Reply;
use swapaccel::codec::corpus::Corpus;
use swapaccel::codec::PAGE_SIZE;
use swapaccel::{Device, LoadMode, Swapaccel};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sa = Arc::new(
        Swapaccel::builder()
            .device(Device::Auto)
            .engine(true)
            .swap_area_in_memory(0, 1 << 16)
            .build()?,
    );
    println!("device: {:?}", sa.device_status());
    let corpus = Arc::new(Corpus::builtin());

    let threads: Vec<_> = (0..2u64)
        .map(|t| {
            let (sa, corpus) = (Arc::clone(&sa), Arc::clone(&corpus));
            std::thread::spawn(move || -> Result<(), String> {
                let engine = sa.engine().ok_or("no engine")?;
                let folio =
                    |i: u64| corpus.as_bytes()[i as usize * PAGE_SIZE..][..8 * PAGE_SIZE].to_vec();
                // Each thread stores 16 folios of 8 pages at its own slots, waits for all.
                let tickets = (0..16u64)
                    .map(|i| engine.store(0, (t * 16 + i) * 8, folio(i)))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| e.to_string())?;
                for c in swapaccel::batching::Ticket::wait_all(tickets) {
                    // The ticket always completes; the outcome says whether it worked.
                    match c.outcome {
                        Ok(Reply::Stored(_)) => {}
                        other => return Err(format!("store at {}: {other:?}", c.slot)),
                    }
                }
                for i in 0..16u64 {
                    let c = engine
                        .load(
                            0,
                            (t * 16 + i) * 8,
                            vec![0; 8 * PAGE_SIZE],
                            LoadMode::Exclusive,
                        )
                        .map_err(|e| e.to_string())?
                        .wait();
                    c.outcome.map_err(|e| e.to_string())?;
                    if c.buffer != folio(i) {
                        return Err(format!("folio {i} came back different"));
                    }
                }
                Ok(())
            })
        })
        .collect();
    for t in threads {
        t.join().map_err(|_| "thread panicked")??;
    }

    let stats = sa.stats();
    let engine = stats.engine.as_ref().ok_or("no engine metrics")?;
    println!(
        "{} requests completed, {:.1} pages per batch, engine {}; device pages: {:?}",
        engine.completed_total(),
        engine.mean_batch_pages(),
        stats.device_status.kind(),
        stats.device.as_ref().map(|d| d.device_pages)
    );
    Ok(())
}

#[cfg(test)]
mod test {
    #[test]
    fn example_runs() {
        super::main().unwrap();
    }
}
