//! The outcome reports a client posts to its registry (`POST /rollout/reports`): which package,
//! version and format, which phase, success or an error class, and the (machine, package)
//! bucket; never a path, an argument, the environment or a token. The client queues and sends
//! them; the registry takes them and compares v3 with v2.

use crate::package::WebcVersion;

/// Which step a report is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Install,
    Compile,
    Run,
}

/// One outcome.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Report {
    pub package: String,
    pub version: String,
    pub format: WebcVersion,
    pub phase: Phase,
    pub ok: bool,
    /// A short class such as `trap` or `integrity`; never a message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_class: Option<String>,
    pub bucket: u8,
}

/// What is posted.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Batch {
    /// The salted hash of the installation id.
    pub client: String,
    pub reports: Vec<Report>,
}
