//! A batch: consecutive queued readings rendered as line protocol, remembering which queue row
//! each line came from so a partly rejected batch can be split, bisected and acked line by line.

use crate::line_protocol;

/// Where the queue renders lines: a `Batch` keeps them; the uploader's packer compresses them
/// as they come, so a large batch's plain text never sits in memory whole.
pub trait LineSink {
    /// Append one line (the sink adds the `\n` between lines).
    fn push(&mut self, id: i64, series_key: &str, fields: &str, time_ns: i64);
    fn lines(&self) -> usize;
    /// Bytes of line protocol pushed so far, newlines included.
    fn plain_len(&self) -> usize;
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Batch {
    ids: Vec<i64>,
    /// End offset (exclusive) of each line in `body`; lines are separated by one `\n`.
    ends: Vec<usize>,
    body: Vec<u8>,
}

impl LineSink for Batch {
    fn push(&mut self, id: i64, series_key: &str, fields: &str, time_ns: i64) {
        Batch::push(self, id, series_key, fields, time_ns)
    }

    fn lines(&self) -> usize {
        self.len()
    }

    fn plain_len(&self) -> usize {
        self.body.len()
    }
}

impl Batch {
    pub fn with_capacity(lines: usize, bytes: usize) -> Batch {
        Batch {
            ids: Vec::with_capacity(lines),
            ends: Vec::with_capacity(lines),
            body: Vec::with_capacity(bytes),
        }
    }

    pub fn push(&mut self, id: i64, series_key: &str, fields: &str, time_ns: i64) {
        if !self.body.is_empty() {
            self.body.push(b'\n');
        }
        line_protocol::push_line(&mut self.body, series_key, fields, time_ns);
        self.ids.push(id);
        self.ends.push(self.body.len());
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    pub fn body_len(&self) -> usize {
        self.body.len()
    }

    /// The request body: lines joined by `\n`, no blank lines, no comments, no CR (InfluxDB 3
    /// numbers lines for partial-write errors, and CRLF is rejected).
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    pub fn ids(&self) -> &[i64] {
        &self.ids
    }

    /// The request body, taken out of the batch.
    pub fn into_body(self) -> Vec<u8> {
        self.body
    }

    /// First and last queue id: a batch is a run of consecutive queued rows.
    pub fn run(&self) -> Option<(i64, i64)> {
        Some((*self.ids.first()?, *self.ids.last()?))
    }

    pub fn line(&self, index: usize) -> &[u8] {
        let start = if index == 0 {
            0
        } else {
            self.ends[index - 1] + 1
        };
        &self.body[start..self.ends[index]]
    }

    /// Lines `from..to` as a batch of their own.
    pub fn slice(&self, from: usize, to: usize) -> Batch {
        let mut part = Batch::with_capacity(to - from, 0);
        for i in from..to {
            if !part.body.is_empty() {
                part.body.push(b'\n');
            }
            part.body.extend_from_slice(self.line(i));
            part.ids.push(self.ids[i]);
            part.ends.push(part.body.len());
        }
        part
    }

    /// Split in two halves (for 413 and for bisecting a rejected batch).
    pub fn halves(&self) -> (Batch, Batch) {
        let mid = self.len() / 2;
        (self.slice(0, mid), self.slice(mid, self.len()))
    }
}
