//! The simulator's ids and its two pagination styles.
//!
//! Ids look like Anthropic's (`user_01` + 22 base58 characters). They encode a creation
//! sequence number in their high bits, so an `after_id` cursor keeps working after
//! the object it names was deleted, and ids sort in creation order.
//!
//! Cursors are opaque base64url JSON bound to the query's filters: reusing one with
//! other filters is a 400, as documented. With `short_pages` on, every third page is
//! deliberately short while `has_more` stays true (documented behaviour the client
//! must survive).

use std::collections::BTreeMap;
use std::ops::Bound;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::state::ApiError;
use crate::cowork::types::{CursorPage, IdPage};

const B58: &[u8; 58] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
const ID_BODY: usize = 22;

/// SplitMix64: a well-mixed 64-bit function of its input.
pub fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// `{prefix}_01{22 base58}` for creation sequence `seq`.
pub fn make_id(prefix: &str, seq: u64) -> String {
    let mut n = (u128::from(seq) << 64) | u128::from(splitmix64(seq ^ 0xC0E0_5EED));
    let mut buf = [b'1'; ID_BODY];
    for slot in buf.iter_mut().rev() {
        *slot = B58[(n % 58) as usize];
        n /= 58;
    }
    let body: String = buf.iter().map(|b| char::from(*b)).collect();
    format!("{prefix}_01{body}")
}

/// The creation sequence encoded in an id made by [`make_id`].
pub fn seq_of_id(id: &str) -> Option<u64> {
    let len = id.len();
    if len < ID_BODY + 3 || !id.is_ascii() || &id[len - ID_BODY - 3..len - ID_BODY] != "_01" {
        return None;
    }
    let mut n: u128 = 0;
    for b in id[len - ID_BODY..].bytes() {
        let digit = B58.iter().position(|c| *c == b)?;
        n = n.checked_mul(58)?.checked_add(digit as u128)?;
    }
    u64::try_from(n >> 64).ok()
}

/// ID pagination parameters (`limit`, `before_id`, `after_id`).
#[derive(Clone, Debug, Default)]
pub struct IdQuery {
    /// 1..=1000.
    pub limit: usize,
    /// Return the page just before (newer than) this id.
    pub before_id: Option<String>,
    /// Return the page just after (older than) this id.
    pub after_id: Option<String>,
}

impl IdQuery {
    /// A first page of `limit` items.
    pub fn first(limit: usize) -> Self {
        Self {
            limit,
            ..Self::default()
        }
    }

    /// One page of `items`, listed newest first.
    pub fn page<T: Clone>(
        &self,
        items: &BTreeMap<u64, T>,
        keep: impl Fn(&T) -> bool,
        id_of: impl Fn(&T) -> &str,
    ) -> Result<IdPage<T>, ApiError> {
        let cursor = |id: &str| {
            seq_of_id(id).ok_or_else(|| ApiError::invalid(None, "the pagination id is not valid"))
        };
        let (mut data, has_more) = match (&self.before_id, &self.after_id) {
            (Some(_), Some(_)) => {
                return Err(ApiError::invalid(
                    None,
                    "give at most one of before_id and after_id",
                ))
            }
            (None, Some(after)) => {
                let seq = cursor(after)?;
                take(items.range(..seq).rev().map(|(_, v)| v), &keep, self.limit)
            }
            (Some(before), None) => {
                let seq = cursor(before)?;
                let range = (Bound::Excluded(seq), Bound::Unbounded);
                let (mut newer, more) = take(items.range(range).map(|(_, v)| v), &keep, self.limit);
                newer.reverse();
                (newer, more)
            }
            (None, None) => take(items.values().rev(), &keep, self.limit),
        };
        data.shrink_to_fit();
        Ok(IdPage {
            first_id: data.first().map(|v| id_of(v).to_owned()),
            last_id: data.last().map(|v| id_of(v).to_owned()),
            data,
            has_more,
        })
    }
}

fn take<'a, T: Clone + 'a>(
    iter: impl Iterator<Item = &'a T>,
    keep: &impl Fn(&T) -> bool,
    limit: usize,
) -> (Vec<T>, bool) {
    let mut out = Vec::with_capacity(limit.min(1000));
    let mut iter = iter.filter(|v| keep(v));
    for v in iter.by_ref() {
        out.push(v.clone());
        if out.len() >= limit {
            break;
        }
    }
    let more = iter.next().is_some();
    (out, more)
}

/// Cursor pagination parameters (`limit`, `page`) bound to the query's filters.
#[derive(Clone, Debug)]
pub struct CursorQuery {
    /// 1..=1000.
    pub limit: usize,
    /// The `next_page` of the previous answer.
    pub page: Option<String>,
    /// The endpoint and its filters, canonically ordered; a cursor only works for the
    /// binding it was issued for.
    pub binding: String,
    /// Make every third page short (with `has_more: true`).
    pub short_pages: bool,
}

impl CursorQuery {
    /// A cursor query bound to `path` and every parameter except `limit` and `page`,
    /// canonically ordered, so that a cursor works only for the query it came from.
    pub fn bound(
        path: &str,
        params: &[(String, String)],
        limit: usize,
        page: Option<&str>,
        short_pages: bool,
    ) -> Self {
        let mut filters: Vec<String> = params
            .iter()
            .filter(|(k, _)| k != "limit" && k != "page")
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        filters.sort();
        CursorQuery {
            limit,
            page: page.map(str::to_owned),
            binding: format!("{path}?{}", filters.join("&")),
            short_pages,
        }
    }
}

