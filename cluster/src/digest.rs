//! The digest of a node's records: how the directory notices, in O(1), that
//! what Redis holds for a node is not what the node holds.
//!
//! A digest is a count and an order-independent hash of the records, the
//! sum modulo 2^40 of a hash of each (session id, client id). The scripts
//! keep each node's digest in its entry of `nodes`, in the same atomic step
//! as the records they write or remove; the node keeps the same digest of
//! what it holds from the change feed. The heartbeat reads Redis's and the
//! node compares: a difference means records were lost, replayed late or
//! written by someone else, and the node resyncs its own records.

use sha1_smol::Sha1;

use crate::keys::length_prefixed;
use nity_registry_core::Change;

/// Hashes are summed modulo this: 2^40, so that a sum stays exact in a Lua
/// number and in the 14 digits `cjson` writes.
pub const MODULUS: u64 = 1 << 40;

/// A count and an order-independent hash of a set of records.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Digest {
  pub count: u64,
  pub sum: u64,
}

impl Digest {
  /// The hash of one record: the first five bytes of the SHA-1 of the
  /// length-prefixed session id followed by the client id (what the scripts
  /// compute with `redis.sha1hex`).
  pub fn record_hash(session_id: &str, client_id: &str) -> u64 {
    let mut sha = Sha1::new();
    sha.update(length_prefixed(session_id).as_bytes());
    sha.update(client_id.as_bytes());
    let bytes = sha.digest().bytes();
    bytes[..5]
      .iter()
      .fold(0u64, |hash, &byte| (hash << 8) | u64::from(byte))
  }

  pub fn add(&mut self, session_id: &str, client_id: &str) {
    self.count += 1;
    self.sum = (self.sum + Digest::record_hash(session_id, client_id)) % MODULUS;
  }

  pub fn remove(&mut self, session_id: &str, client_id: &str) {
    self.count = self.count.wrapping_sub(1);
    self.sum = (self.sum + MODULUS - Digest::record_hash(session_id, client_id)) % MODULUS;
  }

  /// Follows one entry of the change feed.
  pub fn apply(&mut self, change: &Change) {
    match change {
      Change::Registered(record) => self.add(&record.session_id, &record.client_id),
      Change::Removed {
        session_id,
        client_id,
      } => self.remove(session_id, client_id),
    }
  }

  /// The digest of a seed (every session held, as registrations).
  pub fn of(changes: &[Change]) -> Digest {
    let mut digest = Digest::default();
    for change in changes {
      digest.apply(change);
    }
    digest
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn order_does_not_matter_and_removal_undoes_addition() {
    let mut a = Digest::default();
    a.add("s1", "c1");
    a.add("s2", "c2");
    let mut b = Digest::default();
    b.add("s2", "c2");
    b.add("s1", "c1");
    assert_eq!(a, b);
    b.add("s3", "c1");
    b.remove("s3", "c1");
    assert_eq!(a, b);
    a.remove("s1", "c1");
    a.remove("s2", "c2");
    assert_eq!(a, Digest::default());
  }

  #[test]
  fn the_client_is_part_of_the_record() {
    assert_ne!(
      Digest::record_hash("s", "c1"),
      Digest::record_hash("s", "c2")
    );
    // Length-prefixed: ("ab", "c") and ("a", "bc") are different records.
    assert_ne!(
      Digest::record_hash("ab", "c"),
      Digest::record_hash("a", "bc")
    );
    assert!(Digest::record_hash("s", "c") < MODULUS);
  }
}
