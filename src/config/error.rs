//! Where in a board file something is wrong: errors name the file, the line and the key,
//! because the person reading them is an installer in a barn.

use std::path::{Path, PathBuf};

/// Why a board file could not be used. The message is meant for the person who wrote it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read at all.
    #[error("{path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML, or a key has the wrong name, type or unit.
    #[error("{path}:{line}: key `{key}`: {message}")]
    Invalid {
        path: PathBuf,
        line: usize,
        key: String,
        message: String,
    },
}

pub(super) fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Turn a TOML/serde error into file:line, the key at that line, and serde's expectation.
pub(super) fn toml_error(path: &Path, text: &str, err: toml::de::Error) -> ConfigError {
    let offset = err.span().map(|s| s.start).unwrap_or(0);
    let line = text[..offset.min(text.len())].matches('\n').count() + 1;
    let line_text = text.lines().nth(line - 1).unwrap_or("");
    let key_here = line_text.split('=').next().unwrap_or("").trim();
    let section = text[..offset.min(text.len())]
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('['))
        .map(|l| l.trim().trim_matches(|c| c == '[' || c == ']').to_string());
    let key = match (section, line_text.contains('=')) {
        (Some(s), true) => format!("{s}.{key_here}"),
        (None, true) => key_here.to_string(),
        (Some(s), false) => s,
        (None, false) => "(top level)".into(),
    };
    ConfigError::Invalid {
        path: path.to_path_buf(),
        line,
        key,
        message: err.message().to_string(),
    }
}

/// Find the line of `key` inside `[section]` (or the `index`th `[[section]]`), for errors found
/// after parsing. Falls back to the section header, then to line 1.
pub(super) fn find_line(text: &str, section: &str, index: Option<usize>, key: &str) -> usize {
    let mut seen = 0usize;
    let mut in_section = section.is_empty();
    let mut header_line = 1;
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.starts_with('[') {
            let name = line.trim_matches(|c| c == '[' || c == ']').trim();
            in_section = false;
            if name == section {
                if line.starts_with("[[") {
                    in_section = index == Some(seen);
                    seen += 1;
                } else {
                    in_section = true;
                }
                if in_section {
                    header_line = n + 1;
                }
            }
            continue;
        }
        if in_section && !key.is_empty() && line.split('=').next().map(str::trim) == Some(key) {
            return n + 1;
        }
    }
    header_line
}
