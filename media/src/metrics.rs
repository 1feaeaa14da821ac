//! Prometheus text exposition (format 0.0.4), written by each subsystem for its own metrics:
//! families are collected by name (samples of one family may come from several subsystems,
//! e.g. bytes received by protocol) and rendered together, each with one `HELP` and `TYPE`.

use crate::bus::Bus;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;

/// The kind of a metric family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

struct Family {
    name: &'static str,
    kind: Kind,
    help: &'static str,
    /// `(suffix, labels, value)`: the suffix (`_bucket`, `_sum`, `_count`) of histograms'
    /// samples, labels already rendered as `{k="v",…}` or empty.
    samples: Vec<(&'static str, String, f64)>,
}

/// Metric families being collected, in the order they were first named.
#[derive(Default)]
pub struct Exposition {
    families: Vec<Family>,
}

impl Exposition {
    pub fn new() -> Exposition {
        Exposition::default()
    }

    fn family(&mut self, name: &'static str, kind: Kind, help: &'static str) -> &mut Family {
        let index = match self.families.iter().position(|f| f.name == name) {
            Some(i) => i,
            None => {
                self.families.push(Family { name, kind, help, samples: Vec::new() });
                self.families.len() - 1
            }
        };
        &mut self.families[index]
    }

    /// A sample without labels.
    pub fn sample(&mut self, name: &'static str, kind: Kind, help: &'static str, value: f64) {
        self.family(name, kind, help).samples.push(("", String::new(), value));
    }

    /// A sample with labels (`[("protocol", "rtmp")]`); label values are escaped.
    pub fn labelled(
        &mut self,
        name: &'static str,
        kind: Kind,
        help: &'static str,
        labels: &[(&str, &str)],
        value: f64,
    ) {
        let rendered = render_labels(labels);
        self.family(name, kind, help).samples.push(("", rendered, value));
    }

    /// A histogram's samples (`_bucket` per bound, `+Inf`, `_sum`, `_count`) with labels.
    pub fn histogram(&mut self, name: &'static str, help: &'static str, labels: &[(&str, &str)], h: &Histogram) {
        let family = self.family(name, Kind::Histogram, help);
        let mut cumulative = 0;
        for (i, bound) in h.bounds.iter().enumerate() {
            cumulative += h.counts[i].load(Relaxed);
            let le = bound.to_string();
            let mut with_le: Vec<(&str, &str)> = labels.to_vec();
            with_le.push(("le", &le));
            family.samples.push(("_bucket", render_labels(&with_le), cumulative as f64));
        }
        let count = cumulative + h.counts[h.bounds.len()].load(Relaxed);
        let mut with_le: Vec<(&str, &str)> = labels.to_vec();
        with_le.push(("le", "+Inf"));
        family.samples.push(("_bucket", render_labels(&with_le), count as f64));
        family.samples.push(("_sum", render_labels(labels), f64::from_bits(h.sum.load(Relaxed))));
        family.samples.push(("_count", render_labels(labels), count as f64));
    }

