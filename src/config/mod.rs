//! Configuration: the TOML file format, ExpressRoute validation, and the
//! validated [`model`].

pub mod model;

pub use model::*;
