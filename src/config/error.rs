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
    /// The file is not UTF-8 text; `line` holds the first byte that is not.
    #[error("{path}:{line}: not UTF-8 text; a board file must be saved as UTF-8")]
    NotUtf8 { path: PathBuf, line: usize },
    /// A per-device overlay was given where a board file was expected.
    #[error("{path}: this is a per-device overlay ([device] id and [tags] only), not a board; check the board file that names it in [device] overlay")]
    Overlay { path: PathBuf },
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
    let bytes = std::fs::read(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    String::from_utf8(bytes).map_err(|err| {
        let valid = &err.as_bytes()[..err.utf8_error().valid_up_to()];
        ConfigError::NotUtf8 {
            path: path.to_path_buf(),
            line: valid.iter().filter(|&&b| b == b'\n').count() + 1,
        }
    })
}

/// Turn a TOML/serde error into file:line, the key it is about, and serde's expectation.
pub(super) fn toml_error(path: &Path, text: &str, err: toml::de::Error) -> ConfigError {
    let offset = err.span().map(|s| s.start).unwrap_or(0).min(text.len());
    let line = text[..offset].matches('\n').count() + 1;
    let lines: Vec<&str> = text.lines().collect();
    let line_text = lines.get(line - 1).map_or("", |l| l.trim());
    let table = lines[..line.min(lines.len())]
        .iter()
        .rposition(|l| l.trim_start().starts_with('['))
        .map(|header| table_name(&lines, header));
    let mut message = err.message().trim_end().to_string();
    let within = |key: &str| match &table {
        Some(table) => format!("{table}.{key}"),
        None => key.to_string(),
    };
    let key = if let Some(field) = missing_field(&message) {
        within(field)
    } else if line_text.contains('=') && !line_text.starts_with('[') {
        within(line_text.split('=').next().unwrap_or("").trim())
    } else {
        table.clone().unwrap_or_else(|| "(top level)".into())
    };
    if message.starts_with("invalid type: map, expected a sequence") && !line_text.starts_with("[[")
    {
        message.push_str(&format!("; write `[[{key}]]`, one table per entry"));
    }
    ConfigError::Invalid {
        path: path.to_path_buf(),
        line,
        key,
        message,
    }
}

/// The name of the table whose header is `lines[header]`: `queue`, or `sensor` for any
/// `[[sensor]]` (the line tells which one).
fn table_name(lines: &[&str], header: usize) -> String {
    let raw = lines[header].trim();
    raw.trim_matches(|c| c == '[' || c == ']')
        .trim()
        .to_string()
}

/// The field serde says is missing (`missing field `kind``).
fn missing_field(message: &str) -> Option<&str> {
    message.strip_prefix("missing field `")?.split('`').next()
}

/// Find the line of `key` inside `[section]` (or the `index`th `[[section]]`), for errors found
/// after parsing. A dotted key (`tags.zone` in a sensor) is found by its first part when the
/// whole is not written on one line. Falls back to the section header, then to line 1.
pub(super) fn find_line(text: &str, section: &str, index: Option<usize>, key: &str) -> usize {
    let first = key.split('.').next().unwrap_or(key);
    let found = find_key_line(text, section, index, key);
    match found {
        Ok(line) => line,
        Err(_) if first != key => find_key_line(text, section, index, first).unwrap_or_else(|h| h),
        Err(header) => header,
    }
}

/// The line of `key` in the section, or `Err` with the section header's line.
fn find_key_line(
    text: &str,
    section: &str,
    index: Option<usize>,
    key: &str,
) -> Result<usize, usize> {
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
        let written = line
            .split('=')
            .next()
            .map(|k| k.trim().trim_matches(['"', '\'']));
        if in_section && !key.is_empty() && line.contains('=') && written == Some(key) {
            return Ok(n + 1);
        }
    }
    Err(header_line)
}
