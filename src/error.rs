//! Core errors as JavaScript errors: an `Error` whose `code` is the core's
//! stable code and whose message is the core's. The TypeScript surface turns
//! it into an error of the caller's realm, a `TypeError` where the code says
//! the caller passed a bad argument.

use nity_registry_core::Error as CoreError;

/// The error type of every fallible method: its status is the error code.
pub type Error = napi::Error<&'static str>;

pub type Result<T> = std::result::Result<T, Error>;

pub fn from_core(error: CoreError) -> Error {
  Error::new(error.code(), error.to_string())
}
