//! SWP/1, the Skywire wire protocol (`docs/SWP1.md`), in three layers:
//!
//! - [`noise`]: the BOLT 8 handshake and encrypted transport
//!   (`Noise_XK_secp256k1_ChaChaPoly_SHA256`, prologue `skywire/1`), sans-IO.
//! - [`frame`], [`session`], [`channel`]: frames, the control channel,
//!   channels with credit flow control and priority scheduling, keepalive and
//!   GoAway, as a sans-IO state machine that a fuzzer or a test drives
//!   directly. [`limits`] holds every bound it enforces.
//! - [`driver`]: the tokio layer: dial or accept, run the session between a
//!   reader and a writer task, and hand out [`Connection`] and [`Channel`]
//!   handles with backpressure.
//! - [`node`] and [`echo`]: a listening node that keeps one connection per
//!   peer and routes channels to services, with `echo/1` built in.
//!
//! Data flows: socket → `noise::Decryptor` → [`session::Session::handle_frame`]
//! → events and per-channel queues → services; services →
//! [`session::Session::send`] → [`session::Session::poll_transmit`] →
//! `noise::Encryptor` → socket.
pub mod noise;

pub mod channel;
pub mod driver;
pub mod echo;
pub mod frame;
pub mod limits;
pub mod node;
pub mod session;
#[cfg(feature = "testing")]
pub mod testing;

pub use channel::{ChannelKey, ChannelState};
pub use driver::{
    Channel, CloseReason, ConnectError, Connection, ConnectionConfig, IncomingChannel,
};
pub use node::{Hooks, NoHooks, Node, NodeConfig, NodeError, NodeHandle, Service};
pub use session::{Event, Role, Session, SessionConfig};
pub use skywire_proto::wire::v1 as pb;
pub use skywire_proto::wire::v1::Reason;
