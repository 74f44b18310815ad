//! Dates: `strftime` (through the C library's `strftime`, as Python's is), `to_datetime`
//! (Python's `strptime` for the usual directives) and the `now()` function. A parsed or current
//! time is a `datetime`-like object: it prints as Python prints it, compares, and has
//! `strftime()`, `timestamp()`, `isoformat()` and the `year`…`microsecond` attributes.
//! Subtracting one from another gives a `timedelta`-like object ([`subtract`]: `days`,
//! `seconds`, `microseconds`, `total_seconds()`), the way Ansible's documentation counts the
//! days between two dates.

use std::fmt;
use std::sync::Arc;

use minijinja::value::{DynObject, Kwargs, Object, ObjectRepr, ValueKind};
use minijinja::{Environment, Error, State, Value};

use super::err;

/// A naive (or UTC) date and time, as Python's `datetime`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct DateTime {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    micro: u32,
    utc: bool,
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

impl DateTime {
    fn from_tm(tm: &libc::tm, micro: u32, utc: bool) -> Self {
        DateTime {
            year: i64::from(tm.tm_year) + 1900,
            month: (tm.tm_mon + 1) as u32,
            day: tm.tm_mday as u32,
            hour: tm.tm_hour as u32,
            minute: tm.tm_min as u32,
            second: tm.tm_sec as u32,
            micro,
            utc,
        }
    }

    fn from_epoch(secs: f64, utc: bool) -> Result<Self, Error> {
        if !secs.is_finite() || secs.abs() > 1e13 {
            return Err(err(format!("Invalid value for epoch value ({secs})")));
        }
        let whole = secs.floor();
        let micro = ((secs - whole) * 1e6).round().min(999_999.0) as u32;
        let t = whole as libc::time_t;
        // SAFETY: localtime_r/gmtime_r write into the tm we own.
        let mut tm: libc::tm = unsafe { std::mem::zeroed() };
        let ok = unsafe {
            if utc {
                !libc::gmtime_r(&t, &mut tm).is_null()
            } else {
                !libc::localtime_r(&t, &mut tm).is_null()
            }
        };
        if !ok {
            return Err(err(format!("Invalid value for epoch value ({secs})")));
        }
        Ok(Self::from_tm(&tm, micro, utc))
    }

    fn now(utc: bool) -> Result<Self, Error> {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        Self::from_epoch(secs, utc)
    }

    /// Microseconds since 0001-01-01 00:00:00 as on a clock without time zones (Python's
    /// arithmetic on naive datetimes).
    fn isoformat(&self) -> String {
        let mut s = self.to_string();
        s.replace_range(10..11, "T");
        s
    }

    fn micros(&self) -> i64 {
        let day = days_from_civil(self.year, self.month, self.day);
        let second = i64::from(self.hour * 3600 + self.minute * 60 + self.second);
        (day * 86_400 + second) * 1_000_000 + i64::from(self.micro)
    }

    fn from_micros(micros: i64, utc: bool) -> Result<Self, Error> {
        let day = micros.div_euclid(86_400_000_000);
        let rest = micros.rem_euclid(86_400_000_000);
        let (year, month, d) = civil_from_days(day);
        if !(1..=9999).contains(&year) {
            return Err(err("date value out of range"));
        }
        let second = (rest / 1_000_000) as u32;
        Ok(DateTime {
            year,
            month,
            day: d,
            hour: second / 3600,
            minute: second / 60 % 60,
            second: second % 60,
            micro: (rest % 1_000_000) as u32,
            utc,
        })
    }

    fn tm(&self) -> libc::tm {
        // SAFETY: an all-zero tm is valid; the fields are set below.
        let mut tm: libc::tm = unsafe { std::mem::zeroed() };
        tm.tm_year = (self.year - 1900) as i32;
        tm.tm_mon = self.month as i32 - 1;
        tm.tm_mday = self.day as i32;
        tm.tm_hour = self.hour as i32;
        tm.tm_min = self.minute as i32;
        tm.tm_sec = self.second as i32;
        let days = days_from_civil(self.year, self.month, self.day);
        tm.tm_wday = ((days + 4).rem_euclid(7)) as i32;
        tm.tm_yday = (days - days_from_civil(self.year, 1, 1)) as i32;
        tm.tm_isdst = -1;
        tm
    }

