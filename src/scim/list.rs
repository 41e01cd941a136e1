//! Query parameters of list and search requests (RFC 7644 §3.4.2, §3.4.3) and the
//! ListResponse message.
//!
//! Parameter names are case-insensitive, unknown parameters are ignored (RFC 7644 §3.4.2:
//! Entra appends its own `aadOptscim062020` flag to the URL), paging values are clamped
//! as §3.4.2.4 says. The filter, `sortBy` and the attribute lists stay raw text here:
//! the HTTP layer parses them with `scim::filter`, [`SchemaRegistry::parse_path`] and
//! [`Projection::parse`]. Pure: no I/O; must not import actix_web, sled, reqwest, nor
//! anything of ours outside `scim`.
//!
//! [`SchemaRegistry::parse_path`]: crate::scim::SchemaRegistry::parse_path
//! [`Projection::parse`]: crate::scim::resource::Projection::parse

use std::cmp::Ordering;
use std::ops::Range;

use serde_json::{json, Map, Value};

use super::resource::SortKey;
use super::schema::{LIST_RESPONSE_SCHEMA, SEARCH_REQUEST_SCHEMA};
use super::value::json_kind;
use super::ScimError;

/// Page size when the client gives no `count`.
pub const DEFAULT_COUNT: usize = 100;
/// Largest page served; equals `filter.maxResults` in `schemas/service-provider-config.json`.
pub const MAX_COUNT: usize = 1000;

/// `sortOrder` (RFC 7644 §3.4.2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortOrder {
    /// `ascending` (the default).
    #[default]
    Ascending,
    /// `descending`.
    Descending,
}

impl SortOrder {
    /// Parses `ascending` / `descending` in any case.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("ascending") {
            Some(SortOrder::Ascending)
        } else if s.eq_ignore_ascii_case("descending") {
            Some(SortOrder::Descending)
        } else {
            None
        }
    }

    /// The protocol spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            SortOrder::Ascending => "ascending",
            SortOrder::Descending => "descending",
        }
    }
}

/// The parameters of a list (`GET /Users`) or search (`POST /.search`) request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    /// The raw filter text; the HTTP layer parses it with `scim::filter`. An empty
    /// `filter=` stays `Some("")` so the parser rejects it rather than listing everything.
    pub filter: Option<String>,
    /// 1-based index of the first result; values below 1 become 1 (RFC 7644 §3.4.2.4).
    pub start_index: usize,
    /// Page size: negative becomes 0, absent [`DEFAULT_COUNT`], above [`MAX_COUNT`]
    /// becomes [`MAX_COUNT`].
    pub count: usize,
    /// The raw `sortBy` attribute path.
    pub sort_by: Option<String>,
    /// Ascending unless asked otherwise.
    pub sort_order: SortOrder,
    /// Raw comma-separated `attributes`.
    pub attributes: Option<String>,
    /// Raw comma-separated `excludedAttributes`.
    pub excluded_attributes: Option<String>,
}

impl Default for ListQuery {
    fn default() -> Self {
        Self {
            filter: None,
            start_index: 1,
            count: DEFAULT_COUNT,
            sort_by: None,
            sort_order: SortOrder::Ascending,
            attributes: None,
            excluded_attributes: None,
        }
    }
}

/// One recognised parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Param {
    Filter,
    StartIndex,
    Count,
    SortBy,
    SortOrder,
    Attributes,
    ExcludedAttributes,
}

impl Param {
    const ALL: [Param; 7] = [
        Param::Filter,
        Param::StartIndex,
        Param::Count,
        Param::SortBy,
        Param::SortOrder,
        Param::Attributes,
        Param::ExcludedAttributes,
    ];

    fn name(self) -> &'static str {
        match self {
            Param::Filter => "filter",
            Param::StartIndex => "startIndex",
            Param::Count => "count",
            Param::SortBy => "sortBy",
            Param::SortOrder => "sortOrder",
            Param::Attributes => "attributes",
            Param::ExcludedAttributes => "excludedAttributes",
        }
    }

    fn lookup(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(name))
    }
}

