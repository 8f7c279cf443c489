//! The service side of the bus, and the link protocol gateways share with it.
//!
//! - [`host`]: a [`ServiceHost`] is one service instance: it announces its
//!   services with heartbeats, takes the channels gateways offer
//!   ([`ServiceHost::serve`]) and opens channels to connected peers
//!   ([`ServiceHost::open`]). A service written against it runs unchanged in
//!   embedded mode (in-process bus) and in cluster mode (NATS).
//! - [`link`]: one SWP/1 channel carried over the bus, with credit flow
//!   control end to end and fragmentation of large messages. The gateway
//!   holds the other end of every link.
//! - [`registry`]: who is alive, from heartbeats.
//! - [`sync`]: [`sync::lock`], the poison-tolerant `Mutex` lock services share
//!   state with.
//!
//! A peer's message travels: peer → gateway (SWP/1 channel) → link over the
//! bus (`sw.inst.<instance>.chan`) → [`ServiceChannel::recv`]; replies go
//! back through `sw.gw.<gateway>.chan`.

pub mod host;
pub mod link;
pub mod registry;
pub mod sync;

pub use host::{AskError, HostError, Incoming, PeerInfo, ServiceChannel, ServiceHost};
pub use link::{LinkError, LinkKey, LinkReceiver, LinkSender, Links};
pub use registry::Registry;
