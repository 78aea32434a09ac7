//! The sequential timing test: interleaved request rounds over one connection (the keep-alive
//! HTTP client, or any other [`Exchange`], such as a tool call over a stdio pipe), and the
//! sequential decision the TIME probe and its sensitivity benchmark share.
//!
//! A *round* sends each of a few request variants once, in a fresh random order, back to back
//! on the same connection, and records each round trip. Only differences within a round are
//! judged (see [`crate::stats`]), so drift between rounds cancels out.
//!
//! Cost: one round trip per variant per round. Failure: an exchange's error ends the
//! measurement with that error, never a hang.

use crate::connection::keepalive::{KeepAliveClient, TimingError, Variant};
use crate::stats::{self, TestResult};
use rand::Rng;
use rand::seq::SliceRandom;
use std::time::{Duration, Instant};

/// Samples from rounds: `times[v][r]` is variant `v`'s round trip in round `r`, in ns, and
/// `statuses[v]` the distinct statuses variant `v` received (at most 16).
#[derive(Debug, Default, Clone)]
pub struct Rounds {
    pub times: Vec<Vec<f64>>,
    pub statuses: Vec<Vec<u16>>,
    /// Calls a rate limit refused (waited out, the round measured again; never timed).
    pub refused: usize,
    /// The time spent waiting out those refusals.
    pub waited: Duration,
}

impl Rounds {
    pub fn new(variants: usize) -> Self {
        Self {
            times: vec![Vec::new(); variants],
            statuses: vec![Vec::new(); variants],
            refused: 0,
            waited: Duration::ZERO,
        }
    }

    pub fn len(&self) -> usize {
        self.times.first().map_or(0, Vec::len)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Paired differences `variant b - variant a`, in ns.
    pub fn differences(&self, a: usize, b: usize) -> Vec<f64> {
        self.times[b]
            .iter()
            .zip(&self.times[a])
            .map(|(tb, ta)| tb - ta)
            .collect()
    }
}

/// One timed request per call, in one of a few variants: what a round is made of.
pub trait Exchange {
    /// How many variants there are.
    fn variants(&self) -> usize;
    /// Sends variant `variant` once; returns its status (HTTP status, or 200 for a served and
    /// 401 for a refused tool call) and the round trip.
    fn exchange(&mut self, variant: usize) -> Result<(u16, Duration), TimingError>;
}

/// How long an HTTP 429 is waited out per variant of the round measured again.
const HTTP_REFUSAL_WAIT: Duration = Duration::from_millis(250);

/// The HTTP exchange: a POST of `body` with each variant's headers, over one keep-alive client.
pub struct HttpExchange<'a> {
    pub client: &'a mut KeepAliveClient,
    pub body: &'a [u8],
    pub variants: &'a [Variant],
}

impl Exchange for HttpExchange<'_> {
    fn variants(&self) -> usize {
        self.variants.len()
    }

    fn exchange(&mut self, variant: usize) -> Result<(u16, Duration), TimingError> {
        match self
            .client
            .post(self.body, &self.variants[variant].headers)?
        {
            (429, _) => Err(TimingError::Refused(HTTP_REFUSAL_WAIT)),
            answered => Ok(answered),
        }
    }
}

/// Measures `rounds` more rounds of `variants` into `into`, each round in a random order.
pub fn measure_rounds(
    client: &mut KeepAliveClient,
    body: &[u8],
    variants: &[Variant],
    rounds: usize,
    into: &mut Rounds,
    rng: &mut impl Rng,
) -> Result<(), TimingError> {
    let mut exchange = HttpExchange {
        client,
        body,
        variants,
    };
    measure_rounds_with(&mut exchange, rounds, into, rng)
}

