//! Camera URLs: parsing `rtsp://user:pass@host/path` into a URL without credentials (what goes
//! on the wire and into logs) and the credentials (handed to the RTSP client only), and
//! redaction of any URL-like string for logs, the API and peer strings.

use thiserror::Error;
use url::Url;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum UrlError {
    #[error("not a URL: {0}")]
    Invalid(String),
    #[error("unsupported scheme {0:?} (only rtsp:// is supported)")]
    Scheme(String),
    #[error("the URL has no host")]
    NoHost,
}

/// Query parameters whose values are treated as secrets (some cameras take credentials there).
const SECRET_QUERY_KEYS: &[&str] = &["pass", "pwd", "token", "auth", "secret", "key", "user", "sig"];

/// A camera's URL, split into what may be shown and what may not.
#[derive(Clone, PartialEq, Eq)]
pub struct CameraUrl {
    /// The URL without user info (sent in RTSP requests).
    url: Url,
    username: Option<String>,
    password: Option<String>,
    /// The URL as shown to operators: no user info, secret query values masked.
    redacted: String,
}

impl std::fmt::Debug for CameraUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("CameraUrl").field(&self.redacted).finish()
    }
}

impl CameraUrl {
    pub fn parse(text: &str) -> Result<CameraUrl, UrlError> {
        let mut url = Url::parse(text.trim()).map_err(|e| UrlError::Invalid(e.to_string()))?;
        if url.scheme() != "rtsp" {
            return Err(UrlError::Scheme(url.scheme().to_string()));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(UrlError::NoHost);
        }
        let decode = |s: &str| {
            url::form_urlencoded::parse(format!("x={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        let username = (!url.username().is_empty()).then(|| decode(url.username()));
        let password = url.password().map(decode);
        // Both succeed on an rtsp:// URL with a host.
        let _ = url.set_username("");
        let _ = url.set_password(None);
        let redacted = mask_query(&url);
        Ok(CameraUrl { url, username, password, redacted })
    }

    /// The URL to request (no credentials; secret query values are still there: the camera
    /// needs them).
    pub fn request_url(&self) -> &Url {
        &self.url
    }

    /// Username and password, when the URL had them.
    pub fn credentials(&self) -> Option<(&str, &str)> {
        self.username.as_deref().map(|u| (u, self.password.as_deref().unwrap_or("")))
    }

    /// What logs, the API and the Bus's peer string show.
    pub fn redacted(&self) -> &str {
        &self.redacted
    }
}

fn mask_query(url: &Url) -> String {
    let mut shown = url.clone();
    if url.query().is_some() {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| {
                let lower = k.to_ascii_lowercase();
                let secret = SECRET_QUERY_KEYS.iter().any(|s| lower.contains(s));
                (k.into_owned(), if secret { "***".to_string() } else { v.into_owned() })
            })
            .collect();
        shown.query_pairs_mut().clear().extend_pairs(pairs);
    }
    shown.to_string()
}

/// Best-effort redaction of a string that may be a URL with credentials (e.g. a URL that
/// failed to parse): user info and secret query values are masked.
pub fn redact(text: &str) -> String {
    if let Ok(url) = CameraUrl::parse(text) {
        return url.redacted;
    }
    // Not a valid camera URL: drop anything between "://" and the last '@' before the path.
    match text.find("://") {
        Some(start) => {
            let rest = &text[start + 3..];
            let authority_end = rest.find('/').unwrap_or(rest.len());
            match rest[..authority_end].rfind('@') {
                Some(at) => format!("{}://***@{}", &text[..start], &rest[at + 1..]),
                None => text.to_string(),
            }
        }
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_credentials_from_the_url() {
        let u = CameraUrl::parse("rtsp://admin:p%40ss@10.0.0.5:554/Streaming/101?channel=1&password=x").unwrap();
        assert_eq!(u.credentials(), Some(("admin", "p@ss")));
        assert_eq!(u.request_url().as_str(), "rtsp://10.0.0.5:554/Streaming/101?channel=1&password=x");
        assert_eq!(u.redacted(), "rtsp://10.0.0.5:554/Streaming/101?channel=1&password=***");
        assert!(!format!("{u:?}").contains("p@ss"));
        let plain = CameraUrl::parse("rtsp://cam.local/live").unwrap();
        assert_eq!(plain.credentials(), None);
        assert_eq!(plain.redacted(), "rtsp://cam.local/live");
        let user_only = CameraUrl::parse("rtsp://viewer@cam.local/live").unwrap();
        assert_eq!(user_only.credentials(), Some(("viewer", "")));
    }

    #[test]
    fn refuses_other_schemes_and_garbage() {
        assert_eq!(CameraUrl::parse("http://cam/x").unwrap_err(), UrlError::Scheme("http".into()));
        assert!(matches!(CameraUrl::parse("not a url"), Err(UrlError::Invalid(_))));
        assert!(CameraUrl::parse("rtsp://").is_err());
    }

    #[test]
    fn redacts_even_unparsable_urls() {
        assert_eq!(redact("rtsp://u:secret@cam/x"), "rtsp://cam/x");
        assert_eq!(redact("rtmp://u:secret@host:99/app"), "rtmp://***@host:99/app");
        assert_eq!(redact("no url here"), "no url here");
    }
}
