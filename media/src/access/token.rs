//! Access tokens: HS256 JSON Web Tokens (RFC 7519, compact JWS of RFC 7515) minted and verified
//! with one shared secret. Only `alg: HS256` is accepted (`none` and every other algorithm are
//! refused before the signature is looked at); the signature is checked in constant time
//! before the claims are parsed. Pure: time is passed in as Unix seconds.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::net::IpAddr;
use thiserror::Error;

/// Longest token looked at (RTMP names, SRT streamids and URLs carry them; real ones are ~250).
pub const MAX_TOKEN_LEN: usize = 2048;

type HmacSha256 = Hmac<Sha256>;

/// What a token allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Play,
    Publish,
    /// Resumable uploads (`/api/v1/uploads`), and nothing else: no stream or video is named.
    Upload,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Play => "play",
            Action::Publish => "publish",
            Action::Upload => "upload",
        }
    }
}

/// A token's claims. `stream` or `video` names what it opens: exactly, or every name starting
/// with it when `prefix` is true.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub act: Action,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub prefix: bool,
    /// Expiry, Unix seconds: the token is refused from this second on.
    pub exp: u64,
    /// Not before, Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    /// Issued at, Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    /// The only client address the token is good for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<IpAddr>,
    /// Set in session tokens (Rill's own, carried into LL-HLS/DASH child URLs): the session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
}

/// Why a token was refused. Never contains the token or the secret.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum TokenError {
    #[error("token longer than {MAX_TOKEN_LEN} bytes")]
    TooLong,
    #[error("token is not three base64url parts")]
    Shape,
    #[error("token header is not valid")]
    Header,
    #[error("token algorithm {0:?} is not accepted (HS256 only)")]
    Algorithm(String),
    #[error("token signature does not verify")]
    Signature,
    #[error("token claims are not valid")]
    Claims,
    #[error("token expired")]
    Expired,
    #[error("token not valid yet")]
    NotYetValid,
}

impl TokenError {
    /// A short label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            TokenError::TooLong | TokenError::Shape | TokenError::Header | TokenError::Claims => "malformed",
            TokenError::Algorithm(_) => "algorithm",
            TokenError::Signature => "signature",
            TokenError::Expired => "expired",
            TokenError::NotYetValid => "not_yet_valid",
        }
    }
}

#[derive(Deserialize)]
struct Header {
    alg: String,
}

/// Mints and verifies tokens with one secret.
#[derive(Clone)]
pub struct Signer {
    key: HmacSha256,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(…)")
    }
}

/// The header of every token Rill mints.
const HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

impl Signer {
    pub fn new(secret: &[u8]) -> Signer {
        Signer { key: HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length") }
    }

    /// The compact token for `claims`.
    pub fn mint(&self, claims: &Claims) -> String {
        let payload = serde_json::to_vec(claims).expect("claims serialize");
        self.sign_parts(HEADER.as_bytes(), &payload)
    }

    /// A token of any header and payload bytes, signed with this secret: for tests and fuzzing
    /// (the verifier must refuse whatever is not a valid Rill token even when it is signed).
    pub fn sign_parts(&self, header: &[u8], payload: &[u8]) -> String {
        let signing_input = format!("{}.{}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(payload));
        let mut mac = self.key.clone();
        mac.update(signing_input.as_bytes());
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
    }

    /// The claims of `token` if it is well formed, signed with this secret and valid at `now`
    /// (Unix seconds). Nothing but the header is parsed before the signature verifies.
    pub fn verify(&self, token: &str, now: u64) -> Result<Claims, TokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::TooLong);
        }
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Shape);
        };
        let header = URL_SAFE_NO_PAD.decode(header).map_err(|_| TokenError::Shape)?;
        let header: Header = serde_json::from_slice(&header).map_err(|_| TokenError::Header)?;
        if header.alg != "HS256" {
            // Echoed in refusals and logs: letters and digits only, short.
            return Err(TokenError::Algorithm(
                header.alg.chars().filter(char::is_ascii_alphanumeric).take(16).collect(),
            ));
        }
        let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| TokenError::Shape)?;
        let signed = &token[..token.len() - parts_len_after_payload(token)];
        let mut mac = self.key.clone();
        mac.update(signed.as_bytes());
        // Constant time (hmac's `verify_slice` compares with `subtle`).
        mac.verify_slice(&signature).map_err(|_| TokenError::Signature)?;
        let payload = URL_SAFE_NO_PAD.decode(payload).map_err(|_| TokenError::Shape)?;
        let claims: Claims = serde_json::from_slice(&payload).map_err(|_| TokenError::Claims)?;
        if now >= claims.exp {
            return Err(TokenError::Expired);
        }
        if claims.nbf.is_some_and(|nbf| now < nbf) {
            return Err(TokenError::NotYetValid);
        }
        Ok(claims)
    }
}

