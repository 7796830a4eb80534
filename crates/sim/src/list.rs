//! OData list semantics shared by the feeds: query options, `$filter`, `$select`, and paging
//! with an opaque `$skiptoken` inside an absolute `@odata.nextLink`.
//!
//! The skiptoken carries the offset of the next page and a hash of the endpoint and filter, so a
//! client that edits a nextLink (or reuses a token on another query) gets a 400 instead of a
//! silently wrong page.

use crate::filter::{self, FieldDef, Filter};
use crate::reply::{Ctx, Reply, bad_request};
use axum::http::StatusCode;
use serde_json::{Map, Value, json};

/// One list endpoint's rules.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Endpoint {
    /// `@odata.context` value; also identifies the endpoint in skiptokens.
    pub(crate) context: &'static str,
    /// Largest `$top` Graph accepts.
    pub(crate) max_top: usize,
    /// Filterable properties.
    pub(crate) fields: &'static [FieldDef],
    /// Properties `$select` may name.
    pub(crate) properties: &'static [&'static [&'static str]],
    /// The entity type, for error messages (`microsoft.graph.signIn`).
    pub(crate) entity: &'static str,
    /// Whether `$skip` is supported (riskDetections: no).
    pub(crate) skip: bool,
}

/// A parsed list request.
#[derive(Debug, Default)]
pub(crate) struct ListQuery {
    /// Raw `$filter` text, carried into nextLinks.
    filter_text: Option<String>,
    /// The parsed filter.
    pub(crate) filter: Option<Filter>,
    /// `$top`, carried into nextLinks.
    top: Option<usize>,
    /// Raw `$select`, carried into nextLinks.
    select_text: Option<String>,
    /// Selected properties.
    select: Option<Vec<String>>,
    /// Where this page starts.
    offset: usize,
}

impl ListQuery {
    /// Parses the raw query string of a request to `endpoint`.
    pub(crate) fn parse(
        raw: Option<&str>,
        endpoint: &Endpoint,
        ctx: &Ctx,
    ) -> Result<ListQuery, Reply> {
        let mut query = ListQuery::default();
        let mut seen = Vec::new();
        let mut skiptoken = None;
        let mut skip = None;
        for (key, value) in url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
            if !key.starts_with('$') {
                continue;
            }
            if seen.contains(&key) {
                return Err(bad_request(
                    &format!(
                        "Query option '{key}' was specified more than once, but it must be specified at most once."
                    ),
                    ctx,
                ));
            }
            seen.push(key.clone());
            match key.as_ref() {
                "$filter" => query.filter_text = Some(value.into_owned()),
                "$top" => query.top = Some(parse_top(&value, endpoint, ctx)?),
                "$select" => query.select_text = Some(value.into_owned()),
                "$skiptoken" => skiptoken = Some(value.into_owned()),
                "$skip" if endpoint.skip => skip = Some(parse_count(&key, &value, ctx)?),
                "$skip" => {
                    return Err(bad_request(
                        &format!(
                            "Query option '$skip' is not allowed. {} does not support skip.",
                            endpoint.entity
                        ),
                        ctx,
                    ));
                }
                other => {
                    return Err(bad_request(
                        &format!("Query option '{other}' is not supported by the simulator."),
                        ctx,
                    ));
                }
            }
        }
        if let Some(text) = &query.filter_text {
            let parsed = filter::parse(text, endpoint.fields, endpoint.entity)
                .map_err(|e| bad_request(&format!("Invalid filter clause: {}", e.0), ctx))?;
            query.filter = Some(parsed);
        }
        if let Some(text) = &query.select_text {
            query.select = Some(parse_select(
                text,
                endpoint.properties,
                endpoint.entity,
                ctx,
            )?);
        }
        query.offset = match skiptoken {
            Some(token) => read_skiptoken(&token, endpoint, query.filter_text.as_deref(), ctx)?,
            None => skip.unwrap_or(0),
        };
        Ok(query)
    }

    /// Builds the page response from all matching records in order, rendering only the
    /// records on the page. `page_size` is the scenario's cap; `link_base` is the absolute URL
    /// of the endpoint (`http://host:port/v1.0/auditLogs/signIns`) for the nextLink.
    pub(crate) fn page<T>(
        &self,
        matching: &[T],
        endpoint: &Endpoint,
        page_size: Option<usize>,
        link_base: &str,
        render: impl Fn(&T) -> Value,
    ) -> Reply {
        let size = self
            .top
            .unwrap_or(endpoint.max_top)
            .min(page_size.unwrap_or(usize::MAX))
            .max(1);
        let start = self.offset.min(matching.len());
        let end = start.saturating_add(size).min(matching.len());
        let items: Vec<Value> = matching[start..end]
            .iter()
            .map(|r| self.project(render(r)))
            .collect();
        let mut body = Map::new();
        body.insert("@odata.context".into(), json!(endpoint.context));
        if end < matching.len() {
            body.insert(
                "@odata.nextLink".into(),
                json!(self.next_link(endpoint, end, link_base)),
            );
        }
        body.insert("value".into(), Value::Array(items));
        Reply::json(StatusCode::OK, Value::Object(body))
    }

    /// Whether the request named properties with `$select`.
    pub(crate) fn has_select(&self) -> bool {
        self.select.is_some()
    }

    /// Whether a record passes the filter (no filter: every record).
    pub(crate) fn admits(&self, record: &dyn filter::Record) -> bool {
        self.filter.as_ref().is_none_or(|f| f.matches(record))
    }

    /// Whether the filter mentions `field`, e.g. to lift beta's interactive-only default.
    pub(crate) fn filters_on(&self, field: &str) -> bool {
        self.filter_text
            .as_deref()
            .is_some_and(|f| f.contains(field))
    }

    fn project(&self, record: Value) -> Value {
        match (&self.select, record) {
            (Some(select), Value::Object(map)) => Value::Object(
                map.into_iter()
                    .filter(|(k, _)| k == "id" || select.contains(k))
                    .collect(),
            ),
            (_, record) => record,
        }
    }

    fn next_link(&self, endpoint: &Endpoint, offset: usize, link_base: &str) -> String {
        let mut link = format!("{link_base}?");
        if let Some(filter) = &self.filter_text {
            link.push_str(&format!("$filter={}&", encode(filter)));
        }
        if let Some(select) = &self.select_text {
            link.push_str(&format!("$select={}&", encode(select)));
        }
        if let Some(top) = self.top {
            link.push_str(&format!("$top={top}&"));
        }
        let token = skiptoken(endpoint, self.filter_text.as_deref(), offset);
        link.push_str(&format!("$skiptoken={token}"));
        link
    }
}

