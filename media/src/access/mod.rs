//! The one access decision every protocol asks: a [`Request`] (action, protocol, stream or
//! video, stream key or token, client address) is answered by [`Access::decide`] with a
//! [`Grant`] or a typed [`Denied`], counted by protocol and reason for `/metrics`.
//!
//! What a stream key maps to and which streams need a token come from the caller's
//! [`Directory`]; tokens are HS256 JWTs ([`token`]). LL-HLS/DASH viewers get a *session token*
//! ([`Access::open_session`]) that the HTTP layer carries into every child URL; it stays good
//! while the session keeps fetching (an idle limit, [`AccessConfig::session_idle_s`]) up to a
//! hard limit ([`AccessConfig::session_max_s`]). Sans-IO: time is passed in (Unix seconds).

pub mod limit;
pub mod token;

use crate::metrics::{Exposition, Kind};
use crate::path::is_valid_stream_name;
use crate::sync::lock;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use thiserror::Error;
pub use limit::{refusal_delay, FailureLimiter, LimitConfig};
pub use token::{constant_time_eq, looks_like_token, Action, Claims, Signer, TokenError};

/// Who may watch a stream (or a video).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Playback {
    /// Anyone who knows the name.
    #[default]
    Public,
    /// Only with a play token for it.
    Token,
}

/// The protocol a request came in on (the `protocol` label of the metrics).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    Rtmp,
    Rtmps,
    Srt,
    Whip,
    Whep,
    Flv,
    Hls,
    Dash,
    /// A video of the catalog (HLS, DASH, thumbnails, downloads under `/vod/`).
    Vod,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Rtmp => "rtmp",
            Protocol::Rtmps => "rtmps",
            Protocol::Srt => "srt",
            Protocol::Whip => "whip",
            Protocol::Whep => "whep",
            Protocol::Flv => "flv",
            Protocol::Hls => "hls",
            Protocol::Dash => "dash",
            Protocol::Vod => "vod",
        }
    }
}

/// What a request is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resource<'a> {
    /// A live stream, by its public name.
    Stream(&'a str),
    /// A video, by its id.
    Video(&'a str),
}

/// One request to publish or play.
#[derive(Clone, Debug)]
pub struct Request<'a> {
    pub action: Action,
    pub protocol: Protocol,
    /// What is asked for. A publish request may leave it out when its credential is a token
    /// given in place of the stream key (the token names the stream).
    pub resource: Option<Resource<'a>>,
    /// A stream key (publish).
    pub key: Option<&'a str>,
    /// A token (JWT), from wherever the protocol carries it.
    pub token: Option<&'a str>,
    pub client: Option<IpAddr>,
}

impl<'a> Request<'a> {
    /// A publish request as the ingest protocols see it: `given` is what stands where the
    /// stream key goes (the key, a publish token, or the stream's name when `token` is given
    /// beside it, as in `rtmp://HOST/live/<name>?token=…`).
    pub fn publish(protocol: Protocol, given: &'a str, token: Option<&'a str>, client: Option<IpAddr>) -> Self {
        let (resource, key, token) = match token {
            Some(token) => (Some(Resource::Stream(given)), None, Some(token)),
            None if looks_like_token(given) => (None, None, Some(given)),
            None => (None, Some(given), None),
        };
        Request { action: Action::Publish, protocol, resource, key, token, client }
    }

    /// A play request for video `id`.
    pub fn play_video(protocol: Protocol, id: &'a str, token: Option<&'a str>, client: Option<IpAddr>) -> Self {
        Request { resource: Some(Resource::Video(id)), ..Request::play(protocol, id, token, client) }
    }

    /// A play request for stream `name`.
    pub fn play(protocol: Protocol, name: &'a str, token: Option<&'a str>, client: Option<IpAddr>) -> Self {
        Request {
            action: Action::Play,
            protocol,
            resource: Some(Resource::Stream(name)),
            key: None,
            token: token.filter(|t| !t.is_empty()),
            client,
        }
    }
}

