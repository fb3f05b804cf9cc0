//! I2C climate chips: one driver per chip family, each generic over embedded-hal 1.0 `I2c` and
//! `DelayNs` so tests run them against a mock bus. The Pi's I2C controller mishandles clock
//! stretching, so every driver uses its chip's no-stretch commands: a write, a wait, a read.

pub mod crc;
