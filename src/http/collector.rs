//! `POST /analytics/cmcd`: the collector of CMCD v2 event-mode reports (CTA-5004-B). A body
//! of `application/cmcd` lines, one RFC 8941 dictionary each. Public and CORS-open, with a
//! body limit and a per-address rate limit. A malformed line is skipped and counted; the
//! answer is 204 when the reports were taken, 429 when the queue is full or the client too
//! fast (the player re-queues and retries), 410 when no more sessions can be tracked (the
//! player stops reporting for that session).

use crate::http::audience::{cookie, preflight};
use crate::http::listener::PeerAddr;
use crate::http::response::error;
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use rill_analytics::cmcd;
use rill_analytics::observe::{self, ContentRef};
use rill_analytics::service::{now_ms, Refused};
use rill_analytics::session::{Content, Protocol};
use rill_analytics::store::RawEvent;
use std::collections::HashMap;
use std::sync::Arc;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/analytics/cmcd", post(collect).options(|| async { preflight() }))
}

fn answer(status: StatusCode) -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = status;
    response.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    if status == StatusCode::TOO_MANY_REQUESTS {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

async fn collect(
    State(app): State<Arc<AppState>>,
    ConnectInfo(PeerAddr(peer)): ConnectInfo<PeerAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let audience = app.audience.clone();
    if !audience.enabled {
        return error(StatusCode::NOT_FOUND, "analytics are off ([analytics] enabled = false)");
    }
    if !audience.allow(peer.ip()) {
        return answer(StatusCode::TOO_MANY_REQUESTS);
    }
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or(cmcd::MIME_TYPE);
    let mime = content_type.split(';').next().unwrap_or("").trim();
    if !mime.eq_ignore_ascii_case(cmcd::MIME_TYPE) && !mime.eq_ignore_ascii_case("text/plain") {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("send {} (one CMCD dictionary per line)", cmcd::MIME_TYPE),
        );
    }
    let body = match axum::body::to_bytes(body, audience.max_body).await {
        Ok(body) => body,
        Err(_) => {
            return error(StatusCode::PAYLOAD_TOO_LARGE, format!("at most {} KiB per request", audience.max_body >> 10))
        }
    };
    let now = now_ms();
    let lines = body.split(|&b| b == b'\n').map(|l| l.strip_suffix(b"\r").unwrap_or(l)).filter(|l| !l.is_empty());
    let mut parsed = Vec::new();
    for line in lines {
        match (line.len() <= cmcd::MAX_LINE).then(|| cmcd::parse_bytes(line).ok()).flatten() {
            Some(report) if report.sid.is_some() => parsed.push((line, report)),
            _ => audience.service.rejected_line(),
        }
    }
    let stamps: Vec<Option<i64>> = parsed.iter().map(|(_, r)| r.ts).collect();
    let times = observe::arrival_times(&stamps, now);
    // Reports grouped by session, in order; contents resolved once per content id.
    let mut by_session: Vec<(String, Option<ContentRef>, Option<Protocol>, Vec<_>)> = Vec::new();
    for ((line, report), at) in parsed.into_iter().zip(times) {
        let sid = report.sid.clone().unwrap_or_default();
        let raw = RawEvent {
            at,
            session_id: sid.clone(),
            kind: observe::kind(&report).to_owned(),
            data: String::from_utf8_lossy(line).into_owned(),
        };
        let target = report.cid.as_deref().and_then(ContentRef::parse);
        let protocol = observe::protocol(&report);
        let index = match by_session.iter().position(|(s, ..)| *s == sid) {
            Some(i) => i,
            None => {
                by_session.push((sid, None, None, Vec::new()));
                by_session.len() - 1
            }
        };
        let entry = &mut by_session[index];
        entry.1 = entry.1.take().or(target);
        entry.2 = entry.2.or(protocol);
        entry.3.push((observe::report(&report, at), raw));
    }
    let mut contents: HashMap<ContentRef, Option<Content>> = HashMap::new();
    let user_agent = headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("");
    let referrer = cookie(&headers, crate::audience::REFERRER_COOKIE)
        .or(headers.get(header::REFERER).and_then(|v| v.to_str().ok()));
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let visitor = cookie(&headers, crate::audience::VISITOR_COOKIE);
    let mut status = StatusCode::NO_CONTENT;
    for (sid, target, protocol, reports) in by_session {
        if !audience.admit(&sid, peer.ip()) {
            // Too many new sessions from this address: the player retries later.
            status = StatusCode::TOO_MANY_REQUESTS;
            continue;
        }
        let content = match &target {
            Some(t) => {
                if !contents.contains_key(t) {
                    let resolved = match t {
                        ContentRef::Live(name) => Some(audience.live_content(name)),
                        ContentRef::Video(id) => audience.video_content(id).await,
                    };
                    contents.insert(t.clone(), resolved);
                }
                contents[t].clone()
            }
            None => None,
        };
        let protocol = protocol.unwrap_or(Protocol::Hls);
        let open = || {
            let viewer = audience.viewer(peer.ip(), user_agent, referrer, visitor, host);
            (protocol, content.clone().unwrap_or_default(), viewer)
        };
        let reports = reports.into_iter().map(|(mut report, raw)| {
            report.content = content.clone();
            (sid.as_str(), report, Some(raw))
        });
        match audience.service.observe(reports, &open, true) {
            Ok(_) => {}
            Err(Refused::Busy) => status = StatusCode::TOO_MANY_REQUESTS,
            Err(Refused::TooManySessions(_)) if status == StatusCode::NO_CONTENT => status = StatusCode::GONE,
            Err(Refused::TooManySessions(_)) => {}
        }
    }
    answer(status)
}
