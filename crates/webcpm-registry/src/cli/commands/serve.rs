//! `webcpm-registry serve`: the registry over HTTP until Ctrl-C or SIGTERM.

use std::io::Write;
use std::time::Duration;

use crate::cli::args::ServeArgs;
use crate::cli::failure::{ExitStatus, Failure};

/// Prints `listening on URL` as its first line once the socket is bound, then serves.
pub(crate) async fn serve(args: ServeArgs) -> Result<ExitStatus, Failure> {
    let options = crate::ServeOptions {
        storage: args.place.storage()?,
        listen: args.listen,
        public_url: args.public_url,
        upload_url: args.upload_url,
        access_log: args.access_log,
        access_log_format: args.access_log_format,
        limits: args.limits.limits(),
        allow_public: args.public,
        faults: args.faults,
        real_shapes: args.real_shapes.then(|| Duration::from_secs(args.url_ttl)),
        policy_ttl: Duration::from_secs(args.policy_ttl),
        allow_republish: args.allow_republish,
        open_reports: args.open_reports,
        mirror: args.mirror.map(|upstream| crate::MirrorOptions {
            upstream,
            refresh: Duration::from_secs(args.mirror_refresh),
        }),
    };
    let running = crate::start(options)
        .await
        .map_err(|e| Failure::usage(e.to_string()))?;
    println!("listening on {}", running.graphql_url());
    let _ = std::io::stdout().flush();
    running
        .wait()
        .await
        .map_err(|e| Failure::internal(e.to_string()))?;
    Ok(ExitStatus::Success)
}
