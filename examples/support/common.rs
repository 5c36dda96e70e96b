//! What the servers' support files share: command-line values and
//! latency percentiles.

use std::time::Duration;

/// The value after `name` on the command line, parsed.
pub fn arg<T: std::str::FromStr>(args: &[String], name: &str) -> Option<T> {
    let at = args.iter().position(|a| a == name)?;
    let value = args
        .get(at + 1)
        .unwrap_or_else(|| panic!("{name} needs a value"));
    Some(
        value
            .parse()
            .unwrap_or_else(|_| panic!("{name}: cannot parse {value:?}")),
    )
}

/// The `p` percentile (0.0 to 1.0) of latencies in microseconds, sorted.
pub fn percentile(sorted_us: &[u32], p: f64) -> Duration {
    if sorted_us.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted_us.len() - 1) as f64 * p).round() as usize;
    Duration::from_micros(u64::from(sorted_us[i]))
}
