//! The one bit reader of Rill's codec parsers: H.264/H.265 RBSP syntax (fixed-width fields and
//! Exp-Golomb codes), VP9 uncompressed headers and AV1 sequence headers.

use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
#[error("bitstream ended early (needed {needed} more bits at bit {at})")]
pub struct BitsExhausted {
    pub needed: u32,
    pub at: usize,
}

/// Reads bits MSB-first from a byte slice.
pub struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> BitReader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        BitReader { data, pos: 0 }
    }

    pub fn read_bit(&mut self) -> Result<bool, BitsExhausted> {
        let byte = self.data.get(self.pos / 8).ok_or(BitsExhausted { needed: 1, at: self.pos })?;
        let bit = (byte >> (7 - self.pos % 8)) & 1;
        self.pos += 1;
        Ok(bit == 1)
    }

    /// Reads `n` ≤ 32 bits.
    pub fn read_bits(&mut self, n: u32) -> Result<u32, BitsExhausted> {
        debug_assert!(n <= 32);
        if self.pos + n as usize > self.data.len() * 8 {
            return Err(BitsExhausted { needed: n, at: self.pos });
        }
        let mut v: u32 = 0;
        for _ in 0..n {
            v = (v << 1) | self.read_bit()? as u32;
        }
        Ok(v)
    }

    pub fn skip_bits(&mut self, n: usize) -> Result<(), BitsExhausted> {
        if self.pos + n > self.data.len() * 8 {
            return Err(BitsExhausted { needed: n as u32, at: self.pos });
        }
        self.pos += n;
        Ok(())
    }

    /// Unsigned Exp-Golomb `ue(v)`; also AV1's `uvlc()` (the same code, up to 31 leading zeros).
    pub fn read_ue(&mut self) -> Result<u32, BitsExhausted> {
        let mut zeros = 0u32;
        while !self.read_bit()? {
            zeros += 1;
            if zeros > 31 {
                return Err(BitsExhausted { needed: 32, at: self.pos });
            }
        }
        if zeros == 0 {
            return Ok(0);
        }
        let rest = self.read_bits(zeros)? as u64;
        Ok(((1u64 << zeros) - 1 + rest) as u32)
    }

    /// Signed Exp-Golomb `se(v)`.
    pub fn read_se(&mut self) -> Result<i32, BitsExhausted> {
        let k = self.read_ue()? as i64;
        Ok(if k % 2 == 1 { (k + 1) / 2 } else { -(k / 2) } as i32)
    }
}

/// Removes H.264/H.265 emulation prevention bytes (`00 00 03` → `00 00`).
pub fn rbsp_from_ebsp(ebsp: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(ebsp.len());
    let mut zeros = 0;
    for &b in ebsp {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_golomb() {
        // 1 | 010 | 011 | 00100 | 00101 -> 0, 1, 2, 3, 4
        let data = [0b1010_0110, 0b0100_0010, 0b1000_0000];
        let mut r = BitReader::new(&data);
        assert_eq!(r.read_ue().unwrap(), 0);
        assert_eq!(r.read_ue().unwrap(), 1);
        assert_eq!(r.read_ue().unwrap(), 2);
        assert_eq!(r.read_ue().unwrap(), 3);
        assert_eq!(r.read_se().unwrap(), -2);
    }

    #[test]
    fn strips_emulation_prevention() {
        assert_eq!(rbsp_from_ebsp(&[0, 0, 3, 1, 0, 0, 3]), vec![0, 0, 1, 0, 0]);
    }

    #[test]
    fn exhausted_is_an_error() {
        let mut r = BitReader::new(&[0]);
        assert!(r.read_ue().is_err());
    }
}
