//! Helpers for the net integration suites.

pub mod proxy;
