//! The standard `process_*` series (CPU, memory, file descriptors, start
//! time), named and typed as Prometheus's own client libraries export them,
//! so dashboards and alerts written for any exporter work unchanged. Read
//! from the kernel at each scrape: they cost nothing between scrapes.
//! Linux only; elsewhere the block is empty.

use std::fmt::Write as _;

/// The `process_*` series in Prometheus text format, each with its HELP and
/// TYPE lines; a series the kernel does not answer for is left out.
pub fn render() -> String {
    let mut text = String::new();
    for series in read() {
        let _ = writeln!(
            text,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}",
            name = series.name,
            help = series.help,
            kind = series.kind,
            value = series.value,
        );
    }
    text
}

struct Series {
    name: &'static str,
    help: &'static str,
    kind: &'static str,
    value: f64,
}

#[cfg(target_os = "linux")]
fn read() -> Vec<Series> {
    let mut series = Vec::with_capacity(6);
    let mut push = |name, help, kind, value: Option<f64>| {
        if let Some(value) = value {
            series.push(Series {
                name,
                help,
                kind,
                value,
            });
        }
    };
    push(
        "process_cpu_seconds_total",
        "Total user and system CPU time spent in seconds.",
        "counter",
        linux::cpu_seconds(),
    );
    push(
        "process_resident_memory_bytes",
        "Resident memory size in bytes.",
        "gauge",
        linux::resident_bytes(),
    );
    push(
        "process_virtual_memory_bytes",
        "Virtual memory size in bytes.",
        "gauge",
        linux::virtual_bytes(),
    );
    push(
        "process_open_fds",
        "Number of open file descriptors.",
        "gauge",
        linux::open_fds(),
    );
    push(
        "process_max_fds",
        "Maximum number of open file descriptors.",
        "gauge",
        linux::max_fds(),
    );
    push(
        "process_start_time_seconds",
        "Start time of the process since unix epoch in seconds.",
        "gauge",
        linux::start_time_seconds(),
    );
    series
}

#[cfg(not(target_os = "linux"))]
fn read() -> Vec<Series> {
    Vec::new()
}

#[cfg(target_os = "linux")]
mod linux {
    /// User and system CPU time of every thread, from getrusage.
    pub fn cpu_seconds() -> Option<f64> {
        // SAFETY: getrusage writes the struct it is given and reads nothing else.
        let usage = unsafe {
            let mut usage = std::mem::zeroed::<libc::rusage>();
            (libc::getrusage(libc::RUSAGE_SELF, &mut usage) == 0).then_some(usage)
        }?;
        let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        Some(seconds(usage.ru_utime) + seconds(usage.ru_stime))
    }

    /// `/proc/self/statm`'s second field (resident pages), in bytes.
    pub fn resident_bytes() -> Option<f64> {
        Some(statm_pages(1)? * page_size()?)
    }

    /// `/proc/self/statm`'s first field (all mapped pages), in bytes.
    pub fn virtual_bytes() -> Option<f64> {
        Some(statm_pages(0)? * page_size()?)
    }

    fn statm_pages(field: usize) -> Option<f64> {
        let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
        statm.split_whitespace().nth(field)?.parse().ok()
    }

    fn page_size() -> Option<f64> {
        sysconf(libc::_SC_PAGESIZE)
    }

    /// Entries of `/proc/self/fd`, less the one reading it holds.
    pub fn open_fds() -> Option<f64> {
        let entries = std::fs::read_dir("/proc/self/fd").ok()?.count();
        Some(entries.saturating_sub(1) as f64)
    }

    /// The soft limit on open files.
    pub fn max_fds() -> Option<f64> {
        // SAFETY: getrlimit writes the struct it is given and reads nothing else.
        let limit = unsafe {
            let mut limit = std::mem::zeroed::<libc::rlimit>();
            (libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0).then_some(limit)
        }?;
        Some(limit.rlim_cur as f64)
    }

    /// Boot time (`/proc/stat`'s btime) plus the process's start, in clock
    /// ticks since boot (`/proc/self/stat`'s 22nd field).
    pub fn start_time_seconds() -> Option<f64> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // The command name, field 2, is in parentheses and may hold spaces:
        // count fields from after its closing parenthesis (field 3 onwards).
        let after_name = &stat[stat.rfind(')')? + 1..];
        let ticks: f64 = after_name.split_whitespace().nth(22 - 3)?.parse().ok()?;
        let boot: f64 = std::fs::read_to_string("/proc/stat")
            .ok()?
            .lines()
            .find_map(|line| line.strip_prefix("btime "))?
            .trim()
            .parse()
            .ok()?;
        Some(boot + ticks / sysconf(libc::_SC_CLK_TCK)?)
    }

    fn sysconf(name: libc::c_int) -> Option<f64> {
        // SAFETY: sysconf only reads a system constant.
        let value = unsafe { libc::sysconf(name) };
        (value > 0).then_some(value as f64)
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn every_series_is_read_with_a_plausible_value_and_typed() {
        let text = render();
        let value = |name: &str| -> f64 {
            let line = text
                .lines()
                .find(|line| line.starts_with(&format!("{name} ")))
                .unwrap_or_else(|| panic!("{name} missing from:\n{text}"));
            line[name.len() + 1..].parse().unwrap()
        };
        assert!(value("process_cpu_seconds_total") > 0.0);
        assert!(value("process_resident_memory_bytes") > 1024.0 * 1024.0);
        assert!(value("process_virtual_memory_bytes") >= value("process_resident_memory_bytes"));
        assert!(value("process_open_fds") >= 3.0, "stdin, stdout and stderr at least");
        assert!(value("process_max_fds") >= value("process_open_fds"));
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let started = value("process_start_time_seconds");
        assert!(started <= now + 1.0 && started > now - 86_400.0, "{started} vs {now}");
        assert!(text.contains("# TYPE process_cpu_seconds_total counter"));
    }
}
