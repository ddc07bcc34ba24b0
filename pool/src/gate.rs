//! A swap type's gate: a big-reader lock around the type's area.
//!
//! **Rules.** Every operation on a swap type holds the gate for reading from start to end; it
//! read-locks only its own shard (chosen per thread), so operations on different CPUs touch
//! different cache lines. `swapon` and `swapoff` write-lock every shard, in index order: that
//! waits for every operation inside and keeps new ones out until the area has been put in or
//! taken out. Each shard holds its own clone of the `Arc<Area>`; they always agree, because
//! they change only while all shards are write-locked. Write-lockers never hold one shard
//! while waiting for a lower one, so readers (one shard each) and writers cannot deadlock.

use std::sync::{Arc, PoisonError};

use crate::area::Area;
use crate::sync::{thread_shard, RwLock, RwLockReadGuard, RwLockWriteGuard, SHARDS};

#[repr(align(128))]
struct Shard(RwLock<Option<Arc<Area>>>);

/// The gate of one swap type.
pub(crate) struct Gate {
    shards: Box<[Shard]>,
}

/// A held read side of a gate whose area is present.
pub(crate) struct Entered<'a>(RwLockReadGuard<'a, Option<Arc<Area>>>);

impl std::ops::Deref for Entered<'_> {
    type Target = Area;

    fn deref(&self) -> &Area {
        match self.0.as_deref() {
            Some(a) => a,
            // `Gate::enter` only builds an `Entered` around a shard holding an area, and the
            // area cannot be taken out while any shard is read-locked.
            None => unreachable!("Entered without an area"),
        }
    }
}

impl Gate {
    pub fn new() -> Gate {
        Gate {
            shards: (0..SHARDS).map(|_| Shard(RwLock::new(None))).collect(),
        }
    }

    /// Enters for one operation; `None` if the type is off.
    pub fn enter(&self) -> Option<Entered<'_>> {
        let g = self.shards[thread_shard()]
            .0
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        g.is_some().then(|| Entered(g))
    }

    /// The area, if on, without entering (no operation may rely on it staying on).
    pub fn peek(&self) -> Option<Arc<Area>> {
        self.shards[0]
            .0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Write-locks every shard (waiting for every operation inside) and runs `f` on the area
    /// slot; whatever `f` leaves there is copied to every shard. Blocks.
    pub fn exclusive<R>(&self, f: impl FnOnce(&mut Option<Arc<Area>>) -> R) -> R {
        let mut guards: Vec<RwLockWriteGuard<'_, Option<Arc<Area>>>> = self
            .shards
            .iter()
            .map(|s| s.0.write().unwrap_or_else(PoisonError::into_inner))
            .collect();
        let mut slot = guards[0].take();
        let r = f(&mut slot);
        for g in guards.iter_mut() {
            **g = slot.clone();
        }
        r
    }
}
