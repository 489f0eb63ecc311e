//! `webcpm-registry token create|revoke`: tokens that may publish into one namespace, tokens
//! that clients send outcome reports with, and their removal.

use serde::Serialize;

use crate::cli::args::{GlobalArgs, RegistryPlace, TokenCommand};
use crate::cli::failure::{ExitStatus, Failure};

pub(crate) fn token(global: &GlobalArgs, command: TokenCommand) -> Result<ExitStatus, Failure> {
    match command {
        TokenCommand::Create {
            place,
            namespace: Some(namespace),
            user,
            ..
        } => {
            let made = crate::create_token(&place.storage()?, &namespace, user.as_deref())?;
            let note = format!(
                "This token may publish into `{}` as `{}`; it is shown only now (the registry keeps its hash). Pass it as WEBCPM_TOKEN.",
                made.namespace, made.user
            );
            show_new(global, &made, &made.token, &note);
        }
        TokenCommand::Create { place, name, .. } => {
            let made =
                crate::create_report_token(&place.storage()?, name.as_deref().unwrap_or(""))?;
            let note = format!(
                "Clients of `{}` send their outcome reports with this token; it is shown only now. Give it to them as telemetry.report_token (WEBCPM_REPORT_TOKEN).",
                made.name
            );
            show_new(global, &made, &made.token, &note);
        }
        TokenCommand::Revoke { place, token } => revoke(global, &place, &token)?,
    }
    Ok(ExitStatus::Success)
}

/// Prints a new token once: its text on stdout (or the JSON), and what it is for on stderr.
fn show_new(global: &GlobalArgs, made: &impl Serialize, token: &str, note: &str) {
    if global.json {
        println!(
            "{}",
            serde_json::to_string(made).expect("plain data serializes")
        );
    } else {
        println!("{token}");
        if !global.quiet {
            eprintln!("{note}");
        }
    }
}

fn revoke(global: &GlobalArgs, place: &RegistryPlace, token: &str) -> Result<(), Failure> {
    let revoked = crate::revoke_token(&place.storage()?, token)?;
    if global.json {
        println!(
            "{}",
            serde_json::to_string(&revoked).expect("plain data serializes")
        );
    } else if !global.quiet {
        eprintln!(
            "Revoked the {} token {} ({} reports removed).",
            revoked.kind,
            &revoked.sha256.hex()[..12],
            revoked.reports_removed
        );
    }
    Ok(())
}
