//! Stable, seedless hashing used by signatures and the in-memory index.
//!
//! Signatures are stored and compared across processes and releases, so nothing here may depend
//! on the standard library's randomly keyed hasher or on its (unspecified) algorithm. Bytes are
//! consumed eight at a time with a multiply-rotate step (FNV-style constants), the tail byte-wise,
//! and the state is finished with the SplitMix64 mixer for full avalanche. Changing anything here
//! changes stored signatures: bump `SIGNATURE_VERSION`.

use std::hash::{BuildHasher, Hasher};

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// SplitMix64 finaliser: a bijective mixer with full avalanche.
#[inline]
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Streaming FNV-1a over bytes.
#[derive(Debug, Clone, Copy)]
pub struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(FNV_OFFSET)
    }
}

impl Fnv {
    /// Feeds bytes.
    #[inline]
    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        let mut chunks = b.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.0 = (self.0 ^ u64::from_le_bytes(w))
                .wrapping_mul(FNV_PRIME)
                .rotate_left(29);
        }
        for &x in chunks.remainder() {
            self.0 ^= u64::from(x);
            self.0 = self.0.wrapping_mul(FNV_PRIME);
        }
        // Length separates inputs whose chunks coincide.
        self.0 ^= b.len() as u64;
        self
    }
    /// Feeds one separator byte that cannot occur in UTF-8 text, so `("ab","c")` != `("a","bc")`.
    #[inline]
    pub fn sep(&mut self) -> &mut Self {
        self.bytes(&[0xff])
    }
    /// Feeds a u64.
    #[inline]
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.bytes(&v.to_le_bytes())
    }
    /// Final mixed value.
    #[inline]
    pub fn finish64(&self) -> u64 {
        mix64(self.0)
    }
}

/// Hash of a string.
#[inline]
pub fn hash_str(s: &str) -> u64 {
    Fnv::default().bytes(s.as_bytes()).finish64()
}

/// Combines two hashes order-dependently.
#[inline]
pub fn combine(a: u64, b: u64) -> u64 {
    mix64(a ^ b.rotate_left(23).wrapping_add(0x9e37_79b9_7f4a_7c15))
}

/// A deterministic `BuildHasher` for in-memory maps (no per-process random keys).
#[derive(Debug, Clone, Copy, Default)]
pub struct FixedState;

/// Hasher produced by [`FixedState`].
#[derive(Debug, Clone, Copy, Default)]
pub struct FixedHasher(Fnv);

impl Hasher for FixedHasher {
    fn finish(&self) -> u64 {
        self.0.finish64()
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.bytes(bytes);
    }
    fn write_u64(&mut self, v: u64) {
        // Map keys are already well-mixed 64-bit hashes.
        self.0 = Fnv(self.0.0 ^ v);
    }
}

impl BuildHasher for FixedState {
    type Hasher = FixedHasher;
    fn build_hasher(&self) -> FixedHasher {
        FixedHasher::default()
    }
}

/// Hex form of a 64-bit hash (16 lowercase digits).
pub fn hex64(v: u64) -> String {
    format!("{v:016x}")
}

/// Hex form of a 64-bit hash written into a stack buffer (no allocation); same digits as
/// [`hex64`].
pub fn hex64_buf(v: u64, buf: &mut [u8; 16]) -> &str {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (i, b) in buf.iter_mut().enumerate() {
        *b = DIGITS[((v >> (60 - 4 * i)) & 0xf) as usize];
    }
    // All bytes are ASCII hex digits.
    std::str::from_utf8(buf).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_values() {
        // Pinned: stored signatures depend on these never changing.
        assert_eq!(hash_str(""), mix64(FNV_OFFSET));
        assert_eq!(hash_str("abc"), hash_str("abc"));
        assert_ne!(hash_str("ab"), hash_str("ba"));
        let mut a = Fnv::default();
        a.bytes(b"ab").sep().bytes(b"c");
        let mut b = Fnv::default();
        b.bytes(b"a").sep().bytes(b"bc");
        assert_ne!(a.finish64(), b.finish64());
        assert_eq!(hex64(255), "00000000000000ff");
        let mut buf = [0u8; 16];
        assert_eq!(
            hex64_buf(0xdead_beef_0123_4567, &mut buf),
            hex64(0xdead_beef_0123_4567)
        );
    }
}
