//! The rule every command follows for the files it writes: an existing file is replaced only with
//! `--force`, and the check comes before any work.

use anyhow::{Result, bail};
use std::path::Path;

/// Refuses, before any work, an output whose folder does not exist (a typo would otherwise surface only
/// after minutes of work), for commands that do not create it.
pub fn check_folder(path: &Path) -> Result<()> {
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !parent.is_dir() {
        bail!("{}: the folder {} does not exist", path.display(), parent.display());
    }
    Ok(())
}

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

/// Refuses an output that is one of the photos a command reads (`--force` never replaces an input).
pub fn check_not_input(output: &Path, input_dir: &Path) -> Result<()> {
    if let (Ok(out), Ok(dir)) = (output.canonicalize(), input_dir.canonicalize())
        && out.starts_with(&dir)
    {
        bail!(
            "{}: is inside the photo folder {} it would be read from; refusing to overwrite an input",
            output.display(),
            input_dir.display()
        );
    }
    Ok(())
}

/// A path as printed in messages: control characters (a newline in a file name) escaped as `\n`, so
/// one file's message stays one line.
pub fn shown(path: &Path) -> String {
    let text = path.display().to_string();
    if !text.chars().any(char::is_control) {
        return text;
    }
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// The file in an output folder that lists the files `colorize` wrote there, one name a line: a later
/// run over a folder that holds that output folder leaves them out (they are results, not photos).
pub const WRITTEN_LIST: &str = ".rechroma-outputs";

/// Adds `files` (just written) to the list of their folder.
pub fn mark_written(files: &[std::path::PathBuf]) -> Result<()> {
    let mut by_dir: std::collections::BTreeMap<std::path::PathBuf, std::collections::BTreeSet<String>> =
        Default::default();
    for f in files {
        let dir = f
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if let Some(name) = f.file_name() {
            by_dir
                .entry(dir.to_path_buf())
                .or_default()
                .insert(name.to_string_lossy().into_owned());
        }
    }
    for (dir, mut names) in by_dir {
        let list = dir.join(WRITTEN_LIST);
        names.extend(written_in(&dir));
        let text: String = names.iter().map(|n| format!("{n}\n")).collect();
        rechroma::fsutil::write_atomic(&list, text.as_bytes())?;
    }
    Ok(())
}

/// The names `colorize` wrote in `dir` (its [`WRITTEN_LIST`]; none when there is no list).
pub fn written_in(dir: &Path) -> std::collections::BTreeSet<String> {
    std::fs::read_to_string(dir.join(WRITTEN_LIST))
        .map(|t| t.lines().filter(|l| !l.is_empty()).map(str::to_string).collect())
        .unwrap_or_default()
}

/// An error and its causes on one line (the library's, shared with `serve`'s JSON errors).
pub use rechroma::{error_chain as chain, one_line};

#[cfg(test)]
mod tests {
    #[test]
    fn control_characters_in_names_are_escaped() {
        assert_eq!(super::shown(std::path::Path::new("a\nb.jpg")), "a\\nb.jpg");
        assert_eq!(super::shown(std::path::Path::new("plain é.jpg")), "plain é.jpg");
    }

    #[test]
    fn a_multi_line_cause_is_printed_on_one_line() {
        let e = std::io::Error::other("image too large:\n  width 20000 exceeds 16383\n");
        assert_eq!(super::chain(&e), "image too large: width 20000 exceeds 16383");
    }

    /// A cause the message already quotes is printed once (issue 21 #18: "…RGB: 13: Invalid channel
    /// bit count for RGB: 13").
    #[test]
    fn a_repeated_cause_is_printed_once() {
        #[derive(Debug)]
        struct Outer(std::io::Error);
        impl std::fmt::Display for Outer {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "cannot decode photo.png: {}", self.0)
            }
        }
        impl std::error::Error for Outer {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let e = Outer(std::io::Error::other("Invalid channel bit count for RGB: 13"));
        assert_eq!(
            super::chain(&e),
            "cannot decode photo.png: Invalid channel bit count for RGB: 13"
        );
        let plain = std::io::Error::other("Format error encoding WebP:\nInvalid dimensions");
        assert_eq!(super::chain(&plain), "Format error encoding WebP: Invalid dimensions");
    }
}