/// How a request was let in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Via {
    /// The stream (or video) is public.
    Public,
    /// A stream key (or, in open mode, the name).
    Key,
    /// A token; its claims.
    Token(Box<Claims>),
}

/// A request let in: the stream (its public name) or video it may use, and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    /// The stream's public name, or the video's id.
    pub name: String,
    pub via: Via,
}

/// Why a request was refused. The text is safe to send to the client and to log: it never
/// holds a key, a token or the secret.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum Denied {
    #[error("a token is needed (this stream plays with a token only)")]
    MissingToken,
    #[error("no stream key or token")]
    MissingCredentials,
    #[error("unknown stream key")]
    UnknownKey,
    #[error("invalid stream name (allowed: [A-Za-z0-9_-]{{1,64}})")]
    InvalidName,
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error("the token is for another action")]
    WrongAction,
    #[error("the token is for another stream or video")]
    WrongResource,
    #[error("the token is bound to another client address")]
    WrongClient,
    #[error("the session ended (idle too long or past its length); start again with a fresh token")]
    SessionEnded,
    #[error("too many failed credentials from this address; try again in {retry_after_s} s")]
    TooManyFailures { retry_after_s: u64 },
}

impl Denied {
    /// The `reason` label of `rill_access_denied_total`.
    pub fn reason(&self) -> &'static str {
        match self {
            Denied::MissingToken => "missing_token",
            Denied::MissingCredentials => "missing_credentials",
            Denied::UnknownKey => "unknown_key",
            Denied::InvalidName => "invalid_name",
            Denied::Token(e) => e.label(),
            Denied::WrongAction => "wrong_action",
            Denied::WrongResource => "wrong_resource",
            Denied::WrongClient => "wrong_client",
            Denied::SessionEnded => "session_ended",
            Denied::TooManyFailures { .. } => "rate_limited",
        }
    }

    /// True for a credential that is simply wrong — an unknown stream key, a token not signed
    /// by us — rather than a good one used out of its time or scope: what a guesser sends.
    pub fn is_guess(&self) -> bool {
        matches!(
            self,
            Denied::UnknownKey
                | Denied::Token(
                    TokenError::TooLong
                        | TokenError::Shape
                        | TokenError::Header
                        | TokenError::Algorithm(_)
                        | TokenError::Signature
                        | TokenError::Claims
                )
        )
    }

    /// True when the answer should be slowed ([`limit::refusal_delay`]): guesses and refusals
    /// of an address that guessed too much.
    pub fn is_slowed(&self) -> bool {
        self.is_guess() || matches!(self, Denied::TooManyFailures { .. })
    }

    /// True when the credential is good but for another stream, action or client.
    pub fn is_out_of_scope(&self) -> bool {
        matches!(self, Denied::WrongAction | Denied::WrongResource | Denied::WrongClient)
    }

    /// True when the client gave no credential at all (HTTP 401 rather than 403).
    pub fn is_missing(&self) -> bool {
        matches!(self, Denied::MissingToken | Denied::MissingCredentials)
    }
}

