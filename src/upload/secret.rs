//! Secrets for an output (an InfluxDB token, a broker password) come from an environment
//! variable or a file, never from the board file. A file must not be readable by group or
//! others, and is re-read when it changes, so a rotated secret needs no restart. A secret's
//! value is never printed: errors name only where it comes from.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Why a secret cannot be read. `key` is the board key that names its source.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecretError {
    #[error("upload.{key}: environment variable {var} is not set")]
    MissingEnv { key: &'static str, var: String },
    #[error("upload.{key} {path}: {message}")]
    File {
        key: &'static str,
        path: PathBuf,
        message: String,
    },
}

pub enum Secret {
    None,
    Fixed(String),
    /// Re-read when the file changes.
    File {
        key: &'static str,
        path: PathBuf,
        modified: Option<SystemTime>,
        value: String,
    },
}

impl Secret {
    /// From `env` (a variable's name) or else `file`; `keys` are their board keys, for errors.
    pub fn load(
        env: Option<&str>,
        file: Option<&Path>,
        keys: (&'static str, &'static str),
    ) -> Result<Secret, SecretError> {
        match (env, file) {
            (Some(var), _) => {
                std::env::var(var)
                    .map(Secret::Fixed)
                    .map_err(|_| SecretError::MissingEnv {
                        key: keys.0,
                        var: var.to_string(),
                    })
            }
            (None, Some(path)) => {
                let mut secret = Secret::File {
                    key: keys.1,
                    path: path.to_path_buf(),
                    modified: None,
                    value: String::new(),
                };
                secret.refresh()?;
                Ok(secret)
            }
            (None, None) => Ok(Secret::None),
        }
    }

    /// The current value (re-reading a changed file); `None` when no secret is configured.
    pub fn value(&mut self) -> Result<Option<&str>, SecretError> {
        self.refresh()?;
        Ok(match self {
            Secret::None => None,
            Secret::Fixed(value) | Secret::File { value, .. } => Some(value.as_str()),
        })
    }

    pub fn is_none(&self) -> bool {
        matches!(self, Secret::None)
    }

    fn refresh(&mut self) -> Result<(), SecretError> {
        let Secret::File {
            key,
            path,
            modified,
            value,
        } = self
        else {
            return Ok(());
        };
        let fail = |message: String| SecretError::File {
            key,
            path: path.clone(),
            message,
        };
        let meta = std::fs::metadata(&*path).map_err(|e| fail(e.to_string()))?;
        let stamp = meta.modified().ok();
        if stamp.is_some() && stamp == *modified {
            return Ok(());
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(fail(format!(
                    "mode {mode:o} lets others read the secret; chmod 600 it"
                )));
            }
        }
        let text = std::fs::read_to_string(&*path).map_err(|e| fail(e.to_string()))?;
        let text = text.trim();
        if text.is_empty() {
            return Err(fail("is empty".into()));
        }
        *value = text.to_string();
        *modified = stamp;
        Ok(())
    }
}
