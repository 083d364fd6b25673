//! Core errors as JavaScript errors: an `Error` whose `code` is the core's
//! stable code and whose message is the core's. The TypeScript surface turns
//! it into an error of the caller's realm, a `TypeError` where the code says
//! the caller passed a bad argument.

use nity_registry_cluster::ClusterError;
use nity_registry_core::Error as CoreError;

/// The error type of every fallible method: its status is the error code.
pub type Error = napi::Error<&'static str>;

pub type Result<T> = std::result::Result<T, Error>;

pub fn from_core(error: CoreError) -> Error {
  Error::new(error.code(), error.to_string())
}

/// A cluster error for an async method. napi-rs's async methods reject with
/// errors whose `code` is a napi status, so the code leads the message
/// (`ERR_CLUSTER_TIMEOUT: …`), where the surface reads it back.
pub fn from_cluster(error: ClusterError) -> napi::Error {
  let code = match &error {
    ClusterError::InvalidNamespace(_) | ClusterError::InvalidNodeId(_) => "ERR_INVALID_OPTIONS",
    ClusterError::Timeout(_) => "ERR_CLUSTER_TIMEOUT",
    ClusterError::NodeIdInUse(_) => "ERR_CLUSTER_NODE_ID_IN_USE",
    ClusterError::Unavailable(_) | ClusterError::Protocol(_) => "ERR_CLUSTER_UNAVAILABLE",
  };
  napi::Error::from_reason(format!("{code}: {error}"))
}

/// [`from_cluster`]'s form for a node that is not connected.
pub fn not_connected() -> napi::Error {
  napi::Error::from_reason("ERR_CLUSTER_UNAVAILABLE: the cluster is not connected")
}
