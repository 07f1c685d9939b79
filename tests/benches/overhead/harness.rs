//! A small interleaving harness: every round runs every variant of a scenario once, for one batch,
//! in a rotating order; the result of a variant is the median, over rounds, of its per-op time.

use std::time::Duration;

/// One way of doing the scenario's operation. `run(n)` performs operations `0..n` and returns the
/// time they took (setup outside the measured region is not counted) and the sum of the operations'
/// outputs, which must be `0 + 1 + ... + (n - 1)`: a body that did not run fails the bench.
pub struct Variant {
    pub name: &'static str,
    pub run: Box<dyn FnMut(usize) -> (Duration, u64)>,
    /// Operations performed so far, warm-up included (for the envelope checks).
    pub ops: usize,
}

impl Variant {
    pub fn new(name: &'static str, run: impl FnMut(usize) -> (Duration, u64) + 'static) -> Variant {
        Variant {
            name,
            run: Box::new(run),
            ops: 0,
        }
    }

    /// Runs one batch of `n` operations; panics when the outputs are wrong.
    pub fn batch(&mut self, n: usize) -> Duration {
        self.ops += n;
        let (elapsed, sum) = (self.run)(n);
        let n = n as u64;
        assert_eq!(
            sum,
            n * n.saturating_sub(1) / 2,
            "{}: wrong outputs",
            self.name
        );
        elapsed
    }
}

/// How many rounds of which batch size.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub warmup_rounds: usize,
    pub rounds: usize,
    pub batch: usize,
}

/// The measured per-op times of one variant, one sample per round.
pub struct Measured {
    pub name: &'static str,
    pub samples_ns: Vec<f64>,
}

impl Measured {
    pub fn quantile(&self, q: f64) -> f64 {
        let mut sorted = self.samples_ns.clone();
        sorted.sort_by(f64::total_cmp);
        let pos = q * (sorted.len() - 1) as f64;
        let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
        sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
    }

    pub fn median(&self) -> f64 {
        self.quantile(0.5)
    }

    /// The ratio of medians to `reference` (what the table reports), and the median over rounds of
    /// the per-round ratio (paired: a slow-down of the whole machine during some rounds cancels).
    pub fn ratio_to(&self, reference: &Measured) -> Ratio {
        let per_round = Measured {
            name: self.name,
            samples_ns: self
                .samples_ns
                .iter()
                .zip(&reference.samples_ns)
                .map(|(mine, theirs)| mine / theirs)
                .collect(),
        };
        Ratio {
            of_medians: self.median() / reference.median(),
            paired: per_round.median(),
        }
    }
}

/// A variant's time relative to another variant of the same scenario.
#[derive(Debug, Clone, Copy)]
pub struct Ratio {
    pub of_medians: f64,
    pub paired: f64,
}

/// Runs `plan.warmup_rounds` discarded rounds, then `plan.rounds` measured rounds; in round `r`
/// the variants run in order starting at `r % variants.len()`, so none is always first or last.
pub fn interleave(variants: &mut [Variant], plan: Plan) -> Vec<Measured> {
    let count = variants.len();
    let mut samples = vec![Vec::with_capacity(plan.rounds); count];
    for round in 0..plan.warmup_rounds + plan.rounds {
        for k in 0..count {
            let i = (round + k) % count;
            let elapsed = variants[i].batch(plan.batch);
            if round >= plan.warmup_rounds {
                samples[i].push(elapsed.as_nanos() as f64 / plan.batch as f64);
            }
        }
    }
    variants
        .iter()
        .zip(samples)
        .map(|(variant, samples_ns)| Measured {
            name: variant.name,
            samples_ns,
        })
        .collect()
}
