//! The Lua scripts that change the directory: each runs atomically on the
//! server, so no check-then-act spans a round trip. Their sources are the
//! `.lua` files beside this one; each is `common.lua` followed by its own.

use redis::Script;

macro_rules! script {
  ($file:literal) => {
    Script::new(concat!(
      include_str!("lua/common.lua"),
      "\n",
      include_str!($file)
    ))
  };
}

/// The directory's scripts, loaded once per node.
pub struct Scripts {
  pub announce: Script,
  pub heartbeat: Script,
  pub publish: Script,
  pub claim: Script,
  pub reap: Script,
  pub leave: Script,
  pub lookup: Script,
  pub drop_dead: Script,
  pub resync: Script,
  pub request: Script,
  pub answer: Script,
}

impl Scripts {
  pub fn new() -> Scripts {
    Scripts {
      announce: script!("lua/announce.lua"),
      heartbeat: script!("lua/heartbeat.lua"),
      publish: script!("lua/publish.lua"),
      claim: script!("lua/claim.lua"),
      reap: script!("lua/reap.lua"),
      leave: script!("lua/leave.lua"),
      lookup: script!("lua/lookup.lua"),
      drop_dead: script!("lua/drop_dead.lua"),
      resync: script!("lua/resync.lua"),
      request: script!("lua/request.lua"),
      answer: script!("lua/answer.lua"),
    }
  }
}

impl Default for Scripts {
  fn default() -> Self {
    Scripts::new()
  }
}
