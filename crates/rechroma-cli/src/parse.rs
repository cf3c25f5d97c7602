//! Value parsers that refuse nonsense at parse time, with the allowed range in the message.

/// A number in [0, 1].
pub fn unit(s: &str) -> Result<f32, String> {
    match s.parse::<f32>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        Ok(v) => Err(format!("{v} is outside the allowed range 0 to 1")),
        Err(e) => Err(format!("{s}: {e}")),
    }
}

/// A vividness in [0, 2].
pub fn vividness(s: &str) -> Result<f32, String> {
    let max = rechroma::quantize::decode::MAX_VIVIDNESS;
    match s.parse::<f32>() {
        Ok(v) if (0.0..=max).contains(&v) => Ok(v),
        Ok(v) => Err(format!("{v} is outside the allowed range 0 to {max}")),
        Err(e) => Err(format!("{s}: {e}")),
    }
}

/// A finite number above 0.
pub fn positive(s: &str) -> Result<f32, String> {
    positive_f64(s).map(|v| v as f32)
}

/// A finite number above 0.
pub fn positive_f64(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        Ok(v) => Err(format!("{v} is not allowed: a finite number above 0 is needed")),
        Err(e) => Err(format!("{s}: {e}")),
    }
}

/// A finite number of at least 0.
pub fn non_negative(s: &str) -> Result<f32, String> {
    non_negative_f64(s).map(|v| v as f32)
}

/// A finite number of at least 0.
pub fn non_negative_f64(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        Ok(v) => Err(format!("{v} is not allowed: a finite number of at least 0 is needed")),
        Err(e) => Err(format!("{s}: {e}")),
    }
}

/// A fraction in (0, 1].
pub fn fraction(s: &str) -> Result<f32, String> {
    match s.parse::<f32>() {
        Ok(v) if v > 0.0 && v <= 1.0 => Ok(v),
        Ok(v) => Err(format!("{v} is outside the allowed range: above 0, at most 1")),
        Err(e) => Err(format!("{s}: {e}")),
    }
}

/// A decay in [0, 1).
pub fn decay(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..1.0).contains(&v) => Ok(v),
        Ok(v) => Err(format!("{v} is outside the allowed range: at least 0, below 1")),
        Err(e) => Err(format!("{s}: {e}")),
    }
}

/// A count of at least 1.
pub fn count(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("0 is not allowed: at least 1 is needed".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(format!("{s}: {e}")),
    }
}

/// A step count of at least 1.
pub fn steps(s: &str) -> Result<u64, String> {
    count(s).map(|n| n as u64)
}
