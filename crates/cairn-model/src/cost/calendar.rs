//! UTC calendar arithmetic for cost periods and price dates: days since the epoch, ISO weeks
//! (Monday first), calendar months. Pure integer math, no clock.

const DAY_MS: i64 = 86_400_000;

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
pub(crate) fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let (month, day) = (i64::from(month), i64::from(day));
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y.rem_euclid(400);
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The date of a day since 1970-01-01: (year, month 1-12, day 1-31).
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        _ => 31,
    }
}

/// Parses a UTC date or time: `2026-11-27`, `2026-11-27T04:06`, `2026-11-27 04:06:11`, with an
/// optional trailing `Z`. Four-digit years only. `None` when it is not one.
pub fn parse_utc(text: &str) -> Option<i64> {
    let s = text.trim();
    let s = s.strip_suffix('Z').unwrap_or(s);
    let (date, time) = match s.split_once(['T', ' ']) {
        Some((d, t)) => (d, Some(t)),
        None => (s, None),
    };
    let num = |t: &str, len: usize| -> Option<i64> {
        (t.len() == len && t.bytes().all(|b| b.is_ascii_digit()))
            .then(|| t.parse().ok())
            .flatten()
    };
    let mut parts = date.split('-');
    let year = num(parts.next()?, 4)?;
    let month = u32::try_from(num(parts.next()?, 2)?).ok()?;
    let day = u32::try_from(num(parts.next()?, 2)?).ok()?;
    if parts.next().is_some()
        || year < 1
        || !(1..=12).contains(&month)
        || day == 0
        || day > days_in_month(year, month)
    {
        return None;
    }
    let mut ms = days_from_civil(year, month, day) * DAY_MS;
    if let Some(t) = time {
        let mut tp = t.split(':');
        let h = num(tp.next()?, 2)?;
        let m = num(tp.next()?, 2)?;
        let sec = match tp.next() {
            Some(x) => num(x, 2)?,
            None => 0,
        };
        if tp.next().is_some() || h > 23 || m > 59 || sec > 59 {
            return None;
        }
        ms += ((h * 60 + m) * 60 + sec) * 1000;
    }
    Some(ms)
}

/// `2026-11-27` (UTC) of a Unix millisecond.
pub fn format_date(ms: i64) -> String {
    let (y, m, d) = civil_from_days(ms.div_euclid(DAY_MS));
    format!("{y:04}-{m:02}-{d:02}")
}

/// `2026-11-27 04:06` (UTC) of a Unix millisecond.
pub fn format_minute(ms: i64) -> String {
    let mins = ms.div_euclid(60_000).rem_euclid(24 * 60);
    format!("{} {:02}:{:02}", format_date(ms), mins / 60, mins % 60)
}

/// How spend is bucketed over time. Periods are UTC: a day starts at 00:00 UTC, a week on
/// Monday (ISO), a month on its first day.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub enum Period {
    Day,
    Week,
    Month,
}

impl Period {
    pub const ALL: [Period; 3] = [Period::Day, Period::Week, Period::Month];

    pub fn as_str(self) -> &'static str {
        match self {
            Period::Day => "day",
            Period::Week => "week",
            Period::Month => "month",
        }
    }

    pub fn parse(text: &str) -> Option<Period> {
        let t = text.trim().to_ascii_lowercase();
        Period::ALL.into_iter().find(|p| {
            p.as_str() == t
                || (p.as_str().to_owned() + "ly") == t
                || (t == "daily" && *p == Period::Day)
        })
    }

    /// The start of the period holding `ms`.
    pub fn start_of(self, ms: i64) -> i64 {
        let day = ms.div_euclid(DAY_MS);
        match self {
            Period::Day => day * DAY_MS,
            // 1970-01-01 was a Thursday: day 4 (Monday 1970-01-05) starts a week.
            Period::Week => (day - (day - 4).rem_euclid(7)) * DAY_MS,
            Period::Month => {
                let (y, m, _) = civil_from_days(day);
                days_from_civil(y, m, 1) * DAY_MS
            }
        }
    }

    /// The start of the period after the one starting at `start`.
    pub fn next(self, start: i64) -> i64 {
        match self {
            Period::Day => start + DAY_MS,
            Period::Week => start + 7 * DAY_MS,
            Period::Month => {
                let (y, m, _) = civil_from_days(start.div_euclid(DAY_MS));
                let (y, m) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
                days_from_civil(y, m, 1) * DAY_MS
            }
        }
    }

    /// How a period starting at `start` is labelled: `2026-11-27`, `2026-W48`, `2026-11`.
    pub fn label(self, start: i64) -> String {
        match self {
            Period::Day => format_date(start),
            Period::Week => {
                // The ISO year and week of the Monday `start`: the week holding its Thursday.
                let thursday = start.div_euclid(DAY_MS) + 3;
                let (y, _, _) = civil_from_days(thursday);
                let week = (thursday - days_from_civil(y, 1, 1)) / 7 + 1;
                format!("{y:04}-W{week:02}")
            }
            Period::Month => format_date(start)[..7].to_owned(),
        }
    }
}

impl std::fmt::Display for Period {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip_and_bad_ones_are_refused() {
        for days in [-800_000i64, -1, 0, 59, 365, 20_000, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        // The fixture trace's first sample, 2026/11/27 04:06:11 UTC.
        assert_eq!(parse_utc("2026-11-27T04:06:11Z"), Some(1_795_752_371_000));
        assert_eq!(parse_utc("2026-11-27"), Some(1_795_737_600_000));
        for bad in [
            "",
            "2026-02-30",
            "26-11-27",
            "2026-11-27T25:00",
            "2026-13-01",
            "x",
        ] {
            assert_eq!(parse_utc(bad), None, "{bad}");
        }
        assert_eq!(format_minute(1_795_752_371_000), "2026-11-27 04:06");
    }

    #[test]
    fn periods_start_on_utc_days_mondays_and_firsts() {
        let t = parse_utc("2026-11-27T04:06").unwrap(); // a Friday
        assert_eq!(Period::Day.start_of(t), parse_utc("2026-11-27").unwrap());
        assert_eq!(Period::Week.start_of(t), parse_utc("2026-11-23").unwrap());
        assert_eq!(Period::Month.start_of(t), parse_utc("2026-11-01").unwrap());
        assert_eq!(
            Period::Month.next(parse_utc("2026-12-01").unwrap()),
            parse_utc("2027-01-01").unwrap()
        );
        assert_eq!(
            Period::Week.label(parse_utc("2026-11-23").unwrap()),
            "2026-W48"
        );
        // ISO: 2026-12-28 (Monday) is in week 53 of 2026; 2024-12-30 in week 1 of 2025.
        assert_eq!(
            Period::Week.label(parse_utc("2026-12-28").unwrap()),
            "2026-W53"
        );
        assert_eq!(
            Period::Week.label(parse_utc("2024-12-30").unwrap()),
            "2025-W01"
        );
        assert_eq!(Period::Month.label(t), "2026-11");
        assert_eq!(Period::parse("Weekly"), Some(Period::Week));
        assert_eq!(Period::parse("fortnight"), None);
    }
}
