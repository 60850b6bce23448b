//! Pair sets as the engine's calls take them, and [`FrozenPairs`]: a pair set that can
//! no longer change, so a device may keep its copy across calls.
//!
//! Why a separate type: [`PairSet`]'s fields are public, so nothing about a `&PairSet`
//! says whether its contents are the ones a device copied last time; a backend that
//! cached by address would go stale, and one that compared or hashed the contents paid
//! O(pairs) on every call. A [`FrozenPairs`] owns its pair set privately and only ever
//! lends it out as `&PairSet`, so its contents are fixed from construction to drop, and
//! its [`PairsStamp`] is drawn from a process-wide counter that never repeats. Equal
//! stamps therefore mean equal contents (a clone keeps the stamp: it has the same
//! contents), and a device copy looked up by stamp is current by construction.

use crate::task::PairSet;
use std::sync::atomic::{AtomicU64, Ordering};

/// A process-unique name for the contents of one [`FrozenPairs`] (see the module docs).
/// Only a `FrozenPairs` makes one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PairsStamp(u64);

/// A pair set whose contents can no longer change, with a [`PairsStamp`] naming them.
/// What the trainer hands the engine for its train and test sets, so a device backend
/// uploads each once; read it through `Deref` as a [`PairSet`].
#[derive(Debug)]
pub struct FrozenPairs {
    pairs: PairSet,
    stamp: PairsStamp,
}

impl FrozenPairs {
    /// Freezes `pairs` under a new stamp.
    pub fn new(pairs: PairSet) -> FrozenPairs {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        FrozenPairs {
            pairs,
            stamp: PairsStamp(NEXT.fetch_add(1, Ordering::Relaxed)),
        }
    }

    /// The pair set, back as a mutable value (its stamp is dropped with it).
    pub fn into_inner(self) -> PairSet {
        self.pairs
    }
}

impl Clone for FrozenPairs {
    /// Same contents, so the same stamp: a device copy of one serves the other.
    fn clone(&self) -> Self {
        FrozenPairs {
            pairs: self.pairs.clone(),
            stamp: self.stamp,
        }
    }
}

impl PartialEq for FrozenPairs {
    /// Equal contents (the stamp is an identity, not part of the value).
    fn eq(&self, other: &Self) -> bool {
        self.pairs == other.pairs
    }
}

impl std::ops::Deref for FrozenPairs {
    type Target = PairSet;
    fn deref(&self) -> &PairSet {
        &self.pairs
    }
}

impl From<PairSet> for FrozenPairs {
    fn from(pairs: PairSet) -> Self {
        FrozenPairs::new(pairs)
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for crate::task::PairSet {}
    impl Sealed for super::FrozenPairs {}
}

/// What the engine's calls take as their pairs: a [`PairSet`] (read as it is on every
/// call) or a [`FrozenPairs`] (which a device backend keeps resident, looked up by its
/// stamp). Sealed: a stamp must come with the contents it names.
pub trait AsPairSet: sealed::Sealed {
    /// The pairs.
    fn pair_set(&self) -> &PairSet;
    /// The stamp of contents that can never change, if they cannot.
    fn stamp(&self) -> Option<PairsStamp>;
}

impl AsPairSet for PairSet {
    fn pair_set(&self) -> &PairSet {
        self
    }
    fn stamp(&self) -> Option<PairsStamp> {
        None
    }
}

impl AsPairSet for FrozenPairs {
    fn pair_set(&self) -> &PairSet {
        &self.pairs
    }
    fn stamp(&self) -> Option<PairsStamp> {
        Some(self.stamp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_are_unique_per_freeze_and_shared_by_clones() {
        let mut set = PairSet::default();
        set.push(0, 1, 1);
        let a = FrozenPairs::new(set.clone());
        let b = FrozenPairs::new(set);
        assert_ne!(a.stamp(), b.stamp());
        assert_eq!(a.clone().stamp(), a.stamp());
        assert_eq!(a, b);
        assert_eq!(PairSet::default().stamp(), None);
    }
}
