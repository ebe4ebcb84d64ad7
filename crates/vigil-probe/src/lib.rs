//! Probe kinds.
