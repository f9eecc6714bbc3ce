//! What only the `vitrine` binary needs and the library does not export.

pub mod bench;
