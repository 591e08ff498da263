//! Numbers for people: sizes in binary units, counts with separators, dates and durations.

/// Formats a byte count in binary units ("1.50 KiB"), as every human-facing table does.
///
/// ```
/// use tracealloc_snapshot::human_bytes;
///
/// assert_eq!(human_bytes(512), "512 B");
/// assert_eq!(human_bytes(1536), "1.50 KiB");
/// assert_eq!(human_bytes(4 << 20), "4 MiB");
/// ```
pub fn human_bytes(bytes: u64) -> String {
    humansize::format_size(bytes, humansize::BINARY)
}

/// Formats a signed byte count with an explicit sign ("+1.50 KiB", "-12 B", "0 B").
///
/// ```
/// use tracealloc_snapshot::human_bytes_signed;
///
/// assert_eq!(human_bytes_signed(1536), "+1.50 KiB");
/// assert_eq!(human_bytes_signed(-12), "-12 B");
/// assert_eq!(human_bytes_signed(0), "0 B");
/// ```
pub fn human_bytes_signed(bytes: i64) -> String {
    match bytes.signum() {
        1 => format!("+{}", human_bytes(bytes.unsigned_abs())),
        -1 => format!("-{}", human_bytes(bytes.unsigned_abs())),
        _ => human_bytes(0),
    }
}

/// "1 block", "2 blocks", "10,000 blocks".
///
/// ```
/// use tracealloc_snapshot::blocks;
///
/// assert_eq!(blocks(1), "1 block");
/// assert_eq!(blocks(0), "0 blocks");
/// assert_eq!(blocks(10_000), "10,000 blocks");
/// ```
pub fn blocks(n: u64) -> String {
    if n == 1 {
        "1 block".to_owned()
    } else {
        format!("{} blocks", human_count(n))
    }
}

/// A count with thousands separators ("100,000").
///
/// ```
/// use tracealloc_snapshot::human_count;
///
/// assert_eq!(human_count(999), "999");
/// assert_eq!(human_count(100_000), "100,000");
/// assert_eq!(human_count(1_234_567), "1,234,567");
/// ```
pub fn human_count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// A signed count with separators and an explicit sign ("+1,000", "-3", "0").
///
/// ```
/// use tracealloc_snapshot::human_count_signed;
///
/// assert_eq!(human_count_signed(1_000), "+1,000");
/// assert_eq!(human_count_signed(-3), "-3");
/// assert_eq!(human_count_signed(0), "0");
/// ```
pub fn human_count_signed(n: i64) -> String {
    match n.signum() {
        1 => format!("+{}", human_count(n.unsigned_abs())),
        -1 => format!("-{}", human_count(n.unsigned_abs())),
        _ => "0".to_owned(),
    }
}

