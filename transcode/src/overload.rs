//! The ladder's overload policy, sans-IO: fed the time and how late each rung is, it says which
//! rung to drop. [`crate::ladder`] measures the lateness on its pipeline and applies the
//! verdicts; here it is only arithmetic on instants, so tests drive it on a virtual clock.

use std::time::{Duration, Instant};

/// How long a rung must stay late before a rung is dropped.
pub const OVERLOAD_SUSTAIN: Duration = Duration::from_secs(2);

/// How far a rung's output is behind its source, in source arrival time: the latest source
/// frame's arrival minus the arrival of the source frame of the rung's latest output. A rung
/// with no output yet counts from the first source frame; before any input nothing is late.
/// Times are nanoseconds on one clock, `0` meaning "none yet".
pub(crate) fn lateness(first_arrival_ns: u64, last_arrival_ns: u64, out_arrival_ns: u64) -> Duration {
    if first_arrival_ns == 0 {
        return Duration::ZERO;
    }
    let out = if out_arrival_ns == 0 { first_arrival_ns } else { out_arrival_ns };
    Duration::from_nanos(last_arrival_ns.saturating_sub(out))
}

/// Decides when to drop a rung.
#[derive(Debug)]
pub(crate) struct OverloadPolicy {
    pub(crate) max_lateness: Duration,
    sustain: Duration,
    cooldown: Duration,
    late_since: Option<Instant>,
    last_drop: Option<Instant>,
}

impl OverloadPolicy {
    pub(crate) fn new(max_lateness: Duration) -> OverloadPolicy {
        OverloadPolicy {
            max_lateness,
            sustain: OVERLOAD_SUSTAIN,
            cooldown: (max_lateness * 2).max(Duration::from_secs(3)),
            late_since: None,
            last_drop: None,
        }
    }

