//! The access decision's wiring: [`rill_media::access::Access`] with the signing secret from
//! `[access] secret` (else `<data_dir>/access_secret`, generated at first start), the stream
//! registry as its directory (keys, per-stream playback, `[access] playback` for the rest) and
//! the system clock. Every protocol holds it as an `Arc<dyn Gate>`.

use crate::config::Config;
use crate::streams::StreamRegistry;
use anyhow::{Context, Result};
use rill_media::access::{
    Access, AccessConfig, Claims, Denied, Directory, Gate, Grant, Playback, Protocol, Request, Resource,
};
use rill_media::persist::write_private;
use rill_media::wallclock::unix_s;
use std::net::IpAddr;
use std::sync::Arc;

/// The server's access decision.
pub struct AccessControl {
    access: Access,
    registry: Arc<StreamRegistry>,
    default_playback: Playback,
    max_ttl_s: u64,
}

impl AccessControl {
    pub fn new(config: &Config, registry: Arc<StreamRegistry>) -> Result<AccessControl> {
        let c = &config.access;
        let access_config = AccessConfig {
            session_idle_s: c.session_idle_s,
            session_max_s: c.session_max_s,
            ..AccessConfig::default()
        };
        Ok(AccessControl {
            access: Access::new(secret(config)?.as_bytes(), access_config),
            registry,
            default_playback: c.playback,
            max_ttl_s: c.max_ttl_s,
        })
    }

    /// The longest lifetime a minted token may have (seconds).
    pub fn max_ttl_s(&self) -> u64 {
        self.max_ttl_s
    }

    /// A signed token for `claims`.
    pub fn mint(&self, claims: &Claims) -> String {
        self.access.signer().mint(claims)
    }

    /// Whether `token` is a good upload token (see [`Access::check_upload`]).
    pub fn check_upload(&self, token: &str) -> Result<Claims, Denied> {
        self.access.check_upload(token, unix_s())
    }

    /// A session token for a viewer let in by `grant` on `resource` (see
    /// [`Access::open_session`]).
    pub fn open_session(&self, grant: &Grant, resource: Resource<'_>) -> Option<String> {
        self.access.open_session(grant, resource, unix_s())
    }

    /// How long `client` stays refused for having failed credentials too often, if it is.
    pub fn blocked_for(&self, client: IpAddr) -> Option<std::time::Duration> {
        self.access.blocked_for(client, unix_s())
    }

    /// Counts a failed credential the decision did not see (a wrong admin token).
    pub fn record_failure(&self, client: IpAddr) {
        self.access.record_failure(client, unix_s())
    }

    pub fn write_metrics(&self, out: &mut rill_media::metrics::Exposition) {
        self.access.write_metrics(out);
    }
}

impl Directory for AccessControl {
    fn stream_of_key(&self, key: &str) -> Result<String, Denied> {
        self.registry.stream_of_key(key)
    }

    fn playback(&self, resource: Resource<'_>) -> Playback {
        match resource {
            Resource::Stream(name) => self.registry.playback(name).unwrap_or(self.default_playback),
            // Videos: their visibility, read by the caller ([`AccessControl::decide_video`]).
            Resource::Video(_) => Playback::Token,
        }
    }
}

impl Gate for AccessControl {
    fn decide(&self, request: &Request<'_>) -> Result<Grant, Denied> {
        self.access.decide(request, self, unix_s())
    }
}

impl AccessControl {
    /// The decision on playing video `id`, whose playback the caller read from the catalog
    /// (the registry knows streams only).
    pub fn decide_video(
        &self,
        protocol: Protocol,
        id: &str,
        playback: Playback,
        token: Option<&str>,
        client: Option<IpAddr>,
    ) -> Result<Grant, Denied> {
        let request = Request::play_video(protocol, id, token, client);
        self.access.decide(&request, &KnownPlayback(playback), unix_s())
    }
}

/// A directory for one video whose playback is known.
struct KnownPlayback(Playback);

impl Directory for KnownPlayback {
    fn stream_of_key(&self, _key: &str) -> Result<String, Denied> {
        Err(Denied::UnknownKey)
    }

    fn playback(&self, _resource: Resource<'_>) -> Playback {
        self.0
    }
}

/// The signing secret: from config, else `<data_dir>/access_secret`, else newly generated there.
fn secret(config: &Config) -> Result<String> {
    if !config.access.secret.is_empty() {
        return Ok(config.access.secret.clone());
    }
    let file = config.server.data_dir.join("access_secret");
    if let Ok(secret) = std::fs::read_to_string(&file) {
        let secret = secret.trim().to_string();
        if !secret.is_empty() {
            return Ok(secret);
        }
    }
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| anyhow::anyhow!("the OS gives no randomness for the access secret: {e}"))?;
    let secret: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    write_private(&file, secret.as_bytes())
        .with_context(|| format!("storing the access secret in {}", file.display()))?;
    Ok(secret)
}
