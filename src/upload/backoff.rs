//! Exponential backoff with full jitter (AWS architecture blog, "Exponential Backoff and
//! Jitter"): the delay is uniform in [floor, min(cap, base·2ⁿ)], so a fleet that failed
//! together does not retry together.

use crate::rng::Rng;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    floor: Duration,
    attempt: u32,
    rng: Rng,
}

impl Backoff {
    pub fn new(base: Duration, cap: Duration, floor: Duration, rng: Rng) -> Backoff {
        Backoff {
            base,
            cap,
            floor,
            attempt: 0,
            rng,
        }
    }

    /// The delay before the next attempt; each call doubles the ceiling up to the cap.
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = self
            .base
            .saturating_mul(1u32 << self.attempt.min(20))
            .min(self.cap);
        self.attempt = self.attempt.saturating_add(1);
        let span = ceiling.saturating_sub(self.floor);
        self.floor + span.mul_f64(self.rng.unit())
    }

    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    pub fn attempts(&self) -> u32 {
        self.attempt
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_but_never_pass_the_cap() {
        let mut b = Backoff::new(
            Duration::from_secs(1),
            Duration::from_secs(60),
            Duration::ZERO,
            Rng::new(3),
        );
        let delays: Vec<Duration> = (0..30).map(|_| b.next_delay()).collect();
        assert!(delays.iter().all(|d| *d <= Duration::from_secs(60)));
        assert!(delays[..3].iter().all(|d| *d <= Duration::from_secs(4)));
        assert!(
            delays[20..].iter().any(|d| *d > Duration::from_secs(10)),
            "{delays:?}"
        );
    }

    #[test]
    fn a_floor_keeps_long_backoffs_long_and_reset_starts_over() {
        let mut b = Backoff::new(
            Duration::from_secs(60),
            Duration::from_secs(900),
            Duration::from_secs(30),
            Rng::new(9),
        );
        assert!((0..20)
            .map(|_| b.next_delay())
            .all(|d| d >= Duration::from_secs(30)));
        b.reset();
        assert_eq!(b.attempts(), 0);
    }
}
