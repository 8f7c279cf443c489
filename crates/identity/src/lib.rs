//! Skywire identities.
