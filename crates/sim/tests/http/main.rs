//! Black-box tests: a simulator on 127.0.0.1:0, driven over real HTTP like revokd drives Graph.

mod actions;
mod faults;
mod feeds;
mod harness;
mod quotas;
mod scenario;
mod token;
