//! Duplicate sets: bounded groups of PRs linked by strong edges, with a weakest-link tier, a
//! suggested base (the original) and keep (the one to merge), each with a reason.
//!
//! Sets are grown greedily from the strongest edge down, and a merge of two groups is refused
//! unless the groups are densely linked to each other (at least `min_link_density` of the
//! cross pairs have a strong edge), so that a chain of PRs each weakly similar to the next never
//! glues into one mega-cluster. Pairs a maintainer marked "not duplicate" never share a set.
//! Pure and deterministic: same input, same sets, same order.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::triage::Category;

/// A scored pair (one direction is enough; `a != b`).
#[derive(Debug, Clone, PartialEq)]
pub struct SetEdge {
    /// One PR.
    pub a: u64,
    /// The other PR.
    pub b: u64,
    /// Category of the pair.
    pub category: Category,
    /// Final score.
    pub score: f64,
}

/// What the base/keep choice needs to know about a member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberInfo {
    /// PR number.
    pub number: u64,
    /// Unix seconds of creation.
    pub created_at: i64,
    /// open | closed | merged.
    pub state: String,
    /// success | failure | pending | None (unknown).
    pub ci_state: Option<String>,
    /// Approving reviews.
    pub approvals: u32,
    /// Canonical production hash (byte-identical changes share it).
    pub canonical_hash: Option<String>,
    /// Production lines changed.
    pub production_lines: u32,
}

/// Parameters of set building.
#[derive(Debug, Clone)]
pub struct SetParams {
    /// Edges below this score are ignored (REVIEW_SCORE_THRESHOLD).
    pub min_score: f64,
    /// Largest set.
    pub max_size: usize,
    /// Share of cross pairs that must be strongly linked for two groups to merge.
    pub min_link_density: f64,
    /// Categories that may link a set (others are ignored).
    pub categories: BTreeSet<Category>,
}

impl Default for SetParams {
    fn default() -> Self {
        SetParams {
            min_score: 0.6,
            max_size: 40,
            min_link_density: 0.5,
            categories: [
                Category::SameChange,
                Category::SameFeature,
                Category::CompetingImplementation,
            ]
            .into_iter()
            .collect(),
        }
    }
}

/// A suggestion with its reason.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Pick {
    /// PR number.
    pub number: u64,
    /// One line: why.
    pub reason: String,
}

/// One duplicate set.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DuplicateSet {
    /// Stable while membership holds.
    pub set_id: String,
    /// Members, ascending.
    pub members: Vec<u64>,
    /// Strongest edge score inside.
    pub max_score: f64,
    /// The weakest link that joined the set.
    pub min_link_score: f64,
    /// high | medium | review, from the weakest link.
    pub tier: &'static str,
    /// Categories of the linking edges, strongest first.
    pub categories: Vec<Category>,
    /// The linking edges, strongest first (a < b).
    pub edges: Vec<(u64, u64, Category, f64)>,
    /// Suggested original.
    pub base: Pick,
    /// Suggested PR to merge.
    pub keep: Pick,
    /// Newest member's creation time (for sorting by recency).
    pub newest_created_at: i64,
}

/// Tier of a weakest link.
pub fn tier_of(score: f64) -> &'static str {
    if score >= 0.9 {
        "high"
    } else if score >= 0.75 {
        "medium"
    } else {
        "review"
    }
}

/// A linking edge: the pair (low, high), its category and score.
type Link = ((u64, u64), Category, f64);

fn key(a: u64, b: u64) -> (u64, u64) {
    if a < b { (a, b) } else { (b, a) }
}

/// A stable id from the repository and the sorted members.
pub fn set_id(scope: &str, members: &[u64]) -> String {
    let mut h = Sha256::new();
    h.update(scope.as_bytes());
    for m in members {
        h.update(b"|");
        h.update(m.to_string().as_bytes());
    }
    let d = h.finalize();
    format!("set-{}", hex::encode(&d[..8]))
}

