//! A reading is what one sensor said at one moment: typed field values plus the time it was
//! sampled. The timestamp is taken once, at sampling, and travels with the reading through the
//! queue, so a re-send after a crash carries the same time and InfluxDB merges the duplicate.

/// One field value, typed the way InfluxDB line protocol types it.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Float(f64),
    /// Written with the `i` suffix.
    Int(i64),
    /// Written with the `u` suffix; only when a board file asks for it (InfluxDB 1.x lacks it).
    UInt(u64),
    Bool(bool),
    Str(String),
}

/// Field name and value pairs in the order a driver produces them (line protocol sorts nothing
/// here; field order is kept stable by the drivers themselves).
pub type Fields = Vec<(&'static str, Value)>;

/// Whether a reading is a routine periodic sample or an event (a door opening, a motion edge).
/// The queue thins and drops routine readings before it ever touches events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Routine,
    /// An edge, named: its readings go to their own series (tag `event`), so counting the
    /// openings is counting points, and a state sample taken while the door is open never
    /// looks like an opening.
    Event(EdgeName),
}

impl Kind {
    pub fn is_event(self) -> bool {
        matches!(self, Kind::Event(_))
    }
}

/// Which edge an event reports; its name is the value of the `event` tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum EdgeName {
    /// A door contact opened (reed switch, simulated door).
    Open,
    /// A door contact closed.
    Close,
    /// A motion detector went active (PIR, simulated motion).
    Motion,
    /// A motion detector went quiet.
    Clear,
}

impl EdgeName {
    /// The tag key every event reading carries.
    pub const TAG: &'static str = "event";

    /// The `event` tag's value.
    pub fn tag_value(self) -> &'static str {
        match self {
            EdgeName::Open => "open",
            EdgeName::Close => "close",
            EdgeName::Motion => "motion",
            EdgeName::Clear => "clear",
        }
    }
}

/// An edge as an event sensor reports it: which edge, and the fields of its reading.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub edge: EdgeName,
    pub fields: Fields,
}

/// A reading ready for the queue: which series it belongs to and what was measured when.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    /// Index of the sensor in the board file (its series: measurement + tags).
    pub sensor: usize,
    pub kind: Kind,
    pub fields: Fields,
    pub stamp: crate::clock::Stamp,
}