impl ListQuery {
    /// From URL query pairs (already percent-decoded), names case-insensitive.
    /// Unknown parameters are ignored. Errors (`invalidValue`): a non-integer
    /// `startIndex` or `count`, a `sortOrder` other than ascending/descending, and a
    /// parameter given twice (which filter would apply is ambiguous). Empty
    /// `startIndex`, `count`, `sortBy`, `sortOrder`, `attributes` and
    /// `excludedAttributes` count as absent.
    pub fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, ScimError> {
        let mut query = ListQuery::default();
        let mut seen: Vec<Param> = Vec::new();
        for (name, value) in pairs {
            let Some(param) = Param::lookup(name.trim()) else {
                continue;
            };
            if seen.contains(&param) {
                return Err(ScimError::InvalidValue(format!(
                    "query parameter '{}' is given more than once",
                    param.name()
                )));
            }
            seen.push(param);
            query.set_text(param, value)?;
        }
        Ok(query)
    }

    /// From a `POST /.search` body (RFC 7644 §3.4.3). `schemas`, when present, must list
    /// the SearchRequest URN; its absence is tolerated. `attributes` and
    /// `excludedAttributes` are arrays of strings (a comma-separated string is accepted
    /// too); `startIndex` and `count` are integers (integer strings are accepted);
    /// `null` means absent; unknown keys are ignored. A body of the wrong shape is
    /// `invalidSyntax`, a bad value `invalidValue`.
    pub fn from_search_body(body: &Value) -> Result<Self, ScimError> {
        let Some(object) = body.as_object() else {
            return Err(ScimError::InvalidSyntax(format!(
                "the search request must be a JSON object, not {}",
                json_kind(body)
            )));
        };
        let mut query = ListQuery::default();
        let mut seen: Vec<Param> = Vec::new();
        for (key, value) in object {
            if key.eq_ignore_ascii_case("schemas") {
                check_search_schemas(value)?;
                continue;
            }
            let Some(param) = Param::lookup(key) else {
                continue;
            };
            if seen.contains(&param) {
                return Err(ScimError::InvalidSyntax(format!(
                    "'{}' is given more than once",
                    param.name()
                )));
            }
            seen.push(param);
            match (param, value) {
                (_, Value::Null) => {}
                (Param::StartIndex | Param::Count, Value::Number(n)) => {
                    let parsed = if let Some(i) = n.as_i64() {
                        Some(i128::from(i))
                    } else if let Some(u) = n.as_u64() {
                        Some(i128::from(u))
                    } else {
                        // `as` saturates, which is the clamping we want anyway.
                        n.as_f64()
                            .filter(|f| f.is_finite() && f.fract() == 0.0)
                            .map(|f| f as i128)
                    };
                    match parsed {
                        Some(i) => query.set_int(param, i),
                        None => return Err(not_an_integer(param)),
                    }
                }
                (Param::Attributes | Param::ExcludedAttributes, Value::Array(items)) => {
                    let mut names = Vec::with_capacity(items.len());
                    for item in items {
                        let Value::String(name) = item else {
                            return Err(ScimError::InvalidSyntax(format!(
                                "'{}' must be an array of strings",
                                param.name()
                            )));
                        };
                        names.push(name.as_str());
                    }
                    query.set_text(param, &names.join(","))?;
                }
                (_, Value::String(text)) => query.set_text(param, text)?,
                (param, other) => {
                    return Err(ScimError::InvalidSyntax(format!(
                        "'{}' must not be {}",
                        param.name(),
                        json_kind(other)
                    )))
                }
            }
        }
        Ok(query)
    }

    fn set_text(&mut self, param: Param, value: &str) -> Result<(), ScimError> {
        let non_empty = |v: &str| (!v.trim().is_empty()).then(|| v.to_string());
        match param {
            Param::Filter => self.filter = Some(value.to_string()),
            Param::StartIndex | Param::Count => {
                if !value.trim().is_empty() {
                    let parsed = parse_integer(value).ok_or_else(|| not_an_integer(param))?;
                    self.set_int(param, parsed);
                }
            }
            Param::SortBy => self.sort_by = non_empty(value).map(|v| v.trim().to_string()),
            Param::SortOrder => {
                if !value.trim().is_empty() {
                    self.sort_order = SortOrder::parse(value).ok_or_else(|| {
                        ScimError::InvalidValue(
                            "'sortOrder' must be 'ascending' or 'descending'".into(),
                        )
                    })?;
                }
            }
            Param::Attributes => self.attributes = non_empty(value),
            Param::ExcludedAttributes => self.excluded_attributes = non_empty(value),
        }
        Ok(())
    }

