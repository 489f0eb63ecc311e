//! `webcpm login` and `webcpm logout`: a token for one registry, kept where
//! [`crate::credentials`] finds it (the OS keychain, else credentials.toml).

use std::io::BufRead;

use crate::cli::context::Context;
use crate::cli::failure::{ExitStatus, Failure};
use crate::credentials::{self, Stored};

fn file(ctx: &Context) -> Result<std::path::PathBuf, Failure> {
    ctx.credentials_file().ok_or_else(|| {
        Failure::usage("there is no config directory to keep credentials in")
            .hint("pass --config FILE; credentials.toml goes beside it")
    })
}

pub(crate) fn login(ctx: &Context, use_keychain: bool) -> Result<ExitStatus, Failure> {
    let url = ctx.settings.registry.url.val.clone();
    crate::http::check_url(&url, true).map_err(|e| Failure::usage(e.to_string()))?;
    if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        ctx.note(format!(
            "Paste the token for {} and press Enter:",
            crate::http::redact(&url)
        ));
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| Failure::usage(format!("cannot read the token: {e}")))?;
    let token = line.trim();
    if token.is_empty() || token.chars().any(char::is_whitespace) {
        return Err(Failure::usage("no token on standard input")
            .hint("echo \"$TOKEN\" | webcpm login --registry URL"));
    }
    let path = file(ctx)?;
    let stored = credentials::login(&path, &url, token, use_keychain)
        .map_err(|e| Failure::usage(e.to_string()))?;
    let place = match stored {
        Stored::Keychain => "the OS keychain".to_string(),
        Stored::File(path) => path.display().to_string(),
    };
    ctx.say(format!(
        "Kept the token for {} in {place}; it is sent to that URL only",
        crate::http::redact(&url)
    ));
    Ok(ExitStatus::Success)
}

pub(crate) fn logout(ctx: &Context) -> Result<ExitStatus, Failure> {
    let url = &ctx.settings.registry.url.val;
    let removed =
        credentials::logout(&file(ctx)?, url).map_err(|e| Failure::usage(e.to_string()))?;
    match removed {
        true => ctx.say(format!("Forgot the token for {}", crate::http::redact(url))),
        false => ctx.note(format!(
            "no token was kept for {}",
            crate::http::redact(url)
        )),
    }
    Ok(ExitStatus::Success)
}
