//! Integration tests of `skywire-telemetry`: trace propagation through an
//! in-memory exporter, the operations router without a socket, and `serve`
//! on loopback.

mod helpers;
mod propagation;
mod router;
mod serve;
