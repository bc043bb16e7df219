//! The HTML page: plain forms, no JavaScript.

use std::fmt::Write;

use fastsession::store::NearCacheStats;

use crate::View;

/// Escapes text for HTML element content and quoted attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

pub(crate) fn render(
    view: &View,
    last_user: Option<&str>,
    near_cache: Option<NearCacheStats>,
) -> String {
    let mut body = String::new();
    // Writing to a String cannot fail.
    let _ = match &view.user {
        Some(user) => writeln!(body, r#"<p id="user">Logged in as {}</p>"#, escape(user)),
        None => writeln!(body, r#"<p id="user">Not logged in</p>"#),
    };
    if !view.flashes.is_empty() {
        body.push_str("<ul id=\"flashes\">\n");
        for flash in &view.flashes {
            let _ = writeln!(body, r#"<li class="flash">{}</li>"#, escape(flash));
        }
        body.push_str("</ul>\n");
    }
    let _ = writeln!(
        body,
        r#"<form id="login-form" method="post" action="/login">
<input id="user-input" name="user" placeholder="name" value="{}" maxlength="64" required>
<button id="login" type="submit">Log in</button>
</form>
<form method="post" action="/logout"><button id="logout" type="submit">Log out</button></form>"#,
        escape(last_user.unwrap_or_default())
    );
    body.push_str("<h2>Counters</h2>\n<ul id=\"counters\">\n");
    for (name, value) in &view.counters {
        let name = escape(name);
        let _ = writeln!(body, r#"<li id="counter-{name}">{name}: {value}</li>"#);
    }
    body.push_str("</ul>\n");
    for name in ["a", "b"] {
        let _ = writeln!(
            body,
            r#"<form method="post" action="/incr"><input type="hidden" name="key" value="{name}"><button id="incr-{name}" type="submit">{name} + 1</button></form>"#
        );
    }
    let (state, next, label) = if view.remember {
        ("on", "false", "Forget me")
    } else {
        ("off", "true", "Remember me")
    };
    let _ = writeln!(
        body,
        r#"<h2>Flash</h2>
<form method="post" action="/flash"><input id="flash-input" name="msg" maxlength="200" required><button id="add-flash" type="submit">Add flash</button></form>
<h2>Remember me</h2>
<p id="remember-state">{state}</p>
<form method="post" action="/remember"><input type="hidden" name="on" value="{next}"><button id="remember" type="submit">{label}</button></form>"#
    );
    if let Some(near) = near_cache {
        let _ = writeln!(
            body,
            r#"<h2>Near cache</h2>
<p id="near-cache">{}: {} hits, {} misses, {} invalidations, {} flushes; {} sessions held ({} bytes)</p>"#,
            if near.is_tracking() {
                "tracking"
            } else {
                "not tracking (loads go to Redis)"
            },
            near.hits(),
            near.misses(),
            near.invalidations(),
            near.flushes(),
            near.entries(),
            near.bytes(),
        );
    }
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>fastsession demo</title></head>\n<body>\n<h1>fastsession demo</h1>\n{body}</body></html>\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_text_is_escaped() {
        let view = View {
            user: Some("<script>alert(1)</script>".to_owned()),
            counters: [("a".to_owned(), 2)].into(),
            flashes: vec!["\"><img src=x>".to_owned()],
            remember: false,
        };
        let html = render(&view, Some("x\" onfocus=\"alert(1)"), None);
        assert!(!html.contains("<script>") && !html.contains("<img"));
        assert!(html.contains("&lt;script&gt;") && html.contains("x&quot; onfocus"));
        assert!(html.contains(r#"<li id="counter-a">a: 2</li>"#));
    }
}
