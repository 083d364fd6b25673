//! Cursors of `list()`: where a page ended, stable while sessions come and go.

use crate::{Error, Slot};

/// The last registration a page returned. Registration numbers only grow, so
/// a page after a cursor whose session is gone starts at the first
/// registration made after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
  pub seq: u64,
  pub slot: Slot,
}

impl Cursor {
  /// An opaque string for JavaScript.
  pub fn encode(self) -> String {
    format!("{}.{}", radix36(self.seq), radix36(u64::from(self.slot.0)))
  }

  /// Reads what [`Cursor::encode`] wrote.
  pub fn decode(text: &str) -> Result<Cursor, Error> {
    let invalid = || Error::InvalidCursor(text.to_owned());
    let (seq, slot) = text.split_once('.').ok_or_else(invalid)?;
    let seq = u64::from_str_radix(seq, 36).map_err(|_| invalid())?;
    let slot = u32::from_str_radix(slot, 36).map_err(|_| invalid())?;
    Ok(Cursor {
      seq,
      slot: Slot(slot),
    })
  }
}

fn radix36(mut n: u64) -> String {
  const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
  let mut out = Vec::new();
  loop {
    out.push(DIGITS[(n % 36) as usize]);
    n /= 36;
    if n == 0 {
      break;
    }
  }
  out.reverse();
  String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
  use super::*;
  use proptest::prelude::*;

  proptest! {
    #[test]
    fn decodes_what_it_encodes(seq in any::<u64>(), slot in any::<u32>()) {
      let cursor = Cursor { seq, slot: Slot(slot) };
      prop_assert_eq!(Cursor::decode(&cursor.encode()), Ok(cursor));
    }
  }

  #[test]
  fn rejects_what_it_did_not_write() {
    for text in [
      "",
      ".",
      "1",
      "1.",
      ".1",
      "x.y.z",
      "-1.2",
      "zzzzzzzzzzzzzzzz.1",
    ] {
      assert!(Cursor::decode(text).is_err(), "{text:?}");
    }
  }
}
