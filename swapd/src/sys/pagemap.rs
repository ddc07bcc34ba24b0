//! `PAGEMAP_SCAN` (Linux 6.7+) on `/proc/self/pagemap`: the kernel walks the page tables of a
//! range and reports runs of pages by category, in one ioctl instead of one read per page.
//! The daemon uses it to count what is really present in the region (the figure the budget
//! is about, independent of its own bookkeeping), and, with userfaultfd's asynchronous write
//! protection, to find the pages written since the last look and protect them again in the
//! same walk (`PM_SCAN_WP_MATCHING`): the clock's referenced bit for writes.

use std::fs::File;
use std::os::fd::AsRawFd;

use software_fallback::PAGE_SIZE;

use super::abi::{
    PageRegion, PmScanArg, PAGEMAP_SCAN, PAGE_IS_PRESENT, PAGE_IS_WRITTEN, PM_SCAN_CHECK_WPASYNC,
    PM_SCAN_WP_MATCHING,
};
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
        let runs = self.scan(start, end, 0, PAGE_IS_PRESENT)?;
        Ok(runs.iter().map(|(a, b)| (b - a) / PAGE_SIZE).sum())
    }

    /// Address runs in `[start, end)` written since they were last write-protected; they are
    /// write-protected again. The range must be registered with a userfaultfd in async
    /// write-protect mode (else `EPERM`/abort, reported as an error).
    pub fn take_written(&self, start: usize, end: usize) -> Result<Vec<(usize, usize)>> {
        self.scan(
            start,
            end,
            PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC,
            PAGE_IS_WRITTEN,
        )
    }

    fn scan(
        &self,
        start: usize,
        end: usize,
        flags: u64,
        category: u64,
    ) -> Result<Vec<(usize, usize)>> {
        let mut out = Vec::new();
        let mut vec = [PageRegion::default(); 64];
        let mut at = start;
        while at < end {
            let mut arg = PmScanArg {
                size: std::mem::size_of::<PmScanArg>() as u64,
                flags,
                start: at as u64,
                end: end as u64,
                vec: vec.as_mut_ptr() as u64,
                vec_len: vec.len() as u64,
                category_mask: category,
                return_mask: category,
                ..PmScanArg::default()
            };
            // SAFETY: `arg` is a valid pm_scan_arg whose `vec` points to `vec_len` writable
            // page_region records; the walk reads page tables and, with WP matching, only
            // sets the uffd-wp bit of ptes in our async-WP range (contents are untouched).
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
                out.push((r.start as usize, r.end as usize));
            }
            if arg.walk_end as usize <= at {
                break;
            }
            at = arg.walk_end as usize;
        }
        Ok(out)
    }
}