/// What the decision needs to know of streams and videos: the caller's registry.
pub trait Directory {
    /// The public name of the stream that `key` publishes (in open mode: `key` itself, when
    /// it is a valid name).
    fn stream_of_key(&self, key: &str) -> Result<String, Denied>;
    /// Who may watch `resource`.
    fn playback(&self, resource: Resource<'_>) -> Playback;
}

/// The decision as protocols ask it: [`Access::decide`] with the server's [`Directory`] and
/// clock (the binary implements it; ingest and relay hold an `Arc<dyn Gate>`).
pub trait Gate: Send + Sync + 'static {
    fn decide(&self, request: &Request<'_>) -> Result<Grant, Denied>;
}

/// The `token` parameter of a URL query (`a=1&token=…`). Tokens are base64url and dots, so
/// nothing needs decoding; an empty value is none.
pub fn token_from_query(query: &str) -> Option<&str> {
    query.split('&').find_map(|pair| pair.strip_prefix("token=")).filter(|t| !t.is_empty())
}

/// Settings of the decision.
#[derive(Clone, Debug)]
pub struct AccessConfig {
    /// A session with no request for this long has ended.
    pub session_idle_s: u64,
    /// No session lasts longer than this.
    pub session_max_s: u64,
    /// Sessions tracked at most (beyond, the idle ones are dropped first, then new ones refused).
    pub max_sessions: usize,
    /// Failed credentials per client address before it is refused for a while.
    pub failures: LimitConfig,
}

impl Default for AccessConfig {
    fn default() -> Self {
        AccessConfig {
            session_idle_s: 30,
            session_max_s: 24 * 3600,
            max_sessions: 100_000,
            failures: LimitConfig::default(),
        }
    }
}

/// The decision, with the signing secret, the live sessions and the refusal counters.
pub struct Access {
    signer: Signer,
    config: AccessConfig,
    /// Session id → last request (Unix seconds).
    sessions: Mutex<HashMap<String, u64>>,
    denied: Mutex<BTreeMap<(Protocol, &'static str), u64>>,
    failures: Mutex<FailureLimiter>,
    /// Addresses that reached the failure limit.
    blocked_total: AtomicU64,
}

impl Access {
    pub fn new(secret: &[u8], config: AccessConfig) -> Access {
        Access {
            signer: Signer::new(secret),
            failures: Mutex::new(FailureLimiter::new(config.failures)),
            config,
            sessions: Mutex::new(HashMap::new()),
            denied: Mutex::new(BTreeMap::new()),
            blocked_total: AtomicU64::new(0),
        }
    }

    pub fn signer(&self) -> &Signer {
        &self.signer
    }

    /// Decides `request` at `now`; a refusal is counted and logged (without credentials).
    pub fn decide(&self, request: &Request<'_>, directory: &dyn Directory, now: u64) -> Result<Grant, Denied> {
        let blocked = request.client.and_then(|client| self.blocked_for(client, now));
        let decided = match (blocked, request.action) {
            (Some(rest), _) => Err(Denied::TooManyFailures { retry_after_s: rest.as_secs().max(1) }),
            (None, Action::Publish) => self.publish(request, directory, now),
            (None, Action::Play) => self.play(request, directory, now),
            // Uploads are not a stream or video request: see `check_upload`.
            (None, Action::Upload) => Err(Denied::WrongAction),
        };
        if let (Err(denied), Some(client)) = (&decided, request.client) {
            if denied.is_guess() {
                self.record_failure(client, now);
            }
        }
        if let Err(denied) = &decided {
            *lock(&self.denied).entry((request.protocol, denied.reason())).or_default() += 1;
            tracing::info!(
                protocol = request.protocol.as_str(),
                action = request.action.as_str(),
                resource = ?request.resource,
                client = ?request.client,
                reason = %denied,
                "access denied"
            );
        }
        decided
    }

    /// Whether `token` is a good upload token (`act: upload`) at `now`: what the upload
    /// endpoints accept besides the admin token.
    pub fn check_upload(&self, token: &str, now: u64) -> Result<Claims, Denied> {
        let claims = self.signer.verify(token, now)?;
        if claims.act != Action::Upload || claims.sid.is_some() {
            return Err(Denied::WrongAction);
        }
        Ok(claims)
    }

