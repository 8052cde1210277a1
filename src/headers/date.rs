//! HTTP dates (RFC 9110), parsed the way Django's `parse_http_date` does.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::is_ows;

const SECONDS_PER_DAY: i64 = 86_400;

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];

/// The latest time an IMF-fixdate can show: 9999-12-31 23:59:59 UTC.
pub(crate) fn latest_http_date() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(253_402_300_799)
}

/// Formats `time` as an IMF-fixdate, `Sun, 06 Nov 1994 08:49:37 GMT`, dropping sub-seconds:
/// Django's `http_date`.
///
/// The format has room for the years 1970 to 9999 only, so a time outside them is written as the
/// nearest of `Thu, 01 Jan 1970 00:00:00 GMT` and `Fri, 31 Dec 9999 23:59:59 GMT`; this never
/// panics.
///
/// ```
/// use axum_cache::conditional::fmt_http_date;
/// use std::time::{Duration, UNIX_EPOCH};
///
/// let time = UNIX_EPOCH + Duration::from_millis(1_167_616_461_999);
/// assert_eq!(fmt_http_date(time), "Mon, 01 Jan 2007 01:54:21 GMT");
/// ```
pub fn fmt_http_date(time: SystemTime) -> String {
    httpdate::fmt_http_date(time.clamp(UNIX_EPOCH, latest_http_date()))
}

/// Parses an HTTP date, using the current time to place two-digit years. See
/// [`parse_http_date_at`].
pub fn parse_http_date(value: &str) -> Option<SystemTime> {
    parse_http_date_at(value, SystemTime::now())
}

/// Parses an HTTP date in any of the three formats HTTP allows, with Django's rules;
/// `now` places two-digit years. `None` when the value is not a valid date.
///
/// - IMF-fixdate (RFC 1123) `Sun, 06 Nov 1994 08:49:37 GMT`, RFC 850
///   `Sunday, 06-Nov-94 08:49:37 GMT`, and asctime `Sun Nov  6 08:49:37 1994`.
/// - The month name is case-insensitive; the weekday is not checked against the date; only ASCII
///   digits count; whitespace around the value is ignored.
/// - A year below 100, even written with four digits (`0037`), is in the century of `now` unless
///   that puts it more than 50 years after `now`'s year, in which case it is in the century before.
/// - A date that does not exist (day 32, 30 February, hour 24, second 60) is `None`.
///
/// ```
/// use axum_cache::conditional::parse_http_date_at;
/// use std::time::{Duration, UNIX_EPOCH};
///
/// let now = UNIX_EPOCH + Duration::from_secs(1_573_030_177); // 2019-11-06
/// let expected = UNIX_EPOCH + Duration::from_secs(784_111_777); // 1994-11-06 08:49:37
/// for value in [
///     "Sun, 06 Nov 1994 08:49:37 GMT",
///     "Sunday, 06-Nov-94 08:49:37 GMT",
///     "Sun Nov  6 08:49:37 1994",
/// ] {
///     assert_eq!(parse_http_date_at(value, now), Some(expected));
/// }
/// assert_eq!(parse_http_date_at("Mon, 32 Oct 2010 16:56:23 GMT", now), None);
/// ```
pub fn parse_http_date_at(value: &str, now: SystemTime) -> Option<SystemTime> {
    let value = value.trim_matches(is_ows);
    let fields = rfc1123(value)
        .or_else(|| rfc850(value))
        .or_else(|| asctime(value))?;
    fields.to_system_time(now)
}

/// The parts of a date as written, not yet checked.
struct Fields {
    year: u32,
    month: u32,
    day: u32,
    /// Hour, minute and second.
    time: (u32, u32, u32),
}

/// `Sun, 06 Nov 1994 08:49:37 GMT`
fn rfc1123(value: &str) -> Option<Fields> {
    weekday_first(value, (3, 3), " ", 4)
}

/// `Sunday, 06-Nov-94 08:49:37 GMT`
fn rfc850(value: &str) -> Option<Fields> {
    weekday_first(value, (6, 9), "-", 2)
}

/// The two formats that open with a weekday of `weekday` letters (fewest, most) and a comma:
/// day, month and a year of `year_digits` joined by `separator`, then the time and `GMT`.
fn weekday_first(
    value: &str,
    weekday: (usize, usize),
    separator: &str,
    year_digits: usize,
) -> Option<Fields> {
    let mut cursor = Cursor(value);
    cursor.word(weekday.0, weekday.1)?;
    cursor.literal(", ")?;
    let day = cursor.digits(2)?;
    cursor.literal(separator)?;
    let month = cursor.month()?;
    cursor.literal(separator)?;
    let year = cursor.digits(year_digits)?;
    cursor.literal(" ")?;
    let time = cursor.time()?;
    cursor.literal(" GMT")?;
    cursor.finish(year, month, day, time)
}

