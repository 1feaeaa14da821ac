//! Per-client token buckets, sans-IO (the caller passes `now`) and bounded in memory: a
//! client may make `burst` requests at once and `rate` per second after that.

use crate::sync::lock;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::Instant;

/// Clients remembered at most; beyond, idle ones (full buckets) are forgotten first.
const MAX_CLIENTS: usize = 100_000;

#[derive(Debug)]
pub struct PerClient<K> {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<K, (f64, Instant)>>,
}

impl<K: Hash + Eq> PerClient<K> {
    pub fn new(rate: f64, burst: f64) -> PerClient<K> {
        PerClient { rate, burst, buckets: Mutex::new(HashMap::new()) }
    }

    /// Takes one token from `client`'s bucket; false when it is empty.
    pub fn allow(&self, client: K, now: Instant) -> bool {
        let mut buckets = lock(&self.buckets);
        if buckets.len() >= MAX_CLIENTS && !buckets.contains_key(&client) {
            let (rate, burst) = (self.rate, self.burst);
            buckets.retain(|_, (tokens, at)| *tokens + now.saturating_duration_since(*at).as_secs_f64() * rate < burst);
            if buckets.len() >= MAX_CLIENTS {
                // Every remembered client is busy: forget them all rather than grow.
                buckets.clear();
            }
        }
        let (tokens, at) = buckets.entry(client).or_insert((self.burst, now));
        *tokens = (*tokens + now.saturating_duration_since(*at).as_secs_f64() * self.rate).min(self.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_burst_then_the_rate() {
        let limiter = PerClient::new(2.0, 3.0);
        let t0 = Instant::now();
        assert!((0..3).all(|_| limiter.allow("a", t0)));
        assert!(!limiter.allow("a", t0));
        assert!(limiter.allow("b", t0), "clients are independent");
        assert!(limiter.allow("a", t0 + Duration::from_millis(500)));
        assert!(!limiter.allow("a", t0 + Duration::from_millis(500)));
    }
}