    fn timestamp(&self) -> f64 {
        let secs = if self.utc {
            days_from_civil(self.year, self.month, self.day) * 86400
                + i64::from(self.hour * 3600 + self.minute * 60 + self.second)
        } else {
            let mut tm = self.tm();
            // SAFETY: mktime reads and normalises the tm we own.
            unsafe { libc::mktime(&mut tm) }
        };
        secs as f64 + f64::from(self.micro) / 1e6
    }

    /// Python's `datetime.strftime`: `%f`, `%z`, `%Z` by Python, the rest by the C library.
    fn strftime(&self, fmt: &str) -> Result<String, Error> {
        let mut pre = String::new();
        let mut chars = fmt.chars().peekable();
        while let Some(c) = chars.next() {
            if c != '%' {
                pre.push(c);
                continue;
            }
            match chars.next() {
                Some('f') => pre.push_str(&format!("{:06}", self.micro)),
                Some('z') => pre.push_str(if self.utc { "+0000" } else { "" }),
                Some('Z') => pre.push_str(if self.utc { "UTC" } else { "" }),
                Some(o) => {
                    pre.push('%');
                    pre.push(o);
                }
                None => pre.push('%'),
            }
        }
        if pre.is_empty() {
            return Ok(String::new());
        }
        let cfmt = std::ffi::CString::new(pre).map_err(|_| err("strftime: NUL in format"))?;
        let tm = self.tm();
        let mut buf = vec![0u8; 256 + fmt.len() * 16];
        // SAFETY: strftime writes at most buf.len() bytes into buf.
        let n = unsafe { libc::strftime(buf.as_mut_ptr().cast(), buf.len(), cfmt.as_ptr(), &tm) };
        buf.truncate(n);
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }
}

/// Python's `str(datetime.fromtimestamp(secs))`, local time (`template_mtime` and friends).
pub(crate) fn local_datetime_text(secs: f64) -> String {
    DateTime::from_epoch(secs, false)
        .map(|d| d.to_string())
        .unwrap_or_default()
}

impl fmt::Display for DateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )?;
        if self.micro != 0 {
            write!(f, ".{:06}", self.micro)?;
        }
        if self.utc {
            f.write_str("+00:00")?;
        }
        Ok(())
    }
}

impl Object for DateTime {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        Some(match key.as_str()? {
            "year" => Value::from(self.year),
            "month" => Value::from(self.month),
            "day" => Value::from(self.day),
            "hour" => Value::from(self.hour),
            "minute" => Value::from(self.minute),
            "second" => Value::from(self.second),
            "microsecond" => Value::from(self.micro),
            _ => return None,
        })
    }

    fn custom_cmp(self: &Arc<Self>, other: &DynObject) -> Option<std::cmp::Ordering> {
        Some(self.micros().cmp(&other.downcast_ref::<Self>()?.micros()))
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "strftime" => {
                let fmt = args.first().and_then(|a| a.as_str()).unwrap_or("");
                self.strftime(fmt).map(Value::from)
            }
            "timestamp" => Ok(Value::from(self.timestamp())),
            "isoformat" => Ok(Value::from(self.isoformat())),
            "weekday" => Ok(Value::from(
                (days_from_civil(self.year, self.month, self.day) + 3).rem_euclid(7),
            )),
            "toordinal" => Ok(Value::from(
                days_from_civil(self.year, self.month, self.day) + 719163,
            )),
            _ => Err(minijinja::Error::new(
                minijinja::ErrorKind::UnknownMethod,
                format!("datetime has no method {method}"),
            )),
        }
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result
    where
        Self: Sized + 'static,
    {
        fmt::Display::fmt(self.as_ref(), f)
    }
}

/// The difference of two datetimes, as Python's `timedelta`: it prints as `233 days, 20:00:12`
/// and has `days`, `seconds` (0 to 86399), `microseconds` and `total_seconds()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct TimeDelta {
    micros: i64,
}

impl TimeDelta {
    fn days(&self) -> i64 {
        self.micros.div_euclid(86_400_000_000)
    }

    fn seconds(&self) -> i64 {
        self.micros.rem_euclid(86_400_000_000) / 1_000_000
    }

    fn microseconds(&self) -> i64 {
        self.micros.rem_euclid(1_000_000)
    }
}

impl fmt::Display for TimeDelta {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = self.days();
        if days != 0 {
            let plural = if days.abs() != 1 { "s" } else { "" };
            write!(f, "{days} day{plural}, ")?;
        }
        let s = self.seconds();
        write!(f, "{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)?;
        if self.microseconds() != 0 {
            write!(f, ".{:06}", self.microseconds())?;
        }
        Ok(())
    }
}

