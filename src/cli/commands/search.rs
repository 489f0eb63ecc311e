//! `webcpm search WORDS`: the packages whose name or description holds every word, from the
//! registry's `search` query (the real Wasmer registry's too): name, latest version, when it was
//! published and the description. With `--json`, the same as objects.

use crate::printer::out;
use serde_json::json;

use crate::cli::context::Context;
use crate::cli::failure::{ExitStatus, Failure};
use crate::install::InstallError;

pub(crate) async fn search(
    ctx: &Context,
    words: &[String],
    limit: usize,
) -> Result<ExitStatus, Failure> {
    let query = words.join(" ");
    let client = ctx.client()?;
    let results = client
        .search(&query, limit)
        .await
        .map_err(InstallError::from)?;
    if ctx.global.json {
        out!(
            "{}",
            json!({ "query": query, "total": results.total, "packages": results.found })
        );
        return Ok(ExitStatus::Success);
    }
    if results.found.is_empty() {
        ctx.say(format!("No package matches “{query}”."));
        return Ok(ExitStatus::Success);
    }
    for found in &results.found {
        // The registry's text is parsed, not printed: only a real date reaches the terminal.
        let date = found
            .created_at
            .as_deref()
            .and_then(|t| crate::cooldown::parse_time(t).ok())
            .map(|at| {
                crate::cooldown::rfc3339(at)
                    .chars()
                    .take(10)
                    .collect::<String>()
            })
            .unwrap_or_default();
        let mut version = crate::printer::plain(&found.version);
        if found.yanked {
            version.push_str(" (yanked)");
        }
        ctx.say(format!(
            "{:<32} {:<12} {:<10}  {}",
            found.name.as_str(),
            version,
            date,
            one_line(&found.description)
        ));
    }
    if let Some(total) = results.total.filter(|t| *t as usize > results.found.len()) {
        ctx.say(format!(
            "{} of {total} shown; raise --limit for more",
            results.found.len()
        ));
    }
    Ok(ExitStatus::Success)
}

/// A description on one line, at most 80 characters, with no control characters (the text is
/// the registry's: it must not move the terminal's cursor).
fn one_line(text: &str) -> String {
    let clean = crate::printer::plain(text);
    let words = clean.split_whitespace().collect::<Vec<_>>().join(" ");
    match words.char_indices().nth(80) {
        Some((at, _)) => format!("{}…", &words[..at]),
        None => words,
    }
}