fn parse_count(key: &str, value: &str, ctx: &Ctx) -> Result<usize, Reply> {
    value.parse::<usize>().map_err(|_| {
        bad_request(
            &format!("Invalid value '{value}' for query option '{key}'."),
            ctx,
        )
    })
}

fn parse_top(value: &str, endpoint: &Endpoint, ctx: &Ctx) -> Result<usize, Reply> {
    let top = parse_count("$top", value, ctx)?;
    if top == 0 || top > endpoint.max_top {
        return Err(bad_request(
            &format!(
                "Invalid page size specified: '{top}'. Must be between 1 and {} inclusive.",
                endpoint.max_top
            ),
            ctx,
        ));
    }
    Ok(top)
}

/// Parses `$select`; every name must be a property of the entity.
pub(crate) fn parse_select(
    text: &str,
    properties: &[&[&str]],
    entity: &str,
    ctx: &Ctx,
) -> Result<Vec<String>, Reply> {
    let names: Vec<String> = text.split(',').map(|s| s.trim().to_string()).collect();
    for name in &names {
        if !properties.iter().any(|list| list.contains(&name.as_str())) {
            return Err(bad_request(
                &format!(
                    "Parsing OData Select and Expand failed: Could not find a property named '{name}' on type '{entity}'."
                ),
                ctx,
            ));
        }
    }
    Ok(names)
}

/// FNV-1a: a stable, dependency-free hash; the token only needs to detect mismatches.
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn query_hash(endpoint: &Endpoint, filter: Option<&str>) -> u64 {
    fnv1a(&format!(
        "{}\n{}",
        endpoint.context,
        filter.unwrap_or_default()
    ))
}

fn skiptoken(endpoint: &Endpoint, filter: Option<&str>, offset: usize) -> String {
    format!("{:016x}{:08x}", query_hash(endpoint, filter), offset)
}

