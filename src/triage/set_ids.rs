//! Stable duplicate-set ids. Sets are recomputed from edges on every change; this decides which
//! known set each recomputed group *is*, so that its id — and the links, verdicts and digests
//! that name it — survive re-scans and re-analyses.
//!
//! The rule: a group keeps the id of a known set while it still holds that set's core, that is
//! at least two of its members and at least half of them. When several groups hold the core of
//! one known set (a split), the group holding most of it keeps the id; when one group holds the
//! cores of several (a merge), it keeps the id of the set it shares most with (ties: the active
//! one, then the oldest, then the smaller id). Every other group gets a fresh id derived from
//! its members, which a set with exactly those members had before gets back. Pure and
//! deterministic.

use std::collections::{BTreeSet, HashSet};

use crate::triage::sets::set_id;

/// A set the registry knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownSet {
    /// Its id.
    pub set_id: String,
    /// Its members when last seen, ascending.
    pub members: Vec<u64>,
    /// Whether it existed at the last refresh.
    pub active: bool,
    /// When it was first seen (unix seconds): older sets win ties.
    pub first_seen: i64,
}

/// True when `group` still holds the core of a known set with `known` members, sharing
/// `overlap` of them.
pub fn holds_core(overlap: usize, known: usize) -> bool {
    overlap >= 2 && 2 * overlap >= known
}

/// The ids of `groups` (each one's members ascending), in the same order. `scope` names the
/// repository, as in [`set_id`].
pub fn assign_ids(scope: &str, groups: &[Vec<u64>], known: &[KnownSet]) -> Vec<String> {
    // Every (group, known set) pair where the group holds the known set's core.
    let mut pairs: Vec<(usize, usize, usize)> = Vec::new();
    for (g, members) in groups.iter().enumerate() {
        let mine: HashSet<u64> = members.iter().copied().collect();
        for (k, ks) in known.iter().enumerate() {
            let overlap = ks.members.iter().filter(|m| mine.contains(m)).count();
            if holds_core(overlap, ks.members.len()) {
                pairs.push((g, k, overlap));
            }
        }
    }
    pairs.sort_by(|a, b| {
        let (ka, kb) = (&known[a.1], &known[b.1]);
        b.2.cmp(&a.2)
            .then(kb.active.cmp(&ka.active))
            .then(ka.first_seen.cmp(&kb.first_seen))
            .then(ka.set_id.cmp(&kb.set_id))
            .then(a.0.cmp(&b.0))
    });
    let mut ids: Vec<Option<String>> = vec![None; groups.len()];
    let mut taken: BTreeSet<usize> = BTreeSet::new();
    for (g, k, _) in pairs {
        if ids[g].is_some() || taken.contains(&k) {
            continue;
        }
        ids[g] = Some(known[k].set_id.clone());
        taken.insert(k);
    }
    // Ids no fresh one may reuse: those given out now, and those of known sets that live on
    // elsewhere or whose members differ from the group's.
    let mut used: HashSet<String> = ids.iter().flatten().cloned().collect();
    let mut out = Vec::with_capacity(groups.len());
    for (g, members) in groups.iter().enumerate() {
        if let Some(id) = ids[g].take() {
            out.push(id);
            continue;
        }
        let mut salt = 0u32;
        let id = loop {
            let candidate = if salt == 0 {
                set_id(scope, members)
            } else {
                set_id(&format!("{scope}#{salt}"), members)
            };
            let clash = used.contains(&candidate)
                || known
                    .iter()
                    .any(|k| k.set_id == candidate && (k.members != *members || k.active));
            if !clash {
                break candidate;
            }
            salt += 1;
        };
        used.insert(id.clone());
        out.push(id);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(id: &str, members: &[u64], active: bool, first_seen: i64) -> KnownSet {
        KnownSet {
            set_id: id.into(),
            members: members.to_vec(),
            active,
            first_seen,
        }
    }

    #[test]
    fn a_set_that_grows_or_loses_a_minority_keeps_its_id() {
        let k = vec![known("set-a", &[1, 2, 3, 4], true, 10)];
        assert_eq!(assign_ids("r", &[vec![1, 2, 3, 4, 5, 6]], &k), ["set-a"]);
        assert_eq!(assign_ids("r", &[vec![1, 2, 4]], &k), ["set-a"]);
        assert_eq!(
            assign_ids("r", &[vec![2, 4, 9]], &k),
            ["set-a"],
            "half stays"
        );
    }

    #[test]
    fn a_set_that_lost_its_core_gets_a_new_id() {
        let k = vec![known("set-a", &[1, 2, 3, 4, 5], true, 10)];
        let ids = assign_ids("r", &[vec![4, 5, 6, 7]], &k);
        assert_ne!(ids[0], "set-a");
        assert_eq!(ids[0], set_id("r", &[4, 5, 6, 7]));
        // A pair that lost one of its two members is a different pair.
        let k = vec![known("set-p", &[1, 2], true, 10)];
        assert_ne!(assign_ids("r", &[vec![2, 3]], &k)[0], "set-p");
    }

    #[test]
    fn a_split_keeps_the_id_on_the_larger_part_and_a_merge_on_the_larger_share() {
        let k = vec![known("set-a", &[1, 2, 3, 4, 5, 6], true, 10)];
        let ids = assign_ids("r", &[vec![1, 2], vec![3, 4, 5, 6]], &k);
        assert_eq!(ids[1], "set-a");
        assert_ne!(ids[0], "set-a");
        let k = vec![
            known("set-a", &[1, 2], true, 10),
            known("set-b", &[3, 4, 5], true, 20),
        ];
        let ids = assign_ids("r", &[vec![1, 2, 3, 4, 5]], &k);
        assert_eq!(
            ids,
            ["set-b"],
            "the merged group shares three with b, two with a"
        );
        // Equal shares: the older set wins.
        let k = vec![
            known("set-new", &[3, 4], true, 20),
            known("set-old", &[1, 2], true, 10),
        ];
        assert_eq!(assign_ids("r", &[vec![1, 2, 3, 4]], &k), ["set-old"]);
    }

    #[test]
    fn a_set_that_comes_back_gets_its_old_id_and_fresh_ids_never_clash() {
        let k = vec![known("set-x", &[7, 8], false, 5)];
        assert_eq!(assign_ids("r", &[vec![7, 8, 9]], &k), ["set-x"]);
        // A live set whose id was derived from members it no longer has: a new group with
        // exactly those members must not take that id.
        let old = set_id("r", &[1, 2]);
        let k = vec![known(&old, &[1, 2, 3, 4, 5], true, 1)];
        let ids = assign_ids("r", &[vec![3, 4, 5, 6], vec![1, 2]], &k);
        assert_eq!(ids[0], old);
        assert_ne!(ids[1], old);
        assert!(ids[1].starts_with("set-"));
        // Same input, same output.
        assert_eq!(ids, assign_ids("r", &[vec![3, 4, 5, 6], vec![1, 2]], &k));
    }
}
