//! The Zhengyin test suite's home: end-to-end tests (`tests/`) against a really started server,
//! the external test vectors (`tests/vectors/`), and the benchmarks (`benches/`).
//!
//! This package has no library code of its own; the service lives in `crates/`.
