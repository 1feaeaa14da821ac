//! Reconnect delays: exponential from `min` to `max`, reset after a session that stayed healthy
//! for `healthy_after`. Pure arithmetic, no clock: the driver reports what happened.

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    healthy_after: Duration,
    next: Duration,
}

impl Backoff {
    pub fn new(min: Duration, max: Duration, healthy_after: Duration) -> Backoff {
        let min = min.max(Duration::from_millis(10));
        Backoff { min, max: max.max(min), healthy_after, next: min }
    }

    /// The delay before the next attempt, after a session (or attempt) that lasted
    /// `healthy_for` with media flowing (zero if it never got media).
    pub fn after_failure(&mut self, healthy_for: Duration) -> Duration {
        if healthy_for >= self.healthy_after {
            self.next = self.min;
        }
        let delay = self.next;
        self.next = (self.next * 2).min(self.max);
        delay
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_and_resets_after_a_healthy_session() {
        let s = Duration::from_secs;
        let mut b = Backoff::new(s(1), s(30), s(60));
        let delays: Vec<u64> = (0..7).map(|_| b.after_failure(Duration::ZERO).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 30, 30]);
        assert_eq!(b.after_failure(s(59)), s(30), "a short session does not reset");
        assert_eq!(b.after_failure(s(60)), s(1), "a healthy minute resets");
        assert_eq!(b.after_failure(Duration::ZERO), s(2));
    }
}