fn read_skiptoken(
    token: &str,
    endpoint: &Endpoint,
    filter: Option<&str>,
    ctx: &Ctx,
) -> Result<usize, Reply> {
    let invalid = || {
        bad_request(
            "The $skiptoken is not valid for this query. Use the @odata.nextLink exactly as returned.",
            ctx,
        )
    };
    let (hash, offset) = (
        token.get(..16).ok_or_else(invalid)?,
        token.get(16..).ok_or_else(invalid)?,
    );
    let hash = u64::from_str_radix(hash, 16).map_err(|_| invalid())?;
    let offset = usize::from_str_radix(offset, 16).map_err(|_| invalid())?;
    if hash != query_hash(endpoint, filter) {
        return Err(invalid());
    }
    Ok(offset)
}

/// Percent-encodes a query value (everything but RFC 3986 unreserved characters).
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::FieldType;

    const ENDPOINT: Endpoint = Endpoint {
        context: "https://graph.microsoft.com/v1.0/$metadata#things",
        max_top: 5,
        fields: &[("n", FieldType::Int)],
        properties: &[&["id", "n", "name"]],
        entity: "microsoft.graph.thing",
        skip: false,
    };

    fn parse(raw: &str) -> Result<ListQuery, Reply> {
        ListQuery::parse(Some(raw), &ENDPOINT, &Ctx::new(None))
    }

    fn records(count: usize) -> Vec<Value> {
        (0..count)
            .map(|n| json!({"id": n.to_string(), "n": n, "name": "x"}))
            .collect()
    }

    fn body(reply: &Reply) -> &Value {
        match &reply.body {
            crate::reply::ReplyBody::Graph(v) => v,
            other => panic!("graph body expected, got {other:?}"),
        }
    }

    #[test]
    fn pages_follow_next_links_to_the_end() {
        let all = records(7);
        let mut query = parse("$filter=n%20ge%201&$top=2&$select=n").expect("valid query");
        let mut seen = Vec::new();
        loop {
            let matching: Vec<&Value> = all.iter().filter(|r| query.admits(*r)).collect();
            let reply = query.page(
                &matching,
                &ENDPOINT,
                Some(3),
                "http://h:1/v1.0/things",
                |r| (*r).clone(),
            );
            let page = body(&reply);
            seen.extend(
                page["value"]
                    .as_array()
                    .expect("array")
                    .iter()
                    .map(|r| r["n"].clone()),
            );
            assert!(
                page["value"][0].get("name").is_none(),
                "$select drops other properties"
            );
            let Some(next) = page["@odata.nextLink"].as_str() else {
                break;
            };
            assert!(
                next.starts_with(
                    "http://h:1/v1.0/things?$filter=n%20ge%201&$select=n&$top=2&$skiptoken="
                ),
                "{next}"
            );
            query = parse(next.split_once('?').map(|(_, q)| q).unwrap_or_default())
                .expect("next link parses");
        }
        assert_eq!(seen, (1..7).map(|n| json!(n)).collect::<Vec<_>>());
    }

    #[test]
    fn page_size_caps_top() {
        let query = parse("").expect("empty query");
        let reply = query.page(
            &records(7),
            &ENDPOINT,
            Some(3),
            "http://h:1/x",
            Value::clone,
        );
        assert_eq!(body(&reply)["value"].as_array().map(Vec::len), Some(3));
        let reply = query.page(&records(7), &ENDPOINT, None, "http://h:1/x", Value::clone);
        assert_eq!(
            body(&reply)["value"].as_array().map(Vec::len),
            Some(5),
            "max_top without a cap"
        );
    }

    #[test]
    fn rejects_bad_options() {
        for raw in [
            "$top=6",
            "$top=0",
            "$top=x",
            "$skip=1",
            "$orderby=n",
            "$top=1&$top=2",
            "$select=nope",
            "$filter=m%20eq%201",
            "$skiptoken=zz",
        ] {
            let err = parse(raw).expect_err(raw);
            assert_eq!(err.status, StatusCode::BAD_REQUEST, "{raw}");
        }
    }

    #[test]
    fn skiptoken_is_bound_to_its_filter() {
        let token = skiptoken(&ENDPOINT, Some("n eq 1"), 3);
        assert!(parse(&format!("$filter=n%20eq%201&$skiptoken={token}")).is_ok());
        assert!(parse(&format!("$filter=n%20eq%202&$skiptoken={token}")).is_err());
    }
}
