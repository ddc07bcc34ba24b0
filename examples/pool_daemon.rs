//! A pool daemon: one swap area with a backing file, pages stored, loaded (keep a copy, or
//! take the entry), invalidated, written back to the file under a memory limit, and the
//! figures an operator reads. Runs on any machine: without IAA the pool compresses in
//! software (`Device::Auto` says so in the stats).
//!
//! `cargo run --example pool_daemon`

use swapaccel::codec::corpus::Corpus;
use swapaccel::codec::PAGE_SIZE;
use swapaccel::{Device, LoadMode, Swapaccel};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("swapaccel-example-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let swap_file = dir.join("swap0");

    // README:start
    // The device is given once; Auto falls back to software where there is no IAA.
    let sa = Swapaccel::builder()
        .codec("deflate:1".parse()?)
        .device(Device::Auto)
        .swap_area(0, 4096, &swap_file) // 4096 slots: a 16 MiB sparse file, created 0600
        .build()?;
    let area = sa.area(0);

    // Store 256 heap-like pages, one 8-page folio at a time (a folio is 1..=512 pages).
    let corpus = Corpus::builtin();
    let pages = &corpus.as_bytes()[..256 * PAGE_SIZE];
    for (i, folio) in pages.chunks(8 * PAGE_SIZE).enumerate() {
        area.store(i as u64 * 8, folio)?;
    }

    // A keep-copy load leaves the entry (a clean page may be dropped again without a store);
    // an exclusive load takes it (the page is now only in the caller's memory).
    let mut page = vec![0u8; PAGE_SIZE];
    area.load(5, &mut page, LoadMode::KeepCopy)?;
    assert_eq!(page, pages[5 * PAGE_SIZE..6 * PAGE_SIZE]);
    area.load(5, &mut page, LoadMode::Exclusive)?;
    assert!(area.load(5, &mut page, LoadMode::KeepCopy).is_err()); // gone now

    // Invalidate only if the slot still holds the store we made (not a newer one).
    let gen = area.store(300, &pages[..PAGE_SIZE])?;
    area.invalidate_if(300, gen)?;
    area.invalidate(6)?;
    // README:end

    // Write the coldest pages back to the file; they still load, from disk.
    let written = sa.pool().reclaim(64)?;
    for slot in (0..256u64).filter(|s| *s != 5 && *s != 6) {
        area.load(slot, &mut page, LoadMode::KeepCopy)?;
        let i = slot as usize * PAGE_SIZE;
        assert_eq!(page, pages[i..i + PAGE_SIZE], "slot {slot}");
    }

    let stats = sa.stats();
    println!(
        "engine {}: {} pages in memory at ratio {:.2}, {} written back ({written} this run), {} loads from the file",
        stats.device_status.kind(),
        stats.pool.stored_pages,
        stats.pool.ratio(),
        stats.pool.on_disk_pages,
        stats.pool.file_loads,
    );
    drop(sa);
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

#[cfg(test)]
mod test {
    #[test]
    fn example_runs() {
        super::main().unwrap();
    }
}
