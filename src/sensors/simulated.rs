//! Simulated sensors: plausible, seedable data for every kind, so the agent runs without
//! hardware and tests get reproducible input.
