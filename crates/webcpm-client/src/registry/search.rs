//! `search`: the registry's search for packages (`graphql/search.graphql`), the same query that
//! the real Wasmer registry answers. Nodes that are not packages (the real registry also finds
//! users, namespaces and apps) are skipped; pages are followed up to a bound.

use graphql_client::GraphQLQuery;
use serde::Deserialize;

use super::{AnswerError, RegistryClient, RegistryError, clipped, data_of};
use crate::package::PackageName;

/// The scalars the query's variables and answer name; the answer is read by [`Answer`].
type DateTime = String;

#[derive(GraphQLQuery)]
#[graphql(
    schema_path = "../../schema/registry.graphql",
    query_path = "../../graphql/search.graphql",
    response_derives = "Debug"
)]
struct Search;

/// One package found: its latest version.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Found {
    pub name: PackageName,
    pub version: String,
    pub description: String,
    /// When the version was published, as the registry wrote it (RFC 3339).
    pub created_at: Option<String>,
    /// Yanked: every version of the package is (the registry found no other to show).
    pub yanked: bool,
}

/// What a search found, and how many the registry says match in all.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SearchResults {
    pub found: Vec<Found>,
    pub total: Option<u64>,
}

#[derive(Deserialize)]
struct Data {
    search: Connection,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Connection {
    total_count: Option<u64>,
    page_info: PageInfo,
    edges: Vec<Option<Edge>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PageInfo {
    has_next_page: bool,
    end_cursor: Option<String>,
}

#[derive(Deserialize)]
struct Edge {
    node: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Node {
    version: String,
    #[serde(default)]
    description: Option<String>,
    created_at: Option<String>,
    #[serde(default)]
    is_archived: bool,
    package: NodePackage,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NodePackage {
    namespace: String,
    package_name: String,
}

/// Pages asked for at most, of [`PAGE`] each.
const MAX_PAGES: usize = 10;
const PAGE: i64 = 100;

impl RegistryClient {
    /// The packages whose name or description holds the words of `query`, at most `limit`.
    pub async fn search(&self, query: &str, limit: usize) -> Result<SearchResults, RegistryError> {
        let mut results = SearchResults::default();
        let mut after = None;
        for _ in 0..MAX_PAGES {
            let body = Search::build_query(search::Variables {
                query: query.to_string(),
                first: Some(PAGE),
                after: after.take(),
            });
            let (bytes, url) = self.send(&body).await?;
            let page = parse(&bytes).map_err(|e| self.scrubbed(e.at(url)))?;
            results.total = page.total_count;
            for node in page.edges.into_iter().flatten().filter_map(|e| e.node) {
                // Nodes of other kinds (users, apps) are skipped, and so is one that is malformed.
                if node.get("__typename").and_then(|t| t.as_str()) != Some("PackageVersion") {
                    continue;
                }
                let Ok(node) = serde_json::from_value::<Node>(node) else {
                    tracing::warn!(
                        "the registry found a package whose fields do not match the schema"
                    );
                    continue;
                };
                let name = format!("{}/{}", node.package.namespace, node.package.package_name);
                let Ok(name) = name.parse::<PackageName>() else {
                    tracing::warn!(
                        "the registry found `{}`, which is not a package name",
                        clipped(&name)
                    );
                    continue;
                };
                results.found.push(Found {
                    name,
                    version: clipped(&node.version),
                    description: clipped(&node.description.unwrap_or_default()),
                    created_at: node.created_at,
                    yanked: node.is_archived,
                });
            }
            if results.found.len() >= limit || !page.page_info.has_next_page {
                break;
            }
            after = page.page_info.end_cursor;
            if after.is_none() {
                break;
            }
        }
        results.found.truncate(limit);
        Ok(results)
    }
}

fn parse(bytes: &[u8]) -> Result<Connection, AnswerError> {
    data_of::<Data>(bytes).map(|data| data.search)
}
