//! The series a board writes: one per sensor, one more per edge of an event sensor (the same
//! tags plus `event`), and the agent's own health readings. The recorder turns each into a
//! queue series id once, at start; the device module builds the plan from the board and the
//! device's identity.

use crate::reading::EdgeName;

/// Measurement of the agent's own health readings (like Telegraf's `internal`).
pub const INTERNAL_MEASUREMENT: &str = "fieldlink_internal";

/// What the recorder needs to know about the board's series.
pub struct SeriesPlan {
    /// Series key per sensor, in board order.
    pub sensor_keys: Vec<String>,
    /// Per sensor, in board order: the series key of each edge it reports (empty for sensors
    /// without events).
    pub event_keys: Vec<Vec<(EdgeName, String)>>,
    pub sensor_ids: Vec<String>,
    pub internal_key: String,
}