    /// RFC 7644 §3.4.2.4: `startIndex` below 1 is 1; negative `count` is 0; we cap
    /// `count` at [`MAX_COUNT`].
    fn set_int(&mut self, param: Param, value: i128) {
        let clamp = |low: i128, high: i128| usize::try_from(value.clamp(low, high)).unwrap_or(0);
        match param {
            Param::StartIndex => {
                self.start_index = clamp(1, i128::try_from(usize::MAX).unwrap_or(i128::MAX))
            }
            Param::Count => self.count = clamp(0, i128::try_from(MAX_COUNT).unwrap_or(i128::MAX)),
            _ => {}
        }
    }

    /// The 0-based range of the `total` matching resources that this page returns.
    pub fn window(&self, total: usize) -> Range<usize> {
        let start = self.start_index.saturating_sub(1).min(total);
        let end = start.saturating_add(self.count).min(total);
        start..end
    }
}

fn not_an_integer(param: Param) -> ScimError {
    ScimError::InvalidValue(format!("'{}' must be an integer", param.name()))
}

/// An optionally signed run of ASCII digits; values beyond `i128` saturate.
fn parse_integer(text: &str) -> Option<i128> {
    let text = text.trim();
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let magnitude = digits.parse::<i128>().unwrap_or(i128::MAX);
    Some(if negative { -magnitude } else { magnitude })
}

fn check_search_schemas(value: &Value) -> Result<(), ScimError> {
    let malformed = || {
        ScimError::InvalidSyntax(format!(
            "'schemas' of a search request must be an array listing {SEARCH_REQUEST_SCHEMA}"
        ))
    };
    match value {
        Value::Null => Ok(()),
        Value::Array(items) => {
            let mut found = false;
            for item in items {
                let Value::String(uri) = item else {
                    return Err(malformed());
                };
                found |= uri.eq_ignore_ascii_case(SEARCH_REQUEST_SCHEMA);
            }
            if found {
                Ok(())
            } else {
                Err(malformed())
            }
        }
        _ => Err(malformed()),
    }
}

/// Orders two sort keys (from [`crate::scim::resource::sort_key`]) for `order`.
/// RFC 7644 §3.4.2.3: resources with no value "are ordered last if ascending and first
/// if descending". Equal keys compare equal: sort stably over a stable base order
/// (creation order) so pages do not shift between requests (Okta needs stable paging).
pub fn compare_sort_keys(a: Option<&SortKey>, b: Option<&SortKey>, order: SortOrder) -> Ordering {
    let ascending = match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(x), Some(y)) => x.partial_cmp(y).unwrap_or(Ordering::Equal),
    };
    match order {
        SortOrder::Ascending => ascending,
        SortOrder::Descending => ascending.reverse(),
    }
}

