//! Many packages in one GraphQL request: the resolver asks for every package of one level of a
//! dependency tree at once, so that a tree costs as many round trips as it is deep. The request
//! is the one-package query's fragments (`graphql/get_package.graphql`) under one alias per
//! package, `p0: getPackage(name: $n0) { ...Package } p1: ...`, which any GraphQL server, the
//! Wasmer registry's included, answers like the one-package query. At most [`MAX_BATCH`]
//! packages go in one request (a registry limits what one query may cost); a larger level is
//! split into requests sent at once. A single package is asked with the one-package query.

use std::collections::HashMap;

use super::{AnswerError, RegistryClient, RegistryError, answer, data_of, releases_of};
use crate::package::{PackageName, Release};

/// The most packages asked for in one request.
pub const MAX_BATCH: usize = 20;

/// The one-package query, whose fragments every batch reuses.
const ONE: &str = include_str!("../../../../graphql/get_package.graphql");

/// The fragments of [`ONE`]: everything from its first `fragment`.
fn fragments() -> &'static str {
    let at = ONE
        .find("\nfragment ")
        .expect("get_package.graphql has fragments");
    &ONE[at + 1..]
}

/// The text of the query for `n` packages.
fn query(n: usize) -> String {
    let variables: Vec<String> = (0..n).map(|i| format!("$n{i}: String!")).collect();
    let fields: String = (0..n)
        .map(|i| format!("  p{i}: getPackage(name: $n{i}) {{\n    ...Package\n  }}\n"))
        .collect();
    format!(
        "query GetPackages({}) {{\n{fields}}}\n\n{}",
        variables.join(", "),
        fragments()
    )
}

/// The answer to a batch: each package of `names`, in order.
fn parse_batch(
    bytes: &[u8],
    names: &[PackageName],
    allow_insecure_http: bool,
) -> Result<Vec<Option<Vec<Release>>>, AnswerError> {
    let mut data: HashMap<String, Option<answer::Package>> = data_of(bytes)?;
    names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let package = data.remove(&format!("p{i}")).ok_or_else(|| {
                AnswerError::Malformed(format!("the answer has no `p{i}` (for {name})"))
            })?;
            releases_of(name, package, allow_insecure_http)
        })
        .collect()
}

impl RegistryClient {
    /// Every version of each of `names` with both formats (`None` for a package the registry
    /// does not know), in as few requests as [`MAX_BATCH`] allows, sent at once.
    pub async fn packages(
        &self,
        names: &[PackageName],
    ) -> Result<Vec<Option<Vec<Release>>>, RegistryError> {
        if let [name] = names {
            return Ok(vec![self.package(name).await?]);
        }
        let batches = names.chunks(MAX_BATCH).map(|chunk| self.batch(chunk));
        let mut out = Vec::with_capacity(names.len());
        for answer in futures_util::future::join_all(batches).await {
            out.extend(answer?);
        }
        Ok(out)
    }

    async fn batch(
        &self,
        names: &[PackageName],
    ) -> Result<Vec<Option<Vec<Release>>>, RegistryError> {
        let variables: serde_json::Map<String, serde_json::Value> = names
            .iter()
            .enumerate()
            .map(|(i, name)| (format!("n{i}"), name.to_string().into()))
            .collect();
        let build = |legacy: bool| {
            serde_json::json!({
                "query": super::legacy::query_text(&query(names.len()), legacy),
                "operationName": "GetPackages",
                "variables": &variables,
            })
        };
        let insecure = self.http.allows_insecure_http();
        self.query(build, |bytes| parse_batch(bytes, names, insecure))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_aliases_one_package_each_and_keeps_the_fragments() {
        let text = query(3);
        assert!(text.starts_with("query GetPackages($n0: String!, $n1: String!, $n2: String!) {"));
        assert!(text.contains("  p2: getPackage(name: $n2) {\n    ...Package\n  }\n}"));
        assert!(
            text.contains("fragment Package on Package {") && text.contains("fragment Dist on")
        );
        assert!(!text.contains("query GetPackage("));
    }

    #[test]
    fn each_alias_is_read_as_its_package_and_a_missing_one_is_malformed() {
        let names: Vec<PackageName> = ["a/one", "b/two"].map(|n| n.parse().unwrap()).to_vec();
        let answer = br#"{"data": {
            "p0": {"namespace": "a", "packageName": "one", "versions": []},
            "p1": null}}"#;
        let parsed = parse_batch(answer, &names, false).unwrap();
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[0].as_deref(), Some(&[][..]));
        assert!(parsed[1].is_none());
        // An alias answering about another package, or none at all, is refused.
        let swapped = br#"{"data": {
            "p0": {"namespace": "b", "packageName": "two", "versions": []},
            "p1": {"namespace": "a", "packageName": "one", "versions": []}}}"#;
        assert!(parse_batch(swapped, &names, false).is_err());
        let short = br#"{"data": {"p0": null}}"#;
        let err = parse_batch(short, &names, false).unwrap_err();
        assert!(err.to_string().contains("p1"), "{err}");
    }
}
