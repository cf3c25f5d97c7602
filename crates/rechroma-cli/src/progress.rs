//! Progress of a batch: indicatif's bar in a terminal; without one (a log file, CI, `nohup`), where the
//! bar is hidden, a plain line every few seconds, so a batch is never silent.

use indicatif::{ProgressBar, ProgressStyle};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Without a terminal, a plain progress line at most this often.
pub const PLAIN_EVERY: Duration = Duration::from_secs(5);

/// A batch's progress over `total` items of one kind (`unit`, e.g. "photo").
pub struct Progress {
    bar: ProgressBar,
    prefix: &'static str,
    unit: &'static str,
    start: Instant,
    last_line: Mutex<Instant>,
}

/// A rate with sensible digits: "2.4 photos/s" when above one a second, else "3.1 s/photo".
pub fn rate(done: u64, elapsed: Duration, unit: &str) -> String {
    let secs = elapsed.as_secs_f64();
    if done == 0 || secs <= 0.0 {
        return String::new();
    }
    let per_sec = done as f64 / secs;
    if per_sec >= 1.0 {
        format!("{per_sec:.1} {unit}s/s")
    } else {
        format!("{:.1} s/{unit}", 1.0 / per_sec)
    }
}

/// Seconds as "45 s", "3 min 20 s" or "1 h 05 min".
pub fn duration(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min {:02} s", s / 60, s % 60),
        _ => format!("{} h {:02} min", s / 3600, (s % 3600) / 60),
    }
}

impl Progress {
    /// A bar over `total` items, shown as "PREFIX [bar] pos/total UNITs  rate  eta  message".
    pub fn new(total: u64, prefix: &'static str, unit: &'static str) -> Self {
        let bar = ProgressBar::new(total).with_style(
            ProgressStyle::with_template(&format!("{{prefix}} {{bar:30}} {{pos}}/{{len}} {unit}s  {{msg}}"))
                .expect("valid template"),
        );
        bar.set_prefix(prefix);
        Self {
            bar,
            prefix,
            unit,
            start: Instant::now(),
            last_line: Mutex::new(Instant::now()),
        }
    }

    /// Runs `f` (which prints) without the bar in the way.
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        self.bar.suspend(f)
    }

    /// One more item done; `current` names what is being worked on.
    pub fn inc(&self, current: &str) {
        self.bar.inc(1);
        let done = self.bar.position();
        let total = self.bar.length().unwrap_or(done);
        let elapsed = self.start.elapsed();
        let rate = rate(done, elapsed, self.unit);
        let eta = match done {
            0 => String::new(),
            _ => duration(elapsed.as_secs_f64() / done as f64 * total.saturating_sub(done) as f64),
        };
        self.bar.set_message(format!("{rate}  eta {eta}  {current}"));
        if self.bar.is_hidden() {
            let mut last = self.last_line.lock().unwrap_or_else(|p| p.into_inner());
            if last.elapsed() >= PLAIN_EVERY || done == total {
                eprintln!("{}: {done}/{total} {}s, {rate}, eta {eta}", self.prefix, self.unit);
                *last = Instant::now();
            }
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_read_as_people_say_them() {
        assert_eq!(rate(10, Duration::from_secs(4), "photo"), "2.5 photos/s");
        // 0.1969/s, as indicatif printed it, is 5.1 s a photo.
        assert_eq!(rate(1969, Duration::from_secs(10_000), "photo"), "5.1 s/photo");
        assert_eq!(rate(0, Duration::from_secs(3), "photo"), "");
        assert_eq!(duration(42.4), "42 s");
        assert_eq!(duration(200.0), "3 min 20 s");
        assert_eq!(duration(3900.0), "1 h 05 min");
    }
}
