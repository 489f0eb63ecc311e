//! The types of `search(query:, first:, after:, packages:)`, the real registry's search, for
//! packages only: a Relay connection of `PackageVersion` nodes (each matching package's latest
//! version), in pages. A cursor is the offset of an edge, which clients pass back as `after`.
//! What matches is [`super::db::PackageRecord::matches`], the web page's search too.

use async_graphql::{InputObject, SimpleObject, Union};

use super::graphql::VersionNode;

/// Edges in a page when the query does not say (`first`), and the most it may ask for.
const PAGE: usize = 20;
const MAX_PAGE: usize = 100;

// `input PackagesFilter`: of the real filter's fields, only `count` (the most packages found).
#[derive(InputObject)]
#[graphql(name = "PackagesFilter")]
pub(crate) struct PackagesFilter {
    #[graphql(default_with = "Some(1000)")]
    pub(crate) count: Option<i32>,
}

#[derive(SimpleObject)]
#[graphql(name = "SearchConnection")]
pub(crate) struct SearchConnection {
    edges: Vec<Option<SearchEdge>>,
    page_info: PageInfo,
    total_count: Option<i32>,
}

#[derive(SimpleObject)]
#[graphql(name = "SearchEdge")]
struct SearchEdge {
    cursor: String,
    node: Option<SearchResult>,
}

#[derive(Union)]
#[graphql(name = "SearchResult")]
enum SearchResult {
    PackageVersion(VersionNode),
}

#[derive(SimpleObject)]
#[graphql(name = "PageInfo")]
struct PageInfo {
    end_cursor: Option<String>,
    has_next_page: bool,
    has_previous_page: bool,
    start_cursor: Option<String>,
}

/// Which edges a query asked for.
pub(crate) struct Page {
    start: usize,
    size: usize,
    /// The most packages found, of all pages.
    count: usize,
}

impl Page {
    pub(crate) fn new(
        after: Option<&str>,
        first: Option<i32>,
        count: Option<i32>,
    ) -> async_graphql::Result<Page> {
        let start = match after {
            None => 0,
            Some(cursor) => cursor
                .parse::<usize>()
                .map_err(|_| format!("`after` is not a cursor this registry gave: {cursor:?}"))?
                .saturating_add(1),
        };
        let size = match first {
            None => PAGE,
            Some(n) if n >= 0 => usize::try_from(n).unwrap_or(MAX_PAGE).min(MAX_PAGE),
            Some(n) => return Err(format!("`first` must not be negative (it is {n})").into()),
        };
        let count = count.map_or(1000, |c| usize::try_from(c).unwrap_or(0));
        Ok(Page { start, size, count })
    }

    /// The page of `found`, in order.
    pub(crate) fn connection(&self, mut found: Vec<VersionNode>) -> SearchConnection {
        found.truncate(self.count);
        let total = found.len();
        let edges: Vec<Option<SearchEdge>> = found
            .into_iter()
            .enumerate()
            .skip(self.start)
            .take(self.size)
            .map(|(at, node)| {
                Some(SearchEdge {
                    cursor: at.to_string(),
                    node: Some(SearchResult::PackageVersion(node)),
                })
            })
            .collect();
        let cursor = |edge: Option<&Option<SearchEdge>>| {
            edge.and_then(|e| e.as_ref()).map(|e| e.cursor.clone())
        };
        SearchConnection {
            page_info: PageInfo {
                start_cursor: cursor(edges.first()),
                end_cursor: cursor(edges.last()),
                has_next_page: self.start.saturating_add(self.size) < total,
                has_previous_page: self.start > 0,
            },
            edges,
            total_count: i32::try_from(total).ok(),
        }
    }
}
