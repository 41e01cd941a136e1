//! Listing and searching (RFC 7644 §3.4.2, §3.4.3): filters answered from an index
//! when they pin `id`, `userName`, `externalId` or `displayName`, otherwise by a scan
//! in creation order; stable paging; sorting; projections.

use std::ops::ControlFlow;

use serde_json::Value;

use super::records::{fold, table, Record};
use super::{Directory, DirectoryError, RenderOptions};
use crate::scim::filter::{Filter, IndexHint, ValidFilter};
use crate::scim::list::{list_response, ListQuery, SortOrder};
use crate::scim::resource::{self, Projection, SortKey};
use crate::scim::schema::AttrPath;
use crate::scim::{ResourceKind, ScimError};
use crate::store::codec::{from_bytes, scan_json};
use crate::store::{StoreError, Table};

/// A filter that is never true (every resource has an `id`).
fn never() -> Filter {
    Filter::Not(Box::new(Filter::Present(AttrPath::new("id", None))))
}

/// The filter as it applies to one resource type: terms naming attributes the type
/// does not have are false (RFC 7644 §3.4.3: a root search spans resource types).
fn restrict(filter: &Filter, registry: &crate::scim::SchemaRegistry, kind: ResourceKind) -> Filter {
    let known = |p: &AttrPath| registry.resolve(kind, p).is_some();
    match filter {
        Filter::Present(p) | Filter::Compare(p, _, _) if !known(p) => never(),
        Filter::ValuePath { attr, .. } if !known(attr) => never(),
        Filter::And(a, b) => Filter::And(
            Box::new(restrict(a, registry, kind)),
            Box::new(restrict(b, registry, kind)),
        ),
        Filter::Or(a, b) => Filter::Or(
            Box::new(restrict(a, registry, kind)),
            Box::new(restrict(b, registry, kind)),
        ),
        Filter::Not(a) => Filter::Not(Box::new(restrict(a, registry, kind))),
        other => other.clone(),
    }
}

impl Directory {
    /// `POST /.search`: users, then groups, as one list. Each type is searched with
    /// the filter restricted to the attributes it has.
    pub fn list_all_types(&self, query: &ListQuery, base: &str) -> Result<Value, DirectoryError> {
        let parsed = match query.filter.as_deref().map(str::trim) {
            Some(text) if !text.is_empty() => Some(Filter::parse(text)?),
            _ => None,
        };
        let mut resources = Vec::new();
        for kind in [ResourceKind::User, ResourceKind::Group] {
            let everything = ListQuery {
                filter: parsed
                    .as_ref()
                    .map(|f| restrict(f, self.registry(), kind).to_string()),
                start_index: 1,
                count: usize::MAX,
                ..query.clone()
            };
            let page = self.list(kind, &everything, base)?;
            if let Some(Value::Array(items)) = page.get("Resources") {
                resources.extend(items.iter().cloned());
            }
        }
        let total = resources.len();
        let start = query.start_index.max(1);
        Ok(list_response(
            total,
            start,
            window(resources, start, query.count),
        ))
    }

