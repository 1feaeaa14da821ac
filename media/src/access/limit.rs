//! Guessing credentials, slowed and then stopped per client address: [`FailureLimiter`] counts
//! failed credentials (a wrong stream key, a forged token, a wrong admin token) per address in a
//! fixed window; an address past [`LimitConfig::max_failures`] in its window is refused outright
//! until the window ends, whatever it presents. Every protocol shares one limiter, so a guesser
//! cannot spread its tries over RTMP, SRT and HTTP. [`refusal_delay`] is the random pause a
//! driver adds before answering a refusal, so that guessing is slow even below the limit.
//! Sans-IO: time is passed in (milliseconds).

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

/// Settings of the limiter.
#[derive(Clone, Copy, Debug)]
pub struct LimitConfig {
    /// Failures an address may have in one window; the next attempt is refused.
    pub max_failures: u32,
    /// The window (milliseconds): an address's count starts with its first failure.
    pub window_ms: u64,
    /// Addresses tracked at most (beyond, the ones whose window ended are dropped first, then
    /// the oldest window).
    pub max_addresses: usize,
}

impl Default for LimitConfig {
    fn default() -> Self {
        LimitConfig { max_failures: 20, window_ms: 60_000, max_addresses: 100_000 }
    }
}

#[derive(Clone, Copy, Debug)]
struct Window {
    started_ms: u64,
    failures: u32,
}

/// Failed credentials per client address.
#[derive(Debug)]
pub struct FailureLimiter {
    config: LimitConfig,
    windows: HashMap<IpAddr, Window>,
}

impl FailureLimiter {
    pub fn new(config: LimitConfig) -> FailureLimiter {
        FailureLimiter { config, windows: HashMap::new() }
    }

    /// How long `client` stays refused, if it is (the rest of its window).
    pub fn blocked_for(&self, client: IpAddr, now_ms: u64) -> Option<Duration> {
        let window = self.windows.get(&client.to_canonical())?;
        let ends = window.started_ms + self.config.window_ms;
        (window.failures >= self.config.max_failures && now_ms < ends).then(|| Duration::from_millis(ends - now_ms))
    }

    /// Counts a failed credential from `client`; true when this failure reached the limit.
    pub fn failed(&mut self, client: IpAddr, now_ms: u64) -> bool {
        let client = client.to_canonical();
        let window_ms = self.config.window_ms;
        if !self.windows.contains_key(&client) && self.windows.len() >= self.config.max_addresses {
            self.make_room(now_ms);
        }
        let window = self.windows.entry(client).or_insert(Window { started_ms: now_ms, failures: 0 });
        if now_ms >= window.started_ms + window_ms {
            *window = Window { started_ms: now_ms, failures: 0 };
        }
        window.failures = window.failures.saturating_add(1);
        window.failures == self.config.max_failures
    }

    /// Addresses with a window open now.
    pub fn tracked(&self) -> usize {
        self.windows.len()
    }

    fn make_room(&mut self, now_ms: u64) {
        let window_ms = self.config.window_ms;
        self.windows.retain(|_, w| now_ms < w.started_ms + window_ms);
        if self.windows.len() >= self.config.max_addresses {
            if let Some(oldest) = self.windows.iter().min_by_key(|(_, w)| w.started_ms).map(|(ip, _)| *ip) {
                self.windows.remove(&oldest);
            }
        }
    }
}

/// The pause before answering a refused credential: 250 to 750 ms, at random, so that the
/// answer's timing tells nothing and guesses come slowly.
pub fn refusal_delay() -> Duration {
    let mut byte = [0u8; 2];
    let spread = match getrandom::fill(&mut byte) {
        Ok(()) => u64::from(u16::from_le_bytes(byte)) % 500,
        Err(_) => 250,
    };
    Duration::from_millis(250 + spread)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn an_address_past_its_failures_is_refused_until_its_window_ends() {
        let mut limiter = FailureLimiter::new(LimitConfig { max_failures: 3, window_ms: 1000, max_addresses: 10 });
        let guesser = ip("192.0.2.7");
        assert!(!limiter.failed(guesser, 0));
        assert!(!limiter.failed(guesser, 10));
        assert_eq!(limiter.blocked_for(guesser, 20), None);
        assert!(limiter.failed(guesser, 20), "the third failure reaches the limit");
        assert_eq!(limiter.blocked_for(guesser, 400), Some(Duration::from_millis(600)));
        // Another address is not affected; the same address over IPv4-mapped IPv6 is.
        assert_eq!(limiter.blocked_for(ip("192.0.2.8"), 400), None);
        assert!(limiter.blocked_for(ip("::ffff:192.0.2.7"), 400).is_some());
        // The window ends: the count starts again.
        assert_eq!(limiter.blocked_for(guesser, 1000), None);
        assert!(!limiter.failed(guesser, 1000));
        assert_eq!(limiter.blocked_for(guesser, 1001), None);
    }

    #[test]
    fn the_table_stays_bounded_dropping_ended_windows_first() {
        let mut limiter = FailureLimiter::new(LimitConfig { max_failures: 2, window_ms: 100, max_addresses: 3 });
        for (i, at) in [(1, 0), (2, 50), (3, 60)] {
            limiter.failed(ip(&format!("198.51.100.{i}")), at);
        }
        limiter.failed(ip("198.51.100.4"), 120); // .1's window ended: it goes
        assert_eq!(limiter.tracked(), 3);
        assert!(limiter.failed(ip("198.51.100.2"), 121), ".2's window is still open");
        limiter.failed(ip("198.51.100.5"), 130); // all open: the oldest (.2) goes
        assert_eq!(limiter.tracked(), 3);
        assert!(limiter.blocked_for(ip("198.51.100.2"), 130).is_none());
    }

    #[test]
    fn refusal_delays_are_spread() {
        let delays: Vec<Duration> = (0..50).map(|_| refusal_delay()).collect();
        assert!(delays.iter().all(|d| (250..750).contains(&(d.as_millis() as u64))));
        assert!(delays.iter().any(|d| *d != delays[0]));
    }
}
