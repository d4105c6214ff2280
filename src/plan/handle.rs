//! [`PlanHandle`]: where a running forwarder's current [`Plan`] is
//! published, so that a reload can swap it while the workers forward.
//!
//! Contract: [`PlanHandle::publish`] makes a new plan current; each worker
//! polls [`PlanHandle::generation`] once per batch (one relaxed atomic
//! load, no lock) and, when it changed, takes the new plan with
//! [`PlanHandle::current`] (an `ArcSwap` load: lock-free, never waits on
//! the publisher) and uses it from its next batch. A batch is always
//! processed whole by one plan. The old plan is freed when the last worker
//! let go of it.

use super::Plan;
use arc_swap::ArcSwap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The current plan of a running forwarder.
#[derive(Debug)]
pub struct PlanHandle {
    plan: ArcSwap<Plan>,
    generation: AtomicU64,
}

impl PlanHandle {
    /// A handle whose current plan is `plan` (generation 0).
    pub fn new(plan: Arc<Plan>) -> PlanHandle {
        PlanHandle {
            plan: ArcSwap::new(plan),
            generation: AtomicU64::new(0),
        }
    }

    /// The current plan.
    pub fn current(&self) -> Arc<Plan> {
        self.plan.load_full()
    }

    /// Bumped by every [`PlanHandle::publish`].
    #[inline(always)]
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Make `plan` current; workers take it before their next batch.
    /// Returns the new generation.
    pub fn publish(&self, plan: Arc<Plan>) -> u64 {
        self.plan.store(plan);
        self.generation.fetch_add(1, Ordering::AcqRel) + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_bumps_the_generation_and_swaps() {
        let empty = || Arc::new(Plan::new(vec![], vec![], vec![], vec![], vec![], vec![]));
        let a = empty();
        let h = PlanHandle::new(a.clone());
        assert_eq!(h.generation(), 0);
        assert!(Arc::ptr_eq(&h.current(), &a));
        let b = empty();
        assert_eq!(h.publish(b.clone()), 1);
        assert!(Arc::ptr_eq(&h.current(), &b));
        // The old plan lives on while someone holds it.
        assert_eq!(Arc::strong_count(&a), 1);
    }
}
