//! What the end-to-end tests share, one file per concern: the InfluxDB process and its queries
//! ([`influx`]), line protocol read back as comparable points ([`line_protocol`]), queue files
//! read straight from SQLite ([`queue_files`]), board files ([`board`]), one device's temp
//! directory ([`site`]), the agent process ([`agent`]), child processes and waiting
//! ([`process`]), and the scripted HTTP server ([`fault_server`]).
#![allow(dead_code, unused_imports)]

pub mod agent;
pub mod board;
#[path = "../emulator/mod.rs"]
pub mod emulator;
pub mod fault_server;
pub mod influx;
pub mod line_protocol;
pub mod process;
pub mod queue_files;
pub mod site;

pub use agent::*;
pub use board::*;
pub use influx::*;
pub use line_protocol::*;
pub use process::*;
pub use queue_files::*;
pub use site::*;
