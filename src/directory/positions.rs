//! Where recent list pages ended, so paging through a large directory in order
//! (Okta's import: `startIndex=1`, `101`, `201`, …) costs one page per request
//! instead of skipping every key before `startIndex`.
//!
//! A position is "the resource at index `n` (1-based, creation order) has key `k`".
//! Keys are time-ordered ids, so a create normally appends at the end and moves no
//! position; a delete, or an id that sorts before existing ones (a clock stepped
//! back across a restart), shifts positions, and the writer calls [`Positions::forget`].

use std::collections::BTreeMap;

use parking_lot::Mutex;

use crate::scim::ResourceKind;

/// Positions remembered per resource type at most.
const MAX_POSITIONS: usize = 4096;

/// The positions of one resource type, and a generation that every
/// [`Positions::forget`] bumps, so a reader that started before a shifting write
/// cannot record a position computed from the old order.
#[derive(Debug, Default)]
struct Known {
    generation: u64,
    at: BTreeMap<usize, Vec<u8>>,
}

/// A position read with the generation it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nearest {
    /// 1-based index of `key` (1 with no key: start from the beginning).
    pub index: usize,
    /// The key at `index`.
    pub key: Option<Vec<u8>>,
    /// Pass back to [`Positions::remember`].
    pub generation: u64,
}

/// Remembered page boundaries, per resource type.
#[derive(Debug, Default)]
pub struct Positions {
    users: Mutex<Known>,
    groups: Mutex<Known>,
}

impl Positions {
    fn of(&self, kind: ResourceKind) -> &Mutex<Known> {
        match kind {
            ResourceKind::User => &self.users,
            ResourceKind::Group => &self.groups,
        }
    }

    /// The closest known position at or before `index`.
    pub fn nearest(&self, kind: ResourceKind, index: usize) -> Nearest {
        let known = self.of(kind).lock();
        let (index, key) = known
            .at
            .range(..=index)
            .next_back()
            .map_or((1, None), |(i, k)| (*i, Some(k.clone())));
        Nearest {
            index,
            key,
            generation: known.generation,
        }
    }

    /// Records that the resource at `index` has `key`, unless a write shifted the
    /// order since `generation` was read.
    pub fn remember(&self, kind: ResourceKind, generation: u64, index: usize, key: Vec<u8>) {
        let mut known = self.of(kind).lock();
        if known.generation != generation {
            return;
        }
        if known.at.len() >= MAX_POSITIONS && !known.at.contains_key(&index) {
            // Keep every other position: still a short skip to any page.
            let keep: BTreeMap<usize, Vec<u8>> = std::mem::take(&mut known.at)
                .into_iter()
                .enumerate()
                .filter_map(|(n, entry)| (n % 2 == 0).then_some(entry))
                .collect();
            known.at = keep;
        }
        known.at.insert(index, key);
    }

    /// Drops every position of `kind`. Call after a write that shifts the order
    /// has committed.
    pub fn forget(&self, kind: ResourceKind) {
        let mut known = self.of(kind).lock();
        known.generation += 1;
        known.at.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nearest_position_at_or_before_an_index_is_found() {
        let p = Positions::default();
        let at = |n: &Nearest| (n.index, n.key.clone());
        assert_eq!(at(&p.nearest(ResourceKind::User, 500)), (1, None));
        p.remember(ResourceKind::User, 0, 101, b"k101".to_vec());
        p.remember(ResourceKind::User, 0, 201, b"k201".to_vec());
        assert_eq!(
            at(&p.nearest(ResourceKind::User, 250)),
            (201, Some(b"k201".to_vec()))
        );
        assert_eq!(
            at(&p.nearest(ResourceKind::User, 150)),
            (101, Some(b"k101".to_vec()))
        );
        assert_eq!(at(&p.nearest(ResourceKind::Group, 250)), (1, None));
        p.forget(ResourceKind::User);
        assert_eq!(at(&p.nearest(ResourceKind::User, 250)), (1, None));
    }

    #[test]
    fn a_reader_that_started_before_a_shift_records_nothing() {
        let p = Positions::default();
        let before = p.nearest(ResourceKind::User, 1);
        p.forget(ResourceKind::User);
        p.remember(
            ResourceKind::User,
            before.generation,
            101,
            b"stale".to_vec(),
        );
        assert_eq!(p.nearest(ResourceKind::User, 200).key, None);
    }

    #[test]
    fn the_cache_stays_bounded() {
        let p = Positions::default();
        for i in 0..10_000 {
            p.remember(ResourceKind::User, 0, i * 100 + 1, vec![1]);
        }
        assert!(p.users.lock().at.len() <= MAX_POSITIONS);
        assert!(p.nearest(ResourceKind::User, 999_901).index > 900_000);
    }
}
