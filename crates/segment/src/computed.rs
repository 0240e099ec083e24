//! Computed attributes: aggregates over a profile's experience events in a lookback window,
//! kept current incrementally (aep-api.md §3; docs/computed-attributes.md).
//!
//! - [`definition`]: the `/ca/attributes` object, its expression, the status lifecycle.
//! - [`window`]: time buckets and the window arithmetic (pure).
//! - [`store`]: the per-profile state record and its encoding.
//! - [`upkeep`]: the change-feed consumer, recompute, backfill, and reading values at `now`
//!   ([`upkeep::overlay`] is how segment evaluation sees them).
//!
//! Layering: above `profile` and `identity` (events, graphs), reading the `ingest` change
//! feed like streaming segmentation; HTTP shapes live in the server crate.

pub mod definition;
pub mod store;
pub mod upkeep;
pub mod window;

pub use upkeep::overlay;
