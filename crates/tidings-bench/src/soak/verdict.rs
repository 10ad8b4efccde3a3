//! Judging a finished soak: every event delivered once and in order, every
//! publication accepted, and memory and descriptors flat after warm-up.

use super::ledger::Ledger;
use super::plan::Plan;
use super::sampler::Sample;
use super::SoakArgs;
use std::fmt;
use std::sync::atomic::Ordering::Relaxed;

pub struct Verdict {
    published: u64,
    delivered: u64,
    lost: u64,
    duplicated: u64,
    foreign: u64,
    failed_publishes: u64,
    reconnects: u64,
    pauses: u64,
    slow_resumes: u64,
    unexpected_ends: u64,
    caught_up: bool,
    /// Resident memory after warm-up: at its start, and the highest since.
    rss_mib: Option<(f64, f64)>,
    /// Descriptors beyond open subscriptions after warm-up: at its start,
    /// and the highest since.
    fd_overhead: Option<(i64, i64)>,
    failures: Vec<String>,
}

pub fn judge(
    args: &SoakArgs,
    plan: &Plan,
    ledger: &Ledger,
    samples: &[Sample],
    published: u64,
    caught_up: bool,
) -> Verdict {
    let counts = &ledger.counts;
    let mut verdict = Verdict {
        published,
        delivered: counts.delivered.load(Relaxed),
        // Gaps seen on the way, plus what never arrived at the end.
        lost: counts.lost.load(Relaxed) + ledger.missing(&plan.subscriber_streams()),
        duplicated: counts.duplicated.load(Relaxed),
        foreign: counts.foreign.load(Relaxed),
        failed_publishes: counts.failed_publishes.load(Relaxed),
        reconnects: counts.reconnects.load(Relaxed),
        pauses: counts.pauses.load(Relaxed),
        slow_resumes: counts.slow_resumes.load(Relaxed),
        unexpected_ends: counts.unexpected_ends.load(Relaxed),
        caught_up,
        rss_mib: None,
        fd_overhead: None,
        failures: Vec::new(),
    };
    let mut fail = |reason: String| verdict.failures.push(reason);
    if verdict.lost > 0 {
        fail(format!("{} events lost", verdict.lost));
    }
    if verdict.duplicated > 0 {
        fail(format!("{} events duplicated", verdict.duplicated));
    }
    if verdict.foreign > 0 {
        fail(format!("{} events not asked for", verdict.foreign));
    }
    if verdict.failed_publishes > 0 {
        fail(format!("{} publications failed", verdict.failed_publishes));
    }
    if published == 0 {
        fail("nothing was published".into());
    }
    // Pauses cut short by the end of the run may end without a disconnection.
    if verdict.slow_resumes * 2 < verdict.pauses {
        fail(format!(
            "only {} of {} paused readers were disconnected as slow: the pause is too short \
             to fill the hub's queue and the kernel's buffers (raise --slow-pause or the \
             stream's rate)",
            verdict.slow_resumes, verdict.pauses
        ));
    }

    let after: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.seconds >= args.warmup)
        .collect();
    if after.len() < 2 {
        fail(format!(
            "fewer than two samples after the {} s warm-up: memory cannot be judged",
            args.warmup
        ));
    }
    let rss: Vec<f64> = after.iter().filter_map(|s| s.rss_mib).collect();
    if let (Some(&first), Some(highest)) = (rss.first(), rss.iter().copied().reduce(f64::max)) {
        verdict.rss_mib = Some((first, highest));
        if highest - first > args.max_rss_growth_mib {
            fail(format!(
                "memory grew {:.1} MiB after warm-up (bound {} MiB)",
                highest - first,
                args.max_rss_growth_mib
            ));
        }
    } else if args.pid.is_some() {
        fail("the hub's memory could not be read".into());
    }
    let overhead: Vec<i64> = after.iter().filter_map(|s| s.fd_overhead()).collect();
    if let (Some(&first), Some(&highest)) = (overhead.first(), overhead.iter().max()) {
        verdict.fd_overhead = Some((first, highest));
        if highest - first > args.max_fd_growth {
            fail(format!(
                "descriptors beyond subscriptions grew by {} after warm-up (bound {})",
                highest - first,
                args.max_fd_growth
            ));
        }
    }
    verdict
}