/// [`measure_rounds`] over any [`Exchange`].
pub fn measure_rounds_with(
    exchange: &mut impl Exchange,
    rounds: usize,
    into: &mut Rounds,
    rng: &mut impl Rng,
) -> Result<(), TimingError> {
    let variants = exchange.variants();
    let mut order: Vec<usize> = (0..variants).collect();
    let mut round = vec![0.0; variants];
    let mut statuses = vec![0u16; variants];
    let mut done = 0;
    let refused_in_a_row = std::cell::Cell::new(0);
    // The limiter answered, not the check under test: wait for a whole round's worth of tokens
    // (and the warm-up call's) and measure the round again, so its calls stay back to back.
    let wait_out = |wait: Duration, into: &mut Rounds| {
        into.refused += 1;
        refused_in_a_row.set(refused_in_a_row.get() + 1);
        if refused_in_a_row.get() > MAX_REFUSED_ROUNDS {
            return Err(TimingError::RefusedTooOften(MAX_REFUSED_ROUNDS));
        }
        let pause = wait * (variants as u32 + 1);
        into.waited += pause;
        std::thread::sleep(pause);
        Ok(())
    };
    // After a wait the first call is slow (a cold path, a sleeping peer): one untimed call
    // goes first so that the round's calls are timed warm.
    let mut warm_up = false;
    'rounds: while done < rounds {
        order.shuffle(rng);
        if warm_up {
            match exchange.exchange(order[0]) {
                Ok(_) => warm_up = false,
                Err(TimingError::Refused(wait)) => {
                    wait_out(wait, into)?;
                    continue 'rounds;
                }
                Err(error) => return Err(error),
            }
        }
        for &v in &order {
            match exchange.exchange(v) {
                Ok((status, elapsed)) => {
                    round[v] = elapsed.as_nanos() as f64;
                    statuses[v] = status;
                }
                Err(TimingError::Refused(wait)) => {
                    wait_out(wait, into)?;
                    warm_up = true;
                    continue 'rounds;
                }
                Err(error) => return Err(error),
            }
        }
        refused_in_a_row.set(0);
        done += 1;
        for v in 0..variants {
            into.times[v].push(round[v]);
            let status = statuses[v];
            if into.statuses[v].len() < 16 && !into.statuses[v].contains(&status) {
                into.statuses[v].push(status);
            }
        }
    }
    Ok(())
}

/// Most rounds in a row a rate limit may refuse before the measurement stops.
pub const MAX_REFUSED_ROUNDS: usize = 20;

/// The sequential plan: look at the data after each rung of rounds; every look is tested at
/// `alpha / looks` (Bonferroni), so the whole procedure's false-positive rate stays at or below
/// `alpha`.
///
/// A difference must also be at least `min_effect_ns` (median) to count: at tens of thousands
/// of pairs the sign test resolves a few nanoseconds, and a branch taken for one token and not
/// the other (measured: a 0 ns planted delay was "detected" at 60,000 pairs) is not a leak
/// anyone can exploit over a network.
#[derive(Debug, Clone)]
pub struct SequentialPlan {
    pub rungs: Vec<usize>,
    pub alpha: f64,
    pub min_effect_ns: f64,
}

impl SequentialPlan {
    pub fn per_look_alpha(&self) -> f64 {
        stats::bonferroni(self.alpha, self.rungs.len())
    }

    pub fn max_rounds(&self) -> usize {
        self.rungs.last().copied().unwrap_or(0)
    }
}

/// What one look at a comparison concluded.
#[derive(Debug, Clone, Copy)]
pub struct Look {
    pub rounds: usize,
    pub test: TestResult,
    /// The median of the differences, ns.
    pub median_ns: f64,
    /// The smallest difference these pairs would detect at the per-look alpha (power 0.8), ns.
    pub detectable_ns: f64,
}

impl Look {
    pub fn of(differences: &[f64], alpha: f64) -> Self {
        let mut sorted = differences.to_vec();
        sorted.sort_by(f64::total_cmp);
        let median_ns = if sorted.is_empty() {
            0.0
        } else {
            sorted[sorted.len() / 2]
        };
        Self {
            rounds: differences.len(),
            test: stats::sign_test(differences),
            median_ns,
            detectable_ns: stats::minimum_detectable_effect(differences, alpha, 0.8),
        }
    }

    pub fn significant(&self, alpha: f64) -> bool {
        self.test.p_value < alpha
    }

    /// Significant at `alpha` and at least `min_effect_ns` in size (either direction).
    pub fn differs(&self, alpha: f64, min_effect_ns: f64) -> bool {
        self.significant(alpha) && self.median_ns.abs() >= min_effect_ns
    }
}

/// What the sequential procedure concluded.
#[derive(Debug, Clone, Copy)]
pub enum Decision {
    /// The main comparison differs significantly, in the expected direction (B slower).
    Differs(Look),
    /// The main comparison differs, but B is *faster*: not the leak being tested for.
    Reversed(Look),
    /// The A/A control differed: the measurement itself is unreliable.
    ControlDiffers(Look),
    /// No significant difference after every rung (or when the time ran out).
    NoDifference(Look),
}

/// Which variants to compare: `main` is (a, b) with b expected slower when the target leaks;
/// `control` is (a, a') with two variants that should take the same time.
#[derive(Debug, Clone, Copy)]
pub struct Comparison {
    pub main: (usize, usize),
    pub control: (usize, usize),
}

/// Runs rounds rung by rung until a decision or the plan's end or `deadline`, after `rounds`
/// (which may hold warm-up rounds already; they are cleared first).
pub fn run_sequential(
    client: &mut KeepAliveClient,
    body: &[u8],
    variants: &[Variant],
    plan: &SequentialPlan,
    comparison: Comparison,
    deadlines: Deadlines,
    rng: &mut impl Rng,
) -> Result<(Rounds, Decision), TimingError> {
    let mut exchange = HttpExchange {
        client,
        body,
        variants,
    };
    run_sequential_with(&mut exchange, plan, comparison, deadlines, rng)
}

