//! Bit reading for H.264/H.265 parameter sets: RBSP extraction (emulation prevention
//! bytes removed), fixed-width fields and Exp-Golomb codes. Reads past the end are errors.

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("bitstream ended early")]
pub struct EndOfData;

/// Removes `emulation_prevention_three_byte`s (00 00 03 → 00 00).
pub fn rbsp(nal: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(nal.len());
    let mut zeros = 0;
    for &b in nal {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

pub struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> BitReader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        BitReader { data, pos: 0 }
    }

    pub fn bit(&mut self) -> Result<bool, EndOfData> {
        let byte = *self.data.get(self.pos / 8).ok_or(EndOfData)?;
        let v = (byte >> (7 - self.pos % 8)) & 1;
        self.pos += 1;
        Ok(v == 1)
    }

    /// Up to 64 bits, big-endian.
    pub fn bits(&mut self, n: u32) -> Result<u64, EndOfData> {
        let mut v = 0u64;
        for _ in 0..n {
            v = (v << 1) | u64::from(self.bit()?);
        }
        Ok(v)
    }

    pub fn skip(&mut self, n: usize) -> Result<(), EndOfData> {
        if self.pos + n > self.data.len() * 8 {
            return Err(EndOfData);
        }
        self.pos += n;
        Ok(())
    }

    /// Unsigned Exp-Golomb, `ue(v)`; values beyond 32 bits are refused.
    pub fn ue(&mut self) -> Result<u32, EndOfData> {
        let mut zeros = 0;
        while !self.bit()? {
            zeros += 1;
            if zeros > 31 {
                return Err(EndOfData);
            }
        }
        let rest = self.bits(zeros)?;
        Ok(((1u64 << zeros) - 1 + rest) as u32)
    }

    /// Signed Exp-Golomb, `se(v)`.
    pub fn se(&mut self) -> Result<i32, EndOfData> {
        let k = i64::from(self.ue()?);
        Ok(if k % 2 == 1 { (k + 1) / 2 } else { -(k / 2) } as i32)
    }
}

/// Base64 test vectors (parameter sets as they appear in SDP).
#[cfg(test)]
pub(crate) fn tests_b64(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_golomb_and_rbsp() {
        // 1 | 010 | 011 | 00100 | 00101 → ue 0, 1, 2, 3; se of 4 → -2
        let mut r = BitReader::new(&[0b1010_0110, 0b0100_0010, 0b1000_0000]);
        assert_eq!(r.ue().unwrap(), 0);
        assert_eq!(r.ue().unwrap(), 1);
        assert_eq!(r.ue().unwrap(), 2);
        assert_eq!(r.ue().unwrap(), 3);
        assert_eq!(r.se().unwrap(), -2);
        assert!(BitReader::new(&[0, 0, 0, 0, 0]).ue().is_err());
        assert_eq!(rbsp(&[0, 0, 3, 1, 0, 0, 3]), vec![0, 0, 1, 0, 0]);
    }
}
