//! Integration tests of the store against real database files in temporary directories.

mod chain;
mod common;
mod open;
mod outbox;
mod prune;
mod review;
mod tamper;
