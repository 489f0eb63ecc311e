//! A package's readme as HTML, safely: Markdown rendered by `pulldown-cmark`, with the readme's
//! raw HTML shown as text (never as markup), links kept only to `http:`, `https:`, `mailto:`,
//! fragments and relative paths, images shown as links (the page's CSP loads none from
//! elsewhere), and headings moved one level down under the page's own `h1`.

use pulldown_cmark::{CowStr, Event, HeadingLevel, Options, Parser, Tag, TagEnd, html};

/// The readme as HTML that can be put into the page as it is.
pub(super) fn render(markdown: &str) -> String {
    let options = Options::ENABLE_TABLES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_FOOTNOTES;
    let events = Parser::new_ext(markdown, options).map(|event| match event {
        // Raw HTML is text: what the author wrote is shown, and none of it is markup.
        Event::Html(raw) | Event::InlineHtml(raw) => Event::Text(raw),
        Event::Start(tag) => Event::Start(safe_tag(tag)),
        Event::End(TagEnd::Heading(level)) => Event::End(TagEnd::Heading(lower(level))),
        Event::End(TagEnd::Image) => Event::End(TagEnd::Link),
        other => other,
    });
    let mut out = String::with_capacity(markdown.len() * 3 / 2);
    html::push_html(&mut out, events);
    out
}

fn safe_tag(tag: Tag<'_>) -> Tag<'_> {
    match tag {
        Tag::Heading {
            level,
            id,
            classes,
            attrs,
        } => Tag::Heading {
            level: lower(level),
            id,
            classes,
            attrs,
        },
        // An image is a link to it: the page loads nothing from elsewhere.
        Tag::Link {
            link_type,
            dest_url,
            title,
            id,
        }
        | Tag::Image {
            link_type,
            dest_url,
            title,
            id,
        } => Tag::Link {
            link_type,
            dest_url: safe_url(dest_url),
            title,
            id,
        },
        other => other,
    }
}

/// One level down: the page's `h1` is the package's name.
fn lower(level: HeadingLevel) -> HeadingLevel {
    match level {
        HeadingLevel::H1 => HeadingLevel::H2,
        HeadingLevel::H2 => HeadingLevel::H3,
        HeadingLevel::H3 => HeadingLevel::H4,
        HeadingLevel::H4 => HeadingLevel::H5,
        HeadingLevel::H5 | HeadingLevel::H6 => HeadingLevel::H6,
    }
}

/// The URL when its scheme is a harmless one (or it has none), else `#`.
fn safe_url(url: CowStr<'_>) -> CowStr<'_> {
    // Browsers ignore tabs, newlines and leading spaces or control characters in a scheme.
    let plain: String = url
        .chars()
        .filter(|c| !c.is_ascii_whitespace() && !c.is_control())
        .take(16)
        .collect::<String>()
        .to_ascii_lowercase();
    let scheme_end = plain.find([':', '/', '?', '#']);
    let has_scheme = scheme_end.is_some_and(|at| plain[at..].starts_with(':'));
    let allowed = ["http:", "https:", "mailto:"];
    if !has_scheme || allowed.iter().any(|s| plain.starts_with(s)) {
        url
    } else {
        CowStr::Borrowed("#")
    }
}

#[cfg(test)]
mod tests {
    use super::render;

    #[test]
    fn markdown_is_rendered_and_headings_sit_under_the_page() {
        let html =
            render("# Title\n\nSome *words* and `code`.\n\n| a | b |\n|---|---|\n| 1 | 2 |\n");
        assert!(html.contains("<h2>Title</h2>"), "{html}");
        assert!(html.contains("<em>words</em>") && html.contains("<code>code</code>"));
        assert!(
            html.contains("<table>") && html.contains("<td>2</td>"),
            "{html}"
        );
    }

    #[test]
    fn raw_html_is_text_and_dangerous_links_go_nowhere() {
        let hostile = "<script>alert(1)</script>\n\n\
            Hi <img src=x onerror=alert(2)> <b>bold</b>\n\n\
            [a](javascript:alert(3)) [b](<JaVa\tScRiPt:alert(4)>) [c]( data:text/html,x)\n\n\
            ![pic](https://example.com/p.png \"t\") [ok](https://example.com/) [rel](docs/x.md)\n\n\
            <a href=\"javascript:alert(5)\">raw</a>\n";
        let html = render(hostile);
        assert!(!html.contains("<script") && !html.contains("<img") && !html.contains("<b>"));
        assert!(!html.to_lowercase().contains("<a href=\"java"), "{html}");
        assert!(!html.contains("<a href=\"data:"), "{html}");
        assert!(
            html.contains("&lt;a href=") && html.contains("&gt;raw"),
            "{html}"
        );
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{html}"
        );
        assert!(
            html.contains("&lt;img src=x onerror=alert(2)&gt;"),
            "{html}"
        );
        assert!(
            html.contains("<a href=\"https://example.com/p.png\" title=\"t\">pic</a>"),
            "{html}"
        );
        assert!(
            html.contains("<a href=\"https://example.com/\">ok</a>"),
            "{html}"
        );
        assert!(html.contains("<a href=\"docs/x.md\">rel</a>"), "{html}");
        assert_eq!(html.matches("<a href=\"#\">").count(), 3, "{html}");
    }
}