    /// `GET /Users`, `GET /Groups`, and their `.search` forms: a ListResponse.
    pub fn list(
        &self,
        kind: ResourceKind,
        query: &ListQuery,
        base: &str,
    ) -> Result<Value, DirectoryError> {
        let registry = self.registry();
        let projection = Projection::parse(
            registry,
            kind,
            query.attributes.as_deref(),
            query.excluded_attributes.as_deref(),
        )?;
        let output = RenderOptions {
            base: base.trim_end_matches('/').to_string(),
            projection,
        };
        let filter = match query.filter.as_deref().map(str::trim) {
            Some(text) if !text.is_empty() => Some(Filter::parse(text)?.validate(registry, kind)?),
            _ => None,
        };
        let sort_by = match query.sort_by.as_deref().map(str::trim) {
            Some(text) if !text.is_empty() => {
                let path = registry
                    .parse_path(kind, text)
                    .map_err(|e| ScimError::InvalidValue(format!("sortBy: {e}")))?;
                if registry.resolve(kind, &path).is_none() {
                    return Err(ScimError::InvalidValue(format!(
                        "sortBy names an unknown attribute '{text}'"
                    ))
                    .into());
                }
                Some(path)
            }
            _ => None,
        };
        let relation = match kind {
            ResourceKind::User => "groups",
            ResourceKind::Group => "members",
        };
        // What the filter and sort are evaluated against: relationships only if needed.
        let needs_relation = filter.as_ref().is_some_and(|f| f.mentions(relation))
            || sort_by
                .as_ref()
                .is_some_and(|p| p.attr.eq_ignore_ascii_case(relation));
        let eval = RenderOptions {
            base: output.base.clone(),
            projection: if needs_relation {
                Projection::all()
            } else {
                Projection {
                    attributes: Vec::new(),
                    excluded: vec![AttrPath::new(relation, None)],
                }
            },
        };

        let start = query.start_index.max(1);
        let (total, page) = match (&filter, &sort_by) {
            (Some(f), _) if f.index_hint().is_some() => {
                let hits = self.indexed_candidates(kind, f, &eval)?;
                let total = hits.len();
                (total, window(hits, start, query.count))
            }
            (None, None) => self.plain_page(kind, start, query.count)?,
            (_, Some(sort)) => {
                let mut hits = self.scan_matches(kind, filter.as_ref(), &eval, Some(sort))?;
                hits.sort_by(|a, b| {
                    compare_keys(&a.2, &b.2, query.sort_order).then_with(|| a.0.cmp(&b.0))
                });
                let total = hits.len();
                let hits = hits
                    .into_iter()
                    .map(|(id, record, _)| (id, record))
                    .collect();
                (total, window(hits, start, query.count))
            }
            (Some(_), None) => {
                self.scan_window(kind, filter.as_ref(), &eval, start, query.count)?
            }
        };
        let mut resources = Vec::with_capacity(page.len());
        for (id, record) in page {
            resources.push(self.render(kind, &id, &record, &output)?.body);
        }
        Ok(list_response(total, start, resources))
    }

    fn decode(kind: ResourceKind, bytes: &[u8]) -> Result<Record, StoreError> {
        from_bytes(bytes, table(kind))
    }

    fn indexed_candidates(
        &self,
        kind: ResourceKind,
        filter: &ValidFilter,
        eval: &RenderOptions,
    ) -> Result<Vec<(String, Record)>, DirectoryError> {
        let store = self.store();
        let ids: Vec<String> = match filter.index_hint() {
            Some(IndexHint::Id(id)) => vec![id],
            Some(IndexHint::UserName(v)) if kind == ResourceKind::User => store
                .get(Table::UserNameIdx, &fold(&v))?
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .into_iter()
                .collect(),
            Some(IndexHint::DisplayName(v)) if kind == ResourceKind::Group => store
                .get(Table::GroupNameIdx, &fold(&v))?
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .into_iter()
                .collect(),
            // Users' externalId is not unique (RFC 7643 §3.1): several may match.
            Some(IndexHint::ExternalId(v)) if kind == ResourceKind::User => {
                super::users_by_external_id(store.as_ref(), &v)?
            }
            Some(IndexHint::ExternalId(v)) => store
                .get(Table::GroupExternalIdIdx, v.as_bytes())?
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .into_iter()
                .collect(),
            _ => Vec::new(),
        };
        let mut hits = Vec::with_capacity(ids.len());
        for id in ids {
            let Some(record) = self.record(kind, &id)? else {
                continue;
            };
            let full = super::render::render(store.as_ref(), kind, &id, &record, eval)?;
            if filter.matches(&full) {
                hits.push((id, record));
            }
        }
        Ok(hits)
    }

