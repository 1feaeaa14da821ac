//! The one place Bus media time meets GStreamer clock time: Bus times (any timebase, possibly
//! negative) map to nanoseconds after an offset, so that the first frame lands at
//! [`Timeline::OFFSET`] and earlier decode times stay positive.

use gstreamer::ClockTime;
use rill_media::{MediaTime, Timebase};

#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Timeline {
    /// Nanoseconds of the first mapped time.
    base_ns: Option<i128>,
}

fn nanos(t: MediaTime) -> i128 {
    (t.ticks() as i128 * 1_000_000_000).div_euclid(t.timebase().hz() as i128)
}

impl Timeline {
    /// Where the first mapped time lands (room for negative decode times before it).
    pub(crate) const OFFSET: u64 = 3_600_000_000_000;

    /// `t` as a pipeline time; `None` when it falls before the pipeline's zero.
    pub(crate) fn gst_time(&mut self, t: MediaTime) -> Option<ClockTime> {
        let ns = nanos(t);
        let base = *self.base_ns.get_or_insert(ns);
        let v = ns - base + Self::OFFSET as i128;
        u64::try_from(v).ok().map(ClockTime::from_nseconds)
    }

    /// A pipeline time back on the Bus, in `timebase` (rounded to the nearest tick).
    pub(crate) fn media_time(&self, t: ClockTime, timebase: Timebase) -> MediaTime {
        let ns = t.nseconds() as i128 - Self::OFFSET as i128 + self.base_ns.unwrap_or(0);
        let hz = timebase.hz() as i128;
        let ticks = (ns * hz + 500_000_000).div_euclid(1_000_000_000);
        MediaTime::new(ticks as i64, timebase)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_millis_and_90khz() {
        let mut ms = Timeline::default();
        for t in [1000, 1033, 1066, 999, 5000] {
            let g = ms.gst_time(MediaTime::from_millis(t)).unwrap();
            assert_eq!(ms.media_time(g, Timebase::MILLIS), MediaTime::from_millis(t));
        }
        let mut mpeg = Timeline::default();
        for t in [90_000i64, 93_003, 96_006, 1, 8_589_934_591] {
            let g = mpeg.gst_time(MediaTime::new(t, Timebase::MPEG)).unwrap();
            assert_eq!(mpeg.media_time(g, Timebase::MPEG).ticks(), t);
        }
    }
}
