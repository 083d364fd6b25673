//! The numbers that name things in the core, each its own type so that one
//! cannot be passed where another is meant.

use std::fmt;

/// Where the embedding layer keeps a session's handle. A store holds fewer
/// than `u32::MAX` sessions at once; a freed slot is reused, so a slot alone
/// does not name a registration (a slot and its registration number do).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Slot(pub u32);

/// Identifies one close in flight. Never reused by a registry, so a late
/// report about a close that already ended is recognised and ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ticket(pub u64);

impl fmt::Display for Slot {
  fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    write!(f, "slot {}", self.0)
  }
}

impl fmt::Display for Ticket {
  fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    write!(f, "ticket {}", self.0)
  }
}
