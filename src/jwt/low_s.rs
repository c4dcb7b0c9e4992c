//! ECDSA P-256 malleability: `(r, s)` and `(r, n - s)` sign the same message,
//! so every token would have a twin that verifies. We sign only the low-S form
//! (`s <= n/2`, as Bitcoin's BIP 62 and libsecp256k1 do) and refuse the other.
//! WebCrypto returns either form and verifies both, so this runs beside it.

/// The order of the P-256 group, big-endian.
const N: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xbc, 0xe6, 0xfa,
    0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];
/// `floor(n / 2)`, big-endian.
const HALF_N: [u8; 32] = [
    0x7f, 0xff, 0xff, 0xff, 0x80, 0x00, 0x00, 0x00, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xde, 0x73, 0x7d,
    0x56, 0xd3, 0x8b, 0xcf, 0x42, 0x79, 0xdc, 0xe5, 0x61, 0x7e, 0x31, 0x92, 0xa8,
];

/// Whether a JWS ES256 signature (`r || s`, 64 bytes) has the low-S form.
/// Equal-length big-endian byte strings compare as the numbers they encode.
pub fn is_low_s(sig: &[u8]) -> bool {
    sig.len() == 64 && sig[32..] <= HALF_N[..]
}

/// Rewrite a high-S signature into its low-S twin (`s := n - s`).
pub fn normalize(sig: &mut [u8]) {
    if sig.len() != 64 || is_low_s(sig) {
        return;
    }
    let s = &mut sig[32..];
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let d = N[i] as i16 - s[i] as i16 - borrow;
        borrow = i16::from(d < 0);
        s[i] = (d + if d < 0 { 256 } else { 0 }) as u8;
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use p256::ecdsa::{signature::Signer, signature::Verifier, Signature, SigningKey};

    #[test]
    fn normalize_agrees_with_p256_and_the_twin_verifies_natively() {
        let sk = SigningKey::from_slice(&[7u8; 32]).unwrap();
        for i in 0..32u8 {
            let msg = [i; 9];
            let sig: Signature = sk.sign(&msg);
            let low = sig.normalize_s().unwrap_or(sig);
            let (r, s) = low.split_scalars();
            let twin = Signature::from_scalars(r, -*s).unwrap();
            // The malleability this module exists for: p256 accepts both.
            assert!(sk.verifying_key().verify(&msg, &twin).is_ok());
            let mut bytes = twin.to_bytes().to_vec();
            assert!(!is_low_s(&bytes));
            assert!(is_low_s(&low.to_bytes()));
            normalize(&mut bytes);
            assert_eq!(bytes, low.to_bytes().to_vec());
        }
    }
}
