//! Oracles: independent judges of whether a validator's answer was safe.

pub mod egress;
pub mod tree;

pub use egress::{AcceptedUrlOracle, is_public, special_block};
pub use tree::PathTree;
