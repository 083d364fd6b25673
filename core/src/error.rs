//! The one error type of the core. Every variant carries a stable `code` that
//! reaches JavaScript unchanged as `err.code`.

use crate::Slot;

/// What went wrong in a registry or directory operation. A call that returns
/// an error has left the registry (or directory) exactly as it was, except
/// for [`Error::DirectoryUnavailable`], whose whole point is that the outcome
/// is unknown.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
  /// The client id was empty.
  #[error("clientId must be a non-empty string, got an empty string")]
  EmptyClientId,

  /// The session id was empty.
  #[error("session.id must be a non-empty string, got an empty string")]
  EmptySessionId,

  /// The session id is already registered. `slot` and `client_id` describe
  /// the registration that stays in place. `slot` is [`NO_SLOT`](crate::NO_SLOT)
  /// when that registration is not in this process's store: a
  /// [`Directory`](crate::Directory) refused a claim, and the holder may live
  /// in another process.
  #[error("session '{session_id}' is already registered under client '{client_id}'")]
  AlreadyRegistered {
    session_id: String,
    client_id: String,
    slot: Slot,
  },

  /// The registry holds `max_sessions` sessions and could not make room.
  #[error("the registry is full: it holds its maximum of {max} sessions")]
  SessionLimit { max: usize },

  /// The client holds `max_sessions_per_client` sessions and could not make room.
  #[error("client '{client_id}' is full: it holds its maximum of {max} sessions")]
  ClientSessionLimit { client_id: String, max: usize },

  /// The registry was disposed and takes no more sessions.
  #[error("the registry is disposed and takes no more sessions")]
  Disposed,

  /// A `list()` cursor this registry did not hand out.
  #[error("'{0}' is not a cursor returned by list()")]
  InvalidCursor(String),

  /// A [`Directory`](crate::Directory) could not be reached or did not
  /// answer. Whether a write took effect is unknown: claims, releases and
  /// applied changes are written so that retrying them is safe (see the
  /// directory's methods). The in-process directory never fails this way.
  #[error("the session directory is unavailable: {reason}")]
  DirectoryUnavailable { reason: String },
}

/// How an error should surface to a caller in a language with typed errors:
/// a wrong argument (JavaScript's `TypeError`) or a refused operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
  InvalidArgument,
  Refused,
}

impl Error {
  /// The stable machine-readable code of this error.
  pub fn code(&self) -> &'static str {
    match self {
      Error::EmptyClientId => "ERR_INVALID_CLIENT_ID",
      Error::EmptySessionId => "ERR_INVALID_SESSION",
      Error::AlreadyRegistered { .. } => "ERR_SESSION_ALREADY_REGISTERED",
      Error::SessionLimit { .. } => "ERR_SESSION_LIMIT",
      Error::ClientSessionLimit { .. } => "ERR_CLIENT_SESSION_LIMIT",
      Error::Disposed => "ERR_REGISTRY_DISPOSED",
      Error::InvalidCursor(_) => "ERR_INVALID_CURSOR",
      Error::DirectoryUnavailable { .. } => "ERR_CLUSTER_UNAVAILABLE",
    }
  }

  /// Whether the caller passed a bad argument or the registry refused a valid one.
  pub fn kind(&self) -> ErrorKind {
    match self {
      Error::EmptyClientId | Error::EmptySessionId | Error::InvalidCursor(_) => {
        ErrorKind::InvalidArgument
      }
      Error::AlreadyRegistered { .. }
      | Error::SessionLimit { .. }
      | Error::ClientSessionLimit { .. }
      | Error::Disposed
      | Error::DirectoryUnavailable { .. } => ErrorKind::Refused,
    }
  }
}
