//! A context whose `mlock`s the memlock limit refuses keeps working and counts the refusals.
//!
//! A test binary of its own with one test: it lowers this process's RLIMIT_MEMLOCK and drops
//! CAP_IPC_LOCK (which would bypass the limit, as for root) from the test's thread, the
//! thread that then builds the context.

use accel::emu::{Emulator, EmulatorConfig};
use accel::job::{CompressPage, DecompressPage};
use accel::{ContextConfig, IaaContext};

const CAP_IPC_LOCK: u32 = 14;
const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Removes CAP_IPC_LOCK from the calling thread's effective set.
fn drop_ipc_lock() {
    let mut hdr = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: capget fills the header and two data structs, the layout of
    // `linux/capability.h` for version 3; both are live and writable.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_capget,
            &mut hdr as *mut CapHeader,
            data.as_mut_ptr(),
        )
    };
    assert_eq!(rc, 0, "capget: {}", std::io::Error::last_os_error());
    data[0].effective &= !(1 << CAP_IPC_LOCK);
    // SAFETY: as above; capset only reads them. Dropping an effective capability is always
    // allowed and affects only this thread.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &mut hdr as *mut CapHeader, data.as_ptr()) };
    assert_eq!(rc, 0, "capset: {}", std::io::Error::last_os_error());
}

fn set_memlock_soft_limit(bytes: u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write one `rlimit` we own.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut lim), 0);
        lim.rlim_cur = bytes.min(lim.rlim_max);
        assert_eq!(libc::setrlimit(libc::RLIMIT_MEMLOCK, &lim), 0);
    }
}

fn roundtrip(ctx: &mut IaaContext) {
    let page: Vec<u8> = (0..4096).map(|i| (i % 61) as u8).collect();
    let mut out = vec![0u8; 4096];
    let job = CompressPage::new(&page, &mut out, true).expect("one page");
    let r = ctx.run_one(job).expect("compressed");
    let len = r.len.expect("compressible");
    let mut back = vec![0u8; 4096];
    let job = DecompressPage::new(&out[..len], &mut back).expect("one page");
    ctx.run_one(job).expect("decompressed");
    assert_eq!(back, page);
}

#[test]
fn memlock_refusal_is_counted_and_the_context_still_works() {
    let emu = Emulator::start(EmulatorConfig::default()).expect("emulator");
    // Eight slots and the AECS: nine regions, each locked or counted as refused.
    let ctx = IaaContext::new(emu.work_queue(), ContextConfig::default());
    let s = ctx.stats();
    assert_eq!(s.mlocked + s.mlock_refused, 9, "{s:?}");
    drop(ctx);

    set_memlock_soft_limit(0);
    drop_ipc_lock();
    let mut ctx = IaaContext::new(emu.work_queue(), ContextConfig::default());
    let s = ctx.stats().clone();
    assert_eq!(
        s.mlock_refused, 9,
        "a limit of 0 should refuse every lock: {s:?}"
    );
    assert_eq!(s.mlocked, 0, "{s:?}");
    roundtrip(&mut ctx);
}
