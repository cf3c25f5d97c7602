//! The rule every command follows for the files it writes: an existing file is replaced only with
//! `--force`, and the check comes before any work.

use anyhow::{Result, bail};
use std::path::Path;

/// Refuses, before any work, outputs that exist unless `force`, and outputs that are folders.
pub fn check_new(paths: &[&Path], force: bool) -> Result<()> {
    for path in paths {
        if path.is_dir() {
            bail!("{}: is a folder, not a file to write", path.display());
        }
        if path.exists() && !force {
            bail!("{}: already exists (use --force to replace it)", path.display());
        }
    }
    Ok(())
}

/// An error and its causes on one line, "outer: inner: innermost" (what `anyhow`'s `{:#}` prints), for
/// per-photo messages that are collected rather than returned.
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut line = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        line.push_str(": ");
        line.push_str(&s.to_string());
        source = s.source();
    }
    one_line(&line)
}

/// A message on one line: decoders' multi-line texts (a WebP over 16383 pixels wide printed its reason on
/// a second line) are joined with "; ", so one bad file gives one line.
pub fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_multi_line_cause_is_printed_on_one_line() {
        let e = std::io::Error::other("image too large:\n  width 20000 exceeds 16383\n");
        assert_eq!(super::chain(&e), "image too large:; width 20000 exceeds 16383");
    }
}
