//! Verification (stub while building).
