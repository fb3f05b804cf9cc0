//! Where fieldlink talks to the operating system directly: one file per kernel or systemd
//! subsystem, each a thin safe wrapper with its own error type that keeps the OS error as
//! `source()`. This is the only module allowed to use `unsafe`; everything else calls these
//! wrappers, so a review of the crate's unsafe code is a review of this folder.

pub mod exec;
pub mod fs;
pub mod lock;
pub mod malloc;
pub mod notify;
pub mod proc;
pub mod sched;
pub mod signals;
pub mod time;
