//! The one error type of the core. Every variant carries a stable `code` that
//! reaches JavaScript unchanged as `err.code`.

/// What went wrong in a registry operation. A call that returns an error has
/// left the registry exactly as it was.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
  /// The client id was empty.
  #[error("clientId must be a non-empty string, got an empty string")]
  EmptyClientId,

  /// The session id was empty.
  #[error("session.id must be a non-empty string, got an empty string")]
  EmptySessionId,

  /// The session id is already registered, under `client_id`; that
  /// registration stays in place.
  #[error("session '{session_id}' is already registered under client '{client_id}'")]
  AlreadyRegistered {
    session_id: String,
    client_id: String,
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
    }
  }
}
