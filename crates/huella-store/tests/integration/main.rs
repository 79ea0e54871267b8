//! Integration tests of the gallery store, one binary (see STYLE.md rule 11).

mod basics;
mod common;
mod compat;
mod concurrency;
mod crash;
mod faults;
mod replace;