    fn publish(&self, request: &Request<'_>, directory: &dyn Directory, now: u64) -> Result<Grant, Denied> {
        if let Some(token) = request.token {
            let claims = self.signer.verify(token, now)?;
            let name = match request.resource {
                Some(Resource::Stream(name)) => name.to_string(),
                // A token in place of the key names its stream exactly.
                _ => match (&claims.stream, claims.prefix) {
                    (Some(name), false) => name.clone(),
                    _ => return Err(Denied::WrongResource),
                },
            };
            if !is_valid_stream_name(&name) {
                return Err(Denied::InvalidName);
            }
            check_claims(&claims, Action::Publish, Resource::Stream(&name), request.client)?;
            return Ok(Grant { name, via: Via::Token(Box::new(claims)) });
        }
        let key = request.key.ok_or(Denied::MissingCredentials)?;
        let name = directory.stream_of_key(key)?;
        Ok(Grant { name, via: Via::Key })
    }

    fn play(&self, request: &Request<'_>, directory: &dyn Directory, now: u64) -> Result<Grant, Denied> {
        let resource = request.resource.ok_or(Denied::InvalidName)?;
        let name = match resource {
            Resource::Stream(name) | Resource::Video(name) => name.to_string(),
        };
        if directory.playback(resource) == Playback::Public {
            return Ok(Grant { name, via: Via::Public });
        }
        let token = request.token.ok_or(Denied::MissingToken)?;
        let claims = self.signer.verify(token, now)?;
        check_claims(&claims, Action::Play, resource, request.client)?;
        if let Some(sid) = &claims.sid {
            self.touch_session(sid, claims.iat.unwrap_or(0), now)?;
        }
        Ok(Grant { name, via: Via::Token(Box::new(claims)) })
    }

    /// How long `client` stays refused for having failed too often, if it is.
    pub fn blocked_for(&self, client: IpAddr, now: u64) -> Option<std::time::Duration> {
        lock(&self.failures).blocked_for(client, now * 1000)
    }

    /// Counts a failed credential from `client` (this decision counts its own; the HTTP layer
    /// counts the admin token's).
    pub fn record_failure(&self, client: IpAddr, now: u64) {
        if lock(&self.failures).failed(client, now * 1000) {
            self.blocked_total.fetch_add(1, Ordering::Relaxed);
            let limit = self.config.failures;
            tracing::warn!(%client, failures = limit.max_failures, window_s = limit.window_ms / 1000, "client address refused for a while: too many failed credentials");
        }
    }

    /// A session token for a viewer let in by `grant` (LL-HLS, DASH): good for exactly what
    /// was granted, from the same address if the play token was bound to one, while the
    /// session keeps fetching. `None` for a grant that needs none (public) or is one already.
    pub fn open_session(&self, grant: &Grant, resource: Resource<'_>, now: u64) -> Option<String> {
        let Via::Token(claims) = &grant.via else { return None };
        if claims.sid.is_some() {
            return None;
        }
        let sid = new_session_id();
        let (stream, video) = match resource {
            Resource::Stream(name) => (Some(name.to_string()), None),
            Resource::Video(id) => (None, Some(id.to_string())),
        };
        let session = Claims {
            act: Action::Play,
            stream,
            video,
            prefix: false,
            exp: now + self.config.session_max_s,
            nbf: None,
            iat: Some(now),
            ip: claims.ip,
            sid: Some(sid.clone()),
        };
        let mut sessions = lock(&self.sessions);
        self.make_room(&mut sessions, now);
        sessions.insert(sid, now);
        Some(self.signer.mint(&session))
    }

    /// A known session is alive while fetched within the idle limit; an unknown one (another
    /// node's, or from before a restart) only while its token is that fresh.
    fn touch_session(&self, sid: &str, issued: u64, now: u64) -> Result<(), Denied> {
        let idle = self.config.session_idle_s;
        let mut sessions = lock(&self.sessions);
        let last = sessions.get(sid).copied().unwrap_or(issued);
        if now.saturating_sub(last) > idle {
            sessions.remove(sid);
            return Err(Denied::SessionEnded);
        }
        if !sessions.contains_key(sid) {
            self.make_room(&mut sessions, now);
        }
        sessions.insert(sid.to_string(), now.max(last));
        Ok(())
    }

