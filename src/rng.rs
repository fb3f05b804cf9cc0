//! The one seedable PRNG (SplitMix64): backoff jitter, start delays and simulated sensors, all
//! reproducible from a seed, without pulling in a crate.

#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// Seed from a text (a device or sensor id), so each device gets its own stable sequence.
    pub fn from_text(text: &str) -> Rng {
        // FNV-1a: stable across Rust versions, unlike DefaultHasher.
        let hash = text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
        });
        Rng(hash)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [low, high).
    pub fn range(&mut self, low: f64, high: f64) -> f64 {
        low + (high - low) * self.unit()
    }

    /// True with the given probability.
    pub fn chance(&mut self, probability: f64) -> bool {
        self.unit() < probability
    }

    /// Waiting time of a Poisson process with the given mean.
    pub fn exponential(&mut self, mean: f64) -> f64 {
        -mean * ln(1.0 - self.unit())
    }

    /// An independent generator, so one stream's consumption does not shift another's.
    pub fn fork(&mut self) -> Rng {
        Rng::new(self.next_u64())
    }
}

/// Natural logarithm of a positive finite `x`, to within a few ulps.
///
/// Why not `f64::ln`: it is the agent's only call into libm, and linking libm for it costs
/// about 320 KiB of resident memory on a device whose budget is 6 MiB.
fn ln(x: f64) -> f64 {
    debug_assert!(x > 0.0 && x.is_finite());
    // Scale a subnormal up into the normal range first.
    const TWO_TO_54: f64 = 18_014_398_509_481_984.0;
    let (bits, subnormal_shift) = if x.is_normal() {
        (x.to_bits(), 0)
    } else {
        ((x * TWO_TO_54).to_bits(), 54)
    };
    // x = m * 2^e with m in [1, 2); then ln x = e ln 2 + ln m, and
    // ln m = 2 atanh(s) = 2 (s + s^3/3 + s^5/5 + ...) with s = (m - 1) / (m + 1) <= 1/3.
    let exponent = ((bits >> 52) & 0x7ff) as i64 - 1023 - subnormal_shift;
    let m = f64::from_bits((bits & ((1u64 << 52) - 1)) | (1023u64 << 52));
    let s = (m - 1.0) / (m + 1.0);
    let s2 = s * s;
    let (mut term, mut sum) = (s, 0.0);
    for k in 0..20 {
        sum += term / (2 * k + 1) as f64;
        term *= s2;
    }
    exponent as f64 * std::f64::consts::LN_2 + 2.0 * sum
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ln_agrees_with_libm() {
        let mut r = Rng::new(7);
        let samples = (0..10_000).map(|_| 1.0 - r.unit());
        let edges = [
            1.0,
            2.0,
            0.5,
            1e-300,
            5e-324,
            f64::MIN_POSITIVE,
            1.0 - f64::EPSILON,
            1e300,
        ];
        for x in samples.chain(edges) {
            let (ours, libm) = (ln(x), x.ln());
            assert!(
                (ours - libm).abs() <= 4.0 * f64::EPSILON * libm.abs().max(1.0),
                "ln({x:e}) = {ours}, libm says {libm}"
            );
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_sequence() {
        let (mut a, mut b) = (Rng::from_text("pi-7"), Rng::from_text("pi-7"));
        assert_eq!(
            (0..5).map(|_| a.next_u64()).collect::<Vec<_>>(),
            (0..5).map(|_| b.next_u64()).collect::<Vec<_>>()
        );
        assert_ne!(
            Rng::from_text("pi-8").next_u64(),
            Rng::from_text("pi-7").next_u64()
        );
    }

    #[test]
    fn unit_stays_in_its_interval() {
        let mut r = Rng::new(1);
        assert!((0..10_000)
            .map(|_| r.unit())
            .all(|x| (0.0..1.0).contains(&x)));
    }
}
