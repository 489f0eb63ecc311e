//! The registry's web page in a real browser: headless Chromium (Debian's package, which
//! `.ci/run` installs) loads the pages of a `webcpm registry serve` on 127.0.0.1; the test reads
//! what a person would see and checks that a screenshot of a phone-sized window is not blank.
//!
//! Without Chromium the test says so in one line and passes, unless `CI` is set: there it fails.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

/// The browser, when there is one on `PATH`.
fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| [dir.join("chromium"), dir.join("chromium-browser")])
        .find(|p| p.is_file())
}

/// Runs headless Chromium on `url` with `extra` flags; its stdout. Killed after a minute.
fn browse(browser: &Path, profile: &Path, url: &str, extra: &[&str]) -> String {
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromium starts");
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || std::io::read_to_string(stdout).unwrap_or_default());
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "chromium failed on {url}: {status}");
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish {url} within a minute");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    reader.join().unwrap()
}

/// The text a person sees in a DOM: no tags, no stylesheet, entities decoded, spaces collapsed.
fn visible_text(dom: &str) -> String {
    let mut text = String::new();
    let mut rest = dom;
    while let Some(at) = rest.find('<') {
        text.push_str(&rest[..at]);
        text.push(' ');
        let tail = &rest[at..];
        let skip = if tail.starts_with("<style") {
            tail.find("</style>")
                .map_or(tail.len(), |end| end + "</style>".len())
        } else {
            tail.find('>').map_or(tail.len(), |end| end + 1)
        };
        rest = &tail[skip..];
    }
    text.push_str(rest);
    let decoded = text
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&nbsp;", " ")
        .replace("&amp;", "&");
    decoded.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Asserts that a PNG is `width` pixels wide and not one flat colour.
fn assert_not_blank(png_file: &Path, width: u32) {
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(png_file).expect("a screenshot was saved"),
    ));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(info.width, width, "the window's width");
    let pixel = info.color_type.samples() * (info.bit_depth as usize).div_ceil(8);
    let pixels: Vec<&[u8]> = buf[..info.buffer_size()].chunks(pixel).collect();
    let distinct: std::collections::BTreeSet<&[u8]> = pixels.iter().copied().collect();
    let background = pixels[0];
    let ink = pixels.iter().filter(|p| **p != background).count();
    assert!(
        distinct.len() > 8 && ink * 100 > pixels.len(),
        "the screenshot {} looks blank: {} colours, {ink} of {} pixels drawn",
        png_file.display(),
        distinct.len(),
        pixels.len()
    );
}

const HOSTILE: &str =
    "Counts words. <script>document.body.setAttribute('data-pwned','yes')</script><b>bold?</b>";

/// A readme an attacker would write: raw HTML with a script, an image whose error runs one, a
/// `javascript:` link (also in disguise), a raw link, and some honest Markdown.
const HOSTILE_README: &str = "# Evil\n\nCounts *words* well.\n\n\
<script>document.body.setAttribute('data-pwned','script')</script>\n\n\
<img src=x onerror=\"document.body.setAttribute('data-pwned','img')\">\n\n\
[click](javascript:document.body.setAttribute('data-pwned','link')) \
[again](<JaVa\tScRiPt:alert(1)>) \
<a href=\"javascript:alert(2)\">raw</a>\n\n\
| col | umn |\n|---|---|\n| 1 | 2 |\n";

