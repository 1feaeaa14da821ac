//! What a camera source is, as `[[sources]]` and `POST /api/v1/sources` give it: a stream name,
//! an RTSP URL (with credentials that never leave the process) and when to pull.

use super::url::{redact, CameraUrl, UrlError};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// When a camera is pulled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceMode {
    /// From start to stop, reconnecting whenever the camera drops.
    #[default]
    Always,
    /// Only while someone watches: started by the first viewer's request (HTTP-FLV, LL-HLS,
    /// DASH), stopped once nobody has watched for `[rtsp] on_demand_idle_s`.
    OnDemand,
}

/// A `[[sources]]` entry: an RTSP camera published as `live/<name>`.
#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    pub name: String,
    /// `rtsp://[user:password@]host[:port]/path`; the credentials never leave the process.
    pub url: String,
    #[serde(default)]
    pub mode: SourceMode,
}

impl std::fmt::Debug for SourceConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceConfig")
            .field("name", &self.name)
            .field("url", &redact(&self.url))
            .field("mode", &self.mode)
            .finish()
    }
}

/// Why a source is refused (never shows the URL's credentials).
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum InvalidSource {
    #[error("name {0:?} is invalid (allowed: [A-Za-z0-9_-]{{1,64}})")]
    Name(String),
    #[error("source {name:?}: url: {error}")]
    Url { name: String, error: UrlError },
}

impl SourceConfig {
    /// Checks the name and the URL, and returns the URL parsed.
    pub fn check(&self) -> Result<CameraUrl, InvalidSource> {
        if !rill_media::path::is_valid_stream_name(&self.name) {
            return Err(InvalidSource::Name(self.name.clone()));
        }
        CameraUrl::parse(&self.url).map_err(|error| InvalidSource::Url { name: self.name.clone(), error })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_is_checked_without_showing_credentials() {
        let config =
            |name: &str, url: &str| SourceConfig { name: name.into(), url: url.into(), mode: SourceMode::Always };
        assert!(config("cam1", "rtsp://u:hunter2@10.0.0.5/live").check().is_ok());
        assert!(!format!("{:?}", config("cam1", "rtsp://u:hunter2@10.0.0.5/live")).contains("hunter2"));
        let bad_name = config("a/b", "rtsp://cam/x").check().unwrap_err();
        assert_eq!(bad_name.to_string(), "name \"a/b\" is invalid (allowed: [A-Za-z0-9_-]{1,64})");
        let bad_url = config("c", "http://u:hunter2@cam/x").check().unwrap_err().to_string();
        assert!(bad_url.starts_with("source \"c\": url: unsupported scheme") && !bad_url.contains("hunter2"));
    }

    #[test]
    fn modes_read_as_in_the_config_file() {
        let on_demand: SourceConfig =
            serde_json::from_str(r#"{"name":"c","url":"rtsp://c/x","mode":"on_demand"}"#).unwrap();
        assert_eq!(on_demand.mode, SourceMode::OnDemand);
        let default: SourceConfig = serde_json::from_str(r#"{"name":"c","url":"rtsp://c/x"}"#).unwrap();
        assert_eq!(default.mode, SourceMode::Always);
        assert!(serde_json::from_str::<SourceConfig>(r#"{"name":"c","url":"rtsp://c/x","mode":"sometimes"}"#).is_err());
    }
}
