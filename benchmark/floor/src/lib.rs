//! The N-API floor: methods of a napi-rs class, like the registry's, that
//! convert the same argument types in the idiomatic napi-rs way and then do
//! nothing. Whatever a registry call costs above its floor is the registry's.

use napi::bindgen_prelude::Unknown;
use napi_derive::napi;

#[napi]
pub struct Floor {}

#[napi]
impl Floor {
  #[napi(constructor)]
  #[allow(clippy::new_without_default)]
  pub fn new() -> Self {
    Floor {}
  }

  /// `getStats()`'s floor: no arguments.
  #[napi]
  pub fn none(&self) {}

  /// `getSession(id)`, `unregister(id)`, `getClientSessions(clientId)`.
  #[napi]
  pub fn string(&self, a: String) {
    std::hint::black_box(a);
  }

  /// Two strings, as `register` reads a client id and a session id.
  #[napi]
  pub fn two_strings(&self, a: String, b: String) {
    std::hint::black_box((a, b));
  }

  /// `register(clientId, session)`'s argument types.
  #[napi]
  pub fn string_object(&self, a: String, b: Unknown) {
    std::hint::black_box((a, b));
  }
}