/// A registry with `test/alpha` 1.0.0 (archived) and 1.1.0, and `test/evil`, whose description
/// holds markup and a script, published through `webcpm publish`.
fn fill(home: &Path, root: &Path, registry: &Registry) -> Vec<serde_json::Value> {
    let old = publish_new(home, root, "test/alpha", "1.0.0", &[]);
    let new = publish_new(home, root, "test/alpha", "1.1.0", &[]);
    let out = run(webcpm(home)
        .args(["registry", "yank", "--root"])
        .arg(root)
        .arg("test/alpha@1.0.0")
        .args(["--reason", "leaks <b>memory</b>"]));
    assert_eq!(out.status.code(), Some(0));
    let made = run(webcpm(home)
        .args(["registry", "token", "create", "--json", "--root"])
        .arg(root)
        .args(["--namespace", "test"]));
    let token = json(&made)["token"].as_str().unwrap().to_string();
    let pkg = Pkg {
        name: "test/evil",
        version: "0.1.0",
        ..Pkg::default()
    };
    let dir = package_dir(home, &pkg);
    let toml = std::fs::read_to_string(dir.join("wasmer.toml")).unwrap();
    let toml = toml.replace(
        "\"a test package\"",
        &format!("\"{HOSTILE}\"\nreadme = \"README.md\""),
    );
    std::fs::write(dir.join("wasmer.toml"), toml).unwrap();
    std::fs::write(dir.join("README.md"), HOSTILE_README).unwrap();
    let out = run(webcpm(home)
        .args(["publish", "--json", "--registry", &registry.url])
        .arg(&dir)
        .env("WEBCPM_TOKEN", token));
    assert_eq!(out.status.code(), Some(0));
    vec![old, new]
}

