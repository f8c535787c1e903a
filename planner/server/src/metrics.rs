//! Prometheus metrics in the text exposition format: request counts per route and status,
//! readiness reports received, plan computation time (a histogram), configuration reloads.
//! Device counts per state are read from the store when `/metrics` is scraped.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Histogram bucket bounds (seconds) of `fleetfit_plan_compute_seconds`.
const PLAN_BUCKETS: [f64; 10] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];

/// The counters.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    reports_received: AtomicU64,
    reports_duplicate: AtomicU64,
    reloads: AtomicU64,
    reload_failures: AtomicU64,
    plan: Mutex<PlanHistogram>,
}

#[derive(Debug, Default)]
struct PlanHistogram {
    buckets: [u64; PLAN_BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Metrics {
    /// Counts one answered request.
    pub fn request(&self, route: &str, status: u16) {
        if let Ok(mut m) = self.requests.lock() {
            *m.entry((route.to_owned(), status)).or_default() += 1;
        }
    }

    /// Counts a stored readiness report (`duplicate`: a retry, not stored again).
    pub fn report(&self, duplicate: bool) {
        if duplicate {
            self.reports_duplicate.fetch_add(1, Ordering::Relaxed);
        } else {
            self.reports_received.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn reload_ok(&self) {
        self.reloads.fetch_add(1, Ordering::Relaxed);
    }

    pub fn reload_failed(&self) {
        self.reload_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// Reload failures so far.
    pub fn reload_failures(&self) -> u64 {
        self.reload_failures.load(Ordering::Relaxed)
    }

    /// Records one plan computation.
    pub fn plan_computed(&self, seconds: f64) {
        if let Ok(mut h) = self.plan.lock() {
            for (i, b) in PLAN_BUCKETS.iter().enumerate() {
                if seconds <= *b {
                    h.buckets[i] += 1;
                }
            }
            h.count += 1;
            h.sum += seconds;
        }
    }

    /// The exposition text. `devices`: count per state; `info`: the loaded digests.
    pub fn render(&self, devices: &BTreeMap<String, usize>, info: &[(&str, &str)]) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "# HELP fleetfit_devices Enrolled devices by last reported state."
        );
        let _ = writeln!(s, "# TYPE fleetfit_devices gauge");
        for (state, n) in devices {
            let _ = writeln!(s, "fleetfit_devices{{state=\"{}\"}} {n}", escape(state));
        }
        let _ = writeln!(
            s,
            "# HELP fleetfit_reports_received_total Readiness reports stored (retries not counted)."
        );
        let _ = writeln!(s, "# TYPE fleetfit_reports_received_total counter");
        let _ = writeln!(
            s,
            "fleetfit_reports_received_total {}",
            self.reports_received.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            s,
            "# HELP fleetfit_reports_duplicate_total Readiness reports whose report_id was already stored."
        );
        let _ = writeln!(s, "# TYPE fleetfit_reports_duplicate_total counter");
        let _ = writeln!(
            s,
            "fleetfit_reports_duplicate_total {}",
            self.reports_duplicate.load(Ordering::Relaxed)
        );
        if let Ok(h) = self.plan.lock() {
            let _ = writeln!(
                s,
                "# HELP fleetfit_plan_compute_seconds Time to compute one device's plan (cache misses)."
            );
            let _ = writeln!(s, "# TYPE fleetfit_plan_compute_seconds histogram");
            for (i, b) in PLAN_BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    s,
                    "fleetfit_plan_compute_seconds_bucket{{le=\"{b}\"}} {}",
                    h.buckets[i]
                );
            }
            let _ = writeln!(
                s,
                "fleetfit_plan_compute_seconds_bucket{{le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(s, "fleetfit_plan_compute_seconds_sum {}", h.sum);
            let _ = writeln!(s, "fleetfit_plan_compute_seconds_count {}", h.count);
        }
        let _ = writeln!(
            s,
            "# HELP fleetfit_http_requests_total HTTP requests answered."
        );
        let _ = writeln!(s, "# TYPE fleetfit_http_requests_total counter");
        if let Ok(m) = self.requests.lock() {
            for ((route, status), n) in m.iter() {
                let _ = writeln!(
                    s,
                    "fleetfit_http_requests_total{{route=\"{}\",status=\"{status}\"}} {n}",
                    escape(route)
                );
            }
        }
        let _ = writeln!(
            s,
            "# HELP fleetfit_config_reloads_total Successful configuration reloads."
        );
        let _ = writeln!(s, "# TYPE fleetfit_config_reloads_total counter");
        let _ = writeln!(
            s,
            "fleetfit_config_reloads_total {}",
            self.reloads.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            s,
            "# HELP config_reload_failures_total Configuration changes rejected (the last good one stays)."
        );
        let _ = writeln!(s, "# TYPE config_reload_failures_total counter");
        let _ = writeln!(s, "config_reload_failures_total {}", self.reload_failures());
        let _ = writeln!(s, "# HELP fleetfit_config_info The configuration in force.");
        let _ = writeln!(s, "# TYPE fleetfit_config_info gauge");
        let labels: Vec<String> = info
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
            .collect();
        let _ = writeln!(s, "fleetfit_config_info{{{}}} 1", labels.join(","));
        s
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
