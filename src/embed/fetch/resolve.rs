//! `image_key` → URL under the configured base.
//!
//! `Url::join` follows WHATWG rules, which are made for browsers, not for
//! confinement: `%2e%2e/` and `.%2e/` are dot segments, `\` is a slash in
//! special schemes, tabs and newlines are dropped, and `file:etc/passwd`
//! joined to an https base is `file:///etc/passwd`. So the key is checked
//! before joining (cheap, readable refusals) and the result is checked
//! after joining, which is what holds whatever the encoding: same scheme,
//! same host and port, same credentials, a path under the base path whose
//! percent-decoded segments hold no `.`/`..`, `\`, NUL or control
//! characters (`%2f..%2f` only becomes a traversal once a file path or an
//! image server decodes it).

use url::Url;

/// Why a key is refused.
pub type KeyError = &'static str;

/// Checks the text of a key, whatever it is resolved against (a base URL or
/// an S3 bucket): a relative path without dot segments, backslashes or
/// control characters, in its raw and its percent-decoded form.
pub(super) fn check_key_text(key: &str) -> Result<(), KeyError> {
    if key.is_empty() {
        return Err("image_key is empty");
    }
    let decoded = percent_decode(key);
    for text in [key.as_bytes(), decoded.as_slice()] {
        if text.first() == Some(&b'/') {
            return Err("image_key must be a relative path");
        }
        if text.contains(&b'\\') {
            return Err("image_key must not contain `\\`");
        }
        if text.iter().any(|b| b.is_ascii_control()) {
            return Err("image_key must not contain control characters");
        }
        if has_dot_segment(text) {
            return Err("image_key must not contain `.` or `..` segments");
        }
    }
    if key.chars().any(char::is_control) {
        return Err("image_key must not contain control characters");
    }
    Ok(())
}

/// Resolves `key` against `base` (whose path ends in `/`) and proves the
/// result lies under it.
pub fn resolve_key(base: &Url, key: &str) -> Result<Url, KeyError> {
    check_key_text(key)?;
    // `a:b` parses as an absolute URL of scheme `a` (`file:etc/passwd`).
    let first = key.split(['/', '?', '#']).next().unwrap_or_default();
    if first.contains(':') {
        return Err("image_key must be a relative path, not a URL");
    }
    let url = base
        .join(key)
        .map_err(|_| "image_key does not form a valid URL")?;
    under_base(base, &url)?;
    Ok(url)
}

/// The after-resolution check: `url` is `base` plus a path below it.
pub(super) fn under_base(base: &Url, url: &Url) -> Result<(), KeyError> {
    if url.scheme() != base.scheme() {
        return Err("image_key resolves to another scheme");
    }
    if url.host() != base.host() || url.port_or_known_default() != base.port_or_known_default() {
        return Err("image_key resolves to another host");
    }
    if url.username() != base.username() || url.password() != base.password() {
        return Err("image_key resolves to other credentials");
    }
    let rest = url
        .path()
        .strip_prefix(base.path())
        .ok_or("image_key resolves outside the base path")?;
    let decoded = percent_decode(rest);
    if rest.is_empty()
        || has_dot_segment(&decoded)
        || decoded.contains(&b'\\')
        || decoded.iter().any(|b| b.is_ascii_control())
    {
        return Err("image_key resolves outside the base path");
    }
    Ok(())
}

fn has_dot_segment(path: &[u8]) -> bool {
    path.split(|b| *b == b'/' || *b == b'\\')
        .any(|s| s == b"." || s == b"..")
}

/// `%XX` → byte; anything else as is (a stray `%` stays).
fn percent_decode(s: &str) -> Vec<u8> {
    let hex = |c: Option<&u8>| c.and_then(|c| (*c as char).to_digit(16));
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match (b[i], hex(b.get(i + 1)), hex(b.get(i + 2))) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn plain_keys_resolve_under_the_base() {
        let b = base("https://img.example.com/products/");
        assert_eq!(
            resolve_key(&b, "a/b.jpg").unwrap().as_str(),
            "https://img.example.com/products/a/b.jpg"
        );
        assert_eq!(
            resolve_key(&b, "a%20b.jpg").unwrap().as_str(),
            "https://img.example.com/products/a%20b.jpg"
        );
        let f = base("file:///srv/img/");
        assert_eq!(
            resolve_key(&f, "x/y.png").unwrap().as_str(),
            "file:///srv/img/x/y.png"
        );
    }

    #[test]
    fn no_encoding_climbs_out_of_the_base() {
        for b in ["file:///srv/img/", "https://img.example.com/products/"] {
            let b = base(b);
            for key in [
                "../secret",
                "a/../../secret",
                "%2e%2e/secret",
                "%2E%2E/secret",
                ".%2e/secret",
                "%2e./secret",
                "a/%2e%2e/%2e%2e/secret",
                "..\\secret",
                "a\\..\\..\\secret",
                "%5c..%5csecret",
                "a%2f..%2f..%2fsecret",
                "..%2fsecret",
                "/etc/passwd",
                "%2fetc/passwd",
                "//evil.example/x",
                "\\\\evil.example\\x",
                "file:etc/passwd",
                "file:///etc/passwd",
                "https://evil.example/x.jpg",
                "http:x.jpg",
                "a\u{0}b",
                "a%00b",
                ".\t./secret",
                ".\n./secret",
                "a/\r../secret",
                "./x",
                "",
            ] {
                assert!(resolve_key(&b, key).is_err(), "{b} + {key:?}");
            }
        }
    }

    #[test]
    fn the_after_join_check_holds_on_its_own() {
        let b = base("https://img.example.com/p/");
        for u in [
            "file:///etc/passwd",
            "https://evil.example/p/x",
            "https://img.example.com:8443/p/x",
            "https://u:pw@img.example.com/p/x",
            "https://img.example.com/q/x",
            "https://img.example.com/p/",
            "https://img.example.com/p/a%2f..%2f..%2fx",
            "https://img.example.com/p/%2e%2e%5cx",
        ] {
            assert!(under_base(&b, &Url::parse(u).unwrap()).is_err(), "{u}");
        }
        assert!(under_base(&b, &Url::parse("https://img.example.com/p/x.jpg").unwrap()).is_ok());
    }
}