#[test]
fn the_web_page_shows_packages_versions_and_formats_in_a_real_browser() {
    let Some(browser) = chromium() else {
        let ci = std::env::var("CI").unwrap_or_default();
        assert!(
            matches!(ci.as_str(), "" | "0" | "false"),
            "CI is set but chromium is not installed: .ci/run installs it from Debian's packages"
        );
        eprintln!(
            "skipped: no chromium on PATH (apt-get install chromium); the web page is untested"
        );
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let root = home.join("registry");
    let registry = Registry::start(home, &root);
    let reports = fill(home, &root, &registry);
    let base = registry.url.trim_end_matches("graphql").to_string();
    let profile = home.join("chromium-profile");

    let dom = browse(&browser, &profile, &base, &["--dump-dom"]);
    let seen = visible_text(&dom);
    assert!(seen.contains("test/alpha 1.1.0"), "{seen}");
    assert!(seen.contains("2 versions, 1 archived"), "{seen}");
    assert!(seen.contains("test/evil 0.1.0"), "{seen}");
    assert!(
        seen.contains(HOSTILE),
        "the description is shown as text: {seen}"
    );
    assert!(!dom.contains("data-pwned=\"yes\""), "the script ran: {dom}");
    assert!(
        !dom.to_lowercase().contains("<script") && !dom.contains("<b>"),
        "{dom}"
    );
    assert!(seen.contains("Rollout policy None published"), "{seen}");

    // The search box: words of the name or the description; a hostile query is only text.
    let dom = browse(
        &browser,
        &profile,
        &format!("{base}?q=Counts+WORDS"),
        &["--dump-dom"],
    );
    let seen = visible_text(&dom);
    assert!(seen.contains("1 package matches “Counts WORDS”"), "{seen}");
    assert!(
        seen.contains("test/evil 0.1.0") && !seen.contains("test/alpha"),
        "{seen}"
    );
    let dom = browse(
        &browser,
        &profile,
        &format!("{base}?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E"),
        &["--dump-dom"],
    );
    let seen = visible_text(&dom);
    assert!(
        seen.contains("No package matches “<script>alert(1)</script>”"),
        "{seen}"
    );
    assert!(!dom.to_lowercase().contains("<script"), "{dom}");

    let page = format!("{base}packages/test/alpha");
    let dom = browse(&browser, &profile, &page, &["--dump-dom"]);
    let seen = visible_text(&dom);
    assert!(seen.contains("1.1.0 latest"), "{seen}");
    assert!(seen.contains("1.0.0 archived"), "{seen}");
    assert!(seen.contains("Reason: leaks <b>memory</b>"), "{seen}");
    for report in &reports {
        for webc in ["v2", "v3"] {
            let blob = &report[webc];
            let size = format!("({} bytes)", blob["size"]);
            let hash = format!("sha256:{}", blob["sha256"].as_str().unwrap());
            assert!(seen.contains(&format!("WebC {webc}")), "{seen}");
            assert!(
                seen.contains(&size) && seen.contains(&hash),
                "{size} {hash}: {seen}"
            );
        }
    }

    // What the commands ask for, and a line to copy for each version.
    assert!(
        seen.contains("Install webcpm install test/alpha@1.1.0"),
        "{seen}"
    );
    assert!(seen.contains("Commands main : no network"), "{seen}");
    assert!(
        seen.contains("Directories its own files, read-only, at /data"),
        "{seen}"
    );

    // A hostile readme: rendered as Markdown, its HTML shown as text, no script runs, no
    // `javascript:` link is left.
    let evil = format!("{base}packages/test/evil");
    let dom = browse(&browser, &profile, &evil, &["--dump-dom"]);
    let seen = visible_text(&dom);
    assert!(seen.contains("Readme of 0.1.0"), "{seen}");
    assert!(
        dom.contains("<h2>Evil</h2>") && dom.contains("<em>words</em>"),
        "{dom}"
    );
    assert!(dom.contains("<td>2</td>"), "a table is drawn: {dom}");
    assert!(
        seen.contains("<img src=x onerror="),
        "raw HTML is shown as text: {seen}"
    );
    let body = &dom[dom.find("<body").unwrap()..];
    let body_tag = &body[..body.find('>').unwrap()];
    assert!(!body_tag.contains("data-pwned"), "a script ran: {body_tag}");
    let lower = dom.to_lowercase();
    assert!(
        !lower.contains("<script")
            && !lower.contains("<img")
            && !lower.contains("<a href=\"javascript"),
        "{dom}"
    );
    assert_eq!(dom.matches("<a href=\"#\">").count(), 2, "{dom}");

    let shots = Path::new(env!("CARGO_TARGET_TMPDIR"));
    for (url, file) in [
        (&base, "web-index.png"),
        (&page, "web-package.png"),
        (&evil, "web-readme.png"),
    ] {
        let png_file = shots.join(file);
        let _ = std::fs::remove_file(&png_file);
        let flag = format!("--screenshot={}", png_file.display());
        browse(&browser, &profile, url, &[&flag, "--window-size=400,900"]);
        assert_not_blank(&png_file, 400);
    }
}

#[test]
fn pages_forbid_scripts_and_unknown_packages_are_not_found() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let root = home.join("registry");
    let registry = Registry::start(home, &root);
    let base = registry.url.trim_end_matches("graphql").to_string();
    let get = |path: &str| {
        let url = format!("{base}{path}");
        tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(async move {
                let response = reqwest::get(url).await.unwrap();
                let status = response.status().as_u16();
                let csp = response
                    .headers()
                    .get("content-security-policy")
                    .map(|v| v.to_str().unwrap().to_string());
                (status, csp, response.text().await.unwrap())
            })
    };
    let (status, csp, body) = get("");
    assert_eq!(status, 200);
    assert!(csp.unwrap().starts_with("default-src 'none'"));
    assert!(body.contains("No packages yet"), "{body}");
    for missing in ["packages/test/nothing", "packages/not%20a/name"] {
        let (status, csp, body) = get(missing);
        assert_eq!(status, 404, "{missing}");
        assert!(csp.is_some() && body.contains("No such package"), "{body}");
    }
    publish_new(home, &root, "test/late", "3.0.0", &[]);
    let (status, _, body) = get("packages/test/late");
    assert_eq!(status, 200);
    assert!(
        body.contains("3.0.0"),
        "a version published while serving is shown"
    );
}

