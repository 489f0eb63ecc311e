//! The registry's web page, for people: `/` lists the packages, `/packages/{ns}/{name}` shows one
//! package, its readme and every version ([`package`]); both sum up the rollout policy in force
//! and the outcome reports, which `/rollout` shows whole, with charts ([`rollout`]).
//!
//! Server-rendered HTML from maud templates, no JavaScript at all, one small inline stylesheet
//! that reads on a phone (the versions are cards, hashes wrap). Every value is escaped by the
//! templates: package descriptions are untrusted input. As a second fence, the answers carry a
//! `Content-Security-Policy` that allows no script. Links are relative, so that the site works
//! behind a proxy under any prefix. Each request reads the database afresh.

mod charts;
mod package;
mod readme;
mod rollout;

use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::db::sql::args;
use super::db::{Db, DbError, PackageRecord, Pool};
use crate::container::Requests;
use crate::fleet::{self, FleetError, Overview};
use crate::package::PackageName;

/// No script may run; styles only from the page itself; the one form (search) only here.
const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; base-uri 'none'; form-action 'self'";

const CSS: &str = "
:root{color-scheme:light dark;font-family:system-ui,-apple-system,'Segoe UI',sans-serif;line-height:1.5}
body{margin:0 auto;max-width:56rem;padding:0 1rem 2rem}
header{border-bottom:1px solid #8886;padding:.75rem 0;margin-bottom:1rem}
header a{font-weight:700;font-size:1.2rem;text-decoration:none}
h1{font-size:1.5rem;margin:.5rem 0;overflow-wrap:anywhere}
h2{font-size:1.15rem;margin:1.5rem 0 .5rem}
code{font-family:ui-monospace,'SFMono-Regular',Menlo,monospace;font-size:.85em;word-break:break-all}
.card{border:1px solid #8886;border-radius:.5rem;padding:.6rem 1rem;margin:.75rem 0}
.card h3{margin:0;font-size:1.05rem}
.copy{user-select:all;-webkit-user-select:all;display:inline-block;padding:.15rem .4rem;border:1px solid #8886;border-radius:.3rem}
.readme{border-top:1px solid #8886;margin-top:1.5rem;overflow-wrap:anywhere}
.readme pre{overflow-x:auto;padding:.5rem;border:1px solid #8884;border-radius:.3rem}
.readme img{max-width:100%}
ul.asks{margin:.2rem 0;padding-left:1.2rem}
.archived{opacity:.75;border-style:dashed}
.badge{display:inline-block;border:1px solid #b00;color:#b00;border-radius:1rem;padding:0 .5rem;font-size:.75rem;font-weight:600;vertical-align:middle}
.badge.latest{border-color:#070;color:#070}
.muted{opacity:.75}
dl{display:grid;grid-template-columns:max-content minmax(0,1fr);gap:.2rem .75rem;margin:.5rem 0}
dt{font-weight:600}
dd{margin:0;min-width:0}
@media (max-width:32rem){dl{grid-template-columns:minmax(0,1fr)}dd{margin-bottom:.4rem}}
nav a{margin-right:1rem}
form.search{display:flex;flex-wrap:wrap;gap:.5rem;align-items:center;margin:.5rem 0 1rem}
form.search label{width:100%;font-weight:600}
form.search input{flex:1 1 12rem;min-width:0;font:inherit;padding:.3rem .5rem}
form.search button{font:inherit;padding:.3rem .8rem}
.chart{width:100%;height:auto;max-height:18rem;margin:.5rem 0}
.chart .axis{stroke:currentColor;opacity:.6}
.chart .grid{stroke:#8886;stroke-dasharray:4}
.chart .tick{font-size:11px;fill:currentColor}
.chart .line{fill:none;stroke-width:2.5}
.chart .install{stroke-dasharray:6 4}
.v2{stroke:#1f6fd0;color:#1f6fd0}
.v3{stroke:#c25a00;color:#c25a00}
.chart .mark{stroke:#fff;stroke-width:1.5}
.chart .mark.manual{fill:#666}
.chart .mark.automatic{fill:#c00}
.key{font-weight:700}
.scroll{overflow-x:auto}
table{border-collapse:collapse;width:100%;font-size:.9rem}
caption{text-align:left;font-weight:600;padding:.25rem 0}
th,td{text-align:left;padding:.2rem .5rem;border-bottom:1px solid #8884;vertical-align:top}
tr.automatic td{color:#c00}
";

/// What the pages read: the registry's database, and its key directory (for the signing key).
struct Site {
    pool: Arc<Pool>,
    keys: PathBuf,
}

/// The page's routes.
pub(crate) fn routes(pool: Arc<Pool>, keys: PathBuf) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/rollout", get(rollout_page))
        .route("/packages/{namespace}/{name}", get(package))
        .with_state(Arc::new(Site { pool, keys }))
}

/// A package with its versions and what each version's commands ask for, in the record's order
/// (`None` for versions added before the registry kept it).
struct Listing {
    record: PackageRecord,
    requests: Vec<Option<Requests>>,
}

/// Reads one package and what its versions ask for.
fn listing(db: &mut Db, name: &PackageName) -> Result<Option<Listing>, DbError> {
    let Some(record) = db.package(name)? else {
        return Ok(None);
    };
    let sql = db.sql();
    let rows = db
        .conn()
        .query(
            "SELECT version, requests FROM versions WHERE package = $1",
            args![name.as_str()],
        )
        .map_err(sql)?;
    let requests = record
        .versions
        .iter()
        .map(|v| {
            let text = v.version.to_string();
            rows.iter()
                .find(|row| row.text(0).is_ok_and(|t| t == text))
                .and_then(|row| row.opt_text(1).ok().flatten())
                .and_then(|json| serde_json::from_str(&json).ok())
        })
        .collect();
    Ok(Some(Listing { record, requests }))
}

/// Runs `read` on the database off the async threads.
async fn read<T: Send + 'static, E: From<DbError> + std::fmt::Display + Send + 'static>(
    site: &Site,
    read: impl FnOnce(&mut Db) -> Result<T, E> + Send + 'static,
) -> Result<T, Response> {
    let pool = Arc::clone(&site.pool);
    let result = tokio::task::spawn_blocking(move || pool.with(read))
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r.map_err(|e| e.to_string()));
    result.map_err(|e| {
        tracing::error!("the web page cannot read the registry: {e}");
        page_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            error_page(
                "The registry cannot be read",
                "See the registry's log.",
                "./",
            ),
        )
    })
}

/// The rollout's overview, now.
fn overview(site: &Site) -> impl FnOnce(&mut Db) -> Result<Overview, FleetError> + use<> {
    let keys = site.keys.clone();
    move |db| fleet::overview(db, &keys, webcpm_formats::policy_document::now())
}

/// `/?q=`: the search box's words.
#[derive(Debug, Default, serde::Deserialize)]
struct Search {
    #[serde(default)]
    q: String,
}

async fn index(State(site): State<Arc<Site>>, Query(search): Query<Search>) -> Response {
    let overview = overview(&site);
    let both = move |db: &mut Db| -> Result<_, FleetError> {
        Ok((db.search(&search.q)?, overview(db)?, search.q))
    };
    match read(&site, both).await {
        Ok((found, o, query)) => page_response(StatusCode::OK, index_page(&found, &query, &o)),
        Err(response) => response,
    }
}

async fn rollout_page(State(site): State<Arc<Site>>) -> Response {
    match read(&site, overview(&site)).await {
        Ok(o) => page_response(StatusCode::OK, layout("Rollout", "./", rollout::body(&o))),
        Err(response) => response,
    }
}

async fn package(
    State(site): State<Arc<Site>>,
    UrlPath((namespace, name)): UrlPath<(String, String)>,
) -> Response {
    let home = "../../";
    let Ok(name) = format!("{namespace}/{name}").parse::<PackageName>() else {
        return not_found(home);
    };
    let overview = overview(&site);
    let all = move |db: &mut Db| -> Result<_, FleetError> {
        let listing = listing(db, &name)?;
        let readme = match &listing {
            Some(l) => package::readme(db, l)?,
            None => None,
        };
        Ok((listing, readme, overview(db)?))
    };
    match read(&site, all).await {
        Ok((Some(listing), readme, o)) => {
            let page = package::page(&listing, readme.as_ref(), &o, home);
            page_response(StatusCode::OK, page)
        }
        Ok((None, _, _)) => not_found(home),
        Err(response) => response,
    }
}

fn not_found(home: &str) -> Response {
    page_response(
        StatusCode::NOT_FOUND,
        error_page(
            "No such package",
            "This registry has no package by that name.",
            home,
        ),
    )
}

fn page_response(status: StatusCode, markup: Markup) -> Response {
    let mut response = (status, markup.into_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// The frame of every page; `home` is the relative link to `/`.
fn layout(title: &str, home: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · webcpm registry" }
                style { (PreEscaped(CSS)) }
            }
            body {
                header {
                    nav {
                        a href=(home) { "webcpm registry" }
                        a href={ (home) "rollout" } { "Rollout" }
                    }
                }
                main { (body) }
            }
        }
    }
}

fn error_page(title: &str, text: &str, home: &str) -> Markup {
    layout(
        title,
        home,
        html! { h1 { (title) } p { (text) } p { a href=(home) { "All packages" } } },
    )
}

/// The rollout policy and outcome reports in short, the same on every page; `home` is the
/// relative link to `/`.
fn fleet_sections(o: &Overview, home: &str) -> Markup {
    let p = &o.policy;
    let all = o.sum();
    html! {
        section #policy {
            h2 { "Rollout policy" }
            @if p.policy_version == 0 {
                p.muted { "None published: clients follow their own settings." }
            } @else {
                p {
                    "Policy v" (p.policy_version) ": WebC v3 first on " (p.v3_percent) "% of machines"
                    @if p.rolled_back { ", rolled back (v2 first everywhere)" }
                    @else if p.halted { ", halted" }
                    ". " a href={ (home) "rollout" } { "The rollout, with its timeline" }
                }
            }
        }
        section #outcomes {
            h2 { "Outcome rates" }
            @if all.reports == 0 {
                p.muted { "No outcome reports yet." }
            } @else {
                p { (all.reports) " reports, " (all.failures) " failures in the last " (o.automation.window.as_secs()) " s. "
                    a href={ (home) "rollout#outcomes" } { "Rates by format and phase" } }
            }
        }
    }
}

fn index_page(found: &[PackageRecord], query: &str, o: &Overview) -> Markup {
    let query = query.trim();
    let body = html! {
        h1 { "Packages" }
        form.search method="get" action="./" role="search" {
            label for="q" { "Search packages" }
            input #q type="search" name="q" value=(query) placeholder="name or words of the description";
            button type="submit" { "Search" }
        }
        @if !query.is_empty() {
            p.found {
                @match found.len() {
                    0 => { "No package matches “" (query) "”." }
                    1 => { "1 package matches “" (query) "”." }
                    n => { (n) " packages match “" (query) "”." }
                }
                " " a href="./" { "All packages" }
            }
        } @else if found.is_empty() {
            p.muted { "No packages yet. Publish one with " code { "webcpm publish DIR" } "." }
        }
        @for record in found {
            @let latest = record.latest().map(|i| record.versions[i].version.to_string());
            article.card.package {
                h3 {
                    a href={ "packages/" (record.name.as_str()) } { (record.name.as_str()) }
                    " "
                    span.version { (latest.as_deref().unwrap_or("no release")) }
                }
                @if let Some(description) = record.description() {
                    p.description { (description) }
                }
                p.muted { (versions_text(record)) }
            }
        }
        (fleet_sections(o, "./"))
    };
    layout("Packages", "./", body)
}

/// "3 versions, 1 archived".
fn versions_text(record: &PackageRecord) -> String {
    let count = record.versions.len();
    let archived = record.versions.iter().filter(|v| v.archived).count();
    let plural = if count == 1 { "" } else { "s" };
    match archived {
        0 => format!("{count} version{plural}"),
        n => format!("{count} version{plural}, {n} archived"),
    }
}

/// "1.1 KiB (1091 bytes)".
fn size_text(bytes: u64) -> String {
    let units = ["KiB", "MiB", "GiB"];
    let mut value = bytes as f64;
    let mut unit = None;
    for u in units {
        if value < 1024.0 {
            break;
        }
        value /= 1024.0;
        unit = Some(u);
    }
    match unit {
        Some(unit) => format!("{value:.1} {unit} ({bytes} bytes)"),
        None => format!("{bytes} bytes"),
    }
}

/// A Unix time as `YYYY-MM-DD HH:MM` (UTC).
fn time(seconds: i64) -> String {
    let of_day = seconds.rem_euclid(86_400);
    format!(
        "{} {:02}:{:02}",
        date(seconds),
        of_day / 3600,
        of_day % 3600 / 60
    )
}

/// A Unix time as `YYYY-MM-DD` (UTC), by the civil-from-days algorithm.
fn date(seconds: i64) -> String {
    let days = seconds.div_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_sizes_read_well() {
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(951_782_400), "2000-02-29");
        assert_eq!(date(1_764_633_600), "2025-12-02");
        assert_eq!(
            time(1_764_633_600 + 13 * 3600 + 5 * 60 + 9),
            "2025-12-02 13:05"
        );
        assert_eq!(size_text(1091), "1.1 KiB (1091 bytes)");
        assert_eq!(size_text(12), "12 bytes");
        assert_eq!(size_text(5 << 20), "5.0 MiB (5242880 bytes)");
    }

    #[test]
    fn untrusted_text_is_escaped() {
        let page = error_page("<script>alert(1)</script>", "a & \"b\"", "./").into_string();
        assert!(!page.contains("<script>"), "{page}");
        assert!(
            page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{page}"
        );
        assert!(page.contains("a &amp; &quot;b&quot;"), "{page}");
    }
}