    fn make_room(&self, sessions: &mut HashMap<String, u64>, now: u64) {
        if sessions.len() >= self.config.max_sessions {
            let idle = self.config.session_idle_s;
            sessions.retain(|_, last| now.saturating_sub(*last) <= idle);
        }
        if sessions.len() >= self.config.max_sessions {
            // Still full of live sessions: the oldest-fetched one goes.
            if let Some(oldest) = sessions.iter().min_by_key(|(_, last)| **last).map(|(k, _)| k.clone()) {
                sessions.remove(&oldest);
            }
        }
    }

    /// Sessions tracked now.
    pub fn sessions(&self) -> usize {
        lock(&self.sessions).len()
    }

    /// `rill_access_denied_total{protocol,reason}` and `rill_access_sessions`.
    pub fn write_metrics(&self, out: &mut Exposition) {
        const DENIED: &str = "Requests refused by the access decision, by protocol and reason";
        out.declare("rill_access_denied_total", Kind::Counter, DENIED);
        for ((protocol, reason), count) in lock(&self.denied).iter() {
            out.labelled(
                "rill_access_denied_total",
                Kind::Counter,
                DENIED,
                &[("protocol", protocol.as_str()), ("reason", reason)],
                *count as f64,
            );
        }
        out.sample("rill_access_sessions", Kind::Gauge, "LL-HLS/DASH token sessions tracked", self.sessions() as f64);
        out.sample(
            "rill_access_blocked_addresses_total",
            Kind::Counter,
            "Times a client address reached the failed-credential limit and was refused for a while",
            self.blocked_total.load(Ordering::Relaxed) as f64,
        );
        out.sample(
            "rill_access_failure_windows",
            Kind::Gauge,
            "Client addresses with failed credentials counted now",
            lock(&self.failures).tracked() as f64,
        );
    }
}

/// Whether `claims` allow `action` on `resource` from `client`.
fn check_claims(claims: &Claims, action: Action, resource: Resource<'_>, client: Option<IpAddr>) -> Result<(), Denied> {
    if claims.act != action {
        return Err(Denied::WrongAction);
    }
    let (allowed, name) = match resource {
        Resource::Stream(name) => (claims.stream.as_deref(), name),
        Resource::Video(id) => (claims.video.as_deref(), id),
    };
    let covered = match allowed {
        Some(allowed) if claims.prefix => name.starts_with(allowed),
        Some(allowed) => constant_time_eq(allowed.as_bytes(), name.as_bytes()),
        None => false,
    };
    if !covered {
        return Err(Denied::WrongResource);
    }
    if let (Some(bound), Some(client)) = (claims.ip, client) {
        if bound != client.to_canonical() {
            return Err(Denied::WrongClient);
        }
    }
    Ok(())
}

/// 128 random bits as hex.
fn new_session_id() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the OS provides randomness");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000;

    struct Dir;
    impl Directory for Dir {
        fn stream_of_key(&self, key: &str) -> Result<String, Denied> {
            match key {
                "sk_1" => Ok("studio".into()),
                _ => Err(Denied::UnknownKey),
            }
        }
        fn playback(&self, resource: Resource<'_>) -> Playback {
            match resource {
                Resource::Stream("open") => Playback::Public,
                _ => Playback::Token,
            }
        }
    }

    fn access() -> Access {
        Access::new(b"secret", AccessConfig { session_idle_s: 30, session_max_s: 3600, max_sessions: 2, ..AccessConfig::default() })
    }

    fn claims(act: Action, stream: &str) -> Claims {
        Claims {
            act,
            stream: Some(stream.into()),
            video: None,
            prefix: false,
            exp: NOW + 60,
            nbf: None,
            iat: None,
            ip: None,
            sid: None,
        }
    }

