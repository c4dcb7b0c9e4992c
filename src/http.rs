//! Plain HTTP types shared by the core and the worker adapter. The core takes
//! a [`Request`] and returns a [`Response`]; no `worker` type crosses this line.

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

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
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

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
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

    pub fn cors(self) -> Self {
        self.header("Access-Control-Allow-Origin", "*")
            .header("Access-Control-Allow-Headers", "Authorization, Content-Type")
            .header("Access-Control-Allow-Methods", "GET, POST, PUT, PATCH, DELETE, OPTIONS")
            .header("Access-Control-Max-Age", "600")
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}
