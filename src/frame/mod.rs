//! What every layer above [`crate::wire`] passes around: a [`Batch`] of up
//! to [`BATCH_SIZE`] frames from one ingress port, the per-frame [`Meta`]
//! the stages fill in, the [`Verdict`] on each frame, the [`DropReason`]
//! of every drop, and the [`PortId`] that names a port.
//!
//! Contract: these are plain data types. They know no configuration, no
//! backend and no stage, so the I/O backends, the pipeline, the capture,
//! the tracer and the benchmarks all speak them without depending on each
//! other. Nothing here allocates after [`Batch::new`].

pub mod batch;
pub mod drop;
pub mod superframe;

pub use batch::{Batch, Meta, Outgoing, Verdict, BATCH_SIZE};
pub use drop::DropReason;
pub use superframe::SuperFrame;

/// Index of a port: its position in the configuration's `[[port]]` list,
/// the same in the plan, the runtime and every report.
pub type PortId = u16;
