//! `rill-analytics`: who watches what, for how long, and how well.
//!
//! A sans-IO core fed by every egress (server-side sessions of the stateful protocols) and by
//! players (CMCD, CTA-5004, in request mode on media requests and in event mode at the
//! collector), and a store in the catalog database that the reports read.
//!
//! - [`cmcd`]: the CMCD parser (request-mode query argument and headers, event-mode lines).
//! - [`cmsd`]: the `CMSD-Static` response header.
//! - [`observe`]: what a CMCD report says about its session.
//! - [`session`]: viewer sessions (sans-IO) and their records.
//! - [`score`]: QoE scores and their formulas.
//! - [`service`]: the running analytics (tracker, queue, writer task, metrics).
//! - [`store`]: the analytics tables in the catalog database; [`rollup`]: the day rollups
//!   sessions add up to; [`report`]: what the API reads.
//! - `testing` (feature `testing`): the known-answer scenario the tests run on each database.
//! - [`client`]: what a request says about its viewer (country, device, referrer) and the
//!   daily-salted visitor hash that counts uniques without storing addresses.

pub mod client;
pub mod cmcd;
pub mod cmsd;
pub mod observe;
pub mod report;
pub mod rollup;
pub mod score;
pub mod service;
pub mod session;
pub mod store;
#[cfg(feature = "testing")]
pub mod testing;
