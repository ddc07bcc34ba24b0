//! The managed mapping: one anonymous private mapping of `region + staging` pages, registered
//! with a userfaultfd in missing mode. This is the lowest level that knows which memory it
//! owns, so it is where the userfaultfd ioctls become safe calls (bounds-checked page
//! indices instead of addresses).
//!
//! * The **region** (pages `0..region_pages`) is what the program reads and writes, only
//!   through atomics ([`Mapping::words`]) or the raw pointer it was handed with an `unsafe`
//!   contract, so a page may vanish (moved out by eviction) and reappear (installed by the
//!   fault handler) under any access without breaking Rust's aliasing rules.
//! * The **staging** area (pages after the region) belongs to the single [`Staging`] value,
//!   which the evictor owns: pages are moved there atomically (`UFFDIO_MOVE`), read, and
//!   dropped. Its methods that change the staging area take `&mut self`; its reads borrow
//!   `&self`, so no page changes under a reader.
//!
//! One mapping (not two) keeps both halves in one VMA with identical flags, which
//! `UFFDIO_MOVE` requires (same protection, both anonymous, dst registered with the fd).

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use software_fallback::PAGE_SIZE;

use super::abi::{UFFDIO_REGISTER_MODE_MISSING, UFFDIO_REGISTER_MODE_WP};
use super::uffd::{Filled, Uffd};
use crate::error::{Result, SwapdError};

/// The mapping and its registration. Unmapped (after unregistering) on drop.
#[derive(Debug)]
pub struct Mapping {
    base: usize,
    region_pages: usize,
    staging_pages: usize,
    uffd: Uffd,
    /// Registered in async write-protect mode too: writes are tracked (see `written`).
    tracks_writes: bool,
}

