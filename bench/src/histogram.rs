//! An HDR-style histogram of latencies in microseconds: log-linear buckets (128 per power
//! of two, so any value is reported within 1 % of itself), fixed memory, mergeable.

use serde::Serialize;

/// Sub-buckets per power of two, as bits: 2^7 = 128, a relative error under 1 %.
const SUB_BITS: u32 = 7;
const SUB: u64 = 1 << SUB_BITS;
/// Enough buckets for any `u64`.
const BUCKETS: usize = ((64 - SUB_BITS as usize) + 1) << SUB_BITS;

#[derive(Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

/// The percentiles a report shows, in milliseconds.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Percentiles {
    pub count: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            counts: vec![0; BUCKETS],
            total: 0,
            max: 0,
        }
    }
}

impl Histogram {
    pub fn record(&mut self, micros: u64) {
        self.counts[index(micros)] += 1;
        self.total += 1;
        self.max = self.max.max(micros);
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
        self.total += other.total;
        self.max = self.max.max(other.max);
    }

    pub fn count(&self) -> u64 {
        self.total
    }

    /// The value at quantile `q` (0–1): the highest value of its bucket, at most the maximum.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (bucket, count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return highest(bucket).min(self.max);
            }
        }
        self.max
    }

    pub fn percentiles(&self) -> Percentiles {
        let ms = |micros: u64| micros as f64 / 1000.0;
        Percentiles {
            count: self.total,
            p50_ms: ms(self.quantile(0.50)),
            p90_ms: ms(self.quantile(0.90)),
            p99_ms: ms(self.quantile(0.99)),
            p999_ms: ms(self.quantile(0.999)),
            max_ms: ms(self.max),
        }
    }
}

fn index(value: u64) -> usize {
    if value < SUB {
        return value as usize;
    }
    let shift = 63 - value.leading_zeros() - SUB_BITS;
    let sub = (value >> shift) - SUB;
    (((shift + 1) as usize) << SUB_BITS) + sub as usize
}

fn highest(bucket: usize) -> u64 {
    let bucket = bucket as u64;
    if bucket < SUB {
        return bucket;
    }
    let shift = (bucket >> SUB_BITS) - 1;
    let sub = (bucket & (SUB - 1)) + SUB;
    ((sub + 1) << shift) - 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_lands_in_a_bucket_that_holds_it_within_one_percent() {
        for value in [
            0,
            1,
            127,
            128,
            129,
            255,
            256,
            1_000,
            65_432,
            10_000_000,
            u64::MAX / 2,
        ] {
            let high = highest(index(value));
            assert!(high >= value, "{value}: {high}");
            assert!(
                (high - value) as f64 <= value as f64 / 100.0 + 1.0,
                "{value}: {high}"
            );
        }
    }

    #[test]
    fn percentiles_of_one_to_a_thousand_are_where_they_should_be() {
        let mut histogram = Histogram::default();
        for value in 1..=1000 {
            histogram.record(value);
        }
        assert!((500..=505).contains(&histogram.quantile(0.5)));
        assert!((990..=998).contains(&histogram.quantile(0.99)));
        assert_eq!(histogram.quantile(1.0), 1000);
    }
}
