//! Fathom's integration tests: one binary, one module per area.

mod aliases;
mod auth;
mod automatic_index;
mod boundaries;
mod bulk_load;
mod cli;
mod client;
mod collections;
mod deadlines;
mod filters;
mod health;
mod ingestion;
mod key_management;
mod keyword_ranking;
mod metrics;
mod overload;
mod replicas;
mod resume;
mod search;
mod search_by_example;
mod serve_process;
mod support;
mod tls;
mod traces;
mod updates;
