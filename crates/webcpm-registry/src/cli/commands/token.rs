//! `webcpm-registry token create`: a token that may publish into one namespace.

use crate::cli::args::{GlobalArgs, RegistryPlace};
use crate::cli::failure::{ExitStatus, Failure};

/// Prints the token once; the registry keeps only its hash.
pub(crate) fn create(
    global: &GlobalArgs,
    place: &RegistryPlace,
    namespace: &str,
) -> Result<ExitStatus, Failure> {
    let made = crate::create_token(&place.storage()?, namespace)?;
    if global.json {
        println!(
            "{}",
            serde_json::to_string(&made).expect("plain data serializes")
        );
    } else {
        println!("{}", made.token);
        if !global.quiet {
            eprintln!(
                "This token may publish into `{}`; it is shown only now (the registry keeps its hash). Pass it as WEBCPM_TOKEN.",
                made.namespace
            );
        }
    }
    Ok(ExitStatus::Success)
}
