//! Node.js bindings of the Nity session registry.
//!
//! The bookkeeping lives in the `nity-registry-core` crate; this crate only
//! converts arguments, keeps the JavaScript handles and listeners, calls
//! back into JavaScript, and turns core errors into JavaScript errors.

#![deny(clippy::all)]

mod close_hooks;
mod closing;
mod errors;
mod js;
mod js_state;
mod lifecycle;
mod options;
mod registry;
mod reporting;
mod script;
mod stale_scan;

pub use registry::NitySessionRegistry;
