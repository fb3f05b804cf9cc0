//! What an output's reply means for the batch that was sent, in one vocabulary for every wire:
//! InfluxDB's HTTP statuses and bodies (see `influx_http`) and, next, MQTT PUBACK reason codes
//! each translate into an `Answer`, and `policy` decides what each one does to which lines.

use std::time::Duration;

#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// 2xx: everything was written.
    Accepted,
    /// 413: the body is over the server's limit; send smaller pieces.
    TooLarge,
    /// A partial write: the good lines were written, `dropped` lines (if the server said how
    /// many) were not. 1.x `/write` type conflicts, 2.x 422.
    Partial {
        dropped: Option<usize>,
        message: String,
    },
    /// InfluxDB 3 `write_lp` partial write: exactly these lines (0-based) were rejected, each with
    /// its message; all others were written.
    Lines {
        rejected: Vec<(usize, String)>,
        message: String,
    },
    /// Nothing was written because some line is bad (3.x `/api/v2/write` and `/write`, parse
    /// errors): bisect to find it.
    Rejected { message: String },
    /// 401/403: the credentials are wrong. Keep everything; an operator must act.
    Unauthorized { message: String },
    /// 404: no such database or bucket (or a server without this API). Keep everything.
    NotFound { message: String },
    /// The output cannot send until an operator fixes its settings (a token file that cannot
    /// be read, say). Keep everything.
    Misconfigured { reason: String },
    /// 429/503 and other 5xx, timeouts and connection errors: try again later, after at least
    /// `retry_after` when the server said so.
    Unavailable {
        reason: String,
        retry_after: Option<Duration>,
    },
}
