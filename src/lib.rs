//! fieldlink: an offline-first sensor agent for Raspberry Pi fleets.
//!
//! Data flows through the modules in this order: [`config`] (the board file) → [`sensors`]
//! (drivers) → [`sampler`] (timestamps) → [`queue`] (SQLite store-and-forward) →
//! [`upload`] (line protocol, gzip; InfluxDB over HTTP or an MQTT broker). [`agent`] wires them into threads and
//! [`cli`] is the command line. [`os`] is the only place that talks to the kernel directly.

#![deny(unsafe_code)]

pub mod activity;
pub mod agent;
pub mod aggregate;
pub mod cli;
pub mod clock;
pub mod config;
pub mod device;
pub mod line_protocol;
pub mod liveness;
pub mod logging;
pub mod os;
pub mod queue;
pub mod reading;
pub mod recorder;
pub mod rng;
pub mod sampler;
pub mod sensors;
pub mod shutdown;
pub mod upload;
