//! Plain HTTP types shared by the core and the worker adapter. The core takes
//! a [`Request`] and returns a [`Response`]; no `worker` type crosses this line.
//!
//! Layer: foundation (imports nothing above it); see docs/architecture.md.

use serde::Serialize;

/// Largest request body any endpoint reads; more is refused with 413.
pub const MAX_BODY: usize = 64 * 1024;

#[derive(Debug, Clone, Default)]
pub struct Request {
    pub method: String,
    /// Full URL as received, e.g. `http://127.0.0.1:8787/oauth/token?x=1`.
    pub url: String,
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Client address (CF-Connecting-IP) for rate limiting; never logged.
    pub ip: String,
}

impl Request {
    pub fn new(method: &str, url: &str) -> Self {
        let parsed = url::Url::parse(url).ok();
        Self {
            method: method.to_ascii_uppercase(),
            url: url.to_string(),
            path: parsed
                .as_ref()
                .map(|u| u.path().to_string())
                .unwrap_or_else(|| "/".into()),
            query: parsed
                .as_ref()
                .and_then(|u| u.query().map(str::to_string))
                .unwrap_or_default(),
            headers: Vec::new(),
            body: Vec::new(),
            ip: String::new(),
        }
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_ascii_lowercase(), value.to_string()));
        self
    }

    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// `scheme://host[:port]` of the request, used as issuer when none is configured.
    pub fn origin(&self) -> String {
        url::Url::parse(&self.url)
            .map(|u| u.origin().ascii_serialization())
            .unwrap_or_default()
    }

    pub fn is_loopback(&self) -> bool {
        url::Url::parse(&self.url)
            .ok()
            .and_then(|u| u.host_str().map(crate::redirect_uri::is_loopback_host))
            .unwrap_or(false)
    }

    pub fn query_params(&self) -> Params {
        Params::parse(self.query.as_bytes())
    }

    pub fn cookie(&self, name: &str) -> Option<String> {
        let raw = self.header("cookie")?;
        raw.split(';').find_map(|part| {
            let (k, v) = part.trim().split_once('=')?;
            (k == name).then(|| v.to_string())
        })
    }

    /// Decode an `application/x-www-form-urlencoded` body. Other content types
    /// are refused, as RFC 6749 §3.2 requires for the token endpoint.
    pub fn form(&self) -> Result<Params, String> {
        let ct = self.header("content-type").unwrap_or("");
        let mime = ct.split(';').next().unwrap_or("").trim();
        if !mime.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
            return Err("body must be application/x-www-form-urlencoded".into());
        }
        if std::str::from_utf8(&self.body).is_err() {
            return Err("body is not valid UTF-8".into());
        }
        Ok(Params::parse(&self.body))
    }
}

/// Decoded form or query parameters, keeping repeats so they can be refused
/// (RFC 6749 §3.1: parameters MUST NOT be included more than once).
#[derive(Debug, Clone, Default)]
pub struct Params(pub Vec<(String, String)>);

impl Params {
    pub fn parse(raw: &[u8]) -> Self {
        Params(form_urlencoded::parse(raw).into_owned().collect())
    }

    /// The single value of `name`; empty values count as absent.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    /// Names that appear more than once, for RFC 6749 §3.1 rejection.
    pub fn repeated(&self, names: &[&str]) -> Option<String> {
        names
            .iter()
            .find(|n| self.0.iter().filter(|(k, _)| k == *n).count() > 1)
            .map(|n| n.to_string())
    }

    pub fn encode(pairs: &[(&str, &str)]) -> String {
        let mut ser = form_urlencoded::Serializer::new(String::new());
        for (k, v) in pairs {
            ser.append_pair(k, v);
        }
        ser.finish()
    }
}

/// A response. Its headers are private: [`Response::header`] is the only way
/// in, so every name is an HTTP token and no value carries a control
/// character (CR/LF would split the header, a TAB in a Location is dropped by
/// browsers and turns `/\t/evil` into `//evil`), whatever a caller passes.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// RFC 9110 §5.1: a field name is a token.
fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Percent-encodes every byte outside visible ASCII and space, so a value is
/// one line of printable text. A URL (Location) stays the same URL; nothing
/// the core sends legitimately needs those bytes.
fn header_value(value: &str) -> std::borrow::Cow<'_, str> {
    if value.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return value.into();
    }
    let mut out = String::with_capacity(value.len() + 8);
    for b in value.bytes() {
        if (0x20..0x7f).contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out.into()
}

impl Response {
    pub fn new(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub fn json<T: Serialize>(status: u16, value: &T) -> Self {
        Self::new(status)
            .header("Content-Type", "application/json")
            .body(serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec()))
    }

    /// An HTML page. Pages are never framed (clickjacking on consent) and load
    /// nothing from elsewhere.
    pub fn html(status: u16, body: String) -> Self {
        Self::new(status)
            .header("Content-Type", "text/html; charset=utf-8")
            .header(
                "Content-Security-Policy",
                "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' https: data:; form-action 'self' http: https:; frame-ancestors 'none'; base-uri 'none'",
            )
            .header("X-Frame-Options", "DENY")
            .header("Referrer-Policy", "no-referrer")
            .header("X-Content-Type-Options", "nosniff")
            .no_store()
            .body(body.into_bytes())
    }

