//! Unique Device Secret parsing and generation. Error messages describe the shape of the input
//! (its length, the position of a bad character) but never repeat its characters.

use super::{IdentityError, Uds};
use crate::error::Input;
use zeroize::Zeroizing;

pub(crate) fn parse(text: &str) -> Result<Uds, IdentityError> {
    let t = text.trim();
    let allowed = "allowed: exactly 64 hexadecimal digits (0-9, a-f, any case)";
    if let Some(pos) = t.chars().position(|c| !c.is_ascii_hexdigit()) {
        return Err(IdentityError::invalid(Input::Uds, format!("character {} is not a hexadecimal digit; {allowed}", pos + 1)));
    }
    if t.len() != 64 {
        return Err(IdentityError::invalid(Input::Uds, format!("has {} digits; {allowed}", t.len())));
    }
    let mut bytes = Zeroizing::new([0u8; 32]);
    hex::decode_to_slice(t, &mut bytes[..]).map_err(|_| IdentityError::invalid(Input::Uds, allowed))?;
    Ok(Uds(bytes))
}

pub(crate) fn generate() -> Uds {
    use rand::RngCore;
    let mut bytes = Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng.fill_bytes(&mut bytes[..]);
    Uds(bytes)
}
