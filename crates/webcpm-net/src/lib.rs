//! webcpm's network clients, shared by the client and the registry:
//!
//! | module | job |
//! |---|---|
//! | [`http`] | the one HTTP client every request of the client goes through: URL checks, proxies, CAs, redaction, retries |
//! | [`oci`] | OCI registries: the registry's package files and the fleet's shared compiled code |

pub mod http;
pub mod oci;

pub(crate) use webcpm_formats::{error_text, package};
