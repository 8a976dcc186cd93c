//! Fathom's integration tests: one binary, one module per area.

mod collections;
mod health;
mod ingestion;
mod support;
