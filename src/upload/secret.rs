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
    /// The variable the board names is not set (or not UTF-8).
    #[error("upload.{key}: environment variable {var} is not set")]
    MissingEnv { key: &'static str, var: String },
    /// The file the board names does not exist (yet): the agent waits for it.
    #[error("upload.{key} {} is missing", path.display())]
    FileMissing { key: &'static str, path: PathBuf },
    /// The file is unreadable, empty or readable by others.
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
    /// Read from the environment at each use until it is set (see [`Secret::deferred`]).
    Env {
        key: &'static str,
        var: String,
        value: Option<String>,
    },
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

    /// Like [`Secret::load`], but a secret that is not there yet is no error now: each use
    /// reads the variable or file again and fails until it is there (the agent samples and
    /// queues meanwhile).
    pub fn deferred(
        env: Option<&str>,
        file: Option<&Path>,
        keys: (&'static str, &'static str),
    ) -> Secret {
        match (env, file) {
            (Some(var), _) => Secret::Env {
                key: keys.0,
                var: var.to_string(),
                value: None,
            },
            (None, Some(path)) => Secret::File {
                key: keys.1,
                path: path.to_path_buf(),
                modified: None,
                value: String::new(),
            },
            (None, None) => Secret::None,
        }
    }

    /// The current value (re-reading a changed file); `None` when no secret is configured.
    pub fn value(&mut self) -> Result<Option<&str>, SecretError> {
        self.refresh()?;
        Ok(match self {
            Secret::None => None,
            Secret::Fixed(value) | Secret::File { value, .. } => Some(value.as_str()),
            Secret::Env { value, .. } => value.as_deref(),
        })
    }

    pub fn is_none(&self) -> bool {
        matches!(self, Secret::None)
    }

    fn refresh(&mut self) -> Result<(), SecretError> {
        let (key, path, modified, value) = match self {
            Secret::None | Secret::Fixed(_) => return Ok(()),
            Secret::Env { key, var, value } => {
                let read = std::env::var(&*var).map_err(|_| SecretError::MissingEnv {
                    key,
                    var: var.clone(),
                })?;
                *value = Some(read);
                return Ok(());
            }
            Secret::File {
                key,
                path,
                modified,
                value,
            } => (*key, path, modified, value),
        };
        let fail = |message: String| SecretError::File {
            key,
            path: path.clone(),
            message,
        };
        let meta = std::fs::metadata(&*path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => SecretError::FileMissing {
                key,
                path: path.clone(),
            },
            _ => fail(e.to_string()),
        })?;
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
