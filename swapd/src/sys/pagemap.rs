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
    PageRegion, PmScanArg, PAGEMAP_SCAN, PAGE_IS_PRESENT, PAGE_IS_SWAPPED, PAGE_IS_WRITTEN,
    PM_SCAN_CHECK_WPASYNC, PM_SCAN_WP_MATCHING,
};
use crate::error::{Result, SwapdError};

/// What a page-table entry holds, as `PAGEMAP_SCAN` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PteKind {
    /// A page is mapped.
    Present,
    /// Nothing (`pte_none`): an access is a missing fault.
    None,
    /// Not a page, not empty: a swap entry or a marker (e.g. `PTE_MARKER_UFFD_WP`, reported
    /// as swapped by `pagemap_page_category`).
    NotPresent,
}

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
        let runs = self.scan(start, end, 0, PAGE_IS_PRESENT, 0, PAGE_IS_PRESENT)?;
        Ok(runs.iter().map(|(a, b)| (b - a) / PAGE_SIZE).sum())
    }

    /// Address runs of **present** pages in `[start, end)` written since they were last
    /// write-protected; they are write-protected again. The range must be registered with a
    /// userfaultfd in async write-protect mode (else `EPERM`/abort, reported as an error).
    ///
    /// Only present pages may be matched. With `category_mask == return_mask ==
    /// PAGE_IS_WRITTEN` the kernel takes a fast path (`pagemap_scan_pmd_entry` in
    /// fs/proc/task_mmu.c, Linux 6.7–6.18) that counts an empty pte as written (it has no
    /// uffd-wp bit) and write-protects it with `make_uffd_wp_pte`, which puts a
    /// `PTE_MARKER_UFFD_WP` marker in it. The page is still missing, but the pte is no longer
    /// none: `UFFDIO_ZEROPAGE` (`mfill_atomic_pte_zeropage` checks `pte_none`) then fails
    /// with `EEXIST`, `UFFDIO_MOVE` into it fails with `EEXIST` and out of it with `EFAULT`
    /// (`move_pages_pte`: a non-swap entry), while `UFFDIO_COPY` (`pte_none_mostly`) accepts
    /// it. Requiring `PAGE_IS_PRESENT` as well leaves empty ptes alone (the general path only
    /// protects pages it matched).
    pub fn take_written(&self, start: usize, end: usize) -> Result<Vec<(usize, usize)>> {
        self.scan(
            start,
            end,
            PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC,
            PAGE_IS_WRITTEN | PAGE_IS_PRESENT,
            0,
            PAGE_IS_WRITTEN,
        )
    }

    /// What the page table holds for the page at `addr` (page-aligned, of this process).
    pub fn pte_kind(&self, addr: usize) -> Result<PteKind> {
        let runs = self.scan_categories(
            addr,
            addr + PAGE_SIZE,
            0,
            0,
            PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
            PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
        )?;
        Ok(match runs.first() {
            None => PteKind::None,
            Some(&(_, _, c)) if c & PAGE_IS_PRESENT != 0 => PteKind::Present,
            Some(_) => PteKind::NotPresent,
        })
    }

    fn scan(
        &self,
        start: usize,
        end: usize,
        flags: u64,
        category: u64,
        anyof: u64,
        ret: u64,
    ) -> Result<Vec<(usize, usize)>> {
        Ok(self
            .scan_categories(start, end, flags, category, anyof, ret)?
            .into_iter()
            .map(|(a, b, _)| (a, b))
            .collect())
    }

    fn scan_categories(
        &self,
        start: usize,
        end: usize,
        flags: u64,
        category: u64,
        anyof: u64,
        ret: u64,
    ) -> Result<Vec<(usize, usize, u64)>> {
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
                category_anyof_mask: anyof,
                return_mask: ret,
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
                out.push((r.start as usize, r.end as usize, r.categories));
            }
            if arg.walk_end as usize <= at {
                break;
            }
            at = arg.walk_end as usize;
        }
        Ok(out)
    }
}