/// `registry rollout ARGS --root ROOT`, which must succeed.
fn rollout(home: &Path, root: &Path, args: &[&str]) {
    let out = run(webcpm(home)
        .args(["registry", "rollout"])
        .args(args)
        .arg("--root")
        .arg(root));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

/// Outcome reports of `n` machines named `{prefix}{i}`, one each, through the report endpoint.
fn report(registry: &Registry, token: &str, prefix: &str, n: usize, format: &str, ok: bool) {
    let url = registry.url.replace("/graphql", "/rollout/reports");
    let rt = tokio::runtime::Runtime::new().unwrap();
    for i in 0..n {
        let batch = serde_json::json!({
            "client": format!("{prefix}{i}"),
            "reports": [{
                "package": "test/alpha", "version": "1.1.0", "format": format, "phase": "run",
                "ok": ok, "error_class": (!ok).then_some("trap"), "bucket": 1
            }]
        });
        let status = rt.block_on(async {
            reqwest::Client::new()
                .post(&url)
                .bearer_auth(token)
                .json(&batch)
                .send()
                .await
                .unwrap()
                .status()
        });
        assert!(status.is_success(), "{status}");
    }
}

#[test]
fn the_rollout_page_draws_the_timeline_and_the_rates_in_a_real_browser() {
    let Some(browser) = chromium() else {
        let ci = std::env::var("CI").unwrap_or_default();
        assert!(
            matches!(ci.as_str(), "" | "0" | "false"),
            "CI is set but chromium is not installed"
        );
        eprintln!("skipped: no chromium on PATH; the rollout page is untested");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let root = home.join("registry");
    publish_new(home, &root, "test/alpha", "1.1.0", &[]);
    let out = run(webcpm(home)
        .args(["registry", "keygen", "--root"])
        .arg(&root));
    assert_eq!(out.status.code(), Some(0));
    let token = make_token(home, &root, &["--reports", "--name", "fleet"], &[]);
    rollout(
        home,
        &root,
        &[
            "set",
            "--v3-percent",
            "10",
            "--reason",
            "canary <b>",
            "--by",
            "ops",
        ],
    );
    rollout(
        home,
        &root,
        &["set", "--v3-percent", "30", "--reason", "canary is fine"],
    );
    rollout(
        home,
        &root,
        &["set", "--package", "test/alpha", "--webc", "v3"],
    );
    rollout(
        home,
        &root,
        &[
            "automate",
            "--on-regression",
            "halt",
            "--min-samples",
            "3",
            "--threshold",
            "10",
        ],
    );
    let registry = Registry::start(home, &root);
    report(&registry, &token, "good", 4, "v2", true);
    report(&registry, &token, "bad", 4, "v3", false);
    let base = registry.url.trim_end_matches("graphql").to_string();
    let page = format!("{base}rollout");
    let profile = home.join("chromium-profile");

    let dom = browse(&browser, &profile, &page, &["--dump-dom"]);
    let seen = visible_text(&dom);
    assert!(seen.contains("Policy in force"), "{seen}");
    assert!(seen.contains("30% of machines"), "{seen}");
    assert!(
        seen.contains("halted"),
        "the automation halted the rollout: {seen}"
    );
    assert!(seen.contains("test/alpha v3 for every machine"), "{seen}");
    assert!(seen.contains("canary <b>"), "a reason is text: {seen}");
    assert!(
        !dom.contains("<b>") && !dom.to_lowercase().contains("<script"),
        "{dom}"
    );
    // The timeline: one line, a dot for each of the 4 changes (3 by hand, then the halt, red);
    // the rates: four lines (v2 and v3, install and run) and the halt again.
    let charts = dom.matches("<svg").count();
    assert_eq!(charts, 2, "{dom}");
    assert_eq!(dom.matches("<polyline").count(), 5, "{dom}");
    assert_eq!(dom.matches("class=\"mark manual\"").count(), 3, "{dom}");
    assert_eq!(dom.matches("class=\"mark automatic\"").count(), 2, "{dom}");
    assert!(seen.contains("by automation: halt"), "{seen}");
    // The table beside the rates: v3 run failed on every report, v2 run on none.
    assert!(seen.contains("v3 run 4 4 1000.0"), "{seen}");
    assert!(seen.contains("v2 run 4 0 0.0"), "{seen}");

    // The package pages sum it up and link here.
    let index = visible_text(&browse(&browser, &profile, &base, &["--dump-dom"]));
    assert!(
        index.contains("Policy v4: WebC v3 first on 30% of machines, halted"),
        "{index}"
    );
    assert!(index.contains("8 reports, 4 failures"), "{index}");

    // A phone's width: the charts scale down and the page is drawn.
    let png_file = Path::new(env!("CARGO_TARGET_TMPDIR")).join("web-rollout.png");
    let _ = std::fs::remove_file(&png_file);
    let flag = format!("--screenshot={}", png_file.display());
    browse(
        &browser,
        &profile,
        &page,
        &[&flag, "--window-size=400,1200"],
    );
    assert_not_blank(&png_file, 400);
}
