//! Core errors as JavaScript exceptions: a `TypeError` for a bad argument, an
//! `Error` otherwise, both with the core's stable `code`.

use napi::{Env, Error};

use crate::js;
use nity_registry_core::{Error as CoreError, ErrorKind};

/// Throws `error` into JavaScript and returns what lets it propagate.
pub fn throw(env: &Env, error: &CoreError) -> Error {
  let type_error = error.kind() == ErrorKind::InvalidArgument;
  js::throw(env, type_error, error.code(), &error.to_string())
}