/// Where a cursor page starts.
#[derive(Clone, Copy, Debug, Default)]
pub struct Start {
    /// Resume after this key.
    pub after: Option<u64>,
    /// Page number (0 = first).
    pub page_no: u32,
}

impl Start {
    /// The key range this page reads.
    pub fn range(&self) -> (Bound<u64>, Bound<u64>) {
        match self.after {
            Some(a) => (Bound::Excluded(a), Bound::Unbounded),
            None => (Bound::Unbounded, Bound::Unbounded),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Cursor {
    a: u64,
    n: u32,
    q: String,
}

impl CursorQuery {
    /// A first page without quirks (for in-process callers).
    pub fn first(limit: usize, binding: impl Into<String>) -> Self {
        Self {
            limit,
            page: None,
            binding: binding.into(),
            short_pages: false,
        }
    }

    fn binding_hash(&self) -> String {
        crate::cowork::hash_hex(&[self.binding.as_bytes()], 8)
    }

    /// Decodes the cursor (400 if it is garbage or was issued for other filters).
    pub fn start(&self) -> Result<Start, ApiError> {
        let Some(page) = &self.page else {
            return Ok(Start::default());
        };
        let bad = || ApiError::invalid(None, "page is not a valid cursor");
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(page.as_bytes())
            .map_err(|_| bad())?;
        let cursor: Cursor = serde_json::from_slice(&bytes).map_err(|_| bad())?;
        if cursor.q != self.binding_hash() {
            return Err(ApiError::invalid(
                None,
                "cursor does not match current query parameters",
            ));
        }
        Ok(Start {
            after: Some(cursor.a),
            page_no: cursor.n,
        })
    }

    /// Builds the page from `items` (ascending keys, already starting after
    /// `start.after`).
    pub fn finish<T>(&self, start: Start, items: impl Iterator<Item = (u64, T)>) -> CursorPage<T> {
        let mut take = self.limit.max(1);
        if self.short_pages && start.page_no % 3 == 1 && take >= 2 {
            take = (take / 3).max(1);
        }
        let mut items = items.peekable();
        let mut data = Vec::with_capacity(take.min(1000));
        let mut last = None;
        while data.len() < take {
            match items.next() {
                Some((k, v)) => {
                    last = Some(k);
                    data.push(v);
                }
                None => break,
            }
        }
        let has_more = items.peek().is_some();
        let next_page = match (has_more, last) {
            (true, Some(a)) => {
                let cursor = Cursor {
                    a,
                    n: start.page_no.saturating_add(1),
                    q: self.binding_hash(),
                };
                serde_json::to_vec(&cursor)
                    .ok()
                    .map(|b| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b))
            }
            _ => None,
        };
        CursorPage {
            data,
            has_more: Some(next_page.is_some()),
            next_page,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_look_like_anthropics_and_carry_their_sequence() {
        let id = make_id("rbac_group", 42);
        assert!(id.starts_with("rbac_group_01"), "{id}");
        assert_eq!(id.len(), "rbac_group_01".len() + 22);
        assert_eq!(seq_of_id(&id), Some(42));
        assert_eq!(seq_of_id(&make_id("user", u64::MAX)), Some(u64::MAX));
        assert!(make_id("user", 1) < make_id("user", 2));
        assert!(seq_of_id("user_01WCz1FkmYMm4gnmykNKUu3Q").is_some());
        assert_eq!(seq_of_id("user_02WCz1FkmYMm4gnmykNKUu3Q"), None);
        assert_eq!(seq_of_id("nonsense"), None);
    }

    #[test]
    fn id_pages_go_newest_first_in_both_directions() {
        let items: BTreeMap<u64, String> = (1..=7).map(|s| (s, make_id("user", s))).collect();
        let q = IdQuery::first(3);
        let p1 = q.page(&items, |_| true, |s| s).unwrap();
        assert_eq!(
            p1.data,
            vec![make_id("user", 7), make_id("user", 6), make_id("user", 5)]
        );
        assert!(p1.has_more);
        let p2 = IdQuery {
            limit: 3,
            after_id: p1.last_id.clone(),
            before_id: None,
        }
        .page(&items, |_| true, |s| s)
        .unwrap();
        assert_eq!(p2.first_id, Some(make_id("user", 4)));
        let back = IdQuery {
            limit: 3,
            before_id: p2.first_id.clone(),
            after_id: None,
        }
        .page(&items, |_| true, |s| s)
        .unwrap();
        assert_eq!(back.data, p1.data);
        assert!(!back.has_more);
    }

    #[test]
    fn cursors_are_bound_to_their_filters_and_pages_can_be_short() {
        let q = CursorQuery {
            limit: 9,
            page: None,
            binding: "/members?group=a".into(),
            short_pages: true,
        };
        let start = q.start().unwrap();
        let p1 = q.finish(start, (0..30u64).map(|k| (k, k)));
        assert_eq!(p1.data.len(), 9);
        let next = CursorQuery {
            page: p1.next_page.clone(),
            ..q.clone()
        };
        let start = next.start().unwrap();
        let p2 = next.finish(start, (9..30u64).map(|k| (k, k)));
        assert_eq!(p2.data, vec![9, 10, 11], "the second page is short");
        assert_eq!(p2.has_more, Some(true));
        let other = CursorQuery {
            binding: "/members?group=b".into(),
            ..next
        };
        let err = other.start().unwrap_err();
        assert_eq!(err.status, 400);
    }
}