impl Mapping {
    /// Maps `region_pages + staging_pages` pages, advises them (no THP, not inherited by
    /// children), and registers all of them with `uffd` in missing mode, and in write-protect
    /// mode too when `track_writes` (the fd must have `UFFD_FEATURE_WP_ASYNC`). Returns the
    /// mapping and the one staging handle.
    pub fn new(
        uffd: Uffd,
        region_pages: usize,
        staging_pages: usize,
        track_writes: bool,
    ) -> Result<(Arc<Mapping>, Staging)> {
        let total = region_pages
            .checked_add(staging_pages)
            .and_then(|p| p.checked_mul(PAGE_SIZE))
            .ok_or_else(|| SwapdError::InvalidConfig("region too large".into()))?;
        if region_pages == 0 || staging_pages == 0 {
            return Err(SwapdError::InvalidConfig(
                "empty region or staging area".into(),
            ));
        }
        // SAFETY: a fresh anonymous private mapping at an address of the kernel's choosing
        // aliases nothing.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                total,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(SwapdError::last_os("mmap"));
        }
        let map = Mapping {
            base: p as usize,
            region_pages,
            staging_pages,
            uffd,
            tracks_writes: track_writes,
        };
        for (advice, op) in [
            (libc::MADV_NOHUGEPAGE, "madvise(MADV_NOHUGEPAGE)"),
            (libc::MADV_DONTFORK, "madvise(MADV_DONTFORK)"),
        ] {
            // SAFETY: the range is our own fresh mapping; advice changes no contents.
            if unsafe { libc::madvise(p, total, advice) } != 0 {
                return Err(SwapdError::last_os(op));
            }
        }
        // SAFETY: the whole mapping is ours; the region is only accessed through atomics or
        // the raw-pointer contract, the staging area only through `Staging`.
        let ioctls = unsafe {
            map.uffd.register(
                map.base,
                total,
                UFFDIO_REGISTER_MODE_MISSING
                    | if track_writes {
                        UFFDIO_REGISTER_MODE_WP
                    } else {
                        0
                    },
            )?
        };
        use super::abi::{NR_COPY, NR_MOVE, NR_WAKE, NR_ZEROPAGE};
        for (nr, feature) in [
            (NR_COPY, "UFFDIO_COPY"),
            (NR_ZEROPAGE, "UFFDIO_ZEROPAGE"),
            (NR_WAKE, "UFFDIO_WAKE"),
            (NR_MOVE, "UFFDIO_MOVE"),
        ] {
            if ioctls & (1 << nr) == 0 {
                return Err(SwapdError::MissingFeature {
                    feature,
                    since: "6.8",
                });
            }
        }
        let map = Arc::new(map);
        let staging = Staging { map: map.clone() };
        Ok((map, staging))
    }

    /// The userfaultfd.
    pub fn uffd(&self) -> &Uffd {
        &self.uffd
    }

    /// Address of region page `p` (callers check `p < region_pages`).
    pub fn page_addr(&self, p: usize) -> usize {
        self.base + p * PAGE_SIZE
    }

    /// `[start, end)` of the whole mapping (region and staging area).
    pub fn span(&self) -> (usize, usize) {
        (
            self.base,
            self.base + (self.region_pages + self.staging_pages) * PAGE_SIZE,
        )
    }

    /// Start of the region.
    pub fn base(&self) -> usize {
        self.base
    }

    /// Which part of the mapping `addr` falls in.
    pub fn locate(&self, addr: usize) -> Where {
        if addr < self.base {
            return Where::Outside;
        }
        let page = (addr - self.base) / PAGE_SIZE;
        if page < self.region_pages {
            Where::Region(page)
        } else if page < self.region_pages + self.staging_pages {
            Where::Staging(page - self.region_pages)
        } else {
            Where::Outside
        }
    }

    /// The region as 64-bit words.
    pub fn words(&self) -> &[AtomicU64] {
        // SAFETY: the region is mapped, page-aligned, lives as long as `self`, and is only
        // ever accessed atomically (or through the raw pointer's contract), so a shared slice
        // of atomics over it is sound; page moves/installs by the kernel are atomic per word.
        unsafe {
            std::slice::from_raw_parts(
                self.base as *const AtomicU64,
                self.region_pages * PAGE_SIZE / 8,
            )
        }
    }

    fn check(&self, p: usize, n: usize) -> Result<()> {
        if n == 0 || p.checked_add(n).map_or(true, |e| e > self.region_pages) {
            return Err(SwapdError::InvalidConfig(format!(
                "pages {p}..+{n} outside the region of {} pages",
                self.region_pages
            )));
        }
        Ok(())
    }

    /// Whether writes are tracked.
    pub fn tracks_writes(&self) -> bool {
        self.tracks_writes
    }

    /// Region pages in `[first, first + n)` written since the last call that covered them,
    /// as runs `(page, count)`; they are write-protected again (asynchronously: the next
    /// write is resolved by the kernel and only marks the page written). Needs write
    /// tracking.
    pub fn take_written(
        &self,
        pm: &super::pagemap::Pagemap,
        first: usize,
        n: usize,
    ) -> Result<Vec<(usize, usize)>> {
        let n = n.min(self.region_pages.saturating_sub(first));
        if n == 0 || !self.tracks_writes {
            return Ok(Vec::new());
        }
        let start = self.page_addr(first);
        let runs = pm.take_written(start, start + n * PAGE_SIZE)?;
        Ok(runs
            .into_iter()
            .map(|(a, b)| ((a - self.base) / PAGE_SIZE, (b - a) / PAGE_SIZE))
            .collect())
    }

    /// Installs `src` (whole pages) at missing region pages from `p`, waking the faulting
    /// threads. `Exists` when a page was already present.
    pub fn install(&self, p: usize, src: &[u8]) -> Result<Filled> {
        if src.is_empty() || src.len() % PAGE_SIZE != 0 {
            return Err(SwapdError::InvalidConfig(
                "install of a partial page".into(),
            ));
        }
        self.check(p, src.len() / PAGE_SIZE)?;
        // With write tracking, pages go in write-protected: a page counts as written only when
        // the program writes it after it came in (else every page faulted in would look
        // written at the next scan, and prefetched pages would look used).
        let mode = if self.tracks_writes {
            super::abi::UFFDIO_COPY_MODE_WP
        } else {
            0
        };
        // SAFETY: the range is inside our registered region (checked).
        unsafe { self.uffd.copy_mode(self.page_addr(p), src, mode) }
    }

    /// Maps the zero page at missing region page `p`.
    pub fn install_zero(&self, p: usize) -> Result<Filled> {
        self.check(p, 1)?;
        // SAFETY: inside our registered region (checked).
        unsafe { self.uffd.zeropage(self.page_addr(p), PAGE_SIZE) }
    }

    /// Maps the zero page at missing region pages `p..p + n` with one ioctl.
    pub fn install_zero_run(&self, p: usize, n: usize) -> Result<Filled> {
        self.check(p, n)?;
        // SAFETY: inside our registered region (checked).
        unsafe { self.uffd.zeropage(self.page_addr(p), n * PAGE_SIZE) }
    }

    /// Poisons missing region page `p` (accesses raise `SIGBUS`).
    pub fn poison(&self, p: usize) -> Result<()> {
        self.check(p, 1)?;
        // SAFETY: inside our registered region (checked).
        unsafe { self.uffd.poison(self.page_addr(p), PAGE_SIZE) }
    }

    /// Drops whatever region page `p`'s pte holds (`MADV_DONTNEED`; on an anonymous mapping
    /// that also clears a uffd-wp marker: `zap_pte_range` in mm/memory.c). Only for a page the
    /// caller holds locked and knows to hold no data (not present).
    pub fn discard(&self, p: usize) -> Result<()> {
        self.check(p, 1)?;
        // SAFETY: one page of our own mapping, accessed only through atomics or the raw
        // pointer's contract; the caller established that it holds no data.
        if unsafe {
            libc::madvise(
                self.page_addr(p) as *mut libc::c_void,
                PAGE_SIZE,
                libc::MADV_DONTNEED,
            )
        } != 0
        {
            return Err(SwapdError::last_os(
                "madvise(MADV_DONTNEED) of a region page",
            ));
        }
        Ok(())
    }

    /// Wakes threads faulting on region page `p` (it is present now).
    pub fn wake(&self, p: usize) -> Result<()> {
        self.check(p, 1)?;
        self.uffd.wake(self.page_addr(p), PAGE_SIZE)
    }

    /// Resolves a fault in the staging area, which only a bug could cause: zeros.
    pub fn install_zero_staging(&self, k: usize) -> Result<()> {
        if k >= self.staging_pages {
            return Err(SwapdError::InvalidConfig(
                "staging page out of range".into(),
            ));
        }
        // SAFETY: inside our registered staging area.
        unsafe {
            self.uffd
                .zeropage(self.base + (self.region_pages + k) * PAGE_SIZE, PAGE_SIZE)?
        };
        Ok(())
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        let total = (self.region_pages + self.staging_pages) * PAGE_SIZE;
        if let Err(e) = self.uffd.unregister(self.base, total) {
            tracing::warn!(
                error = &e as &dyn std::error::Error,
                "unregistering the region"
            );
        }
        // SAFETY: the mapping is ours and, `self` being dropped, nothing refers to it.
        if unsafe { libc::munmap(self.base as *mut libc::c_void, total) } != 0 {
            tracing::warn!(
                error = &std::io::Error::last_os_error() as &dyn std::error::Error,
                "munmap of the region"
            );
        }
    }
}

