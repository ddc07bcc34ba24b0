//! A userfaultfd region on the pool: 16 MiB of memory of which at most 4 MiB stays resident;
//! cold pages are taken out (`UFFDIO_MOVE`) and stored compressed, and a touch brings them
//! back. Every word is written and read back. Needs userfaultfd with `UFFDIO_MOVE` (Linux
//! 6.8; root, or `vm.unprivileged_userfaultfd=1`): where there is none the example says why.
//!
//! `cargo run --example uffd_region`

use std::sync::atomic::Ordering;

use swapaccel::swapd::{Region, RegionConfig, SwapdError};
use swapaccel::{Device, Swapaccel};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sa = Swapaccel::builder().device(Device::Auto).build()?;
    let cfg = RegionConfig {
        bytes: 16 << 20,
        budget_bytes: 4 << 20,
        ..RegionConfig::default()
    };
    // The region turns swap type 0 on for itself, one slot per page.
    let region = match Region::with_pool(&cfg, sa.pool().clone(), 0) {
        Ok(r) => r,
        Err(e @ (SwapdError::NoUserfaultfd { .. } | SwapdError::MissingFeature { .. })) => {
            println!("skipped: {e}");
            return Err(Box::new(e));
        }
        Err(e) => return Err(e.into()),
    };
    let words = region.words();
    for (i, w) in words.iter().enumerate() {
        w.store(i as u64 * 0x9e37, Ordering::Relaxed);
    }
    for (i, w) in words.iter().enumerate() {
        assert_eq!(w.load(Ordering::Relaxed), i as u64 * 0x9e37, "word {i}");
    }
    region.health()?;
    let st = region.stats();
    println!(
        "{} pages evicted, {} loaded on fault; pool ratio {:.2}",
        st.evicted,
        st.faults_loaded,
        sa.stats().pool.ratio()
    );
    assert!(st.evicted > 0, "the budget was never exceeded");
    Ok(())
}

#[cfg(test)]
mod test {
    use swapaccel::swapd::SwapdError;

    /// Runs the example; reports it skipped where userfaultfd cannot be had, unless
    /// `SWAPACCEL_REQUIRE_UFFD=1` makes that a failure.
    #[test]
    fn example_runs() {
        match super::main() {
            Ok(()) => {}
            Err(e)
                if matches!(
                    e.downcast_ref::<SwapdError>(),
                    Some(SwapdError::NoUserfaultfd { .. } | SwapdError::MissingFeature { .. })
                ) && std::env::var("SWAPACCEL_REQUIRE_UFFD").as_deref() != Ok("1") =>
            {
                eprintln!("skipped uffd_region: {e}");
            }
            Err(e) => panic!("{e}"),
        }
    }
}
