//! `interface log`: the plugin's diagnostics, into `tracing`, tagged with the plugin and the
//! connection, and throttled so that a plugin in a loop cannot fill a disk.

use std::time::Instant;

use crate::bindings::log::{Host, Level};

/// Lines longer than this are cut: a log line is a message, not a data dump.
pub const MAX_LINE_BYTES: usize = 2048;

/// A token bucket: `burst` lines at once, then `per_second` lines a second.
#[derive(Clone, Copy, Debug)]
pub struct Throttle {
    pub burst: u32,
    pub per_second: u32,
}

impl Default for Throttle {
    fn default() -> Self {
        Self {
            burst: 200,
            per_second: 20,
        }
    }
}

pub struct LogCapability {
    plugin: String,
    connection: String,
    throttle: Throttle,
    tokens: f64,
    last_refill: Instant,
    /// Lines dropped since the last one written (reported with the next one).
    unreported: u64,
    dropped: u64,
    written: u64,
}

impl LogCapability {
    pub fn new(plugin: &str, connection: &str, throttle: Throttle) -> Self {
        Self {
            plugin: plugin.to_owned(),
            connection: connection.to_owned(),
            throttle,
            tokens: f64::from(throttle.burst),
            last_refill: Instant::now(),
            unreported: 0,
            dropped: 0,
            written: 0,
        }
    }

    /// Lines written and lines dropped by the throttle so far.
    pub fn counts(&self) -> (u64, u64) {
        (self.written, self.dropped)
    }

    fn take_token(&mut self) -> bool {
        let now = Instant::now();
        let refill = now.duration_since(self.last_refill).as_secs_f64()
            * f64::from(self.throttle.per_second);
        self.tokens = (self.tokens + refill).min(f64::from(self.throttle.burst));
        self.last_refill = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    fn emit(&self, level: Level, message: &str) {
        let (plugin, connection) = (self.plugin.as_str(), self.connection.as_str());
        match level {
            Level::Trace => tracing::trace!(target: "plugin", plugin, connection, "{message}"),
            Level::Debug => tracing::debug!(target: "plugin", plugin, connection, "{message}"),
            Level::Info => tracing::info!(target: "plugin", plugin, connection, "{message}"),
            Level::Warn => tracing::warn!(target: "plugin", plugin, connection, "{message}"),
            Level::Error => tracing::error!(target: "plugin", plugin, connection, "{message}"),
        }
    }
}

impl Drop for LogCapability {
    fn drop(&mut self) {
        if self.unreported > 0 {
            let (plugin, connection) = (self.plugin.as_str(), self.connection.as_str());
            tracing::warn!(target: "plugin", plugin, connection, "log throttled: {} lines dropped", self.unreported);
        }
    }
}

impl Host for LogCapability {
    fn write(&mut self, level: Level, message: String) {
        if !self.take_token() {
            self.dropped += 1;
            self.unreported += 1;
            return;
        }
        if self.unreported > 0 {
            let note = format!("log throttled: {} lines dropped", self.unreported);
            self.unreported = 0;
            self.emit(Level::Warn, &note);
        }
        self.written += 1;
        self.emit(level, truncate(&message, MAX_LINE_BYTES));
    }
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_is_throttled_to_the_burst() {
        let mut cap = LogCapability::new(
            "p",
            "c",
            Throttle {
                burst: 10,
                per_second: 0,
            },
        );
        for i in 0..10_000 {
            cap.write(Level::Info, format!("line {i}"));
        }
        assert_eq!(cap.counts(), (10, 9_990));
    }

    #[test]
    fn the_bucket_refills_over_time() {
        let mut cap = LogCapability::new(
            "p",
            "c",
            Throttle {
                burst: 1,
                per_second: 1000,
            },
        );
        cap.write(Level::Info, "a".into());
        std::thread::sleep(std::time::Duration::from_millis(20));
        cap.write(Level::Info, "b".into());
        assert_eq!(cap.counts().0, 2);
    }

    #[test]
    fn long_lines_are_cut_on_a_char_boundary() {
        let s = "é".repeat(MAX_LINE_BYTES);
        let cut = truncate(&s, MAX_LINE_BYTES + 1);
        assert!(cut.len() <= MAX_LINE_BYTES + 1);
        assert!(cut.chars().all(|c| c == 'é'));
    }
}