    /// `lateness` of each rung, most expensive first (`None`: not running). Returns the rung
    /// to drop: the most expensive running one, once some rung has been late for the sustain
    /// window and the previous drop has had its cool-down to take effect. (Every rung shares
    /// the one decoder and the CPU: dropping the most expensive frees the most, whichever rung
    /// shows the lateness.)
    pub(crate) fn observe(&mut self, now: Instant, lateness: &[Option<Duration>]) -> Option<usize> {
        if !lateness.iter().flatten().any(|l| *l > self.max_lateness) {
            self.late_since = None;
            return None;
        }
        let since = *self.late_since.get_or_insert(now);
        if now.duration_since(since) < self.sustain
            || self.last_drop.is_some_and(|d| now.duration_since(d) < self.cooldown)
        {
            return None;
        }
        let victim = lateness.iter().position(Option::is_some)?;
        self.last_drop = Some(now);
        self.late_since = None;
        Some(victim)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overload_drops_the_most_expensive_running_rung_after_the_sustain_window() {
        let mut policy = OverloadPolicy::new(Duration::from_millis(500));
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let late = Some(Duration::from_millis(900));
        let fine = Some(Duration::from_millis(100));
        assert_eq!(policy.observe(at(0), &[fine, late]), None);
        assert_eq!(policy.observe(at(1000), &[fine, late]), None, "not sustained yet");
        assert_eq!(policy.observe(at(2100), &[fine, late]), Some(0), "the top rung goes first");
        assert_eq!(policy.observe(at(2500), &[None, late]), None, "needs a new sustain window");
        assert_eq!(policy.observe(at(4600), &[None, late]), None, "cool-down");
        assert_eq!(policy.observe(at(5200), &[None, late]), Some(1));
        // Recovering resets the window.
        let mut policy = OverloadPolicy::new(Duration::from_millis(500));
        assert_eq!(policy.observe(at(0), &[late]), None);
        assert_eq!(policy.observe(at(1500), &[fine]), None);
        assert_eq!(policy.observe(at(3000), &[late]), None);
        assert_eq!(policy.observe(at(4000), &[late]), None);
        // Exactly at the limit is not late; nothing running is nothing to drop.
        let mut policy = OverloadPolicy::new(Duration::from_millis(500));
        let limit = Some(Duration::from_millis(500));
        assert_eq!(policy.observe(at(0), &[limit]), None);
        assert_eq!(policy.observe(at(10_000), &[limit]), None);
        assert_eq!(policy.observe(at(0), &[None, None]), None);
    }

    #[test]
    fn lateness_is_measured_in_source_arrival_time() {
        let ms = |n: u64| n * 1_000_000;
        assert_eq!(lateness(0, 0, 0), Duration::ZERO, "no input yet");
        assert_eq!(lateness(ms(100), ms(100), 0), Duration::ZERO, "first frame just in");
        assert_eq!(lateness(ms(100), ms(1600), 0), Duration::from_millis(1500), "no output yet: since the first frame");
        assert_eq!(lateness(ms(100), ms(1600), ms(1500)), Duration::from_millis(100));
        assert_eq!(lateness(ms(100), ms(1600), ms(1600)), Duration::ZERO, "caught up");
        assert_eq!(lateness(ms(100), ms(1600), ms(1700)), Duration::ZERO, "never negative");
    }

    /// A ladder on a virtual clock: a 30 fps source, rungs costing their pixel count per
    /// picture, and a machine that encodes `capacity` pixels per second in all. The decoder's
    /// tee hands each picture to every branch, so each running rung encodes the same share of
    /// pictures; one that is behind catches up as fast as the machine allows. Every 250 ms (as
    /// the ladder polls) the policy sees each rung's lateness; a dropped rung stops costing.
    /// Returns when each rung was dropped (ms after the start), `None` if it never was.
    fn simulate(rungs: &[(u32, u32)], capacity: f64, max_lateness: Duration, seconds: u64) -> Vec<Option<u64>> {
        const FPS: u64 = 30;
        const TICK_MS: u64 = 250;
        let t0 = Instant::now();
        let arrival_ns = |frame: u64| (frame * 1_000_000_000 / FPS).max(1);
        let mut policy = OverloadPolicy::new(max_lateness);
        let mut encoded = vec![0.0f64; rungs.len()]; // pictures out of each rung
        let mut dropped: Vec<Option<u64>> = vec![None; rungs.len()];
        for tick in 1..=seconds * 1000 / TICK_MS {
            let now_ms = tick * TICK_MS;
            let received = (now_ms * FPS / 1000 + 1) as f64; // pictures in from the source
            let running: Vec<usize> = (0..rungs.len()).filter(|&i| dropped[i].is_none()).collect();
            let cost: f64 = running.iter().map(|&i| (rungs[i].0 * rungs[i].1) as f64).sum();
            let pictures = capacity * (TICK_MS as f64 / 1000.0) / cost.max(1.0);
            for &i in &running {
                encoded[i] = (encoded[i] + pictures).min(received);
            }
            let last = arrival_ns(received as u64 - 1);
            let observed: Vec<Option<Duration>> = (0..rungs.len())
                .map(|i| {
                    let out = if encoded[i] >= 1.0 { arrival_ns(encoded[i] as u64 - 1) } else { 0 };
                    dropped[i].is_none().then(|| lateness(arrival_ns(0), last, out))
                })
                .collect();
            if let Some(victim) = policy.observe(t0 + Duration::from_millis(now_ms), &observed) {
                dropped[victim] = Some(now_ms);
            }
        }
        dropped
    }

    const LADDER: [(u32, u32); 3] = [(1280, 720), (854, 480), (640, 360)];

    /// Pixels per second the whole ladder needs at 30 fps.
    fn demand(rungs: &[(u32, u32)]) -> f64 {
        rungs.iter().map(|(w, h)| (w * h * 30) as f64).sum()
    }

    #[test]
    fn a_machine_that_keeps_real_time_drops_nothing() {
        let dropped = simulate(&LADDER, demand(&LADDER) * 1.05, Duration::from_millis(1500), 120);
        assert_eq!(dropped, [None, None, None]);
    }

    #[test]
    fn a_slightly_slow_machine_loses_only_the_top_rung() {
        // 90 % of the demand: the ladder falls behind by 0.1 s per second; the two lower rungs
        // alone need 44 % of it, so once the top rung goes they catch up and stay.
        let dropped = simulate(&LADDER, demand(&LADDER) * 0.9, Duration::from_millis(1500), 120);
        let first = dropped[0].expect("the top rung is dropped");
        // 1.5 s late after ~15 s, then the 2 s sustain window.
        assert!((16_000..=18_500).contains(&first), "dropped at {first} ms");
        assert_eq!(&dropped[1..], [None, None], "the others keep up once it is gone");
    }

    #[test]
    fn the_cheap_rung_being_late_still_costs_the_expensive_one() {
        // Only the lowest rung is behind (e.g. it started late): the policy frees the most CPU.
        let mut policy = OverloadPolicy::new(Duration::from_millis(300));
        let t0 = Instant::now();
        let lateness = [Some(Duration::ZERO), Some(Duration::ZERO), Some(Duration::from_secs(1))];
        assert_eq!(policy.observe(t0, &lateness), None);
        assert_eq!(policy.observe(t0 + OVERLOAD_SUSTAIN, &lateness), Some(0));
    }

    #[test]
    fn a_machine_far_too_slow_drops_one_rung_per_cool_down_until_none_is_left() {
        let max_lateness = Duration::from_millis(500);
        let dropped = simulate(&LADDER, demand(&LADDER) * 0.05, max_lateness, 60);
        let at: Vec<u64> = dropped.iter().map(|d| d.expect("every rung is dropped")).collect();
        assert!(at.windows(2).all(|w| w[0] < w[1]), "most expensive first: {at:?}");
        let cooldown = (max_lateness * 2).max(Duration::from_secs(3)).as_millis() as u64;
        assert!(at.windows(2).all(|w| w[1] - w[0] >= cooldown.max(OVERLOAD_SUSTAIN.as_millis() as u64)), "{at:?}");
    }
}
