//! `PAGEMAP_SCAN` (Linux 6.7+) on `/proc/self/pagemap`: the kernel walks the page tables of a
//! range and reports runs of pages by category, in one ioctl instead of one read per page.
//! The daemon uses it to count what is really present in the region (the figure the budget
//! is about, independent of its own bookkeeping).

use std::fs::File;
use std::os::fd::AsRawFd;

use software_fallback::PAGE_SIZE;

use super::abi::{PageRegion, PmScanArg, PAGEMAP_SCAN, PAGE_IS_PRESENT};
use crate::error::{Result, SwapdError};

/// An open `/proc/self/pagemap`.
#[derive(Debug)]
pub struct Pagemap {
    file: File,
}

impl Pagemap {
    /// Opens `/proc/self/pagemap`.
    pub fn open() -> Result<Pagemap> {
        let file = File::open("/proc/self/pagemap")
            .map_err(|e| SwapdError::file("/proc/self/pagemap", e))?;
        Ok(Pagemap { file })
    }

    /// Number of present pages in `[start, end)` (page-aligned addresses of this process).
    pub fn present_pages(&self, start: usize, end: usize) -> Result<usize> {
        let mut vec = [PageRegion::default(); 64];
        let mut at = start;
        let mut total = 0usize;
        while at < end {
            let mut arg = PmScanArg {
                size: std::mem::size_of::<PmScanArg>() as u64,
                start: at as u64,
                end: end as u64,
                vec: vec.as_mut_ptr() as u64,
                vec_len: vec.len() as u64,
                category_mask: PAGE_IS_PRESENT,
                return_mask: PAGE_IS_PRESENT,
                ..PmScanArg::default()
            };
            // SAFETY: `arg` is a valid pm_scan_arg whose `vec` points to `vec_len` writable
            // page_region records; the scan only reads page tables (no WP flag is set).
            let n = unsafe {
                libc::ioctl(
                    self.file.as_raw_fd(),
                    PAGEMAP_SCAN as _,
                    &mut arg as *mut PmScanArg,
                )
            };
            if n < 0 {
                return Err(SwapdError::last_os("ioctl(PAGEMAP_SCAN)"));
            }
            for r in &vec[..n as usize] {
                total += ((r.end - r.start) as usize) / PAGE_SIZE;
            }
            if arg.walk_end as usize <= at {
                break;
            }
            at = arg.walk_end as usize;
        }
        Ok(total)
    }
}
