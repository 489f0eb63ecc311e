//! `webcpm publish [DIR|FILE.webc]`: builds a package directory (or takes a prebuilt `.webc`
//! file) and publishes it to the registry
//! (`--registry`, `WEBCPM_REGISTRY`), with the registry's token (`WEBCPM_TOKEN`, the credential
//! process, `webcpm login`, or `registry.token`; see [`crate::credentials`]).

use crate::cli::args::{FormatArgs, PublishArgs};
use crate::cli::context::{Context, format_flags};
use crate::cli::failure::{ExitStatus, Failure};
use crate::registry::publish::{Naming, Publisher};

/// The settings flags of `publish`.
pub(crate) fn flags(args: &PublishArgs) -> Vec<(String, toml::Value, String)> {
    format_flags(&FormatArgs {
        allow_insecure_http: args.allow_insecure_http,
        ..FormatArgs::default()
    })
}

pub(crate) async fn publish(ctx: &Context, args: PublishArgs) -> Result<ExitStatus, Failure> {
    let settings = &ctx.settings;
    let http = crate::http::client(&settings.http())
        .map_err(|e| Failure::internal(format!("cannot set up HTTP: {e}")))?;
    let publisher = Publisher::new(http, &settings.registry.url.val, ctx.token()?)?;
    ctx.note(format!(
        "Publishing {} to {}",
        args.dir.display(),
        crate::http::redact(&settings.registry.url.val)
    ));
    let version = args.version.as_deref().map(crate::package::parse_version);
    let naming = Naming {
        name: args.name.clone(),
        version: version
            .transpose()
            .map_err(|e| Failure::usage(e.to_string()))?,
    };
    let published = publisher.publish(&args.dir, naming).await?;
    if ctx.global.json {
        ctx.print_json(&published);
        return Ok(ExitStatus::Success);
    }
    ctx.say(format!(
        "Published {}@{}",
        published.package, published.version
    ));
    for (webc, format) in [("v2", &published.v2), ("v3", &published.v3)] {
        if let Some(f) = format {
            let sha = f.sha256.as_deref().unwrap_or("-");
            let size = f.size.map_or("-".to_string(), |s| s.to_string());
            ctx.say(format!("  {webc} sha256:{sha} {size} bytes"));
        }
    }
    Ok(ExitStatus::Success)
}
