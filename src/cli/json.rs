//! JSON as the commands print it: floats carry at most ten significant digits, so binary noise
//! from arithmetic (`4.970000000000001`, `2.9499999999999997`) never reaches a reader or a
//! diff, while every digit a measurement has is kept. Ratios stay fractions (0.2857), as in
//! docs/analysis-report.md; the text and HTML outputs show them as percentages. The audit
//! export is not passed through here: its entries are printed as they are hashed.

use serde::Serialize;

/// One line of JSON (JSON Lines).
pub fn line<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<String> {
    Ok(tidy(&serde_json::to_string(value)?))
}

/// Indented JSON, for one document.
pub fn pretty<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<String> {
    Ok(tidy(&serde_json::to_string_pretty(value)?))
}

/// The JSON text with every number that has a fraction or exponent rounded to ten significant
/// digits; strings, keys and order untouched (the text is rewritten, not re-parsed into maps).
fn tidy(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    let mut chars = json.char_indices().peekable();
    let (mut in_string, mut escaped) = (false, false);
    while let Some((i, c)) = chars.next() {
        if in_string {
            out.push(c);
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if c == '-' || c.is_ascii_digit() {
            let mut end = i + c.len_utf8();
            while let Some(&(j, d)) = chars.peek() {
                if d.is_ascii_digit() || matches!(d, '.' | 'e' | 'E' | '+' | '-') {
                    end = j + d.len_utf8();
                    chars.next();
                } else {
                    break;
                }
            }
            let token = &json[i..end];
            let float = token.contains(['.', 'e', 'E']);
            match token.parse::<f64>().ok().filter(|_| float) {
                Some(x) => match serde_json::Number::from_f64(round_digits(x)) {
                    Some(n) => out.push_str(&n.to_string()),
                    None => out.push_str(token),
                },
                None => out.push_str(token),
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// `x` with ten significant digits: the double nearest that decimal, which prints as it.
fn round_digits(x: f64) -> f64 {
    if !x.is_finite() || x == 0.0 {
        return x;
    }
    format!("{x:.9e}").parse().unwrap_or(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_noise_goes_and_real_digits_stay() {
        let v = serde_json::json!({
            "a": 4.970000000000001, "b": 2.9499999999999997, "c": 0.1 + 0.2,
            "d": 0.2725176339777101, "e": 9.346323013305665e-5, "f": 43200.125,
            "g": [78.0, 1, -0.30000000000000004], "h": "4.970000000000001", "i": 1700000000123i64,
            "j": "x\"0.30000000000000004"
        });
        assert_eq!(
            line(&v).unwrap(),
            r#"{"a":4.97,"b":2.95,"c":0.3,"d":0.272517634,"e":0.00009346323013,"f":43200.125,"g":[78.0,1,-0.3],"h":"4.970000000000001","i":1700000000123,"j":"x\"0.30000000000000004"}"#
        );
    }
}