/// `Sun Nov  6 08:49:37 1994`
fn asctime(value: &str) -> Option<Fields> {
    let mut cursor = Cursor(value);
    cursor.word(3, 3)?;
    cursor.literal(" ")?;
    let month = cursor.month()?;
    cursor.literal(" ")?;
    let day = match cursor.literal(" ") {
        Some(()) => cursor.digits(1)?,
        None => cursor.digits(2)?,
    };
    cursor.literal(" ")?;
    let time = cursor.time()?;
    cursor.literal(" ")?;
    let year = cursor.digits(4)?;
    cursor.finish(year, month, day, time)
}

/// The unread rest of a date.
struct Cursor<'a>(&'a str);

impl Cursor<'_> {
    fn literal(&mut self, text: &str) -> Option<()> {
        self.0 = self.0.strip_prefix(text)?;
        Some(())
    }

    /// Between `min` and `max` word characters (letters, digits, `_`, as a regular expression's
    /// `\w`): a weekday, which is not checked further.
    fn word(&mut self, min: usize, max: usize) -> Option<()> {
        let mut count = 0;
        let mut end = 0;
        for (index, c) in self.0.char_indices() {
            if count == max || !(c.is_alphanumeric() || c == '_') {
                break;
            }
            count += 1;
            end = index + c.len_utf8();
        }
        if count < min {
            return None;
        }
        self.0 = self.0.get(end..)?;
        Some(())
    }

    /// Exactly `count` ASCII digits.
    fn digits(&mut self, count: usize) -> Option<u32> {
        let digits = self.0.get(..count)?;
        if !digits.bytes().all(|byte| byte.is_ascii_digit()) {
            return None;
        }
        self.0 = self.0.get(count..)?;
        digits.parse().ok()
    }

    /// A three-letter month name, any case: 1 to 12.
    fn month(&mut self) -> Option<u32> {
        let name = self.0.get(..3)?;
        let index = MONTHS
            .iter()
            .position(|month| month.eq_ignore_ascii_case(name))?;
        self.0 = self.0.get(3..)?;
        u32::try_from(index).ok().map(|index| index + 1)
    }

    /// `HH:MM:SS`
    fn time(&mut self) -> Option<(u32, u32, u32)> {
        let hour = self.digits(2)?;
        self.literal(":")?;
        let minute = self.digits(2)?;
        self.literal(":")?;
        let second = self.digits(2)?;
        Some((hour, minute, second))
    }

    /// The date of these parts, when nothing is left unread.
    fn finish(&self, year: u32, month: u32, day: u32, time: (u32, u32, u32)) -> Option<Fields> {
        self.0.is_empty().then_some(Fields {
            year,
            month,
            day,
            time,
        })
    }
}

impl Fields {
    fn to_system_time(&self, now: SystemTime) -> Option<SystemTime> {
        let (hour, minute, second) = self.time;
        let mut year = i64::from(self.year);
        if year < 100 {
            let current = year_of_day(unix_seconds(now).div_euclid(SECONDS_PER_DAY));
            let century = current - current.rem_euclid(100);
            year += if year - current.rem_euclid(100) > 50 {
                century - 100
            } else {
                century
            };
        }
        let valid = (1..=9999).contains(&year)
            && (1..=12).contains(&self.month)
            && (1..=days_in_month(year, self.month)).contains(&self.day)
            && hour < 24
            && minute < 60
            && second < 60;
        if !valid {
            return None;
        }
        let seconds = days_from_civil(year, self.month, self.day) * SECONDS_PER_DAY
            + i64::from(hour * 3600 + minute * 60 + second);
        from_unix_seconds(seconds)
    }
}

