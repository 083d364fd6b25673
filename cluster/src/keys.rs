//! Where a namespace's records live in Redis.
//!
//! Every key of a namespace carries the namespace as its hash tag
//! (`nity:{bridge}:sessions`), so a namespace lives in one slot and works
//! unchanged on Redis Cluster. Session, client and node ids never appear in
//! a key or a channel name: they are hash fields and sorted-set members, so
//! an id with `*`, `:`, `{` or any other byte cannot widen a pattern or
//! collide with another key.

use crate::ClusterError;

/// A validated namespace and the names of its keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespace {
  name: String,
  keys: [String; 10],
  channel: String,
}

impl Namespace {
  /// A namespace name: 1 to 64 characters of `A-Z a-z 0-9 _ . -`, so that
  /// it can sit inside a hash tag.
  pub fn new(name: &str) -> Result<Namespace, ClusterError> {
    let valid = !name.is_empty()
      && name.len() <= 64
      && name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if !valid {
      return Err(ClusterError::InvalidNamespace(name.to_owned()));
    }
    let key = |what: &str| format!("nity:{{{name}}}:{what}");
    Ok(Namespace {
      name: name.to_owned(),
      keys: [
        key("sessions"),
        key("by-client"),
        key("by-node"),
        key("nodes"),
        key("leases"),
        key("epoch"),
        key("requests"),
        key("answers"),
        key("downs"),
        key("clock"),
      ],
      channel: key("bus"),
    })
  }

  pub fn name(&self) -> &str {
    &self.name
  }

  /// The keys every script takes, in the order `common.lua` names them.
  pub fn keys(&self) -> &[String; 10] {
    &self.keys
  }

  pub fn sessions(&self) -> &str {
    &self.keys[0]
  }

  pub fn by_client(&self) -> &str {
    &self.keys[1]
  }

  pub fn by_node(&self) -> &str {
    &self.keys[2]
  }

  pub fn nodes(&self) -> &str {
    &self.keys[3]
  }

  pub fn leases(&self) -> &str {
    &self.keys[4]
  }

  /// Remote requests on record, by request id (written by `request.lua`).
  pub fn requests(&self) -> &str {
    &self.keys[6]
  }

  /// Answers to remote requests, by request id.
  pub fn answers(&self) -> &str {
    &self.keys[7]
  }

  /// Nodes declared down by a reap or a leave, `node\nepoch` -> records
  /// removed, kept a minute: what a `down` message must match.
  pub fn downs(&self) -> &str {
    &self.keys[8]
  }

  /// The one pub/sub channel of the namespace.
  pub fn channel(&self) -> &str {
    &self.channel
  }
}

/// `id` prefixed with its length in bytes, as the sorted-set members start:
/// no id's prefix is a prefix of another id's.
pub fn length_prefixed(id: &str) -> String {
  format!("{}:{id}", id.len())
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn namespaces_are_hash_tags_and_refuse_pattern_characters() {
    let ns = Namespace::new("bridge").unwrap();
    assert_eq!(ns.sessions(), "nity:{bridge}:sessions");
    assert_eq!(ns.channel(), "nity:{bridge}:bus");
    for bad in ["", "a}b", "a{b", "a*", "a:b", "a b", &"x".repeat(65)] {
      assert!(Namespace::new(bad).is_err(), "{bad:?}");
    }
  }

  #[test]
  fn length_prefixes_keep_ids_apart() {
    assert_eq!(length_prefixed("ab"), "2:ab");
    assert_eq!(length_prefixed("é"), "2:é");
    assert!(!length_prefixed("a").starts_with(&length_prefixed("ab")));
    assert_ne!(
      format!("{}{}", length_prefixed("a:b"), "c"),
      format!("{}{}", length_prefixed("a"), ":bc")
    );
  }
}
