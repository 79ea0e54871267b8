//! Benchmark support for Huella.
//!
//! * [`synth`]: deterministic, identity-structured synthetic embeddings (a gallery of
//!   several samples per identity plus one held-out probe per query identity).
//! * [`npy`]: a tiny little-endian `.npy` writer and reader, so that Python peers read
//!   exactly the vectors the Rust benchmark indexed.
//! * [`metrics`]: mate-recall and top-k agreement, defined once for every index.
//! * [`stats`]: percentiles and means.
//! * [`sys`]: resident memory, process CPU time and a description of the machine.
//! * [`compare`]: comparing two recall/throughput curves at equal recall.
//!
//! The binaries are `bench-index` (the index scale benchmark, see `benches/README.md`)
//! and the criterion suite `benches/bench_main.rs`.
//!
//! ```
//! use huella_benches::synth::{generate, SynthConfig};
//! let data = generate(&SynthConfig { identities: 50, dim: 32, queries: 5, ..SynthConfig::default() });
//! assert_eq!(data.gallery_len(), 200);
//! assert_eq!(data.query_labels.len(), 5);
//! ```
#![deny(missing_docs)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod compare;
pub mod metrics;
pub mod npy;
pub mod stats;
pub mod synth;
pub mod sys;
