//! The frame every explorer page is built in: `scaffold.html` (head, error box, the data
//! script, one inline script) around a page's own body, with `common.css` and
//! `common.js` (number formatting, base64 arrays, the curve chart) placed before the
//! page's CSS and JavaScript. The run explorer ([`super`]) and the sweep explorer
//! (`crate::sweep::explore`) are both built here, so they share that code instead of
//! copying it, and both come out as one file that opens from disk with no network.

use serde::Serialize;

const SCAFFOLD_HTML: &str = include_str!("scaffold.html");
const COMMON_CSS: &str = include_str!("common.css");
const COMMON_JS: &str = include_str!("common.js");

/// A page's own parts (usually `include_str!`s of its files).
#[derive(Clone, Copy, Debug)]
pub struct PageParts {
    /// CSS after `common.css`.
    pub css: &'static str,
    /// The HTML inside `<body>`, after the error box.
    pub body: &'static str,
    /// JavaScript after `common.js`, in the same function scope.
    pub js: &'static str,
}

/// The whole page: `title` (escaped), the parts, and `data` as JSON in
/// `<script type="application/json" id="data">`.
pub fn build_page<T: Serialize>(
    title: &str,
    parts: &PageParts,
    data: &T,
) -> Result<String, serde_json::Error> {
    // Inside <script> only "</" could end the element early; JSON allows "\u003c" for "<".
    let json = serde_json::to_string(data)?.replace('<', "\\u003c");
    let css = format!("{COMMON_CSS}{}", parts.css);
    let js = format!("{COMMON_JS}{}", parts.js);
    let title = html_escape(title);
    Ok(fill(SCAFFOLD_HTML, |name| match name {
        "TITLE" => Some(title.as_str()),
        "CSS" => Some(css.as_str()),
        "BODY" => Some(parts.body),
        "JS" => Some(js.as_str()),
        "DATA" => Some(json.as_str()),
        _ => None,
    }))
}

/// `template` with each `{{NAME}}` replaced by `value(NAME)` in one pass (inserted text
/// is never searched again, so data that happens to contain `{{JS}}` stays as it is);
/// unknown names are left in place.
fn fill<'a>(template: &str, value: impl Fn(&str) -> Option<&'a str>) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after
            .find("}}")
            .and_then(|end| Some((end, value(&after[..end])?)))
        {
            Some((end, text)) => {
                out.push_str(text);
                rest = &after[end + 2..];
            }
            None => {
                out.push_str("{{");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Escapes text for the page's `<title>`.
fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_each_placeholder_once_and_never_inside_inserted_text() {
        let parts = PageParts {
            css: "p{}",
            body: "<p>{{DATA}}</p>",
            js: "let x = 1;",
        };
        let page = build_page(
            "a < b & c",
            &parts,
            &serde_json::json!({"s": "</script>{{JS}}"}),
        )
        .unwrap();
        assert!(page.contains("<title>a &lt; b &amp; c</title>"));
        // The body's own "{{DATA}}" is body text, not a slot.
        assert!(page.contains("<p>{{DATA}}</p>"));
        assert!(page.contains(r#"{"s":"\u003c/script>{{JS}}"}"#));
        assert!(!page.contains("</script>{{JS}}"));
        assert_eq!(page.matches("let x = 1;").count(), 1);
        assert!(
            page.find(COMMON_JS.lines().next().unwrap()).unwrap() < page.find("let x").unwrap()
        );
        assert!(page.contains("p{}") && page.contains("#error"));
        assert_eq!(
            fill("{{A}} {{B}} {{", |n| (n == "A").then_some("1")),
            "1 {{B}} {{"
        );
    }
}
