# Victim policies for swapd's evictor that use only what user space sees (issue 17): fault-ins,
# written bits (collected when the hand reaches a page, as PAGEMAP_SCAN does one window ahead
# of it) and refault distance (evictions between a page's eviction and its next fault-in).
# Same trace, budget and baselines as replacement.py (imported from there). Reads of resident
# pages are invisible, as they are to the daemon.
#
# Policies:
#  * ours: clock, referenced bit from fault-ins and writes, one extra lap for a refault within
#    `window` evictions (refault.rs; window = half the budget).
#  * gclock(kmax, new, early, write): a saturating per-page count instead of the bit: a fault-in
#    sets it to `new` (`early` if it came back within the window), a written bit seen by the
#    hand adds `write`; the hand lowers it by one and takes the page at zero.
#  * graded: like gclock, but an early refault's count grows as its distance shrinks
#    (`levels` windows: < window/2^i gives i+1 extra laps).
#  * two_list(active_frac): the kernel's split in clock form: a page is active or inactive;
#    an early refault comes in active, any other fault-in inactive; a written bit seen on an
#    inactive page promotes it; the hand takes unreferenced inactive pages and demotes
#    active ones only while the active set is over `active_frac` of the resident pages.
# Every policy keeps the daemon's progress rule: within one victim search the hand ignores
# counts after a whole lap.
# Run: nice -n 10 python3 swapd-bench/sim/clock_variants.py (~3 min).
from replacement import trace, PAGES, CAP, clock_refault, lru

WINDOW = 4096  # half the 8 192-page budget, as the region sets it
SCAN_WINDOW = 1024  # pages per PAGEMAP_SCAN, collected when the hand enters them (evict.rs)


def gclock(kmax, new, early, write, window=WINDOW, levels=1, scan=SCAN_WINDOW):
    cnt = [0] * PAGES; wbit = [False] * PAGES; res = [False] * PAGES
    dirty = [False] * PAGES  # written since the last PAGEMAP_SCAN over it
    evat = [-10**9] * PAGES
    n = 0; hand = 0; miss = 0; evs = 0
    for p in range(PAGES - CAP, PAGES): res[p] = True; n += 1
    for p, wr in trace:
        if res[p]:
            if wr: dirty[p] = True
            continue
        miss += 1
        scanned = 0
        while n >= CAP:
            h = hand
            if h % scan == 0:
                for q in range(h, min(h + scan, PAGES)):
                    if dirty[q]:
                        dirty[q] = False
                        if res[q]: wbit[q] = True
            if res[h]:
                if wbit[h]:
                    wbit[h] = False
                    cnt[h] = min(kmax, cnt[h] + write)
                if cnt[h] > 0 and scanned < PAGES:
                    cnt[h] -= 1
                else:
                    res[h] = False; n -= 1; evat[h] = evs; evs += 1; cnt[h] = 0
            hand = (h + 1) % PAGES; scanned += 1
        # A write fault is seen as a write (the page goes in write-protected, the retried
        # write marks it).
        res[p] = True; n += 1; wbit[p] = False; dirty[p] = wr
        d = evs - evat[p]
        c = new
        w = window
        for _ in range(levels):
            if d < w: c += early
            w //= 2
        cnt[p] = min(kmax, c)
    return miss


def ours(window=WINDOW, scan=SCAN_WINDOW):
    # The daemon today, written bits as the scan collects them: referenced bit set by a
    # fault-in or a written bit, one extra lap for an early refault (spent after the bit).
    ref = [False] * PAGES; prot = [False] * PAGES; res = [False] * PAGES
    dirty = [False] * PAGES; evat = [-10**9] * PAGES
    n = 0; hand = 0; miss = 0; evs = 0
    for p in range(PAGES - CAP, PAGES): res[p] = True; n += 1
    for p, wr in trace:
        if res[p]:
            if wr: dirty[p] = True
            continue
        miss += 1
        scanned = 0
        while n >= CAP:
            h = hand
            if h % scan == 0:
                for q in range(h, min(h + scan, PAGES)):
                    if dirty[q]:
                        dirty[q] = False
                        if res[q]: ref[q] = True
            if res[h]:
                if ref[h]: ref[h] = False
                elif prot[h] and scanned < PAGES: prot[h] = False
                else: res[h] = False; n -= 1; evat[h] = evs; evs += 1; prot[h] = False
            hand = (h + 1) % PAGES; scanned += 1
        res[p] = True; ref[p] = True; n += 1; dirty[p] = wr
        if evs - evat[p] < window: prot[p] = True
    return miss


