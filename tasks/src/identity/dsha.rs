//! DSHA: the DICE layer's hash exactly as the DevKit computes it (facts §3).
//!
//! The DICE SHA-256 source takes its big-endian code path on the little-endian MCU, so the
//! result is not standard SHA-256: the message is padded as usual (0x80, zeros to 56 mod 64) but
//! the 64-bit bit length is appended LITTLE-endian, every 4-byte group is read as a
//! LITTLE-endian word, the standard compression runs from the standard initial values, and the
//! eight state words are written LITTLE-endian.
//!
//! Implementation: our own SHA-256 compression from the FIPS 180-4 constants, loading the
//! message words little-endian (the `sha2` crate exposes its compression only behind a feature
//! this workspace does not enable, and the inputs here are a few hundred bytes).

const K: [u32; 64] = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
];

const H0: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

/// DSHA of `data` (see the module documentation).
pub fn dsha(data: &[u8]) -> [u8; 32] {
    let mut state = H0;
    let mut chunks = data.chunks_exact(64);
    for block in &mut chunks {
        compress_le(&mut state, block);
    }
    let rest = chunks.remainder();
    // Final one or two blocks: remainder, 0x80, zeros, 64-bit little-endian bit length.
    let mut tail = [0u8; 128];
    tail[..rest.len()].copy_from_slice(rest);
    tail[rest.len()] = 0x80;
    let tail_len = if rest.len() < 56 { 64 } else { 128 };
    let bits = (data.len() as u64).wrapping_mul(8);
    tail[tail_len - 8..tail_len].copy_from_slice(&bits.to_le_bytes());
    for block in tail[..tail_len].chunks_exact(64) {
        compress_le(&mut state, block);
    }
    // The inputs are secrets (UDS, CDI material): leave no copy on the stack.
    zeroize::Zeroize::zeroize(&mut tail);
    let mut out = [0u8; 32];
    for (o, w) in out.chunks_exact_mut(4).zip(state) {
        o.copy_from_slice(&w.to_le_bytes());
    }
    out
}

/// One compression over `block` with its words loaded little-endian.
fn compress_le(state: &mut [u32; 8], block: &[u8]) {
    let mut w = [0u32; 64];
    for (wi, b) in w.iter_mut().zip(block.chunks_exact(4)) {
        *wi = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    }
    for i in 16..64 {
        let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
        let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16]
            .wrapping_add(s0)
            .wrapping_add(w[i - 7])
            .wrapping_add(s1);
    }
    let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut h] = *state;
    for i in 0..64 {
        let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
        let ch = (e & f) ^ (!e & g);
        let t1 = h
            .wrapping_add(s1)
            .wrapping_add(ch)
            .wrapping_add(K[i])
            .wrapping_add(w[i]);
        let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
        let maj = (a & b) ^ (a & c) ^ (b & c);
        let t2 = s0.wrapping_add(maj);
        h = g;
        g = f;
        f = e;
        e = d.wrapping_add(t1);
        d = c;
        c = b;
        b = a;
        a = t1.wrapping_add(t2);
    }
    for (s, v) in state.iter_mut().zip([a, b, c, d, e, f, g, h]) {
        *s = s.wrapping_add(v);
    }
    zeroize::Zeroize::zeroize(&mut w);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dsha_abc_matches_the_device() {
        assert_eq!(
            hex::encode(dsha(b"abc")),
            "bb392cd2622eecbce49cd242285d0009ef70eae1a3e43e5ec8eae7c779b9f600"
        );
    }

    /// Our compression is the standard one: with big-endian loads and a big-endian length it
    /// must give standard SHA-256.
    #[test]
    fn compression_is_standard_sha256_when_words_are_swapped() {
        use sha2::Digest;
        let msg = b"abc";
        let mut block = [0u8; 64];
        block[..3].copy_from_slice(msg);
        block[3] = 0x80;
        block[56..].copy_from_slice(&24u64.to_be_bytes());
        for g in block.chunks_exact_mut(4) {
            g.reverse();
        }
        let mut state = H0;
        compress_le(&mut state, &block);
        let out: Vec<u8> = state.iter().flat_map(|w| w.to_be_bytes()).collect();
        assert_eq!(out, sha2::Sha256::digest(msg).to_vec());
    }

    #[test]
    fn dsha_differs_from_sha256_and_handles_block_boundaries() {
        use sha2::Digest;
        assert_ne!(dsha(b"abc").to_vec(), sha2::Sha256::digest(b"abc").to_vec());
        // Lengths around the 56/64-byte padding boundaries must all work and differ.
        let data = [0x5au8; 130];
        let mut seen = std::collections::HashSet::new();
        for n in [0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 128, 130] {
            assert!(seen.insert(dsha(&data[..n])), "collision at {n}");
        }
    }
}
