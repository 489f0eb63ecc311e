//! Registries that predate `PackageVersion.publishedBy` (a `webcpm-registry` older than the
//! field, another server of an older schema) refuse a query that asks for it, whether with an
//! HTTP 400 or with a GraphQL error that names the field. The client then asks again without
//! it, and keeps doing so for this registry: such a registry says nothing of publishers, which
//! is no error.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::{AnswerError, RegistryClient, RegistryError};

/// The lines of `graphql/get_package.graphql` that ask for the publisher.
const PUBLISHED_BY: &str = "    publishedBy {\n      username\n    }\n";

/// Whether a registry has refused `publishedBy`.
#[derive(Debug, Clone, Default)]
pub(super) struct Legacy(Arc<AtomicBool>);

impl Legacy {
    fn is_set(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// `text` for a registry of the old schema (`legacy`), or as it is.
pub(super) fn query_text(text: &str, legacy: bool) -> String {
    match legacy {
        true => text.replace(PUBLISHED_BY, ""),
        false => text.to_string(),
    }
}

/// Whether a refusal could be a registry's refusal of `publishedBy`.
fn refuses_publisher(e: &RegistryError) -> bool {
    match e {
        RegistryError::Status { status: 400, .. } => true,
        RegistryError::GraphQl { messages, .. } => messages.contains("publishedBy"),
        _ => false,
    }
}

impl RegistryClient {
    /// Sends the body `build(legacy)` makes and reads the answer with `parse`; when the
    /// registry refuses `publishedBy`, asks again without it, and from then on.
    pub(super) async fn query<T>(
        &self,
        build: impl Fn(bool) -> serde_json::Value,
        parse: impl Fn(&[u8]) -> Result<T, AnswerError>,
    ) -> Result<T, RegistryError> {
        let legacy = self.legacy.is_set();
        let answer = match self.send(&build(legacy)).await {
            Ok((bytes, url)) => parse(&bytes).map_err(|e| self.scrubbed(e.at(url))),
            Err(e) => Err(e),
        };
        match answer {
            Err(e) if !legacy && refuses_publisher(&e) => {
                tracing::info!("{e}; asking again without publishedBy (an older registry)");
                self.legacy.0.store(true, Ordering::Relaxed);
                let (bytes, url) = self.send(&build(true)).await?;
                parse(&bytes).map_err(|e| self.scrubbed(e.at(url)))
            }
            answer => answer,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_old_query_is_the_query_without_the_publisher() {
        let text = include_str!("../../../../graphql/get_package.graphql");
        assert!(text.contains(PUBLISHED_BY));
        let old = query_text(text, true);
        assert!(!old.contains("publishedBy") && old.contains("createdAt"));
        assert_eq!(query_text(text, false), text);
    }
}
