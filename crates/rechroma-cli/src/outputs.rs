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

/// An error and its causes on one line (the library's, shared with `serve`'s JSON errors).
pub use rechroma::{error_chain as chain, one_line};

#[cfg(test)]
mod tests {
    #[test]
    fn a_multi_line_cause_is_printed_on_one_line() {
        let e = std::io::Error::other("image too large:\n  width 20000 exceeds 16383\n");
        assert_eq!(super::chain(&e), "image too large:; width 20000 exceeds 16383");
    }
}
