//! Kubernetes quantities (`resource.Quantity`): a decimal number with an optional exponent or
//! SI/binary suffix. Equality of values (the API server canonicalises what it stores: `1024Mi` is
//! read back as `1Gi`) and a byte count (Redis's `maxmemory` under the container's memory limit).

/// `digits × 10^exp10 × 2^exp2`, sign in `digits`.
#[derive(Debug, PartialEq, Eq)]
struct Value {
    digits: i128,
    exp10: i32,
    exp2: i32,
}

fn parse(s: &str) -> Option<Value> {
    let s = s.trim();
    let end = s
        .find(|c: char| !(c.is_ascii_digit() || matches!(c, '+' | '-' | '.')))
        .unwrap_or(s.len());
    let (number, suffix) = s.split_at(end);
    let (exp10, exp2) = match suffix {
        "" => (0, 0),
        "n" => (-9, 0),
        "u" => (-6, 0),
        "m" => (-3, 0),
        "k" => (3, 0),
        "M" => (6, 0),
        "G" => (9, 0),
        "T" => (12, 0),
        "P" => (15, 0),
        "E" => (18, 0),
        "Ki" => (0, 10),
        "Mi" => (0, 20),
        "Gi" => (0, 30),
        "Ti" => (0, 40),
        "Pi" => (0, 50),
        "Ei" => (0, 60),
        e if e.starts_with(['e', 'E']) => (e[1..].parse().ok()?, 0),
        _ => return None,
    };
    let (sign, unsigned) = match number.strip_prefix('-') {
        Some(rest) => (-1, rest),
        None => (1, number.strip_prefix('+').unwrap_or(number)),
    };
    let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    if whole.is_empty() && fraction.is_empty()
        || !(whole.chars().chain(fraction.chars())).all(|c| c.is_ascii_digit())
    {
        return None;
    }
    let digits: i128 = format!("{whole}{fraction}").parse().ok()?;
    Some(Value {
        digits: sign * digits,
        exp10: exp10 - i32::try_from(fraction.len()).ok()?,
        exp2,
    })
}

/// `v` as an exact multiple of 10^min10 × 2^min2, when it fits.
fn scaled(v: &Value, min10: i32, min2: i32) -> Option<i128> {
    let p10 = 10i128.checked_pow(u32::try_from(v.exp10 - min10).ok()?)?;
    let p2 = 2i128.checked_pow(u32::try_from(v.exp2 - min2).ok()?)?;
    v.digits.checked_mul(p10)?.checked_mul(p2)
}

/// A quantity of bytes as a whole number (rounded down); `None` for a non-quantity, a negative
/// value, or one beyond `u64`.
pub fn bytes(s: &str) -> Option<u64> {
    let v = parse(s)?;
    let p2 = 2i128.checked_pow(u32::try_from(v.exp2).ok()?)?;
    let n = v.digits.checked_mul(p2)?;
    let n = if v.exp10 >= 0 {
        n.checked_mul(10i128.checked_pow(u32::try_from(v.exp10).ok()?)?)?
    } else {
        n / 10i128.checked_pow(u32::try_from(-v.exp10).ok()?)?
    };
    u64::try_from(n).ok()
}

/// True when both strings are quantities of the same value (`1024Mi` and `1Gi`, `0.5` and
/// `500m`); false when either is not a quantity or the values differ.
pub fn same_value(a: &str, b: &str) -> bool {
    let (Some(a), Some(b)) = (parse(a), parse(b)) else {
        return false;
    };
    let (min10, min2) = (a.exp10.min(b.exp10), a.exp2.min(b.exp2));
    match (scaled(&a, min10, min2), scaled(&b, min10, min2)) {
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::{bytes, same_value};

    #[test]
    fn bytes_of_every_spelling() {
        for (q, n) in [
            ("512Mi", 512 << 20),
            ("1Gi", 1 << 30),
            ("1.5Gi", 3 << 29),
            ("1G", 1_000_000_000),
            ("100", 100),
            ("1e3", 1000),
            ("0.5Ki", 512),
            ("1500m", 1),
        ] {
            assert_eq!(bytes(q), Some(n), "{q}");
        }
        for q in ["-1Gi", "abc", "", "1Zi"] {
            assert_eq!(bytes(q), None, "{q}");
        }
    }

    #[test]
    fn every_spelling_of_one_value_is_equal() {
        for (a, b) in [
            ("1024Mi", "1Gi"),
            ("0.5", "500m"),
            (".5", "500m"),
            ("1000m", "1"),
            ("1e3", "1k"),
            ("1E3", "1k"),
            ("1.5Gi", "1536Mi"),
            ("2000M", "2G"),
            ("2048Ki", "2Mi"),
            ("+1", "1"),
            ("0", "0m"),
            ("100Mi", "104857600"),
            ("250m", "0.25"),
        ] {
            assert!(same_value(a, b), "{a} = {b}");
            assert!(same_value(b, a), "{b} = {a}");
        }
    }

    #[test]
    fn different_values_and_non_quantities_are_not_equal() {
        for (a, b) in [
            ("1Gi", "1G"),
            ("1", "2"),
            ("500m", "0.6"),
            ("1Mi", "1M"),
            ("abc", "abc2"),
            ("1Gi", "1 Gi x"),
            ("", "0"),
            ("1Zi", "1Zi"),
        ] {
            assert!(!same_value(a, b), "{a} != {b}");
        }
    }
}