/// Builds the sets. `scope` names the repository (part of set ids); `not_duplicate` holds pairs
/// a maintainer rejected; `members` describes every PR that may appear (PRs without info are
/// left out).
pub fn build_sets(
    scope: &str,
    edges: &[SetEdge],
    members: &BTreeMap<u64, MemberInfo>,
    not_duplicate: &HashSet<(u64, u64)>,
    params: &SetParams,
) -> Vec<DuplicateSet> {
    // Strong, allowed, deduplicated edges (the stronger direction wins).
    let mut strong: BTreeMap<(u64, u64), (Category, f64)> = BTreeMap::new();
    for e in edges {
        if e.a == e.b
            || e.score < params.min_score
            || !params.categories.contains(&e.category)
            || !members.contains_key(&e.a)
            || !members.contains_key(&e.b)
        {
            continue;
        }
        let k = key(e.a, e.b);
        if not_duplicate.contains(&k) {
            continue;
        }
        let entry = strong.entry(k).or_insert((e.category, e.score));
        if e.score > entry.1 || (e.score == entry.1 && e.category < entry.0) {
            *entry = (e.category, e.score);
        }
    }
    let mut order: Vec<Link> = strong.iter().map(|(k, (c, s))| (*k, *c, *s)).collect();
    order.sort_by(|x, y| y.2.total_cmp(&x.2).then(x.1.cmp(&y.1)).then(x.0.cmp(&y.0)));

    // Groups: id -> members; member -> group id.
    let mut group_of: HashMap<u64, usize> = HashMap::new();
    let mut groups: Vec<Vec<u64>> = Vec::new();
    let mut links: Vec<Vec<Link>> = Vec::new();
    for (k, cat, score) in order {
        let (a, b) = k;
        let ga = group_of.get(&a).copied();
        let gb = group_of.get(&b).copied();
        match (ga, gb) {
            (Some(x), Some(y)) if x == y => {
                links[x].push((k, cat, score));
            }
            _ => {
                let left = ga.map(|g| groups[g].clone()).unwrap_or_else(|| vec![a]);
                let right = gb.map(|g| groups[g].clone()).unwrap_or_else(|| vec![b]);
                if left.len() + right.len() > params.max_size {
                    continue;
                }
                // No rejected pair may end up together.
                if left
                    .iter()
                    .any(|x| right.iter().any(|y| not_duplicate.contains(&key(*x, *y))))
                {
                    continue;
                }
                // Density of strong links between the two groups.
                let cross = left.len() * right.len();
                let linked = left
                    .iter()
                    .flat_map(|x| right.iter().map(move |y| key(*x, *y)))
                    .filter(|p| strong.contains_key(p))
                    .count();
                if cross > 1 && (linked as f64) < params.min_link_density * cross as f64 {
                    continue;
                }
                let mut merged_links = Vec::new();
                let target = match (ga, gb) {
                    (Some(x), Some(y)) => {
                        let (keep, gone) = (x.min(y), x.max(y));
                        let moved = std::mem::take(&mut groups[gone]);
                        let moved_links = std::mem::take(&mut links[gone]);
                        for m in &moved {
                            group_of.insert(*m, keep);
                        }
                        groups[keep].extend(moved);
                        merged_links.extend(moved_links);
                        keep
                    }
                    (Some(x), None) => {
                        groups[x].push(b);
                        group_of.insert(b, x);
                        x
                    }
                    (None, Some(y)) => {
                        groups[y].push(a);
                        group_of.insert(a, y);
                        y
                    }
                    (None, None) => {
                        groups.push(vec![a, b]);
                        links.push(Vec::new());
                        let g = groups.len() - 1;
                        group_of.insert(a, g);
                        group_of.insert(b, g);
                        g
                    }
                };
                links[target].extend(merged_links);
                links[target].push((k, cat, score));
            }
        }
    }

    let mut out = Vec::new();
    for (g, mut m) in groups.into_iter().enumerate() {
        if m.len() < 2 {
            continue;
        }
        m.sort_unstable();
        let mut l = std::mem::take(&mut links[g]);
        l.sort_by(|x, y| y.2.total_cmp(&x.2).then(x.0.cmp(&y.0)));
        let max_score = l.first().map(|x| x.2).unwrap_or(0.0);
        // The weakest link that was needed: the smallest score on a maximum spanning tree.
        let min_link = spanning_min(&m, &l);
        let mut cats: Vec<Category> = Vec::new();
        for (_, c, _) in &l {
            if !cats.contains(c) {
                cats.push(*c);
            }
        }
        let infos: Vec<&MemberInfo> = m.iter().filter_map(|n| members.get(n)).collect();
        let newest = infos.iter().map(|i| i.created_at).max().unwrap_or(0);
        out.push(DuplicateSet {
            set_id: set_id(scope, &m),
            base: choose_base(&infos),
            keep: choose_keep(&infos),
            members: m,
            max_score,
            min_link_score: min_link,
            tier: tier_of(min_link),
            categories: cats,
            edges: l.into_iter().map(|(k, c, s)| (k.0, k.1, c, s)).collect(),
            newest_created_at: newest,
        });
    }
    sort_sets(&mut out);
    out
}

/// The API's order: strongest evidence, then size, then recency, then id.
pub fn sort_sets(sets: &mut [DuplicateSet]) {
    sets.sort_by(|x, y| {
        y.max_score
            .total_cmp(&x.max_score)
            .then(y.members.len().cmp(&x.members.len()))
            .then(y.newest_created_at.cmp(&x.newest_created_at))
            .then(x.set_id.cmp(&y.set_id))
    });
}

