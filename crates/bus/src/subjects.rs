//! The subject scheme (documented in `docs/ARCHITECTURE.md`, "The bus").
//!
//! | subject | from → to | message |
//! |---|---|---|
//! | `sw.registry.heartbeat` | service instance → gateways | `Heartbeat` |
//! | `sw.svc.<service>.open` (queue group per service) | gateway → one instance | `OpenRequest` → `OpenReply` |
//! | `sw.inst.<instance>.chan` | gateway → instance | `ChannelEvent` |
//! | `sw.gw.<gateway>.chan` | instance → gateway | `ChannelEvent` |
//! | `sw.gw.<gateway>.open` | instance → gateway | `OpenOutbound` → `OpenReply` |
//! | `sw.gw.<gateway>.cmd`, `sw.gw.any.cmd` (queue group), `sw.gw.all.cmd` | pool → gateways | `GatewayCommand` → `CommandReply` |
//! | `sw.peer.up`, `sw.peer.down` | gateway → anyone | `PeerEvent` |
//! | `sw.pool.ban` (queue group) | any service → one pool instance | `Ban` → `CommandReply` |
//!
//! `<service>` is an SWP/1 service name (`name/major`, e.g. `echo/1`), valid
//! as one token because service names never contain `.`, `*`, `>` or
//! whitespace ([`skywire_proto::service_name::is_valid`]). Instance and
//! gateway ids are checked the same way ([`valid_id`]).

/// Longest subject accepted.
pub const MAX_SUBJECT_LEN: usize = 256;

/// Longest instance or gateway id.
pub const MAX_ID_LEN: usize = 64;

/// Heartbeats of service instances.
pub const HEARTBEAT: &str = "sw.registry.heartbeat";

/// A peer connected to a gateway.
pub const PEER_UP: &str = "sw.peer.up";

/// A peer's connection ended.
pub const PEER_DOWN: &str = "sw.peer.down";

/// Both [`PEER_UP`] and [`PEER_DOWN`], in one subscription (so their order
/// is kept).
pub const PEER_EVENTS: &str = "sw.peer.*";

/// A service asks the pool to ban a peer that misbehaved on one of its channels (queue
/// group [`POOL_GROUP`]): the pool stores the ban and tells every gateway.
pub const POOL_BAN: &str = "sw.pool.ban";

/// The queue group of the pool's instances.
pub const POOL_GROUP: &str = "pool";

/// Commands any one gateway replica may answer (queue group [`GATEWAY_ANY_GROUP`]).
pub const GATEWAY_ANY_CMD: &str = "sw.gw.any.cmd";

/// The queue group of [`GATEWAY_ANY_CMD`].
pub const GATEWAY_ANY_GROUP: &str = "gateways";

/// Commands every gateway replica applies (bans, disconnects).
pub const GATEWAY_ALL_CMD: &str = "sw.gw.all.cmd";

/// Where a gateway asks some instance of `service` to take a channel.
pub fn service_open(service: &str) -> String {
    format!("sw.svc.{service}.open")
}

/// The queue group instances of `service` share.
pub fn service_group(service: &str) -> String {
    format!("svc.{service}")
}

/// Channel traffic for one service instance.
pub fn instance_channels(instance: &str) -> String {
    format!("sw.inst.{instance}.chan")
}

/// Channel traffic for one gateway replica.
pub fn gateway_channels(gateway: &str) -> String {
    format!("sw.gw.{gateway}.chan")
}

/// Outbound opens through one gateway replica.
pub fn gateway_open(gateway: &str) -> String {
    format!("sw.gw.{gateway}.open")
}

/// Commands for one gateway replica.
pub fn gateway_cmd(gateway: &str) -> String {
    format!("sw.gw.{gateway}.cmd")
}

/// Whether `id` can name an instance or gateway in a subject: 1 to
/// [`MAX_ID_LEN`] ASCII letters, digits, `-` or `_`.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert!(valid_id("gw-1_A"));
        for bad in ["", "a.b", "a*", "a>", "a b", "é"] {
            assert!(!valid_id(bad), "{bad}");
        }
        assert!(!valid_id(&"a".repeat(65)));
    }

    #[test]
    fn subjects_are_valid() {
        assert!(crate::valid_subject(&service_open("echo/1")));
        assert!(crate::valid_subject(&instance_channels("pool-1")));
        assert!(crate::valid_pattern("sw.*.x.>"));
        for bad in ["", "a..b", "a.>.b", "a.b*", "a b", ".a", "a."] {
            assert!(!crate::valid_pattern(bad), "{bad}");
        }
        assert!(!crate::valid_subject("a.*"));
    }
}
