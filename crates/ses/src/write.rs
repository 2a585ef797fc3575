//! Writing (stub while building).