def ref_laps(max_laps=3, write_laps=1, early_laps=1, new_ref=False, window=WINDOW,
             scan=SCAN_WINDOW):
    # gclock as the daemon keeps it (laps.rs): the page state's referenced bit (one lap) plus
    # a count of extra laps (at most `max_laps`). A fault-in leaves the bit clear (`new_ref`)
    # and sets the count to `early_laps` for an early refault, else 0; a written bit sets the
    # referenced bit and adds `write_laps`; the hand clears the bit, else spends a lap, else
    # takes the page.
    ref = [False] * PAGES; laps = [0] * PAGES; res = [False] * PAGES
    dirty = [False] * PAGES; evat = [-10**9] * PAGES
    n = 0; hand = 0; miss = 0; evs = 0
    for p in range(PAGES - CAP, PAGES): res[p] = True; n += 1
    for p, wr in trace:
        if res[p]:
            if wr: dirty[p] = True
            continue
        miss += 1
        scanned = 0
        while n >= CAP:
            h = hand
            if h % scan == 0:
                for q in range(h, min(h + scan, PAGES)):
                    if dirty[q]:
                        dirty[q] = False
                        if res[q]:
                            ref[q] = True; laps[q] = min(max_laps, laps[q] + write_laps)
            if res[h]:
                if ref[h]: ref[h] = False
                elif laps[h] > 0 and scanned < PAGES: laps[h] -= 1
                else: res[h] = False; n -= 1; evat[h] = evs; evs += 1
            hand = (h + 1) % PAGES; scanned += 1
        res[p] = True; ref[p] = new_ref; n += 1; dirty[p] = wr
        laps[p] = early_laps if evs - evat[p] < window else 0
    return miss


def two_list(active_frac, window=WINDOW, new_ref=True, write_promotes=True, scan=SCAN_WINDOW):
    # act: 1 active, 0 inactive; ref: referenced bit (fault-in or written).
    act = [0] * PAGES; ref = [False] * PAGES; wbit = [False] * PAGES
    res = [False] * PAGES; evat = [-10**9] * PAGES; dirty = [False] * PAGES
    n = 0; nact = 0; hand = 0; miss = 0; evs = 0
    target = int(active_frac * CAP)
    for p in range(PAGES - CAP, PAGES): res[p] = True; n += 1
    for p, wr in trace:
        if res[p]:
            if wr: dirty[p] = True
            continue
        miss += 1
        scanned = 0
        while n >= CAP:
            h = hand
            if h % scan == 0:
                for q in range(h, min(h + scan, PAGES)):
                    if dirty[q]:
                        dirty[q] = False
                        if res[q]: wbit[q] = True
            if res[h]:
                w = wbit[h]; wbit[h] = False
                if act[h]:
                    if nact > target and not w:
                        act[h] = 0; nact -= 1; ref[h] = False
                    if scanned >= PAGES:
                        act[h] = 0; nact -= 1
                        res[h] = False; n -= 1; evat[h] = evs; evs += 1
                elif w and write_promotes and scanned < PAGES:
                    act[h] = 1; nact += 1; ref[h] = False
                elif ref[h] and scanned < PAGES:
                    ref[h] = False
                else:
                    res[h] = False; n -= 1; evat[h] = evs; evs += 1; ref[h] = False
            hand = (h + 1) % PAGES; scanned += 1
        res[p] = True; n += 1; wbit[p] = False; dirty[p] = wr
        if evs - evat[p] < window:
            act[p] = 1; nact += 1; ref[p] = False
        else:
            ref[p] = new_ref
    return miss


def a0():
    # Oracle bound: the CAP - 1 most accessed pages (counted over the whole trace) stay, the
    # rest share one frame: no policy that learns online does better on a stationary stream.
    freq = [0] * PAGES
    for p, _ in trace: freq[p] += 1
    top = set(sorted(range(PAGES), key=lambda q: -freq[q])[:CAP - 1])
    last = -1; miss = 0
    for p, _ in trace:
        if p in top or p == last: continue
        miss += 1; last = p
    return miss


if __name__ == "__main__":
    print("accesses", len(trace))
    print("oracle: most accessed pages pinned (A0 bound):", a0())
    print("LRU per page (the kernel's view):", lru(1))
    print("ours (clock + refault distance < 4096), scan windows modelled:", ours())
    for args in [(2, 1, 1, 1), (3, 1, 1, 1), (3, 1, 2, 1), (3, 1, 1, 2), (4, 1, 1, 2),
                 (3, 0, 1, 1), (3, 0, 1, 2), (4, 0, 1, 2), (4, 0, 1, 3), (6, 0, 1, 3)]:
        print("gclock(kmax, new, early, write) =", args, gclock(*args), flush=True)
    for lv in (2, 3):
        print(f"graded gclock(4, 0, 1, 2, levels={lv}):", gclock(4, 0, 1, 2, levels=lv))
    for af in (0.5, 0.67, 0.8):
        print(f"two_list(active {af}), fault-ins referenced / not:", two_list(af),
              two_list(af, new_ref=False), flush=True)
    for kw in [dict(), dict(max_laps=2), dict(max_laps=4), dict(new_ref=True),
               dict(early_laps=2)]:
        mark = " (laps.rs)" if not kw else ""
        print(f"ref_laps({kw}){mark}:", ref_laps(**kw), flush=True)
    # The same stream with every write made a read: no written bits at all.
    import replacement
    ro = [(p, False) for p, _ in trace]
    trace[:] = ro
    print("read-only stream: LRU", lru(1), "ours", ours(), "ref_laps (laps.rs)", ref_laps())
