//! The one integration test binary of huella-index.

// A failed unwrap is a failed test, with the error in the message.
#![allow(clippy::unwrap_used)]

mod data;
mod fixtures;
mod flat;
mod hnsw;
mod lsh;
mod persistence;
mod timing;