impl Verdict {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "soak: published {}, delivered {}",
            self.published, self.delivered
        )?;
        writeln!(
            f,
            "soak: lost {}, duplicated {}, not asked for {}, failed publications {}",
            self.lost, self.duplicated, self.foreign, self.failed_publishes
        )?;
        writeln!(
            f,
            "soak: {} reconnections, {} pauses ({} disconnected as slow and resumed), \
             {} streams ended by the hub otherwise; all caught up at the end: {}",
            self.reconnects, self.pauses, self.slow_resumes, self.unexpected_ends, self.caught_up
        )?;
        if let Some((first, highest)) = self.rss_mib {
            writeln!(
                f,
                "soak: memory after warm-up {first:.1} MiB, highest {highest:.1} MiB"
            )?;
        }
        if let Some((first, highest)) = self.fd_overhead {
            writeln!(
                f,
                "soak: descriptors beyond subscriptions after warm-up {first}, highest {highest}"
            )?;
        }
        match self.failures.is_empty() {
            true => writeln!(f, "soak: PASSED"),
            false => writeln!(f, "soak: FAILED: {}", self.failures.join("; ")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: SoakArgs,
    }

    fn args() -> SoakArgs {
        let argv = [
            "soak",
            "--jwt-key",
            "k",
            "--pid",
            "1",
            "--subs",
            "2",
            "--streams",
            "1",
            "--warmup",
            "20",
            "--max-rss-growth-mib",
            "8",
        ];
        Cli::parse_from(argv).args
    }

    /// Samples every 10 s with the given memory, 100 descriptors beyond subscriptions.
    fn samples(rss: &[f64]) -> Vec<Sample> {
        rss.iter()
            .enumerate()
            .map(|(i, &mib)| Sample {
                seconds: 10.0 * (i + 1) as f64,
                rss_mib: Some(mib),
                fds: Some(102),
                hub: super::super::metrics::HubFigures {
                    subscribers: Some(2.0),
                    ..Default::default()
                },
                ..Sample::default()
            })
            .collect()
    }

    /// A run in which both subscribers got both events.
    fn clean_ledger() -> Ledger {
        let ledger = Ledger::new(1, 2);
        for seq in 0..2 {
            ledger.count_published(0);
            for sub in 0..2 {
                ledger.arrive(sub, seq);
            }
        }
        ledger
    }

    fn judge_with(ledger: &Ledger, rss: &[f64]) -> Verdict {
        let args = args();
        let plan = Plan::new(&args).unwrap();
        judge(&args, &plan, ledger, &samples(rss), 2, true)
    }

    #[test]
    fn growth_during_warm_up_is_allowed_after_it_is_not() {
        let ledger = clean_ledger();
        assert!(judge_with(&ledger, &[10.0, 30.0, 31.0, 32.0, 33.0]).passed());
        let leaking = judge_with(&ledger, &[10.0, 30.0, 31.0, 36.0, 40.0]);
        assert!(!leaking.passed());
        assert!(
            leaking.to_string().contains("memory grew 10.0 MiB"),
            "{leaking}"
        );
        // Too short to judge memory at all.
        assert!(!judge_with(&ledger, &[10.0, 11.0]).passed());
    }

    #[test]
    fn an_event_missing_at_the_end_is_a_loss() {
        let ledger = clean_ledger();
        ledger.count_published(0);
        ledger.arrive(0, 2);
        let verdict = judge_with(&ledger, &[10.0, 10.0, 10.0, 10.0]);
        assert!(!verdict.passed());
        assert!(verdict.to_string().contains("1 events lost"), "{verdict}");
    }
}
