//! System memory bandwidth, measured (`fleetfit-agent probe --measure-bandwidth`): one thread
//! copies a large buffer a few times with `copy_from_slice` and the best pass wins. Bytes read
//! plus bytes written count, as STREAM's `Copy` does, so the figure compares with datasheet
//! numbers for one core (a single thread rarely saturates every channel: it is a lower bound).

use std::hint::black_box;
use std::time::{Duration, Instant};

/// The buffer the CLI copies: big enough to defeat every cache level of today's CPUs.
pub const DEFAULT_BUFFER_BYTES: usize = 256 << 20;

/// The time the CLI allows the measurement.
pub const DEFAULT_BUDGET: Duration = Duration::from_millis(500);

/// At most this many timed copies, however fast they are.
const MAX_PASSES: u32 = 10;

/// Copies a `buffer_bytes` buffer into another one until `budget` is spent (at least two
/// passes, at most ten) and returns the best pass in GB/s (10⁹ bytes per second, read plus
/// write), rounded to 0.1. `None` when `buffer_bytes` is 0 or no pass took measurable time.
pub fn measure_copy_gbps(buffer_bytes: usize, budget: Duration) -> Option<f64> {
    if buffer_bytes == 0 {
        return None;
    }
    let start = Instant::now();
    // Non-zero source so the pages are really there; the destination's first pass faults its
    // pages in, which the best-of-N discards.
    let src = vec![0x5au8; buffer_bytes];
    let mut dst = vec![0u8; buffer_bytes];
    let mut best: Option<Duration> = None;
    let mut passes = 0;
    while passes < 2 || (passes < MAX_PASSES && start.elapsed() < budget) {
        let t = Instant::now();
        dst.copy_from_slice(black_box(&src));
        black_box(&mut dst);
        let took = t.elapsed();
        passes += 1;
        if !took.is_zero() && best.is_none_or(|b| took < b) {
            best = Some(took);
        }
    }
    let secs = best?.as_secs_f64();
    let gbps = 2.0 * buffer_bytes as f64 / secs / 1e9;
    Some((gbps * 10.0).round() / 10.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tiny_buffer_gives_a_positive_rounded_figure() {
        let gbps = measure_copy_gbps(1 << 20, Duration::from_millis(20)).unwrap();
        assert!(gbps > 0.0, "{gbps}");
        assert!((gbps * 10.0 - (gbps * 10.0).round()).abs() < 1e-9, "{gbps}");
    }

    #[test]
    fn an_empty_buffer_is_no_figure() {
        assert_eq!(measure_copy_gbps(0, Duration::from_millis(1)), None);
    }
}
