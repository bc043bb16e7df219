//! Shared helpers: configs, and reading cookies off responses.

use http::HeaderMap;

/// `name=value` of each `Set-Cookie`, in order.
pub(crate) fn set_cookies(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all("set-cookie")
        .iter()
        .map(|v| {
            let line = v.to_str().expect("ASCII Set-Cookie");
            line.split(';').next().unwrap_or_default().to_owned()
        })
        .collect()
}

/// A `Cookie` header holding every cookie the response set.
pub(crate) fn cookie_header(headers: &HeaderMap) -> String {
    set_cookies(headers).join("; ")
}
