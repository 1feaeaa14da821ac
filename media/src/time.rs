//! Media time as a type: a tick count with its timebase, never a bare integer; and the one
//! [`Unwrapper`] that turns a wire format's wrapping timestamps (RTMP and RTP: 32 bits; MPEG-TS
//! PTS/DTS: 33 bits) into a continuous count.

use std::fmt;

/// Ticks per second of a clock (e.g. 1000 for RTMP/FLV, 90 000 for MPEG-TS and RTP video).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Timebase(u32);

impl Timebase {
    /// Milliseconds: RTMP and FLV.
    pub const MILLIS: Timebase = Timebase(1000);
    /// 90 kHz: MPEG-TS, RTP video.
    pub const MPEG: Timebase = Timebase(90_000);
    /// 48 kHz: Opus (its RTP clock whatever the sample rate).
    pub const OPUS: Timebase = Timebase(48_000);

    /// A timebase of `hz` ticks per second; `None` for 0.
    pub const fn new(hz: u32) -> Option<Timebase> {
        if hz == 0 {
            None
        } else {
            Some(Timebase(hz))
        }
    }

    pub const fn hz(self) -> u32 {
        self.0
    }
}

/// A point (or span) on a media clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MediaTime {
    ticks: i64,
    timebase: Timebase,
}

impl MediaTime {
    pub const fn new(ticks: i64, timebase: Timebase) -> MediaTime {
        MediaTime { ticks, timebase }
    }

    pub const fn from_millis(ms: i64) -> MediaTime {
        MediaTime::new(ms, Timebase::MILLIS)
    }

    pub const fn ticks(self) -> i64 {
        self.ticks
    }

    pub const fn timebase(self) -> Timebase {
        self.timebase
    }

    /// The same instant on another clock, rounded toward negative infinity.
    pub fn rescale(self, to: Timebase) -> MediaTime {
        if to == self.timebase {
            return self;
        }
        let num = self.ticks as i128 * to.0 as i128;
        let ticks = num.div_euclid(self.timebase.0 as i128) as i64;
        MediaTime::new(ticks, to)
    }

    pub fn as_millis(self) -> i64 {
        self.rescale(Timebase::MILLIS).ticks
    }

    pub fn as_secs_f64(self) -> f64 {
        self.ticks as f64 / self.timebase.0 as f64
    }
}

/// `a + b` is in `a`'s timebase.
impl std::ops::Add for MediaTime {
    type Output = MediaTime;
    fn add(self, other: MediaTime) -> MediaTime {
        MediaTime::new(self.ticks + other.rescale(self.timebase).ticks, self.timebase)
    }
}

/// `a - b` is in `a`'s timebase.
impl std::ops::Sub for MediaTime {
    type Output = MediaTime;
    fn sub(self, other: MediaTime) -> MediaTime {
        MediaTime::new(self.ticks - other.rescale(self.timebase).ticks, self.timebase)
    }
}

impl fmt::Display for MediaTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.ticks, self.timebase.0)
    }
}

/// Unwraps a `BITS`-bit wrapping timestamp into a continuous 64-bit count: the first value is
/// taken as it is, and each next one moves by the shortest step modulo 2^`BITS` (forward for
/// less than half the range, backward otherwise). So a wrap continues forward, while small
/// backward steps (B-frame reordering of PTS and DTS through one instance, encoder jitter) stay
/// backward steps. Each ingest uses one per clock; `BITS` is 1 to 62.
#[derive(Debug, Default, Clone)]
pub struct Unwrapper<const BITS: u32> {
    /// The last raw value and what it unwrapped to.
    last: Option<(u64, i64)>,
}

/// RTMP timestamps (milliseconds) and RTP timestamps.
pub type Unwrapper32 = Unwrapper<32>;
/// MPEG-TS PTS/DTS (90 kHz, wrapping every 26.5 hours).
pub type Unwrapper33 = Unwrapper<33>;

impl<const BITS: u32> Unwrapper<BITS> {
    const MASK: u64 = (1 << BITS) - 1;
    const HALF: u64 = 1 << (BITS - 1);

    /// The continuous value of `raw` (only its low `BITS` bits are read).
    pub fn unwrap(&mut self, raw: u64) -> i64 {
        let raw = raw & Self::MASK;
        let value = match self.last {
            None => raw as i64,
            Some((prev, value)) => {
                let step = raw.wrapping_sub(prev) & Self::MASK;
                value + if step >= Self::HALF { step as i64 - (Self::MASK as i64 + 1) } else { step as i64 }
            }
        };
        self.last = Some((raw, value));
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unwraps_32_bit_wrap_and_jitter() {
        let mut c = Unwrapper32::default();
        assert_eq!(c.unwrap(u32::MAX as u64 - 10), u32::MAX as i64 - 10);
        assert_eq!(c.unwrap(5), u32::MAX as i64 + 6, "forward across the wrap");
        assert_eq!(c.unwrap(3), u32::MAX as i64 + 4, "a small step back stays one");
        assert_eq!(c.unwrap(u32::MAX as u64 - 1), u32::MAX as i64 - 1, "back across the wrap");
    }

    #[test]
    fn unwraps_33_bit_wrap() {
        const MASK_33: u64 = (1 << 33) - 1;
        let mut t = Unwrapper33::default();
        assert_eq!(t.unwrap(MASK_33 - 10), MASK_33 as i64 - 10);
        assert_eq!(t.unwrap(5), MASK_33 as i64 + 6, "forward across the wrap");
        assert_eq!(t.unwrap(MASK_33 - 20), MASK_33 as i64 - 20, "B-frame step back across it");
        assert_eq!(t.unwrap(3000), MASK_33 as i64 + 3001);
        assert_eq!(t.unwrap(MASK_33 + 1 + 3003), MASK_33 as i64 + 3004, "bits above 33 are ignored");
    }

    #[test]
    fn rescales_between_clocks() {
        let t = MediaTime::from_millis(1500);
        assert_eq!(t.rescale(Timebase::MPEG).ticks(), 135_000);
        assert_eq!(MediaTime::new(135_000, Timebase::MPEG).as_millis(), 1500);
        assert_eq!(MediaTime::new(-1, Timebase::MPEG).as_millis(), -1);
    }

    #[test]
    fn arithmetic_keeps_left_timebase() {
        let a = MediaTime::from_millis(1000);
        let b = MediaTime::new(9000, Timebase::MPEG);
        assert_eq!(a + b, MediaTime::from_millis(1100));
        assert_eq!(a - b, MediaTime::from_millis(900));
    }
}