/// The length of `.<signature>` at the end of a three-part token.
fn parts_len_after_payload(token: &str) -> usize {
    token.len() - token.rfind('.').unwrap_or(token.len())
}

/// Whether `text` has the shape of a compact JWT (three base64url parts, the first a JSON
/// object): how a token given where a stream key goes is told from a key.
pub fn looks_like_token(text: &str) -> bool {
    text.starts_with("eyJ")
        && text.bytes().filter(|&b| b == b'.').count() == 2
        && text.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Constant-time equality of two secrets (their lengths are not hidden).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"a test secret that is long enough";

    fn claims() -> Claims {
        Claims {
            act: Action::Play,
            stream: Some("studio".into()),
            video: None,
            prefix: false,
            exp: 2_000_000_000,
            nbf: Some(1_700_000_000),
            iat: None,
            ip: None,
            sid: None,
        }
    }

    /// A token made by another implementation (Python's `hmac` over `base64url(header).base64url({"act": "play", "stream":
    /// "studio", "exp": 2000000000, "nbf": 1700000000})`, compact JSON in the order
    /// Rill writes them) verifies, and Rill mints the same bytes.
    #[test]
    fn known_answer() {
        let signer = Signer::new(SECRET);
        let token = signer.mint(&claims());
        assert_eq!(
            token,
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.\
             eyJhY3QiOiJwbGF5Iiwic3RyZWFtIjoic3R1ZGlvIiwiZXhwIjoyMDAwMDAwMDAwLCJuYmYiOjE3MDAwMDAwMDB9.\
             G7a_UKxCKblZV9bSyionJsPk6Cr42F4bxBYRV-2nOY4"
        );
        assert_eq!(signer.verify(&token, 1_800_000_000), Ok(claims()));
        // jwt.io's HS256 example ("your-256-bit-secret"): signature checks, claims are not Rill's.
        let jwt_io = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
        assert_eq!(Signer::new(b"your-256-bit-secret").verify(jwt_io, 0), Err(TokenError::Claims));
        assert_eq!(Signer::new(b"another secret").verify(jwt_io, 0), Err(TokenError::Signature));
    }

    #[test]
    fn time_bounds() {
        let signer = Signer::new(SECRET);
        let token = signer.mint(&claims());
        assert_eq!(signer.verify(&token, 2_000_000_000), Err(TokenError::Expired));
        assert_eq!(signer.verify(&token, 1_699_999_999), Err(TokenError::NotYetValid));
        assert!(signer.verify(&token, 1_700_000_000).is_ok());
    }

    #[test]
    fn tampering_is_refused() {
        let signer = Signer::new(SECRET);
        let token = signer.mint(&claims());
        let (head, signature) = token.rsplit_once('.').unwrap();
        let (header, _) = head.split_once('.').unwrap();
        // Another stream in the payload, the signature kept.
        let other = URL_SAFE_NO_PAD.encode(br#"{"act":"play","stream":"other","exp":2000000000}"#);
        assert_eq!(signer.verify(&format!("{header}.{other}.{signature}"), 1_800_000_000), Err(TokenError::Signature));
        // One bit of the signature flipped.
        let mut bytes = token.clone().into_bytes();
        let last = bytes.len() - 2;
        bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
        assert_eq!(signer.verify(&String::from_utf8(bytes).unwrap(), 1_800_000_000), Err(TokenError::Signature));
        // Another secret.
        assert_eq!(Signer::new(b"other").verify(&token, 1_800_000_000), Err(TokenError::Signature));
    }

    #[test]
    fn alg_none_and_others_are_refused() {
        let signer = Signer::new(SECRET);
        let payload = URL_SAFE_NO_PAD.encode(br#"{"act":"play","stream":"studio","exp":2000000000}"#);
        for alg in ["none", "None", "HS512", "RS256"] {
            let header = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#));
            assert_eq!(
                signer.verify(&format!("{header}.{payload}."), 1_800_000_000),
                Err(TokenError::Algorithm(alg.into()))
            );
            // Even signed with the secret.
            let signed = signer.sign_parts(format!(r#"{{"alg":"{alg}"}}"#).as_bytes(), b"{}");
            assert_eq!(signer.verify(&signed, 1_800_000_000), Err(TokenError::Algorithm(alg.into())));
        }
    }

    #[test]
    fn malformed() {
        let signer = Signer::new(SECRET);
        for bad in ["", "a", "a.b", "a.b.c.d", "!!.!!.!!", "e30.e30.", "eyJhbGciOiJIUzI1NiJ9..."] {
            assert!(signer.verify(bad, 0).is_err(), "{bad}");
        }
        assert_eq!(signer.verify(&"a".repeat(MAX_TOKEN_LEN + 1), 0), Err(TokenError::TooLong));
        assert!(looks_like_token(&signer.mint(&claims())));
        assert!(!looks_like_token("sk_0123456789abcdef"));
        assert!(!looks_like_token("eyJ.a.b?c"));
    }
}