    /// 303 See Other: after a POST the browser must follow with GET (RFC 9700
    /// §4.12: a 307 would re-post the user's credentials to the client).
    pub fn see_other(location: &str) -> Self {
        Self::new(303).header("Location", location).no_store()
    }

    pub fn found(location: &str) -> Self {
        Self::new(302).header("Location", location).no_store()
    }

    /// Adds a header. A name that is not a token is dropped (names are
    /// constants in the code, so this never loses a real header); a value is
    /// neutralised by [`header_value`], never split into two headers.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        if is_token(name) {
            self.headers.push((name.to_string(), header_value(value).into_owned()));
        }
        self
    }

    /// Replaces every header of that name with one (same rules as [`Response::header`]).
    pub fn set_header(mut self, name: &str, value: &str) -> Self {
        self.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        self.header(name, value)
    }

    /// The headers, in order; each name a token, each value printable ASCII.
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    pub fn body(mut self, body: Vec<u8>) -> Self {
        self.body = body;
        self
    }

    pub fn no_store(self) -> Self {
        if self.get_header("Cache-Control").is_some() {
            return self;
        }
        self.header("Cache-Control", "no-store").header("Pragma", "no-cache")
    }

    pub fn get_header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// CORS for any origin (these routes authenticate by header, never by
    /// cookie alone). Allows the MCP SDK's `MCP-Protocol-Version` header and
    /// exposes `WWW-Authenticate`, whose `resource_metadata` (RFC 9728 §5.1)
    /// a browser client must read. Adding it twice changes nothing.
    pub fn cors(self) -> Self {
        if self.get_header("Access-Control-Allow-Origin").is_some() {
            return self;
        }
        self.header("Access-Control-Allow-Origin", "*")
            .header(
                "Access-Control-Allow-Headers",
                "Authorization, Content-Type, MCP-Protocol-Version, DPoP",
            )
            .header("Access-Control-Allow-Methods", "GET, POST, PUT, PATCH, DELETE, OPTIONS")
            .header("Access-Control-Expose-Headers", "WWW-Authenticate, DPoP-Nonce")
            .header("Access-Control-Max-Age", "600")
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

type Fut<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + 'a>>;

/// What came back from the document's URL. The fetcher follows no redirect:
/// a 3xx arrives here as its status and is refused.
#[derive(Debug, Clone, Default)]
pub struct Fetched {
    pub status: u16,
    pub content_type: Option<String>,
    pub cache_control: Option<String>,
    /// `Expires`, as unix seconds (the adapter parses the HTTP date).
    pub expires_at: Option<i64>,
    pub body: Vec<u8>,
}

/// Fetching a document: GET, no redirects, at most `timeout_secs` and
/// `max_bytes` (the body is read as a stream and abandoned past the cap).
/// `Err` says why nothing usable came back (timeout, too large, network).
pub trait Fetcher {
    fn get<'a>(&'a self, url: &'a str, timeout_secs: i64, max_bytes: usize) -> Fut<'a, Result<Fetched, String>>;
}

/// No outbound HTTP (native builds unless a test installs its own).
pub struct NoFetcher;

impl Fetcher for NoFetcher {
    fn get<'a>(&'a self, _: &'a str, _: i64, _: usize) -> Fut<'a, Result<Fetched, String>> {
        Box::pin(async { Err("no fetcher".to_string()) })
    }
}

#[cfg(test)]
mod tests {
    use super::Response;

    #[test]
    fn a_header_value_never_carries_a_control_character_nor_makes_a_second_header() {
        let evil = [
            "/\r\nSet-Cookie: pwned=1",
            "/\nSet-Cookie\npwned=1",
            "/\rx",
            "/\t/evil.example",
            "/\u{0}x",
            "/\u{7f}x",
            "/\u{2028}x",
        ];
        for v in evil {
            let r = Response::see_other(v).header("X-Test", v);
            let location: Vec<_> = r.headers().iter().filter(|(k, _)| k == "Location").collect();
            assert_eq!(location.len(), 1, "{v:?}");
            for (k, v2) in r.headers() {
                assert!(v2.bytes().all(|b| (0x20..0x7f).contains(&b)), "{k}: {v2:?} from {v:?}");
                assert!(!k.eq_ignore_ascii_case("set-cookie"), "{v:?} made a Set-Cookie");
            }
            assert!(r.get_header("Location").unwrap().starts_with('/'));
        }
        assert_eq!(
            Response::see_other("/\t/evil").get_header("Location"),
            Some("/%09/evil")
        );
        assert_eq!(
            Response::see_other("/a?b=c%20d").get_header("Location"),
            Some("/a?b=c%20d")
        );
    }

    #[test]
    fn a_header_name_that_is_not_a_token_is_dropped() {
        for name in ["Set-Cookie\r\nX", "X-A: b", "", "X\tY", "X\u{e9}"] {
            let r = Response::new(200).header(name, "v");
            assert!(r.headers().is_empty(), "{name:?}");
        }
        assert_eq!(Response::new(200).header("X-Ok", "v").headers().len(), 1);
    }
}