/// When a measurement stops: `soft` is its own budget, extended by the time spent waiting out
/// a rate limit (those waits measure nothing), but never past `hard` (the run's end).
#[derive(Debug, Clone, Copy)]
pub struct Deadlines {
    pub soft: Instant,
    pub hard: Instant,
}

/// [`run_sequential`] over any [`Exchange`].
pub fn run_sequential_with(
    exchange: &mut impl Exchange,
    plan: &SequentialPlan,
    comparison: Comparison,
    deadlines: Deadlines,
    rng: &mut impl Rng,
) -> Result<(Rounds, Decision), TimingError> {
    let alpha = plan.per_look_alpha();
    let mut rounds = Rounds::new(exchange.variants());
    let mut last = Look::of(&[], alpha);
    for &rung in &plan.rungs {
        let started = Instant::now();
        let before = rounds.len();
        measure_rounds_with(exchange, rung - before, &mut rounds, rng)?;
        let control = Look::of(
            &rounds.differences(comparison.control.0, comparison.control.1),
            alpha,
        );
        if control.differs(alpha, plan.min_effect_ns) {
            return Ok((rounds, Decision::ControlDiffers(control)));
        }
        last = Look::of(
            &rounds.differences(comparison.main.0, comparison.main.1),
            alpha,
        );
        if last.differs(alpha, plan.min_effect_ns) {
            let decision = if last.test.z > 0.0 {
                Decision::Differs(last)
            } else {
                Decision::Reversed(last)
            };
            return Ok((rounds, decision));
        }
        // Stop when the next rung would likely overrun the deadline.
        let per_round = started.elapsed().as_secs_f64() / (rung - before).max(1) as f64;
        let next = plan.rungs.iter().find(|r| **r > rung);
        let deadline = (deadlines.soft + rounds.waited).min(deadlines.hard);
        if let Some(next) = next
            && Instant::now() + Duration::from_secs_f64(per_round * (next - rung) as f64) > deadline
        {
            break;
        }
    }
    Ok((rounds, Decision::NoDifference(last)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connection::keepalive::tests::serve;

    /// An exchange whose limiter refuses every `refuse_every`-th call (`usize::MAX`: never;
    /// 1: always); served calls take `10 + variant` µs, refused ones would take 1 s.
    struct Limited {
        calls: usize,
        refuse_every: usize,
    }

    impl Exchange for Limited {
        fn variants(&self) -> usize {
            2
        }
        fn exchange(&mut self, variant: usize) -> Result<(u16, Duration), TimingError> {
            self.calls += 1;
            if self.calls.is_multiple_of(self.refuse_every) {
                return Err(TimingError::Refused(Duration::ZERO));
            }
            Ok((401, Duration::from_micros(10 + variant as u64)))
        }
    }

    #[test]
    fn a_refused_call_is_never_timed_and_its_round_is_measured_again() {
        let mut exchange = Limited {
            calls: 0,
            refuse_every: 5,
        };
        let mut rounds = Rounds::new(2);
        measure_rounds_with(&mut exchange, 40, &mut rounds, &mut rand::rng()).unwrap();
        assert_eq!(rounds.len(), 40);
        assert!(rounds.refused > 0);
        for (variant, times) in rounds.times.iter().enumerate() {
            let expected = (10_000 + 1000 * variant) as f64;
            assert!(times.iter().all(|t| *t == expected), "{variant}: {times:?}");
        }
        assert_eq!(rounds.statuses, vec![vec![401], vec![401]]);
    }

    #[test]
    fn a_limiter_that_never_serves_stops_the_measurement() {
        let mut exchange = Limited {
            calls: 0,
            refuse_every: 1,
        };
        let mut rounds = Rounds::new(2);
        let result = measure_rounds_with(&mut exchange, 5, &mut rounds, &mut rand::rng());
        assert!(
            matches!(result, Err(TimingError::RefusedTooOften(_))),
            "{result:?}"
        );
        assert_eq!(rounds.len(), 0);
    }

    #[test]
    fn rounds_pair_variants_in_every_order() {
        let url = serve(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n");
        let mut client = KeepAliveClient::new(&url, Duration::from_secs(5)).unwrap();
        let variants = [
            Variant {
                label: "a",
                headers: vec![],
            },
            Variant {
                label: "b",
                headers: vec![("x-b".into(), "1".into())],
            },
        ];
        let mut rounds = Rounds::new(2);
        let mut rng = rand::rng();
        measure_rounds(&mut client, b"{}", &variants, 50, &mut rounds, &mut rng).unwrap();
        assert_eq!(rounds.len(), 50);
        assert_eq!(rounds.differences(0, 1).len(), 50);
        assert_eq!(rounds.statuses[1], vec![401]);
    }
}