impl Object for TimeDelta {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        Some(match key.as_str()? {
            "days" => Value::from(self.days()),
            "seconds" => Value::from(self.seconds()),
            "microseconds" => Value::from(self.microseconds()),
            _ => return None,
        })
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &mut State<'_, '_>,
        method: &str,
        _args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "total_seconds" => Ok(Value::from(self.micros as f64 / 1e6)),
            _ => Err(minijinja::Error::new(
                minijinja::ErrorKind::UnknownMethod,
                format!("timedelta has no method {method}"),
            )),
        }
    }

    fn custom_cmp(self: &Arc<Self>, other: &DynObject) -> Option<std::cmp::Ordering> {
        Some(self.micros.cmp(&other.downcast_ref::<Self>()?.micros))
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result
    where
        Self: Sized + 'static,
    {
        fmt::Display::fmt(self.as_ref(), f)
    }
}

/// `a - b` where a datetime or a timedelta may be one side (the template's `-` is rewritten
/// to a call of this where dates are made, see `jinja_source`): datetime − datetime is a
/// timedelta, datetime − timedelta a datetime, timedelta − timedelta a timedelta; a date with
/// anything else is Python's `TypeError`; numbers and the rest are Jinja's own `-`.
pub(crate) fn subtract(a: Value, b: Value) -> Result<Value, Error> {
    // As a filter: an undefined operand is given back, to fail where it is used, naming it.
    if let Some(undefined) = [&a, &b].into_iter().find(|v| v.is_undefined()) {
        if let Some(reason) = crate::template::undefined_argument_reason() {
            crate::template::note_undefined_reason(reason);
        }
        return Ok(undefined.clone());
    }
    let date = |v: &Value| v.downcast_object_ref::<DateTime>().copied();
    let delta = |v: &Value| v.downcast_object_ref::<TimeDelta>().copied();
    let of = |micros: Option<i64>| {
        micros
            .map(|micros| Value::from_object(TimeDelta { micros }))
            .ok_or_else(|| err("days=1000000000; must have magnitude <= 999999999"))
    };
    match (date(&a), delta(&a), date(&b), delta(&b)) {
        (Some(x), _, Some(y), _) => of(x.micros().checked_sub(y.micros())),
        (Some(x), _, _, Some(d)) => match x.micros().checked_sub(d.micros) {
            Some(micros) => DateTime::from_micros(micros, x.utc).map(Value::from_object),
            None => Err(err("date value out of range")),
        },
        (_, Some(x), _, Some(y)) => of(x.micros.checked_sub(y.micros)),
        (None, None, None, None) => jinja_minus(a, b),
        _ => Err(crate::template::plain_error(format!(
            "unsupported operand type(s) for -: '{}' and '{}'",
            python_type(&a),
            python_type(&b)
        ))),
    }
}

fn python_type(v: &Value) -> &'static str {
    if v.downcast_object_ref::<DateTime>().is_some() {
        "datetime.datetime"
    } else if v.downcast_object_ref::<TimeDelta>().is_some() {
        "datetime.timedelta"
    } else {
        crate::template::python_type(v)
    }
}

/// Jinja's `-` as minijinja computes it, for operands that are not dates.
fn jinja_minus(a: Value, b: Value) -> Result<Value, Error> {
    static PLAIN: std::sync::OnceLock<Environment<'static>> = std::sync::OnceLock::new();
    let env = PLAIN.get_or_init(Environment::new);
    env.compile_expression("a - b")?
        .eval(minijinja::context! { a => a, b => b })
}

/// A date or time difference as a variable stores it: a datetime as its ISO form (what Ansible
/// 2.19 keeps of a template whose whole value is one), a timedelta refused as Ansible refuses it.
/// `None` for every other value.
pub(crate) fn stored(value: &Value) -> Option<Result<Value, Error>> {
    if let Some(dt) = value.downcast_object_ref::<DateTime>() {
        return Some(Ok(Value::from(dt.isoformat())));
    }
    value.downcast_object_ref::<TimeDelta>().map(|_| {
        Err(crate::template::plain_error(
            "Type 'timedelta' is unsupported for variable storage.".to_string(),
        ))
    })
}

const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];
const DAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

