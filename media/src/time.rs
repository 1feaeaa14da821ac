//! Media time as a type: a tick count with its timebase, never a bare integer.

use std::fmt;

/// Ticks per second of a clock (e.g. 1000 for RTMP/FLV, 90 000 for MPEG-TS and RTP video).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Timebase(u32);

impl Timebase {
    /// Milliseconds: RTMP and FLV.
    pub const MILLIS: Timebase = Timebase(1000);
    /// 90 kHz: MPEG-TS, RTP video.
    pub const MPEG: Timebase = Timebase(90_000);

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

#[cfg(test)]
mod tests {
    use super::*;

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
