//! Writing board files: a typed description of one device (sensors, queue, upload) that
//! renders itself as the TOML the agent reads.

use std::path::PathBuf;

/// Quote a string as a TOML basic string.
pub fn toml_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\u{:04X}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn inline_table(pairs: &[(String, String)]) -> String {
    let items: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{} = {}", toml_str(k), toml_str(v)))
        .collect();
    format!("{{ {} }}", items.join(", "))
}

#[derive(Debug, Clone)]
pub struct Sensor {
    pub id: String,
    pub kind: String,
    pub interval: String,
    pub measurement: Option<String>,
    pub tags: Vec<(String, String)>,
    pub seed: Option<u64>,
    /// Extra `key = value` lines for this `[[sensor]]`.
    pub extra: Vec<String>,
}

impl Sensor {
    pub fn new(id: &str, kind: &str) -> Sensor {
        Sensor {
            id: id.into(),
            kind: kind.into(),
            interval: "50ms".into(),
            measurement: None,
            tags: Vec::new(),
            seed: Some(7),
            extra: Vec::new(),
        }
    }

    pub fn tag(mut self, key: &str, value: &str) -> Sensor {
        self.tags.push((key.into(), value.into()));
        self
    }
}

#[derive(Debug, Clone)]
pub struct Upload {
    pub url: String,
    pub api: String,
    pub database: String,
    pub batch_lines: usize,
    pub timeout: String,
    /// Extra `key = value` lines for `[upload]`.
    pub extra: Vec<String>,
}

/// A board file, written as TOML.
#[derive(Debug, Clone)]
pub struct Board {
    pub device_id: String,
    pub tags: Vec<(String, String)>,
    pub sensors: Vec<Sensor>,
    pub queue: PathBuf,
    pub commit_interval: String,
    pub upload: Option<Upload>,
}

impl Board {
    pub fn to_toml(&self) -> String {
        let mut out = String::new();
        out.push_str(&format!("[device]\nid = {}\n\n", toml_str(&self.device_id)));
        if !self.tags.is_empty() {
            out.push_str("[tags]\n");
            for (k, v) in &self.tags {
                out.push_str(&format!("{} = {}\n", toml_str(k), toml_str(v)));
            }
            out.push('\n');
        }
        out.push_str(&format!(
            "[queue]\npath = {}\ncommit_interval = {}\n\n",
            toml_str(&self.queue.to_string_lossy()),
            toml_str(&self.commit_interval)
        ));
        if let Some(u) = &self.upload {
            out.push_str(&format!(
                "[upload]\nurl = {}\napi = {}\ndatabase = {}\nbatch_lines = {}\nstart_delay_max = \"0s\"\nmax_points_per_second = 0\ntimeout = {}\n",
                toml_str(&u.url),
                toml_str(&u.api),
                toml_str(&u.database),
                u.batch_lines,
                toml_str(&u.timeout),
            ));
            for line in &u.extra {
                out.push_str(line);
                out.push('\n');
            }
            out.push('\n');
        }
        for s in &self.sensors {
            out.push_str(&format!(
                "[[sensor]]\nid = {}\nkind = {}\ninterval = {}\n",
                toml_str(&s.id),
                toml_str(&s.kind),
                toml_str(&s.interval)
            ));
            if let Some(m) = &s.measurement {
                out.push_str(&format!("measurement = {}\n", toml_str(m)));
            }
            if let Some(seed) = s.seed {
                out.push_str(&format!("seed = {seed}\n"));
            }
            for line in &s.extra {
                out.push_str(line);
                out.push('\n');
            }
            if !s.tags.is_empty() {
                out.push_str(&format!("tags = {}\n", inline_table(&s.tags)));
            }
            out.push('\n');
        }
        out
    }
}
