//! Rust client for Fathom. Re-exports the generated v1 types and stubs so
//! applications need no second crate.

pub use fathom_api::v1;
