//! Prometheus text exposition (format 0.0.4): how every crate renders its metric families into
//! the `/metrics` body, so names, HELP and TYPE lines look the same whoever writes them.

use std::fmt::{Display, Write};

/// The TYPE of a metric family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        }
    }
}

/// Appends one family: its `# HELP` and `# TYPE` lines, then one line per sample. A sample is
/// its label set as written (`""`, or `{state="live"}`) and its value.
pub fn write_family<L: Display, V: Display>(
    out: &mut String,
    name: &str,
    kind: Kind,
    help: &str,
    samples: impl IntoIterator<Item = (L, V)>,
) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {}", kind.as_str());
    for (labels, value) in samples {
        let _ = writeln!(out, "{name}{labels} {value}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_family_is_help_type_and_samples() {
        let mut out = String::new();
        write_family(&mut out, "rill_x_total", Kind::Counter, "Things.", [("{a=\"b\"}", 2), ("{a=\"c\"}", 0)]);
        write_family(&mut out, "rill_y", Kind::Gauge, "One thing.", [("", 1.5)]);
        assert_eq!(
            out,
            "# HELP rill_x_total Things.\n# TYPE rill_x_total counter\nrill_x_total{a=\"b\"} 2\nrill_x_total{a=\"c\"} 0\n\
             # HELP rill_y One thing.\n# TYPE rill_y gauge\nrill_y 1.5\n"
        );
    }
}