    /// No filter, no sort: the total is a counter and skipping costs key reads only.
    fn plain_page(
        &self,
        kind: ResourceKind,
        start: usize,
        count: usize,
    ) -> Result<(usize, Vec<(String, Record)>), DirectoryError> {
        let (users, groups, _) = self.counts()?;
        let total = match kind {
            ResourceKind::User => users,
            ResourceKind::Group => groups,
        } as usize;
        let mut page = Vec::new();
        if count == 0 {
            return Ok((total, page));
        }
        // Start from where an earlier page ended, when we know.
        let nearest = self.positions.nearest(kind, start);
        let mut index = nearest.index;
        let mut failed = None;
        let mut next_key = None;
        self.store()
            .scan(table(kind), b"", nearest.key.as_deref(), &mut |k, v| {
                if index < start {
                    index += 1;
                    return ControlFlow::Continue(());
                }
                if page.len() >= count {
                    // The first key of the next page.
                    next_key = Some(k.to_vec());
                    return ControlFlow::Break(());
                }
                match Self::decode(kind, v) {
                    Ok(record) => page.push((String::from_utf8_lossy(k).into_owned(), record)),
                    Err(e) => {
                        failed = Some(e);
                        return ControlFlow::Break(());
                    }
                }
                index += 1;
                ControlFlow::Continue(())
            })?;
        if let Some(e) = failed {
            return Err(e.into());
        }
        if let Some(key) = next_key {
            self.positions
                .remember(kind, nearest.generation, start + page.len(), key);
        }
        Ok((total, page))
    }

    /// Filters by a scan and keeps only the requested window.
    fn scan_window(
        &self,
        kind: ResourceKind,
        filter: Option<&ValidFilter>,
        eval: &RenderOptions,
        start: usize,
        count: usize,
    ) -> Result<(usize, Vec<(String, Record)>), DirectoryError> {
        let mut total = 0usize;
        let mut page = Vec::new();
        self.each_match(kind, filter, eval, |id, record, _| {
            total += 1;
            if total >= start && page.len() < count {
                page.push((id, record));
            }
        })?;
        Ok((total, page))
    }

    fn scan_matches(
        &self,
        kind: ResourceKind,
        filter: Option<&ValidFilter>,
        eval: &RenderOptions,
        sort: Option<&AttrPath>,
    ) -> Result<Vec<(String, Record, Option<SortKey>)>, DirectoryError> {
        let registry = self.registry();
        let mut hits = Vec::new();
        self.each_match(kind, filter, eval, |id, record, full| {
            let key = sort.and_then(|p| resource::sort_key(registry, kind, full, p));
            hits.push((id, record, key));
        })?;
        Ok(hits)
    }

    fn each_match(
        &self,
        kind: ResourceKind,
        filter: Option<&ValidFilter>,
        eval: &RenderOptions,
        mut on_match: impl FnMut(String, Record, &Value),
    ) -> Result<(), DirectoryError> {
        let store = self.store();
        let mut failed: Option<StoreError> = None;
        scan_json::<Record>(store.as_ref(), table(kind), b"", None, |k, record| {
            let id = String::from_utf8_lossy(k).into_owned();
            match super::render::render(store.as_ref(), kind, &id, &record, eval) {
                Ok(full) => {
                    if filter.is_none_or(|f| f.matches(&full)) {
                        on_match(id, record, &full);
                    }
                    ControlFlow::Continue(())
                }
                Err(e) => {
                    failed = Some(e);
                    ControlFlow::Break(())
                }
            }
        })?;
        failed.map_or(Ok(()), |e| Err(e.into()))
    }
}

fn window<T>(items: Vec<T>, start: usize, count: usize) -> Vec<T> {
    items.into_iter().skip(start - 1).take(count).collect()
}

/// Missing values sort last in ascending order and first in descending order.
fn compare_keys(a: &Option<SortKey>, b: &Option<SortKey>, order: SortOrder) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let ascending = match (a, b) {
        (Some(x), Some(y)) => x.partial_cmp(y).unwrap_or(Ordering::Equal),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    };
    match order {
        SortOrder::Ascending => ascending,
        SortOrder::Descending => ascending.reverse(),
    }
}