/// A ListResponse (RFC 7644 §3.4.2): integer `totalResults`, `startIndex` and
/// `itemsPerPage` (= `resources.len()`), and `Resources` present even when empty
/// (Okta requires `"Resources": []`).
pub fn list_response(total_results: usize, start_index: usize, resources: Vec<Value>) -> Value {
    let mut out = Map::new();
    out.insert("schemas".into(), json!([LIST_RESPONSE_SCHEMA]));
    out.insert("totalResults".into(), json!(total_results));
    out.insert("startIndex".into(), json!(start_index));
    out.insert("itemsPerPage".into(), json!(resources.len()));
    out.insert("Resources".into(), Value::Array(resources));
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::SchemaRegistry;

    fn pairs(list: &[(&'static str, &'static str)]) -> Result<ListQuery, ScimError> {
        ListQuery::from_pairs(list.iter().copied())
    }

    #[test]
    fn max_count_matches_the_service_provider_config() {
        let registry = SchemaRegistry::builtin().unwrap();
        assert_eq!(
            registry.service_provider_config()["filter"]["maxResults"],
            json!(MAX_COUNT)
        );
    }

    #[test]
    fn absent_parameters_give_the_defaults() {
        let q = pairs(&[]).unwrap();
        assert_eq!(q, ListQuery::default());
        assert_eq!(q.start_index, 1);
        assert_eq!(q.count, DEFAULT_COUNT);
        assert_eq!(q.sort_order, SortOrder::Ascending);
    }

    #[test]
    fn okta_and_entra_queries_parse() {
        let q = pairs(&[
            ("filter", r#"userName eq "test.user@example.com""#),
            ("startIndex", "1"),
            ("count", "100"),
        ])
        .unwrap();
        assert_eq!(
            q.filter.as_deref(),
            Some(r#"userName eq "test.user@example.com""#)
        );
        assert_eq!((q.start_index, q.count), (1, 100));

        let q = pairs(&[
            ("excludedAttributes", "members"),
            ("filter", r#"displayName eq "Ops""#),
            ("aadOptscim062020", ""),
        ])
        .unwrap();
        assert_eq!(q.excluded_attributes.as_deref(), Some("members"));
        assert_eq!(q.count, DEFAULT_COUNT);
    }

    #[test]
    fn parameter_names_are_case_insensitive() {
        let q = pairs(&[
            ("STARTINDEX", "3"),
            ("Count", "7"),
            ("SortBy", "userName"),
            ("sortorder", "DESCENDING"),
            ("Attributes", "userName,emails"),
            ("FILTER", "x"),
        ])
        .unwrap();
        assert_eq!(q.start_index, 3);
        assert_eq!(q.count, 7);
        assert_eq!(q.sort_by.as_deref(), Some("userName"));
        assert_eq!(q.sort_order, SortOrder::Descending);
        assert_eq!(q.attributes.as_deref(), Some("userName,emails"));
        assert_eq!(q.filter.as_deref(), Some("x"));
    }

    #[test]
    fn paging_values_are_clamped() {
        let cases: &[(&str, &str, usize, usize)] = &[
            ("0", "10", 1, 10),
            ("-5", "10", 1, 10),
            ("1", "-1", 1, 0),
            ("1", "0", 1, 0),
            ("1", "5000", 1, MAX_COUNT),
            ("1", "1000", 1, 1000),
            (
                "1",
                "99999999999999999999999999999999999999999",
                1,
                MAX_COUNT,
            ),
            (
                "99999999999999999999999999999999999999999",
                "2",
                usize::MAX,
                2,
            ),
            (" 2 ", "+3", 2, 3),
            ("", "", 1, DEFAULT_COUNT),
        ];
        for &(start, count, want_start, want_count) in cases {
            let q = ListQuery::from_pairs([("startIndex", start), ("count", count)]).unwrap();
            assert_eq!(
                (q.start_index, q.count),
                (want_start, want_count),
                "{start} {count}"
            );
        }
    }

    #[test]
    fn non_integer_paging_values_are_invalid() {
        for (name, value) in [
            ("startIndex", "abc"),
            ("count", "1.5"),
            ("count", "10abc"),
            ("startIndex", "-"),
            ("count", "0x10"),
        ] {
            let err = ListQuery::from_pairs([(name, value)]).unwrap_err();
            assert_eq!(err.scim_type(), Some("invalidValue"), "{name}={value}");
            assert!(err.detail().contains(name));
        }
    }

    #[test]
    fn bad_sort_order_and_repeated_parameters_are_invalid() {
        let err = pairs(&[("sortOrder", "up")]).unwrap_err();
        assert_eq!(err.scim_type(), Some("invalidValue"));
        let err = pairs(&[("filter", "a"), ("Filter", "b")]).unwrap_err();
        assert_eq!(err.scim_type(), Some("invalidValue"));
    }

    #[test]
    fn empty_filter_is_kept_for_the_parser_to_reject() {
        let q = pairs(&[("filter", "")]).unwrap();
        assert_eq!(q.filter.as_deref(), Some(""));
        let q = pairs(&[("attributes", ""), ("sortBy", " "), ("sortOrder", "")]).unwrap();
        assert_eq!(q.attributes, None);
        assert_eq!(q.sort_by, None);
        assert_eq!(q.sort_order, SortOrder::Ascending);
    }

    #[test]
    fn search_bodies_parse() {
        // As scim2-models serialises a SearchRequest.
        let q = ListQuery::from_search_body(&json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
            "attributes": ["displayName", "userName"],
            "filter": "displayName sw \"smith\"",
            "startIndex": 1,
            "count": 10,
            "sortBy": "userName",
            "sortOrder": "descending"
        }))
        .unwrap();
        assert_eq!(q.attributes.as_deref(), Some("displayName,userName"));
        assert_eq!(q.filter.as_deref(), Some("displayName sw \"smith\""));
        assert_eq!((q.start_index, q.count), (1, 10));
        assert_eq!(q.sort_by.as_deref(), Some("userName"));
        assert_eq!(q.sort_order, SortOrder::Descending);

        let q = ListQuery::from_search_body(&json!({
            "excludedAttributes": ["members"],
            "startIndex": 0,
            "count": -3,
            "attributes": null
        }))
        .unwrap();
        assert_eq!(q.excluded_attributes.as_deref(), Some("members"));
        assert_eq!(q.attributes, None);
        assert_eq!((q.start_index, q.count), (1, 0));

        let q = ListQuery::from_search_body(
            &json!({"count": 5000, "startIndex": "2", "attributes": "userName, emails"}),
        )
        .unwrap();
        assert_eq!((q.start_index, q.count), (2, MAX_COUNT));
        assert_eq!(q.attributes.as_deref(), Some("userName, emails"));
        let q = ListQuery::from_search_body(&json!({"count": 5.0})).unwrap();
        assert_eq!(q.count, 5);
        assert_eq!(
            ListQuery::from_search_body(&json!({})).unwrap(),
            ListQuery::default()
        );
    }

    #[test]
    fn malformed_search_bodies_are_rejected() {
        let syntax = [
            json!([]),
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"]}),
            json!({"schemas": "urn:ietf:params:scim:api:messages:2.0:SearchRequest"}),
            json!({"attributes": [1]}),
            json!({"count": {}}),
            json!({"filter": 3}),
        ];
        for body in syntax {
            let err = ListQuery::from_search_body(&body).unwrap_err();
            assert_eq!(err.scim_type(), Some("invalidSyntax"), "{body}");
        }
        let value = [
            json!({"count": 2.5}),
            json!({"startIndex": "x"}),
            json!({"sortOrder": "sideways"}),
        ];
        for body in value {
            let err = ListQuery::from_search_body(&body).unwrap_err();
            assert_eq!(err.scim_type(), Some("invalidValue"), "{body}");
        }
    }

    #[test]
    fn window_selects_the_page() {
        let q = ListQuery::from_pairs([("startIndex", "101"), ("count", "100")]).unwrap();
        assert_eq!(q.window(250), 100..200);
        assert_eq!(q.window(150), 100..150);
        assert_eq!(q.window(50), 50..50);
        let q = ListQuery::from_pairs([("count", "0")]).unwrap();
        assert_eq!(q.window(10), 0..0);
        let q = ListQuery::from_pairs([("startIndex", "99999999999999999999999")]).unwrap();
        assert_eq!(q.window(10), 10..10);
    }

    #[test]
    fn missing_sort_keys_go_last_ascending_and_first_descending() {
        let a = SortKey::String("a".into());
        let b = SortKey::String("b".into());
        use Ordering::*;
        assert_eq!(
            compare_sort_keys(Some(&a), Some(&b), SortOrder::Ascending),
            Less
        );
        assert_eq!(
            compare_sort_keys(Some(&a), Some(&b), SortOrder::Descending),
            Greater
        );
        assert_eq!(
            compare_sort_keys(None, Some(&a), SortOrder::Ascending),
            Greater
        );
        assert_eq!(
            compare_sort_keys(None, Some(&a), SortOrder::Descending),
            Less
        );
        assert_eq!(compare_sort_keys(None, None, SortOrder::Descending), Equal);

        let mut keys = vec![None, Some(b.clone()), Some(a.clone())];
        keys.sort_by(|x, y| compare_sort_keys(x.as_ref(), y.as_ref(), SortOrder::Ascending));
        assert_eq!(keys, [Some(a.clone()), Some(b.clone()), None]);
        keys.sort_by(|x, y| compare_sort_keys(x.as_ref(), y.as_ref(), SortOrder::Descending));
        assert_eq!(keys, [None, Some(b), Some(a)]);
    }

    #[test]
    fn list_responses_use_integers_and_always_carry_resources() {
        let empty = list_response(0, 1, Vec::new());
        assert_eq!(
            empty,
            json!({
                "schemas": [LIST_RESPONSE_SCHEMA],
                "totalResults": 0,
                "startIndex": 1,
                "itemsPerPage": 0,
                "Resources": []
            })
        );
        let page = list_response(250, 101, vec![json!({"id": "a"}), json!({"id": "b"})]);
        assert_eq!(page["itemsPerPage"], 2);
        assert!(page["totalResults"].is_u64() && page["startIndex"].is_u64());
    }
}
