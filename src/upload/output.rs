//! The wire, behind a trait. An output sends a batch and translates whatever its wire answers
//! (HTTP statuses and bodies; MQTT PUBACK reason codes such as 0x87 not authorized, 0x97 quota
//! exceeded, 0x95 packet too large, 0x99 payload format invalid) into an `Answer`, so the
//! delivery policy (`policy`) and what goes next (`schedule`) serve every output unchanged.

use super::answer::Answer;

pub trait Output: Send {
    /// Whether bodies go out gzip-compressed (the packer compresses while it renders).
    fn gzip(&self) -> bool;

    /// Send one body of line protocol (newline-separated, gzip when `gzip()` says so).
    /// `wall_ns`: the wall clock now, for answers that name a time (an HTTP `Retry-After` date).
    fn send(&mut self, body: &[u8], wall_ns: i64) -> Answer;
}
