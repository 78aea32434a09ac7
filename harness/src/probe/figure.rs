//! Measurements a probe keeps for the reader's eye: the HTML report draws them
//! ([`crate::report::chart`]), the JSON report carries them. A figure never decides a verdict;
//! it shows the data the verdict was decided on.
//!
//! Cost: bounded by construction. A timeline keeps at most [`MAX_TIMELINE_CALLS`] calls, a
//! distribution [`DIFFERENCE_BINS`] counts, a memory series [`MAX_MEMORY_SAMPLES`] samples, so a
//! report stays small however long the run.

/// At most this many calls of a flood are kept for its timeline (the first ones: the burst,
/// the first refusal and the sustained rate all fall within them).
pub const MAX_TIMELINE_CALLS: usize = 4_000;
/// A distribution of paired differences is drawn in this many equal-width bins.
pub const DIFFERENCE_BINS: usize = 40;
/// At most this many memory samples are kept.
pub const MAX_MEMORY_SAMPLES: usize = 64;

/// What one probe measured, for a picture.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Figure {
    /// A flood (RATE-FLOOD): each call's answer in order of arrival, against the limit the user
    /// expects (`--expect-burst`, `--expect-rate`) when given.
    CallTimeline {
        calls: Vec<TimedCall>,
        /// Calls sent that the timeline does not show (beyond [`MAX_TIMELINE_CALLS`]).
        calls_not_shown: usize,
        #[serde(skip_serializing_if = "Option::is_none")]
        expected_burst: Option<u32>,
        #[serde(skip_serializing_if = "Option::is_none")]
        expected_per_second: Option<f64>,
    },
    /// Paired timing differences (TIME): a histogram between the 1st and 99th percentiles, what
    /// fell outside it, and what was decided.
    Differences {
        /// What was subtracted from what, e.g. "last-byte miss minus first-byte miss".
        compared: String,
        low_ns: f64,
        high_ns: f64,
        bins: Vec<u32>,
        below: u32,
        above: u32,
        median_ns: f64,
        pairs: usize,
        decision: String,
    },
    /// Resident memory of the target's processes during a flood of distinct values (RES).
    Memory { samples: Vec<MemorySample> },
}

/// One call of a flood: when its answer came (ms from the flood's start) and its fate.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct TimedCall {
    pub at_ms: u32,
    pub served: bool,
}

/// One reading of resident memory during a flood.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct MemorySample {
    pub at_ms: u32,
    /// Calls made when it was read.
    pub calls: usize,
    pub kb: u64,
}

impl Figure {
    /// The histogram of `differences` (ns): [`DIFFERENCE_BINS`] bins between the 1st and 99th
    /// percentiles (one bin around the value when they are equal); non-finite values are left
    /// out. `None` for no finite value.
    pub fn differences(compared: &str, differences: &[f64], decision: &str) -> Option<Figure> {
        let mut sorted: Vec<f64> = differences
            .iter()
            .copied()
            .filter(|d| d.is_finite())
            .collect();
        if sorted.is_empty() {
            return None;
        }
        sorted.sort_by(f64::total_cmp);
        let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize];
        let (mut low, mut high) = (at(0.01), at(0.99));
        if high <= low {
            low -= 0.5;
            high += 0.5;
        }
        let width = (high - low) / DIFFERENCE_BINS as f64;
        let mut bins = vec![0u32; DIFFERENCE_BINS];
        let (mut below, mut above) = (0u32, 0u32);
        for &d in &sorted {
            if d < low {
                below += 1;
            } else if d > high {
                above += 1;
            } else {
                let bin = (((d - low) / width) as usize).min(DIFFERENCE_BINS - 1);
                bins[bin] += 1;
            }
        }
        Some(Figure::Differences {
            compared: compared.to_owned(),
            low_ns: low,
            high_ns: high,
            bins,
            below,
            above,
            median_ns: at(0.5),
            pairs: sorted.len(),
            decision: decision.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_histogram_counts_every_finite_difference_once() {
        let values: Vec<f64> = (0..1000)
            .map(|i| i as f64 - 500.0)
            .chain([f64::NAN])
            .collect();
        let Some(Figure::Differences {
            bins,
            below,
            above,
            pairs,
            median_ns,
            low_ns,
            high_ns,
            ..
        }) = Figure::differences("b minus a", &values, "no difference")
        else {
            panic!("a histogram");
        };
        assert_eq!(pairs, 1000);
        assert_eq!(bins.len(), DIFFERENCE_BINS);
        assert_eq!(bins.iter().sum::<u32>() + below + above, 1000);
        assert!(below > 0 && above > 0, "the tails are counted apart");
        assert!(low_ns < median_ns && median_ns < high_ns);
    }

    #[test]
    fn equal_differences_make_one_narrow_histogram() {
        let Some(Figure::Differences {
            bins,
            low_ns,
            high_ns,
            ..
        }) = Figure::differences("b minus a", &[7.0; 10], "")
        else {
            panic!("a histogram");
        };
        assert_eq!(bins.iter().sum::<u32>(), 10);
        assert!(low_ns < 7.0 && 7.0 < high_ns);
        assert_eq!(Figure::differences("", &[f64::INFINITY], ""), None);
    }
}
