//! The native layer of the Nity session registry: `NativeRegistry`, a thin
//! napi-rs class over the core's `Registry`. It converts arguments and
//! results and calls the core; the core decides, and the TypeScript surface
//! (`lib/`) holds the session handles and does the JavaScript mechanics.
//!
//! - `registry.rs`: the class and its methods.
//! - `cluster.rs`: `NativeCluster`, a node of a fleet sharing its sessions
//!   through Redis, with async methods.
//! - `options.rs`: the lifecycle policy it is created with.
//! - `reports.rs`: the objects and columns `NativeRegistry` hands back;
//!   `health_codes.rs`: the codes a stale scan hands in;
//!   `cluster_reports.rs`: what `NativeCluster` hands back and tells.
//! - `error.rs`: core errors as JavaScript errors, in one place.

#![deny(clippy::all)]

mod cluster;
mod cluster_reports;
mod error;
mod health_codes;
mod options;
mod registry;
mod reports;

pub use cluster::NativeCluster;
pub use registry::NativeRegistry;