/// Smallest edge of a maximum spanning tree over the set's links (Kruskal, strongest first).
fn spanning_min(members: &[u64], links: &[Link]) -> f64 {
    let idx: HashMap<u64, usize> = members.iter().enumerate().map(|(i, m)| (*m, i)).collect();
    let mut parent: Vec<usize> = (0..members.len()).collect();
    fn find(p: &mut [usize], x: usize) -> usize {
        let mut r = x;
        while p[r] != r {
            r = p[r];
        }
        let mut c = x;
        while p[c] != r {
            let n = p[c];
            p[c] = r;
            c = n;
        }
        r
    }
    let mut min = f64::INFINITY;
    for ((a, b), _, s) in links {
        let (Some(&ia), Some(&ib)) = (idx.get(a), idx.get(b)) else {
            continue;
        };
        let (ra, rb) = (find(&mut parent, ia), find(&mut parent, ib));
        if ra != rb {
            parent[ra] = rb;
            min = min.min(*s);
        }
    }
    if min.is_finite() { min } else { 0.0 }
}

fn date(ts: i64) -> String {
    chrono::DateTime::from_timestamp(ts, 0)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| "an unknown date".into())
}

/// The original: the earliest PR (ties: the lower number), since the others repeat or adapt it.
fn choose_base(infos: &[&MemberInfo]) -> Pick {
    let first = infos
        .iter()
        .min_by_key(|i| (i.created_at, i.number))
        .expect("a set has members");
    Pick {
        number: first.number,
        reason: format!(
            "opened first ({}); the others repeat or adapt its production change",
            date(first.created_at)
        ),
    }
}

fn state_rank(s: &str) -> u8 {
    match s {
        "merged" => 0,
        "open" => 1,
        _ => 2,
    }
}

fn ci_rank(ci: Option<&str>) -> u8 {
    match ci {
        Some("success") => 0,
        None | Some("pending") => 1,
        _ => 2,
    }
}