/// Where an address falls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Where {
    /// Region page.
    Region(usize),
    /// Staging page.
    Staging(usize),
    /// Not ours.
    Outside,
}

/// The staging area: exactly one exists per mapping, owned by the evictor.
#[derive(Debug)]
pub struct Staging {
    map: Arc<Mapping>,
}

impl Staging {
    /// Pages in the staging area.
    pub fn pages(&self) -> usize {
        self.map.staging_pages
    }

    fn addr(&self, k: usize) -> usize {
        self.map.base + (self.map.region_pages + k) * PAGE_SIZE
    }

    /// Address of staging page `k` (for looking at its pte; callers check `k < pages()`).
    pub fn page_addr(&self, k: usize) -> usize {
        self.addr(k)
    }

    /// Atomically moves region page `p` to staging page `k` (`UFFDIO_MOVE`): from then on an
    /// access to `p` faults. Errors carry the errno (`EBUSY`: pinned/shared, try later;
    /// `ENOENT`: `p` was not present).
    #[cfg(not(swapaccel_unprotected = "eviction"))]
    pub fn take(&mut self, p: usize, k: usize) -> Result<()> {
        self.map.check(p, 1)?;
        self.check(k)?;
        // SAFETY: both pages are ours; staging `k` is empty (cleared after each use) and no
        // `&[u8]` into staging exists (this borrows `&mut self`).
        unsafe {
            self.map
                .uffd
                .move_pages(self.addr(k), self.map.page_addr(p), PAGE_SIZE)
        }
    }