/// A moment given in milliseconds since the Unix epoch, as a UTC date and time:
/// `2026-11-26 22:46:43 UTC`.
///
/// ```
/// use tracealloc_snapshot::human_date;
///
/// assert_eq!(human_date(0), "1970-01-01 00:00:00 UTC");
/// assert_eq!(human_date(1_796_293_984_606), "2026-12-03 10:33:04 UTC"); // milliseconds dropped
/// ```
pub fn human_date(unix_ms: u64) -> String {
    let secs = unix_ms / 1000;
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's days-to-civil algorithm, for the proleptic Gregorian calendar.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

/// A moment as a file name's part, in UTC: `20261126-224643`.
///
/// ```
/// assert_eq!(tracealloc_snapshot::file_stamp(1_795_733_203_203), "20261126-224643");
/// ```
pub fn file_stamp(unix_ms: u64) -> String {
    human_date(unix_ms)
        .trim_end_matches(" UTC")
        .replace(['-', ':'], "")
        .replace(' ', "-")
}

/// A duration given in milliseconds: `0 ms`, `850 ms`, `2.5 s`, `12 min 5 s`, `3 h 20 min`,
/// `2 d 4 h`.
///
/// ```
/// use tracealloc_snapshot::human_duration_ms;
///
/// assert_eq!(human_duration_ms(850), "850 ms");
/// assert_eq!(human_duration_ms(2_500), "2.5 s");
/// assert_eq!(human_duration_ms(725_000), "12 min 5 s");
/// assert_eq!(human_duration_ms(12_000_000), "3 h 20 min");
/// assert_eq!(human_duration_ms(187_200_000), "2 d 4 h");
/// ```
pub fn human_duration_ms(ms: u64) -> String {
    let s = ms / 1000;
    match ms {
        0..1_000 => format!("{ms} ms"),
        1_000..60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        60_000..3_600_000 => format!("{} min {} s", s / 60, s % 60),
        3_600_000..86_400_000 => format!("{} h {} min", s / 3600, s / 60 % 60),
        _ => format!("{} d {} h", s / 86_400, s / 3600 % 24),
    }
}

/// A duration given in microseconds: `850 µs`, `1.2 ms`, `340 ms`, `2.5 s`, `1.5 h`.
///
/// ```
/// use tracealloc_snapshot::human_duration_us;
///
/// assert_eq!(human_duration_us(0.25), "0.25 µs");
/// assert_eq!(human_duration_us(850.0), "850 µs");
/// assert_eq!(human_duration_us(1_200.0), "1.2 ms");
/// assert_eq!(human_duration_us(340_000.0), "340 ms");
/// assert_eq!(human_duration_us(2_500_000.0), "2.5 s");
/// assert_eq!(human_duration_us(5.4e9), "1.5 h");
/// ```
pub fn human_duration_us(us: f64) -> String {
    match us {
        0.0 => "0 µs".to_owned(),
        us if us < 1.0 => format!("{us:.2} µs"),
        us if us < 1_000.0 => format!("{us:.0} µs"),
        us if us < 10_000.0 => format!("{:.1} ms", us / 1e3),
        us if us < 1_000_000.0 => format!("{:.0} ms", us / 1e3),
        us if us < 600_000_000.0 => format!("{:.1} s", us / 1e6),
        us => format!("{:.1} h", us / 3.6e9),
    }
}

/// A mean lifetime in microseconds, to the precision of the clock it was read from
/// ([`crate::CaptureInfo::lifetime_clock_ns`], 0 when unknown): below one step of that clock it
/// reads `< 4.0 ms` rather than a figure the clock cannot tell.
///
/// ```
/// use tracealloc_snapshot::human_lifetime;
///
/// // A coarse clock of 4 ms steps cannot tell 0.55 µs from 0: below one step.
/// assert_eq!(human_lifetime(0.55, 4_000_000), "< 4.0 ms");
/// assert_eq!(human_lifetime(12_500.0, 4_000_000), "12 ms");
/// assert_eq!(human_lifetime(0.55, 0), "0.55 µs"); // clock unknown: the figure as it is
/// ```
pub fn human_lifetime(us: f64, clock_ns: u64) -> String {
    let step_us = clock_ns as f64 / 1e3;
    if step_us > 1.0 && us < step_us {
        return format!("< {}", human_duration_us(step_us));
    }
    human_duration_us(us)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_have_separators() {
        assert_eq!(human_count(0), "0");
        assert_eq!(human_count(999), "999");
        assert_eq!(human_count(1000), "1,000");
        assert_eq!(human_count(100_000), "100,000");
        assert_eq!(human_count(1_234_567), "1,234,567");
        assert_eq!(blocks(10_000), "10,000 blocks");
        assert_eq!(human_count_signed(-1500), "-1,500");
        assert_eq!(human_count_signed(0), "0");
    }

    #[test]
    fn dates_durations_and_lifetimes_read_as_people_write_them() {
        assert_eq!(human_date(1_796_293_984_606), "2026-12-03 10:33:04 UTC");
        assert_eq!(human_date(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(human_duration_ms(750_000), "12 min 30 s");
        assert_eq!(human_lifetime(0.55, 4_000_000), "< 4.0 ms");
        assert_eq!(human_lifetime(0.55, 0), "0.55 µs");
        assert_eq!(human_lifetime(12_500.0, 4_000_000), "12 ms");
    }
}
