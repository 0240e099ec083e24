//! Data entering Tessera: the catalog (datasets), streaming connections (inlets), record
//! validation against the dataset's schema, the atomic apply path, and the change feed it
//! feeds.
//!
//! What lives here: everything between "bytes arrived" and "the record is durable and on the
//! change feed". What does not: HTTP (server crate), the schema registry (`tessera-schema`),
//! storage layouts of fragments and events (`tessera-profile`).
//!
//! Invariants upheld: 1 (records are acknowledged only after the batch holding the record and
//! its change-feed entry committed durably), 6 (a refused record is described by a
//! [`Rejection`] naming the field and reason, and nothing of it is written).

pub mod batch;
pub mod change_feed;
pub mod dataset;
mod error;
pub mod ids;
pub mod inlet;
pub mod pipeline;
pub mod recent;
pub mod record;
pub mod retention;
pub mod streaming;
pub mod unlink;

pub use batch::{BatchService, BatchStatus, InputFormat};
pub use dataset::{Catalog, Dataset, Labels};
pub use error::{Error, FieldProblem, Rejection, RejectionCode, Result};
pub use inlet::{Inlet, NewInlet};
pub use pipeline::Limits;
pub use retention::Ttl;
pub use streaming::{Ingestor, MessageOutcome, Receipt};