    /// Atomically moves region pages `p..p + n` to staging pages `k..k + n` with one
    /// `UFFDIO_MOVE` (Linux 6.17+ flushes the TLB once per batch of present ptes instead of once
    /// per page: one shootdown IPI per run, not per page). On failure, `Err((moved, e))`: the
    /// first `moved` pages (by the kernel's count, which can undercount, see
    /// `evict::moved_anyway`) are in staging, the rest are to be settled one by one.
    #[cfg(not(swapaccel_unprotected = "eviction"))]
    pub fn take_run(
        &mut self,
        p: usize,
        k: usize,
        n: usize,
    ) -> std::result::Result<(), (usize, SwapdError)> {
        if n == 0 {
            return Ok(());
        }
        self.map.check(p, n).map_err(|e| (0, e))?;
        self.check(k + n - 1).map_err(|e| (0, e))?;
        // SAFETY: as in `take`, for `n` pages: all ours, staging `k..k + n` empty, no borrow
        // of staging exists (`&mut self`).
        unsafe {
            self.map
                .uffd
                .move_pages_counted(self.addr(k), self.map.page_addr(p), n * PAGE_SIZE)
        }
        .map_err(|(bytes, e)| (bytes / PAGE_SIZE, e))
    }

    /// Test-only build: one page at a time through the racy `take` (the race test's subject).
    #[cfg(swapaccel_unprotected = "eviction")]
    pub fn take_run(
        &mut self,
        p: usize,
        k: usize,
        n: usize,
    ) -> std::result::Result<(), (usize, SwapdError)> {
        for i in 0..n {
            self.take(p + i, k + i).map_err(|e| (i, e))?;
        }
        Ok(())
    }

    /// Test-only (`--cfg swapaccel_unprotected="eviction"`): the racy way to take a page out — copy it
    /// to staging, then drop it from the region. A write landing between the copy and the
    /// drop is lost; the write-race test shows it.
    #[cfg(swapaccel_unprotected = "eviction")]
    pub fn take(&mut self, p: usize, k: usize) -> Result<()> {
        self.map.check(p, 1)?;
        self.check(k)?;
        let src = self.map.page_addr(p);
        // SAFETY: test-only; reads region page `p` (present: resident) into staging `k`.
        let page = unsafe { std::slice::from_raw_parts(src as *const u8, PAGE_SIZE) };
        // SAFETY: staging `k` is ours, registered and empty.
        unsafe { self.map.uffd.copy(self.addr(k), page, false)? };
        std::thread::yield_now(); // widen the window the real protocol closes
                                  // SAFETY: the region page is ours; dropping it makes the next access fault.
        if unsafe { libc::madvise(src as *mut libc::c_void, PAGE_SIZE, libc::MADV_DONTNEED) } != 0 {
            return Err(SwapdError::last_os("madvise(MADV_DONTNEED)"));
        }
        Ok(())
    }

    /// Moves staging page `k` back to missing region page `p` (a store failed).
    pub fn put_back(&mut self, k: usize, p: usize) -> Result<()> {
        self.map.check(p, 1)?;
        self.check(k)?;
        // SAFETY: as in `take`, in the other direction; region page `p` is missing (its
        // state is "evicting", so no fault handler installs it).
        unsafe {
            self.map
                .uffd
                .move_pages(self.map.page_addr(p), self.addr(k), PAGE_SIZE)
        }
    }

    /// Staging pages `k..k + n`, read-only.
    pub fn read(&self, k: usize, n: usize) -> Result<&[u8]> {
        if n == 0 || k + n > self.pages() {
            return Err(SwapdError::InvalidConfig(
                "staging range out of bounds".into(),
            ));
        }
        // SAFETY: mapped memory of ours; it only changes through `&mut self` methods, which
        // cannot run while this borrow lives. A page absent here faults into the handler,
        // which maps zeros (never the case after a successful `take`).
        Ok(unsafe { std::slice::from_raw_parts(self.addr(k) as *const u8, n * PAGE_SIZE) })
    }

    /// Drops staging pages `k..k + n` (`MADV_DONTNEED`) so they can be moved into again.
    pub fn clear(&mut self, k: usize, n: usize) -> Result<()> {
        if n == 0 {
            return Ok(());
        }
        self.check(k + n - 1)?;
        // SAFETY: our staging pages; no reference into them exists (`&mut self`).
        if unsafe {
            libc::madvise(
                self.addr(k) as *mut libc::c_void,
                n * PAGE_SIZE,
                libc::MADV_DONTNEED,
            )
        } != 0
        {
            return Err(SwapdError::last_os("madvise(MADV_DONTNEED) of staging"));
        }
        Ok(())
    }

    fn check(&self, k: usize) -> Result<()> {
        if k >= self.pages() {
            return Err(SwapdError::InvalidConfig(
                "staging page out of range".into(),
            ));
        }
        Ok(())
    }
}
