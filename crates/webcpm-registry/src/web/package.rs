//! The page of one package (`/packages/{ns}/{name}`): its description, a line to copy that
//! installs it, its readme rendered safely ([`super::readme`]), then every version, newest first,
//! with its publish date, whether it is archived (yanked) and why, a line that installs exactly
//! it, its commands and what they ask of the host (the network, the directories where it mounts
//! its own files), and both formats with their sizes and SHA-256.

use maud::{Markup, PreEscaped, html};

use super::readme::render;
use super::{Listing, date, fleet_sections, layout, size_text};
use crate::container::Requests;
use crate::db::sql::args;
use crate::db::{BlobRecord, Db, DbError, VersionRecord};
use crate::fleet::Overview;
use crate::package::WebcVersion;

/// The readme shown on the page, and the version it comes from.
pub(super) struct Readme {
    version: semver::Version,
    text: String,
}

/// The latest version's readme, else the one of the highest version that has one and is not
/// yanked.
pub(super) fn readme(db: &mut Db, listing: &Listing) -> Result<Option<Readme>, DbError> {
    let name = listing.record.name.as_str();
    let sql = db.sql();
    let with: Vec<String> = db
        .conn()
        .query(
            "SELECT version FROM versions WHERE package = $1 AND readme IS NOT NULL",
            args![name],
        )
        .map_err(&sql)?
        .iter()
        .filter_map(|row| row.text(0).ok())
        .collect();
    let has = |v: &&VersionRecord| with.contains(&v.version.to_string());
    let versions = &listing.record.versions;
    let latest = listing.record.latest().map(|i| &versions[i]).filter(has);
    // A yanked version's readme does not speak for the package.
    let mut kept = versions.iter().rev().filter(|v| !v.archived);
    let Some(chosen) = latest.or_else(|| kept.find(has)) else {
        return Ok(None);
    };
    let rows = db
        .conn()
        .query(
            "SELECT readme FROM versions WHERE package = $1 AND version = $2",
            args![name, chosen.version.to_string()],
        )
        .map_err(sql)?;
    let text = rows.first().and_then(|row| row.opt_text(0).ok().flatten());
    Ok(text.map(|text| Readme {
        version: chosen.version.clone(),
        text,
    }))
}

pub(super) fn page(listing: &Listing, readme: Option<&Readme>, o: &Overview, home: &str) -> Markup {
    let record = &listing.record;
    let name = record.name.as_str();
    let latest = record.latest();
    let body = html! {
        h1 { (name) }
        @if let Some(description) = record.description() {
            p.description { (description) }
        }
        p { "Install: " code.copy { "webcpm install " (name) } }
        @if let Some(readme) = readme {
            section.readme #readme aria-label="Readme" {
                p.muted { "Readme of " (readme.version.to_string()) }
                (PreEscaped(render(&readme.text)))
            }
        }
        h2 { "Versions" }
        @for (i, version) in record.versions.iter().enumerate().rev() {
            // A version's description is shown when it differs from the package's.
            @let description = version.description.as_deref().filter(|d| Some(*d) != record.description());
            @let card = Card { name, version, description, requests: listing.requests[i].as_ref(), latest: latest == Some(i) };
            (card.render(home))
        }
        (fleet_sections(o, home))
    };
    layout(name, home, body)
}

/// One version's card.
struct Card<'a> {
    name: &'a str,
    version: &'a VersionRecord,
    description: Option<&'a str>,
    requests: Option<&'a Requests>,
    latest: bool,
}

impl Card<'_> {
    fn render(&self, home: &str) -> Markup {
        let v = self.version;
        let class = if v.archived {
            "card version archived"
        } else {
            "card version"
        };
        let version = v.version.to_string();
        html! {
            article class=(class) id={ "v" (version) } {
                h3 {
                    (version)
                    @if self.latest { " " span.badge.latest { "latest" } }
                    @if v.archived { " " span.badge.archived-mark { "archived" } }
                }
                p.muted { "Published " (date(v.published_at)) }
                @if v.archived {
                    p.yanked {
                        "Yanked: ranges and " code { "latest" } " skip it; an exact pin still installs it, with a warning."
                        @if let Some(reason) = &v.archived_reason { " Reason: " q { (reason) } }
                    }
                }
                @if let Some(description) = self.description {
                    p.description { (description) }
                }
                dl {
                    dt { "Install" }
                    dd { code.copy { "webcpm install " (self.name) "@" (version) } }
                    (asks(self.requests))
                    @for webc in WebcVersion::ALL {
                        (format_rows(v, webc, home))
                    }
                }
            }
        }
    }
}

/// The commands, and what they ask of the host.
fn asks(requests: Option<&Requests>) -> Markup {
    let Some(r) = requests else {
        return html! {
            dt { "Commands" }
            dd.muted { "not recorded (added before the registry kept what commands ask for)" }
        };
    };
    html! {
        dt { "Commands" }
        dd {
            @if r.commands.is_empty() { span.muted { "none" } }
            ul.asks {
                @for command in &r.commands {
                    li {
                        code { (command) } ": "
                        @match r.network.get(command) {
                            Some(imports) => { "can use the network (" (imports.join(", ")) ")" }
                            None if r.unknown.contains(command) => {
                                "the network: not known (its module is a dependency's)"
                            }
                            None => { "no network" }
                        }
                    }
                }
            }
        }
        dt { "Directories" }
        dd {
            @if r.mounts.is_empty() {
                span.muted { "none of its own" }
            } @else {
                "its own files, read-only, at "
                @for (i, mount) in r.mounts.iter().enumerate() {
                    @if i > 0 { ", " }
                    code { (mount) }
                }
            }
        }
    }
}

fn format_rows(v: &VersionRecord, webc: WebcVersion, home: &str) -> Markup {
    let name = match webc {
        WebcVersion::V2 => "WebC v2",
        WebcVersion::V3 => "WebC v3",
    };
    if !v.offers(webc) {
        return html! { dt { (name) } dd.muted { "not offered" } };
    }
    let blob: &BlobRecord = v.blob(webc);
    let hex = blob.sha256.hex();
    html! {
        dt { (name) }
        dd {
            a href={ (home) "blobs/" (hex) ".webc" } { (size_text(blob.size)) }
            br;
            code.sha256 { "sha256:" (hex) }
        }
    }
}