/// The one to merge: merged over open over closed, never failing CI when another is not
/// failing, then more approvals, then the earliest (for byte-identical copies the earliest is
/// the natural keeper), then the lower number.
fn choose_keep(infos: &[&MemberInfo]) -> Pick {
    let best = infos
        .iter()
        .min_by_key(|i| {
            (
                state_rank(&i.state),
                ci_rank(i.ci_state.as_deref()),
                std::cmp::Reverse(i.approvals),
                i.created_at,
                i.number,
            )
        })
        .expect("a set has members");
    let identical = best.canonical_hash.is_some()
        && infos
            .iter()
            .filter(|i| i.canonical_hash == best.canonical_hash)
            .count()
            > 1;
    let mut why = Vec::new();
    match best.state.as_str() {
        "merged" => why.push("already merged".to_string()),
        "open" => why.push("open".to_string()),
        _ => why.push("closed, like every other member".to_string()),
    }
    match best.ci_state.as_deref() {
        Some("success") => why.push("CI green".into()),
        Some("failure") => why.push("CI failing on every candidate".into()),
        _ => {}
    }
    if best.approvals > 0 {
        why.push(format!(
            "{} approval{}",
            best.approvals,
            if best.approvals == 1 { "" } else { "s" }
        ));
    }
    if identical {
        why.push("earliest of byte-identical copies".into());
    } else if infos.iter().all(|i| {
        state_rank(&i.state) == state_rank(&best.state)
            && ci_rank(i.ci_state.as_deref()) == ci_rank(best.ci_state.as_deref())
            && i.approvals == best.approvals
    }) {
        why.push("otherwise equal, so the earliest".into());
    }
    Pick {
        number: best.number,
        reason: why.join(", "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(n: u64, t: i64) -> MemberInfo {
        MemberInfo {
            number: n,
            created_at: t,
            state: "open".into(),
            ci_state: None,
            approvals: 0,
            canonical_hash: None,
            production_lines: 10,
        }
    }

    fn e(a: u64, b: u64, s: f64) -> SetEdge {
        SetEdge {
            a,
            b,
            category: Category::SameChange,
            score: s,
        }
    }

    fn members(n: u64) -> BTreeMap<u64, MemberInfo> {
        (1..=n).map(|i| (i, info(i, 1_000 + i as i64))).collect()
    }

    #[test]
    fn a_chain_of_300_weakly_linked_prs_does_not_become_one_set() {
        let edges: Vec<SetEdge> = (1..300).map(|i| e(i, i + 1, 0.7)).collect();
        let sets = build_sets(
            "r",
            &edges,
            &members(300),
            &HashSet::new(),
            &SetParams::default(),
        );
        let largest = sets.iter().map(|s| s.members.len()).max().unwrap();
        assert!(largest <= 3, "largest set has {largest} members");
        assert!(
            sets.len() >= 75,
            "the chain is split into many small sets: {}",
            sets.len()
        );
    }

    #[test]
    fn a_dense_group_becomes_one_set_and_its_tier_is_its_weakest_link() {
        let mut edges = Vec::new();
        for a in 1..=5u64 {
            for b in a + 1..=5 {
                edges.push(e(a, b, if b == 5 { 0.8 } else { 0.97 }));
            }
        }
        let sets = build_sets(
            "r",
            &edges,
            &members(5),
            &HashSet::new(),
            &SetParams::default(),
        );
        assert_eq!(sets.len(), 1);
        assert_eq!(sets[0].members, vec![1, 2, 3, 4, 5]);
        assert_eq!(sets[0].max_score, 0.97);
        assert_eq!(sets[0].min_link_score, 0.8);
        assert_eq!(sets[0].tier, "medium");
    }

    #[test]
    fn weak_edges_and_rejected_pairs_never_link() {
        let edges = vec![e(1, 2, 0.95), e(2, 3, 0.95), e(1, 3, 0.95), e(3, 4, 0.3)];
        let rejected: HashSet<(u64, u64)> = [(1, 3)].into_iter().collect();
        let sets = build_sets("r", &edges, &members(4), &rejected, &SetParams::default());
        for s in &sets {
            assert!(!(s.members.contains(&1) && s.members.contains(&3)), "{s:?}");
            assert!(!s.members.contains(&4));
        }
    }

    #[test]
    fn the_size_cap_holds() {
        let mut edges = Vec::new();
        for a in 1..=60u64 {
            for b in a + 1..=60 {
                edges.push(e(a, b, 0.99));
            }
        }
        let p = SetParams {
            max_size: 40,
            ..SetParams::default()
        };
        let sets = build_sets("r", &edges, &members(60), &HashSet::new(), &p);
        assert!(sets.iter().all(|s| s.members.len() <= 40));
        assert_eq!(sets[0].members.len(), 40);
    }

    #[test]
    fn set_ids_are_stable_for_the_same_members_and_change_with_them() {
        let edges = vec![e(1, 2, 0.95)];
        let a = build_sets(
            "r",
            &edges,
            &members(2),
            &HashSet::new(),
            &SetParams::default(),
        );
        let b = build_sets(
            "r",
            &edges,
            &members(2),
            &HashSet::new(),
            &SetParams::default(),
        );
        assert_eq!(a[0].set_id, b[0].set_id);
        assert_ne!(a[0].set_id, set_id("r", &[1, 2, 3]));
        assert_ne!(a[0].set_id, set_id("other-repo", &[1, 2]));
    }

    #[test]
    fn base_is_the_earliest_and_keep_prefers_open_green_approved() {
        let mut m = members(3);
        // 1 is earliest but closed; 2 has failing CI; 3 is green with an approval.
        m.get_mut(&1).unwrap().state = "closed".into();
        m.get_mut(&2).unwrap().ci_state = Some("failure".into());
        m.get_mut(&3).unwrap().ci_state = Some("success".into());
        m.get_mut(&3).unwrap().approvals = 1;
        let edges = vec![e(1, 2, 0.99), e(2, 3, 0.99), e(1, 3, 0.99)];
        let s = &build_sets("r", &edges, &m, &HashSet::new(), &SetParams::default())[0];
        assert_eq!(s.base.number, 1);
        assert!(s.base.reason.contains("opened first"));
        assert_eq!(s.keep.number, 3);
        assert!(s.keep.reason.contains("CI green"), "{}", s.keep.reason);
    }

    #[test]
    fn keep_is_the_earliest_of_byte_identical_copies() {
        let mut m = members(3);
        for i in 1..=3 {
            m.get_mut(&i).unwrap().canonical_hash = Some("same".into());
        }
        let edges = vec![e(1, 2, 1.0), e(2, 3, 1.0), e(1, 3, 1.0)];
        let s = &build_sets("r", &edges, &m, &HashSet::new(), &SetParams::default())[0];
        assert_eq!(s.keep.number, 1);
        assert!(
            s.keep.reason.contains("byte-identical"),
            "{}",
            s.keep.reason
        );
    }

    #[test]
    fn order_is_strongest_then_largest_then_newest() {
        let edges = vec![
            e(1, 2, 0.8),
            e(3, 4, 0.95),
            e(5, 6, 0.8),
            e(6, 7, 0.8),
            e(5, 7, 0.8),
        ];
        let sets = build_sets(
            "r",
            &edges,
            &members(7),
            &HashSet::new(),
            &SetParams::default(),
        );
        let order: Vec<Vec<u64>> = sets.iter().map(|s| s.members.clone()).collect();
        assert_eq!(order, vec![vec![3, 4], vec![5, 6, 7], vec![1, 2]]);
    }
}
