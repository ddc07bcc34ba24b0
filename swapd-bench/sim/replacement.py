# Page-replacement simulation of `swapaccel swapd-bench --footprint-mib 64 --budget-mib 32
# --ops 200000` (the reference run): the same key stream (Zipf 0.99 per thread over 131 072
# keys, ranks scattered by the same multiplier as swapd-bench/src/workload.rs, 16 records of
# 256 B per page, 30 % writes), a Python RNG instead of the bench's (same distribution, not
# the same draws), 8 000 resident pages (what both sides hold on average at a 8 192-page
# budget), and these policies: LRU with per-page accessed bits (the kernel's view), LRU on
# 16-page regions (what DAMON's per-region nr_accesses could give at 1 000 regions, even
# with perfect sampling), our clock (second chance from faults and writes), the clock from
# faults only (no write tracking), and our clock with refault distance (refault.rs).
# Run: python3 swapd-bench/sim/replacement.py (~2 min). clock_variants.py imports the trace
# and the clocks from here.
# Measured on the same workload (swapd/README.md, "Same budget on both sides"): kernel
# zswpin 72-82 k, ours 80 k with write tracking, ~85 k without.
import bisect, random, itertools
from collections import OrderedDict
KEYS=262144; T=2; OPS=200000; THETA=0.99; WF=0.3; PAGES=16384; CAP=8000; RPP=16
mine=KEYS//T
w=[1.0/((r+1)**THETA) for r in range(mine)]
cum=list(itertools.accumulate(w)); tot=cum[-1]
def gcd(a,b):
    while b: a,b=b,a%b
    return a
m=0x9E3779B9 % mine
while m==0 or gcd(m,mine)!=1: m=(m+1)%mine
rng=random.Random(42)
trace=[]
for i in range(OPS):
    for th in range(T):
        r=bisect.bisect_left(cum, rng.random()*tot)
        idx=(r*m)%mine; key=idx*T+th
        trace.append((key//RPP, rng.random()<WF))
def lru(gran):
    od=OrderedDict(); res=set(); miss=0
    # resident pages; recency kept per unit (page or region)
    units=OrderedDict()
    for p in range(PAGES-CAP,PAGES): res.add(p); units[p//gran]=None
    for p,wr in trace:
        u=p//gran
        if p not in res:
            miss+=1
            if len(res)>=CAP:
                # evict a page from the least recently used unit that has resident pages
                while True:
                    v=next(iter(units))
                    cand=[q for q in range(v*gran,(v+1)*gran) if q in res]
                    if cand: res.discard(cand[0]); 
                    if len([q for q in range(v*gran,(v+1)*gran) if q in res])==0: del units[v]
                    if cand: break
            res.add(p)
        units[u]=None; units.move_to_end(u)
    return miss
def clock(write_ref=True):
    ref=[False]*PAGES; res=[False]*PAGES; n=0; hand=0; miss=0
    for p in range(PAGES-CAP,PAGES): res[p]=True; n+=1
    for p,wr in trace:
        if not res[p]:
            miss+=1
            while n>=CAP:
                if res[hand]:
                    if ref[hand]: ref[hand]=False
                    else: res[hand]=False; n-=1
                hand=(hand+1)%PAGES
            res[p]=True; ref[p]=True; n+=1
        elif wr and write_ref: ref[p]=True
    return miss
def clock_refault(window, counter_only=False):
    # Our clock plus an extra lap for a page loaded back fewer than `window` evictions after
    # its own eviction (swapd/src/refault.rs); counter_only: for any fault-in (no distance).
    ref=[False]*PAGES; res=[False]*PAGES; prot=[False]*PAGES; evat=[-10**9]*PAGES
    n=0; hand=0; miss=0; evs=0
    for p in range(PAGES-CAP,PAGES): res[p]=True; n+=1
    for p,wr in trace:
        if not res[p]:
            miss+=1
            scanned=0
            while n>=CAP:
                if res[hand]:
                    if ref[hand]: ref[hand]=False
                    elif scanned<PAGES and prot[hand]: prot[hand]=False
                    else: res[hand]=False; n-=1; evat[hand]=evs; evs+=1
                hand=(hand+1)%PAGES; scanned+=1
            res[p]=True; ref[p]=True; n+=1
            if counter_only or evs-evat[p] < window: prot[p]=True
        elif wr: ref[p]=True
    return miss
if __name__ == "__main__":
  print("accesses", len(trace))
  print("LRU per page (accessed bits):", lru(1))
  print("LRU per 16-page region (DAMON-like, ideal):", lru(16))
  print("clock, refs from faults + writes (ours):", clock(True))
  print("clock, refs from faults only:", clock(False))
  print("clock + one extra lap per fault-in (no distance):", clock_refault(0, True))
  for wdw in (2000, 4096, 8000):
      ours = " (ours: half the budget)" if wdw == 4096 else ""
      print(f"clock + refault distance < {wdw} evictions{ours}:", clock_refault(wdw))
