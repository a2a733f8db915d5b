//! Load benchmark client (being written).