    /// A family that has samples only sometimes is still declared (an empty family is legal).
    pub fn declare(&mut self, name: &'static str, kind: Kind, help: &'static str) {
        self.family(name, kind, help);
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(64 * 1024);
        for f in &self.families {
            let _ = writeln!(out, "# HELP {} {}\n# TYPE {} {}", f.name, f.help, f.name, f.kind.as_str());
            for (suffix, labels, value) in &f.samples {
                let _ = writeln!(out, "{}{suffix}{labels} {value}", f.name);
            }
        }
        out
    }
}

impl Bus {
    /// The Bus's metrics: streams, publishers and viewers now (every protocol in
    /// `publisher_protocols` / `viewer_protocols` is listed, at 0 when idle), frames in, and
    /// slow viewers' skips and disconnects.
    pub fn write_metrics(&self, out: &mut Exposition, publisher_protocols: &[&str], viewer_protocols: &[&str]) {
        let streams = self.snapshot();
        let live = streams.iter().filter(|s| s.publisher.is_some()).count();
        let mut publishers: BTreeMap<&str, usize> = publisher_protocols.iter().map(|p| (*p, 0)).collect();
        let mut viewers: BTreeMap<&str, usize> = viewer_protocols.iter().map(|p| (*p, 0)).collect();
        for s in &streams {
            if let Some(p) = &s.publisher {
                *publishers.entry(p.protocol).or_default() += 1;
            }
            for (protocol, n) in &s.viewers {
                *viewers.entry(protocol).or_default() += n;
            }
        }
        const STREAMS: &str = "Streams on the Bus by state.";
        out.labelled("rill_streams", Kind::Gauge, STREAMS, &[("state", "live")], live as f64);
        out.labelled("rill_streams", Kind::Gauge, STREAMS, &[("state", "reconnecting")], (streams.len() - live) as f64);
        for (protocol, n) in publishers {
            let help = "Connected publishers by protocol.";
            out.labelled("rill_publishers", Kind::Gauge, help, &[("protocol", protocol)], n as f64);
        }
        for (protocol, n) in viewers {
            out.labelled(
                "rill_viewers",
                Kind::Gauge,
                "Connected viewers by protocol.",
                &[("protocol", protocol)],
                n as f64,
            );
        }
        let stats = self.stats();
        out.sample("rill_ingest_frames_total", Kind::Counter, "Frames pushed onto the Bus.", count(&stats.frames_in));
        out.sample(
            "rill_ingest_payload_bytes_total",
            Kind::Counter,
            "Payload bytes pushed onto the Bus.",
            count(&stats.bytes_in),
        );
        out.sample(
            "rill_slow_viewer_frames_dropped_total",
            Kind::Counter,
            "Frames slow viewers skipped to catch up at a keyframe.",
            count(&stats.frames_skipped),
        );
        out.sample(
            "rill_slow_viewer_skips_total",
            Kind::Counter,
            "Times a slow viewer skipped to a keyframe.",
            count(&stats.subscriber_skips),
        );
        out.sample(
            "rill_slow_viewer_disconnects_total",
            Kind::Counter,
            "Viewers disconnected for staying behind.",
            count(&stats.slow_disconnects),
        );
    }
}

/// `{k="v",…}` with escaped values (empty for no labels).
fn render_labels(labels: &[(&str, &str)]) -> String {
    if labels.is_empty() {
        return String::new();
    }
    let mut rendered = String::from("{");
    for (i, (key, value)) in labels.iter().enumerate() {
        if i > 0 {
            rendered.push(',');
        }
        let escaped = value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
        let _ = write!(rendered, "{key}=\"{escaped}\"");
    }
    rendered.push('}');
    rendered
}

/// A Prometheus histogram with fixed bounds, observed without locks.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    /// One per bound, and one above the last.
    counts: Vec<AtomicU64>,
    /// The sum of observations, as `f64` bits.
    sum: AtomicU64,
}

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Histogram {
        Histogram { bounds, counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(), sum: AtomicU64::new(0) }
    }

    pub fn observe(&self, value: f64) {
        let i = self.bounds.iter().position(|&b| value <= b).unwrap_or(self.bounds.len());
        self.counts[i].fetch_add(1, Relaxed);
        let _ = self.sum.fetch_update(Relaxed, Relaxed, |bits| Some((f64::from_bits(bits) + value).to_bits()));
    }
}

/// A counter's value as a sample.
pub fn count(counter: &AtomicU64) -> f64 {
    counter.load(Relaxed) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_group_samples_from_several_writers() {
        let mut e = Exposition::new();
        e.labelled("rill_bytes_total", Kind::Counter, "Bytes.", &[("protocol", "rtmp")], 10.0);
        e.sample("rill_up", Kind::Gauge, "Up.", 1.0);
        e.labelled("rill_bytes_total", Kind::Counter, "Bytes.", &[("protocol", "s\"rt")], 2.5);
        assert_eq!(
            e.render(),
            "# HELP rill_bytes_total Bytes.\n# TYPE rill_bytes_total counter\n\
             rill_bytes_total{protocol=\"rtmp\"} 10\nrill_bytes_total{protocol=\"s\\\"rt\"} 2.5\n\
             # HELP rill_up Up.\n# TYPE rill_up gauge\nrill_up 1\n"
        );
    }
}
