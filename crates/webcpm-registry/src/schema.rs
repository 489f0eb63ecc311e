//! The local registry's whole GraphQL schema: exactly `schema/registry.graphql` (type, field and
//! argument names, types, nullability, defaults), the queries from [`super::graphql`] and the
//! publish mutations from [`super::publish_api`]. A test compares the served SDL with the file
//! structurally.
//!
//! A query may nest 16 levels and cost [`MAX_COMPLEXITY`]: each field costs 1, a package lookup
//! [`super::graphql::LOOKUP`], and a `versions` list, like a version's way back to its
//! `package`, counts its fields [`super::graphql::VERSIONS`] times. So the cycle
//! `versions { package { versions … } }` is refused, as are more than about 500 aliased lookups
//! in one request; the resolve query of `graphql/get_package.graphql` costs about 1,700, so
//! one request may resolve some 29 packages by aliases. Batched requests (a JSON array) are not
//! taken.

use std::sync::Arc;

use async_graphql::{EmptySubscription, Schema};

use super::graphql::{Catalog, Query};
use super::metrics::Metrics;
use super::publish_api::{Mutation, Publishing};

/// The schema type served at `/graphql`.
pub(crate) type RegistrySchema = Schema<Query, Mutation, EmptySubscription>;

/// How deep a query may nest.
const MAX_DEPTH: usize = 16;
/// What a query may cost.
pub(crate) const MAX_COMPLEXITY: usize = 50_000;

/// Builds the schema; without a catalog and a publisher, only to print the SDL.
pub(crate) fn build_schema(
    catalog: Option<Arc<Catalog>>,
    publishing: Option<Arc<Publishing>>,
    metrics: Option<&Arc<Metrics>>,
) -> RegistrySchema {
    let mut builder = Schema::build(Query, Mutation, EmptySubscription)
        .limit_depth(MAX_DEPTH)
        .limit_complexity(MAX_COMPLEXITY);
    if let Some(catalog) = catalog {
        builder = builder.data(catalog);
    }
    if let Some(publishing) = publishing {
        builder = builder.data(publishing);
    }
    if let Some(metrics) = metrics {
        builder = builder.data(Arc::clone(metrics));
    }
    builder.finish()
}

/// The schema's SDL.
pub fn sdl() -> String {
    build_schema(None, None, None).sdl()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use async_graphql::parser::parse_schema;
    use async_graphql::parser::types::{InputValueDefinition, TypeKind, TypeSystemDefinition};

    /// An argument or an input field: name, type and default.
    fn input_value(a: &InputValueDefinition) -> String {
        format!(
            "{}: {}{}",
            a.name.node,
            a.ty.node,
            a.default_value
                .as_ref()
                .map(|d| format!(" = {}", d.node))
                .unwrap_or_default()
        )
    }

    /// A type reduced to what the comparison looks at, as text: kind, fields with their types,
    /// arguments with types and defaults, enum values.
    fn shape(sdl: &str) -> BTreeMap<String, Vec<String>> {
        let doc = parse_schema(sdl).unwrap_or_else(|e| panic!("SDL does not parse: {e}\n{sdl}"));
        let mut types = BTreeMap::new();
        // Without a `schema` block, the roots are the types named by convention (this schema
        // has no `Subscription`).
        types.insert(
            "<schema>".to_string(),
            vec![
                "query: Query".to_string(),
                "mutation: Mutation".to_string(),
                "subscription: ".to_string(),
            ],
        );
        for def in doc.definitions {
            match def {
                TypeSystemDefinition::Schema(schema) => {
                    let s = schema.node;
                    let root = |n: Option<async_graphql::Positioned<async_graphql::Name>>| {
                        n.map(|n| n.node.to_string()).unwrap_or_default()
                    };
                    types.insert(
                        "<schema>".to_string(),
                        vec![
                            format!("query: {}", root(s.query)),
                            format!("mutation: {}", root(s.mutation)),
                            format!("subscription: {}", root(s.subscription)),
                        ],
                    );
                }
                TypeSystemDefinition::Type(ty) => {
                    let ty = ty.node;
                    let name = ty.name.node.to_string();
                    if name.starts_with("__")
                        || ["String", "Int", "Float", "Boolean", "ID"].contains(&name.as_str())
                    {
                        continue;
                    }
                    let mut items = Vec::new();
                    match ty.kind {
                        TypeKind::Scalar => items.push("scalar".to_string()),
                        TypeKind::Object(object) => {
                            items.push(format!(
                                "object implements {:?}",
                                object
                                    .implements
                                    .iter()
                                    .map(|n| n.node.to_string())
                                    .collect::<Vec<_>>()
                            ));
                            for field in object.fields {
                                let f = field.node;
                                let args = f
                                    .arguments
                                    .iter()
                                    .map(|a| input_value(&a.node))
                                    .collect::<Vec<_>>()
                                    .join(", ");
                                items.push(format!("{}({args}): {}", f.name.node, f.ty.node));
                            }
                        }
                        TypeKind::Enum(e) => {
                            items.push("enum".to_string());
                            items.extend(e.values.iter().map(|v| v.node.value.node.to_string()));
                        }
                        TypeKind::Interface(_) => items.push("interface".to_string()),
                        TypeKind::Union(_) => items.push("union".to_string()),
                        TypeKind::InputObject(input) => {
                            items.push("input".to_string());
                            items.extend(input.fields.iter().map(|f| input_value(&f.node)));
                        }
                    }
                    items[1..].sort();
                    types.insert(name, items);
                }
                TypeSystemDefinition::Directive(_) => {}
            }
        }
        types
    }

    #[test]
    fn sdl_matches_the_schema_file() {
        let file = include_str!("../../../schema/registry.graphql");
        let ours = super::sdl();
        let want = shape(file);
        let have = shape(&ours);
        for (name, items) in &want {
            assert_eq!(
                have.get(name),
                Some(items),
                "type `{name}` differs from schema/registry.graphql\nserved SDL:\n{ours}"
            );
        }
        for name in have.keys() {
            assert!(
                want.contains_key(name),
                "the server has type `{name}`, which schema/registry.graphql has not\n{ours}"
            );
        }
        // The comparison notices nullability, defaults and names.
        for (from, to) in [
            ("size: Int\n", "size: Int!\n"),
            ("= \"latest\"", "= \"newest\""),
            ("versions: [PackageVersion]", "versions: [PackageVersion!]"),
            ("  V3\n", "  V3\n  V4\n"),
            ("getPackage(name: String!)", "getPackage(name: String)"),
            ("manifest: String!", "manifest: String"),
            ("expiresAfterSeconds: Int = 60", "expiresAfterSeconds: Int"),
        ] {
            assert!(file.contains(from), "{from}");
            assert_ne!(shape(&file.replacen(from, to, 1)), have, "{from} -> {to}");
        }
    }
}