fn is_leap_year(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a date of the proleptic Gregorian calendar (month 1 to 12).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let month_from_march = (i64::from(month) + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The year of the day `days` after 1970-01-01 (the inverse of [`days_from_civil`]).
fn year_of_day(days: i64) -> i64 {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let year = era * 400 + year_of_era;
    // January and February belong to the next calendar year.
    if month_from_march >= 10 {
        year + 1
    } else {
        year
    }
}

/// Whole seconds since the Unix epoch, rounded down (so also before 1970), saturating.
pub(crate) fn unix_seconds(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
        Err(before) => {
            let before = before.duration();
            let seconds = i64::try_from(before.as_secs()).unwrap_or(i64::MAX);
            if before.subsec_nanos() > 0 {
                seconds.saturating_neg().saturating_sub(1)
            } else {
                -seconds
            }
        }
    }
}

fn from_unix_seconds(seconds: i64) -> Option<SystemTime> {
    let magnitude = Duration::from_secs(seconds.unsigned_abs());
    if seconds >= 0 {
        UNIX_EPOCH.checked_add(magnitude)
    } else {
        UNIX_EPOCH.checked_sub(magnitude)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> SystemTime {
        from_unix_seconds(seconds).unwrap()
    }

    #[test]
    fn calendar_arithmetic_matches_known_dates() {
        for (year, month, day, days) in [
            (1970, 1, 1, 0),
            (1969, 12, 31, -1),
            (2000, 2, 29, 11_016),
            (2000, 3, 1, 11_017),
            (1, 1, 1, -719_162),
            (9999, 12, 31, 2_932_896),
        ] {
            assert_eq!(days_from_civil(year, month, day), days);
            assert_eq!(year_of_day(days), year);
        }
        assert_eq!(year_of_day(-719_163), 0);
    }

    #[test]
    fn unix_seconds_round_down() {
        assert_eq!(unix_seconds(UNIX_EPOCH + Duration::from_millis(1500)), 1);
        assert_eq!(unix_seconds(UNIX_EPOCH - Duration::from_millis(1500)), -2);
        assert_eq!(unix_seconds(UNIX_EPOCH - Duration::from_secs(3)), -3);
        assert_eq!(
            from_unix_seconds(-3),
            Some(UNIX_EPOCH - Duration::from_secs(3))
        );
    }

    #[test]
    fn dates_before_1970_and_far_years_parse() {
        let now = at(1_573_030_177);
        assert_eq!(
            parse_http_date_at("Wed, 31 Dec 1969 23:59:59 GMT", now),
            Some(at(-1))
        );
        assert_eq!(
            parse_http_date_at("Mon, 01 Jan 0001 00:00:00 GMT", now),
            Some(at(days_from_civil(2001, 1, 1) * SECONDS_PER_DAY))
        );
        assert_eq!(
            parse_http_date_at("Fri, 31 Dec 9999 23:59:59 GMT", now),
            Some(latest_http_date())
        );
        assert_eq!(
            parse_http_date_at("Mon, 01 Jan 0100 00:00:00 GMT", now),
            Some(at(-59_011_459_200))
        );
    }

    #[test]
    fn impossible_dates_are_none() {
        let now = at(1_573_030_177);
        for value in [
            "Mon, 32 Oct 2010 16:56:23 GMT",
            "Mon, 00 Oct 2010 16:56:23 GMT",
            "Mon, 29 Feb 2010 16:56:23 GMT",
            "Mon, 31 Apr 2010 16:56:23 GMT",
            "Mon, 18 Oct 2010 24:00:00 GMT",
            "Mon, 18 Oct 2010 23:60:00 GMT",
            "Mon, 18 Oct 2010 23:59:60 GMT",
            "Mon, 18 Foo 2010 23:59:59 GMT",
            "Mon, 18 Oct 2010 23:59:59 UTC",
            "Mon, 18 Oct 2010 23:59:59 GMT x",
            "Mon,  18 Oct 2010 23:59:59 GMT",
            "Mon, 18 Oct 10 23:59:59 GMT",
            "Monday, 18-Oct-2010 23:59:59 GMT",
            "Mon Oct 18 23:59:59 10",
            "Mon Oct 018 23:59:59 2010",
            "",
        ] {
            assert_eq!(parse_http_date_at(value, now), None, "{value:?}");
        }
        assert!(parse_http_date_at("Mon, 29 Feb 2000 16:56:23 GMT", now).is_some());
    }

    #[test]
    fn weekday_is_any_word_and_month_any_case() {
        let now = at(1_573_030_177);
        let expected = Some(at(784_111_777));
        for value in [
            "Xyz, 06 NOV 1994 08:49:37 GMT",
            "Thursday, 06-nov-94 08:49:37 GMT",
            "abc_12, 06-Nov-94 08:49:37 GMT",
            "Ünï nOv 06 08:49:37 1994",
            " \tSun, 06 Nov 1994 08:49:37 GMT\t ",
        ] {
            assert_eq!(parse_http_date_at(value, now), expected, "{value:?}");
        }
        for value in [
            "Sunday1234, 06-Nov-94 08:49:37 GMT",
            "Sunda, 06-Nov-94 08:49:37 GMT",
            "Su, 06 Nov 1994 08:49:37 GMT",
        ] {
            assert_eq!(parse_http_date_at(value, now), None, "{value:?}");
        }
    }

    #[test]
    fn formatting_clamps_to_the_representable_years() {
        assert_eq!(
            fmt_http_date(UNIX_EPOCH - Duration::from_secs(1)),
            "Thu, 01 Jan 1970 00:00:00 GMT"
        );
        assert_eq!(
            fmt_http_date(latest_http_date() + Duration::from_secs(86_400 * 400)),
            "Fri, 31 Dec 9999 23:59:59 GMT"
        );
    }
}
