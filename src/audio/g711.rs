//! G.711 mu-law and A-law expansion (ITU-T G.711), as lookup tables on our f32 scale.
//!
//! Written here rather than taken from a crate: two 256-entry tables computed from the standard's
//! formulas, smaller than any dependency, and exact (decoded mu-law peaks at 32124, A-law at
//! 32256 of 32768, never full scale).

/// Expands one mu-law byte to a 16-bit linear sample.
pub fn mulaw_to_i16(byte: u8) -> i16 {
    let u = !byte;
    let sign = u & 0x80;
    let exponent = (u >> 4) & 0x07;
    let mantissa = u & 0x0F;
    let magnitude = ((((mantissa as i32) << 3) + 0x84) << exponent) - 0x84;
    (if sign != 0 { -magnitude } else { magnitude }) as i16
}

/// Expands one A-law byte to a 16-bit linear sample.
pub fn alaw_to_i16(byte: u8) -> i16 {
    let a = byte ^ 0x55;
    let sign = a & 0x80;
    let exponent = (a >> 4) & 0x07;
    let mantissa = (a & 0x0F) as i32;
    let magnitude = if exponent == 0 {
        (mantissa << 4) + 8
    } else {
        ((mantissa << 4) + 0x108) << (exponent - 1)
    };
    (if sign != 0 { magnitude } else { -magnitude }) as i16
}

/// The 256 expanded values of a G.711 law, divided by 32768.
pub fn table(law: fn(u8) -> i16) -> [f32; 256] {
    let mut t = [0.0f32; 256];
    for (i, v) in t.iter_mut().enumerate() {
        *v = law(i as u8) as f32 / 32768.0;
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peaks_and_zero_are_the_standards() {
        let mu: Vec<i16> = (0..=255u8).map(mulaw_to_i16).collect();
        assert_eq!(mu.iter().max(), Some(&32124));
        assert_eq!(mu.iter().min(), Some(&-32124));
        assert_eq!(mulaw_to_i16(0xFF), 0);
        let a: Vec<i16> = (0..=255u8).map(alaw_to_i16).collect();
        assert_eq!(a.iter().max(), Some(&32256));
        assert_eq!(a.iter().min(), Some(&-32256));
        assert_eq!(alaw_to_i16(0xD5), 8);
    }
}