    #[test]
    fn an_address_guessing_keys_is_refused_whatever_it_presents_then_let_in_again() {
        let access = access();
        let guesser: IpAddr = "203.0.113.9".parse().unwrap();
        let other: IpAddr = "203.0.113.10".parse().unwrap();
        fn guess(key: &str, from: IpAddr) -> Request<'_> {
            Request::publish(Protocol::Rtmp, key, None, Some(from))
        }
        for i in 0..20 {
            let key = format!("sk_guess{i}");
            let denied = access.decide(&guess(&key, guesser), &Dir, NOW).unwrap_err();
            assert_eq!(denied, Denied::UnknownKey);
            assert!(denied.is_guess() && denied.is_slowed());
        }
        // Now even the right key is refused from that address, on every protocol; not elsewhere.
        let denied = access.decide(&guess("sk_1", guesser), &Dir, NOW + 1).unwrap_err();
        assert_eq!(denied, Denied::TooManyFailures { retry_after_s: 59 });
        let play = Request::play(Protocol::Hls, "open", None, Some(guesser));
        assert!(matches!(access.decide(&play, &Dir, NOW + 1), Err(Denied::TooManyFailures { .. })));
        assert!(access.decide(&Request::publish(Protocol::Srt, "sk_1", None, Some(other)), &Dir, NOW + 1).is_ok());
        // An expired token is no guess: it does not count.
        let expired = access.signer().mint(&Claims { exp: NOW - 1, ..claims(Action::Publish, "studio") });
        let late = Request::publish(Protocol::Rtmp, "studio", Some(&expired), Some(other));
        assert!(!access.decide(&late, &Dir, NOW).unwrap_err().is_guess());
        // The window ends: the right key works again.
        assert!(access.decide(&guess("sk_1", guesser), &Dir, NOW + 60).is_ok());
        let mut out = Exposition::default();
        access.write_metrics(&mut out);
        let text = out.render();
        assert!(text.contains("rill_access_blocked_addresses_total 1"), "{text}");
        assert!(text.contains(r#"rill_access_denied_total{protocol="rtmp",reason="rate_limited"} 1"#), "{text}");
    }

    #[test]
    fn publish_with_key_or_token() {
        let a = access();
        let ok = a.decide(&Request::publish(Protocol::Rtmp, "sk_1", None, None), &Dir, NOW).unwrap();
        assert_eq!((ok.name.as_str(), ok.via), ("studio", Via::Key));
        let denied = a.decide(&Request::publish(Protocol::Rtmp, "sk_2", None, None), &Dir, NOW);
        assert_eq!(denied, Err(Denied::UnknownKey));
        // A publish token beside the name, or in place of the key.
        let token = a.signer().mint(&claims(Action::Publish, "studio"));
        let g = a.decide(&Request::publish(Protocol::Rtmp, "studio", Some(&token), None), &Dir, NOW).unwrap();
        assert_eq!(g.name, "studio");
        assert_eq!(a.decide(&Request::publish(Protocol::Srt, &token, None, None), &Dir, NOW).unwrap().name, "studio");
        let other = a.decide(&Request::publish(Protocol::Rtmp, "other", Some(&token), None), &Dir, NOW);
        assert_eq!(other, Err(Denied::WrongResource));
        // A play token does not publish.
        let upload = a.signer().mint(&Claims { stream: None, ..claims(Action::Upload, "x") });
        assert!(a.check_upload(&upload, NOW).is_ok(), "an upload token opens uploads");
        assert_eq!(a.check_upload(&token, NOW).unwrap_err(), Denied::WrongAction, "a publish token does not");
        let uploading = Request::publish(Protocol::Rtmp, "studio", Some(&upload), None);
        assert_eq!(a.decide(&uploading, &Dir, NOW).unwrap_err(), Denied::WrongAction, "nor does it publish");
        let play = a.signer().mint(&claims(Action::Play, "studio"));
        assert_eq!(a.decide(&Request::publish(Protocol::Whip, &play, None, None), &Dir, NOW), Err(Denied::WrongAction));
        let mut text = String::new();
        let mut out = Exposition::new();
        a.write_metrics(&mut out);
        text.push_str(&out.render());
        assert!(text.contains("rill_access_denied_total{protocol=\"rtmp\",reason=\"unknown_key\"} 1"), "{text}");
        assert!(text.contains("rill_access_denied_total{protocol=\"whip\",reason=\"wrong_action\"} 1"), "{text}");
    }

    #[test]
    fn play_token_rules() {
        let a = access();
        let play =
            |name, token: Option<&str>, client| a.decide(&Request::play(Protocol::Flv, name, token, client), &Dir, NOW);
        assert_eq!(play("open", None, None).unwrap().via, Via::Public);
        assert_eq!(play("studio", None, None), Err(Denied::MissingToken));
        let good = a.signer().mint(&claims(Action::Play, "studio"));
        assert!(play("studio", Some(&good), None).is_ok());
        assert_eq!(play("other", Some(&good), None), Err(Denied::WrongResource));
        let mut expired = claims(Action::Play, "studio");
        expired.exp = NOW;
        assert_eq!(play("studio", Some(&a.signer().mint(&expired)), None), Err(Denied::Token(TokenError::Expired)));
        let mut prefix = claims(Action::Play, "stu");
        prefix.prefix = true;
        assert!(play("studio", Some(&a.signer().mint(&prefix)), None).is_ok());
        let mut bound = claims(Action::Play, "studio");
        bound.ip = Some("10.0.0.1".parse().unwrap());
        let bound = a.signer().mint(&bound);
        assert!(play("studio", Some(&bound), Some("10.0.0.1".parse().unwrap())).is_ok());
        assert!(play("studio", Some(&bound), Some("::ffff:10.0.0.1".parse().unwrap())).is_ok());
        assert_eq!(play("studio", Some(&bound), Some("10.0.0.2".parse().unwrap())), Err(Denied::WrongClient));
        let video = a.decide(
            &Request { resource: Some(Resource::Video("ABC")), ..Request::play(Protocol::Hls, "", Some(&good), None) },
            &Dir,
            NOW,
        );
        assert_eq!(video, Err(Denied::WrongResource), "a stream token does not open a video");
    }

    #[test]
    fn tokens_in_queries() {
        assert_eq!(token_from_query("token=abc"), Some("abc"));
        assert_eq!(token_from_query("rs=1&token=a.b.c&x"), Some("a.b.c"));
        assert_eq!(token_from_query("xtoken=abc&token="), None);
    }

    #[test]
    fn sessions_live_while_fetched() {
        let a = access();
        let good = a.signer().mint(&claims(Action::Play, "studio"));
        let grant = a.decide(&Request::play(Protocol::Hls, "studio", Some(&good), None), &Dir, NOW).unwrap();
        let session = a.open_session(&grant, Resource::Stream("studio"), NOW).unwrap();
        let at = |t| a.decide(&Request::play(Protocol::Hls, "studio", Some(&session), None), &Dir, t);
        // Fetched every 20 s, the session outlives the play token (60 s).
        for t in (NOW..NOW + 300).step_by(20) {
            assert!(at(t).is_ok(), "at {t}");
        }
        // Then idle for longer than 30 s: ended.
        assert_eq!(at(NOW + 280 + 31), Err(Denied::SessionEnded));
        // The session token is for that stream only.
        let other = a.decide(&Request::play(Protocol::Hls, "other", Some(&session), None), &Dir, NOW);
        assert_eq!(other, Err(Denied::WrongResource));
        // Bounded: the oldest-fetched goes.
        for _ in 0..3 {
            a.open_session(&grant, Resource::Stream("studio"), NOW + 400).unwrap();
        }
        assert_eq!(a.sessions(), 2);
    }
}
