//! QoE scores with published formulas (the README repeats them):
//!
//! - startup: `8 / (8 + startup_s) · 100` (0.4 s → 95, 2 s → 80, 8 s → 50);
//! - smoothness: the mean of `100 / √(1 + (rebuffer_count / 2)²)` and
//!   `100 · e^(−10 · rebuffer_ratio)` (one 5 s stall in 5 min → 85);
//! - playback success: 100 played, 50 exit before video start, 0 failed;
//! - overall: the weighted mean of the three that are known (weights in `[analytics]`), and 0
//!   for a failed session.
//!
//! Rebuffer ratio = rebuffer time / (playing time + rebuffer time).

use serde::{Deserialize, Serialize};

/// How one session ended, as far as playback is concerned.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// At least one frame was shown.
    #[default]
    Played,
    /// The viewer left before the first frame.
    ExitBeforeStart,
    /// An error ended playback.
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Played => "played",
            Outcome::ExitBeforeStart => "exit_before_start",
            Outcome::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Outcome> {
        [Outcome::Played, Outcome::ExitBeforeStart, Outcome::Failed].into_iter().find(|o| o.as_str() == s)
    }

    /// The playback success score.
    pub fn success_score(self) -> f64 {
        match self {
            Outcome::Played => 100.0,
            Outcome::ExitBeforeStart => 50.0,
            Outcome::Failed => 0.0,
        }
    }
}

/// The weights of the overall score (`[analytics] weight_*`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScoreWeights {
    pub startup: f64,
    pub smoothness: f64,
    pub success: f64,
}

impl Default for ScoreWeights {
    fn default() -> Self {
        ScoreWeights { startup: 1.0, smoothness: 1.0, success: 1.0 }
    }
}

/// `8 / (8 + startup_s) · 100`.
pub fn startup_score(startup_ms: u64) -> f64 {
    let startup_s = startup_ms as f64 / 1000.0;
    8.0 / (8.0 + startup_s) * 100.0
}

/// Rebuffer time over playing plus rebuffer time (0 when nothing was watched).
pub fn rebuffer_ratio(playing_ms: u64, rebuffer_ms: u64) -> f64 {
    let total = playing_ms + rebuffer_ms;
    if total == 0 {
        0.0
    } else {
        rebuffer_ms as f64 / total as f64
    }
}

/// The mean of `100 / √(1 + (count / 2)²)` and `100 · e^(−10 · ratio)`.
pub fn smoothness_score(rebuffer_count: u64, ratio: f64) -> f64 {
    let by_count = 100.0 / (1.0 + (rebuffer_count as f64 / 2.0).powi(2)).sqrt();
    let by_ratio = 100.0 * (-10.0 * ratio).exp();
    (by_count + by_ratio) / 2.0
}

/// The overall score of one session: 0 if it failed, else the weighted mean of the startup
/// score (when the startup time is known), smoothness (when something played) and success.
pub fn overall_score(
    weights: &ScoreWeights,
    outcome: Outcome,
    startup_ms: Option<u64>,
    rebuffer_count: u64,
    ratio: f64,
) -> f64 {
    if outcome == Outcome::Failed {
        return 0.0;
    }
    let mut sum = weights.success * outcome.success_score();
    let mut total = weights.success;
    if let Some(startup) = startup_ms {
        sum += weights.startup * startup_score(startup);
        total += weights.startup;
    }
    if outcome == Outcome::Played {
        sum += weights.smoothness * smoothness_score(rebuffer_count, ratio);
        total += weights.smoothness;
    }
    if total <= 0.0 {
        outcome.success_score()
    } else {
        sum / total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn startup_matches_the_published_points() {
        assert!((startup_score(400) - 95.238).abs() < 0.01);
        assert!((startup_score(2000) - 80.0).abs() < 1e-9);
        assert!((startup_score(8000) - 50.0).abs() < 1e-9);
    }

    #[test]
    fn one_five_second_stall_in_five_minutes_is_about_85() {
        let ratio = rebuffer_ratio(295_000, 5_000);
        let s = smoothness_score(1, ratio);
        assert!((s - 86.0).abs() < 1.5, "{s}");
        assert_eq!(smoothness_score(0, 0.0), 100.0);
    }

    #[test]
    fn overall_is_zero_when_failed_and_a_weighted_mean_otherwise() {
        let w = ScoreWeights::default();
        assert_eq!(overall_score(&w, Outcome::Failed, Some(100), 0, 0.0), 0.0);
        assert_eq!(overall_score(&w, Outcome::ExitBeforeStart, None, 0, 0.0), 50.0);
        let played = overall_score(&w, Outcome::Played, Some(2000), 0, 0.0);
        assert!((played - (100.0 + 80.0 + 100.0) / 3.0).abs() < 1e-9);
        let only_success = ScoreWeights { startup: 0.0, smoothness: 0.0, success: 1.0 };
        assert_eq!(overall_score(&only_success, Outcome::Played, Some(9000), 5, 0.5), 100.0);
    }

    #[test]
    fn ratio_of_nothing_is_zero() {
        assert_eq!(rebuffer_ratio(0, 0), 0.0);
        assert_eq!(rebuffer_ratio(3000, 1000), 0.25);
    }
}