/// Python's `datetime.strptime` for `%Y %m %d %H %M %S %f %y %b %B %a %A %p %I %j %%`.
fn strptime(s: &str, fmt: &str) -> Result<DateTime, Error> {
    let bad = || err(format!("time data '{s}' does not match format '{fmt}'"));
    let mut dt = DateTime {
        year: 1900,
        month: 1,
        day: 1,
        hour: 0,
        minute: 0,
        second: 0,
        micro: 0,
        utc: false,
    };
    let (mut pm, mut twelve) = (None, false);
    let input: Vec<char> = s.chars().collect();
    let mut pos = 0;
    let mut f = fmt.chars().peekable();
    let num = |pos: &mut usize, max: usize| -> Option<i64> {
        let start = *pos;
        while *pos < input.len() && *pos - start < max && input[*pos].is_ascii_digit() {
            *pos += 1;
        }
        if *pos == start {
            return None;
        }
        input[start..*pos].iter().collect::<String>().parse().ok()
    };
    let word = |pos: &mut usize, names: &[&str]| -> Option<usize> {
        let rest: String = input[*pos..].iter().collect::<String>().to_lowercase();
        for (i, name) in names.iter().enumerate() {
            for cand in [name.to_string(), name[..3].to_string()] {
                if rest.starts_with(&cand) {
                    *pos += cand.chars().count();
                    return Some(i);
                }
            }
        }
        None
    };
    while let Some(c) = f.next() {
        if c.is_whitespace() {
            while pos < input.len() && input[pos].is_whitespace() {
                pos += 1;
            }
            continue;
        }
        if c != '%' {
            if input.get(pos) != Some(&c) {
                return Err(bad());
            }
            pos += 1;
            continue;
        }
        let d = f.next().ok_or_else(bad)?;
        match d {
            'Y' => dt.year = num(&mut pos, 4).ok_or_else(bad)?,
            'y' => {
                let y = num(&mut pos, 2).ok_or_else(bad)?;
                dt.year = if y < 69 { 2000 + y } else { 1900 + y };
            }
            'm' => dt.month = num(&mut pos, 2).ok_or_else(bad)? as u32,
            'd' => dt.day = num(&mut pos, 2).ok_or_else(bad)? as u32,
            'H' => dt.hour = num(&mut pos, 2).ok_or_else(bad)? as u32,
            'I' => {
                dt.hour = num(&mut pos, 2).ok_or_else(bad)? as u32;
                twelve = true;
            }
            'M' => dt.minute = num(&mut pos, 2).ok_or_else(bad)? as u32,
            'S' => dt.second = num(&mut pos, 2).ok_or_else(bad)? as u32,
            'f' => {
                let start = pos;
                let v = num(&mut pos, 6).ok_or_else(bad)?;
                dt.micro = (v * 10i64.pow(6 - (pos - start) as u32)) as u32;
            }
            'j' => {
                let doy = num(&mut pos, 3).ok_or_else(bad)?;
                let days = days_from_civil(dt.year, 1, 1) + doy - 1;
                let (y, m, dd) = civil_from_days(days);
                dt.year = y;
                dt.month = m;
                dt.day = dd;
            }
            'b' | 'B' | 'h' => dt.month = word(&mut pos, &MONTHS).ok_or_else(bad)? as u32 + 1,
            'a' | 'A' => {
                word(&mut pos, &DAYS).ok_or_else(bad)?;
            }
            'p' => {
                let rest: String = input[pos..]
                    .iter()
                    .take(2)
                    .collect::<String>()
                    .to_lowercase();
                pm = Some(match rest.as_str() {
                    "am" => false,
                    "pm" => true,
                    _ => return Err(bad()),
                });
                pos += 2;
            }
            'z' => {
                if input.get(pos) == Some(&'Z') {
                    pos += 1;
                } else {
                    pos += 1;
                    num(&mut pos, 4).ok_or_else(bad)?;
                }
                dt.utc = true;
            }
            '%' => {
                if input.get(pos) != Some(&'%') {
                    return Err(bad());
                }
                pos += 1;
            }
            other => {
                return Err(err(format!(
                    "'{other}' is a bad directive in format '%{other}'"
                )));
            }
        }
    }
    if pos != input.len() {
        let rest: String = input[pos..].iter().collect();
        return Err(err(format!("unconverted data remains: {rest}")));
    }
    if twelve && let Some(pm) = pm {
        dt.hour = dt.hour % 12 + if pm { 12 } else { 0 };
    }
    let valid_day = dt.month >= 1
        && dt.month <= 12
        && dt.day >= 1
        && dt.day <= 31
        && civil_from_days(days_from_civil(dt.year, dt.month, dt.day)).1 == dt.month;
    if !valid_day || dt.hour > 23 || dt.minute > 59 || dt.second > 61 {
        return Err(bad());
    }
    Ok(dt)
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn epoch_of(v: &Value) -> Result<f64, Error> {
    let bad = || err(format!("Invalid value for epoch value ({v})"));
    match v.kind() {
        ValueKind::Number => f64::try_from(v.clone()).map_err(|_| bad()),
        ValueKind::String => v
            .as_str()
            .unwrap_or("")
            .trim()
            .parse::<f64>()
            .map_err(|_| bad()),
        _ => Err(bad()),
    }
}

pub(super) fn register(env: &mut Environment<'static>) {
    super::add_filter(
        env,
        "strftime",
        |fmt: String, second: Option<Value>, kw: Kwargs| -> Result<String, Error> {
            let second = match second {
                Some(s) => Some(s),
                None => kw.get::<Option<Value>>("second")?,
            };
            let utc = kw.get::<Option<bool>>("utc")?.unwrap_or(false);
            let dt = match second.filter(|s| !s.is_none()) {
                None => DateTime::now(utc)?,
                Some(s) => DateTime::from_epoch(epoch_of(&s)?, utc)?,
            };
            dt.strftime(&fmt)
        },
    );
    super::add_filter(
        env,
        "to_datetime",
        |s: String, format: Option<String>| -> Result<Value, Error> {
            let dt = strptime(&s, format.as_deref().unwrap_or("%Y-%m-%d %H:%M:%S"))?;
            Ok(Value::from_object(dt))
        },
    );
    env.add_function(
        "now",
        |utc: Option<bool>, fmt: Option<String>, kw: Kwargs| -> Result<Value, Error> {
            let utc = match utc {
                Some(u) => u,
                None => kw.get::<Option<bool>>("utc")?.unwrap_or(false),
            };
            let fmt = match fmt {
                Some(f) => Some(f),
                None => kw.get::<Option<String>>("fmt")?,
            };
            // `now(utc=True)` is naive, as Ansible's (UTC's wall clock without a zone).
            let dt = DateTime {
                utc: false,
                ..DateTime::now(utc)?
            };
            match fmt {
                Some(f) => dt.strftime(&f).map(Value::from),
                None => Ok(Value::from_object(dt)),
            }
        },
    );
}

#[cfg(test)]
mod unit {
    use super::super::testing::{render, truth};

    #[test]
    fn strftime_as_python() {
        assert_eq!(
            render("{{ '%Y-%m-%d'|strftime(1585247522, utc=True) }}"),
            "2020-03-26"
        );
        assert_eq!(
            render("{{ '%Y-%m-%d %H:%M:%S %z %Z'|strftime('1585247522.0', utc=True) }}"),
            "2020-03-26 18:32:02 +0000 UTC"
        );
        assert_eq!(render("{{ '%f'|strftime(1.25, utc=True) }}"), "250000");
        assert!(truth("('%Y'|strftime(None)).startswith('20')"));
        assert!(render("{{ '%Y'|strftime('foo') }}").contains("Invalid value for epoch value"));
    }

    #[test]
    fn datetimes() {
        assert!(truth(
            "'1993-03-26 01:23:45'|to_datetime < '1994-03-26 01:23:45'|to_datetime"
        ));
        assert_eq!(
            render("{{ '2016-08-14 20:00:12'|to_datetime }}"),
            "2016-08-14 20:00:12"
        );
        assert_eq!(
            render("{{ ('20160814'|to_datetime('%Y%m%d')).strftime('%d %b %Y') }}"),
            "14 Aug 2016"
        );
        assert_eq!(
            render("{{ ('14 Aug 2016 8:05 pm'|to_datetime('%d %b %Y %I:%M %p')).hour }}"),
            "20"
        );
        assert!(
            render("{{ '2016-02-30 00:00:00'|to_datetime }}").contains("does not match format")
        );
        assert!(
            render("{{ '2016-01-01 00:00:00x'|to_datetime }}").contains("unconverted data remains")
        );
        assert!(truth("now().year >= 2024"));
        assert!(truth("now(fmt='%Y')|int >= 2024"));
        // Naive, as Ansible's `now(utc=True)`: no zone to print.
        assert!(truth("now(utc=true).strftime('%Z') == ''"));
    }
}
