//! Commands to gateways (from the pool and other services): dial,
//! disconnect, ban, unban. A dial may be transient (a short exchange, such
//! as one DHT request): the connection it opens is not one of the pool's
//! peers until a dial without the flag keeps it, and a disconnect may
//! close a connection only while it is still transient.
//!
//! `sw.gw.any.cmd` goes to one replica (dials), `sw.gw.all.cmd` to every
//! replica (bans and disconnects must reach whichever holds the peer), and
//! `sw.gw.<id>.cmd` to one named replica.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use prost::Message as _;
use skywire_bus::{BusError, subjects};
use skywire_proto::bus::v1::{self as pb, gateway_command::Command};
use skywire_service::sync::lock;
use skywire_wire::Reason;

use crate::Inner;

/// Longest ban a command may set (a year).
pub const MAX_BAN: Duration = Duration::from_secs(365 * 24 * 3600);

pub(crate) async fn spawn(inner: &Arc<Inner>) -> Result<(), BusError> {
    let subscriptions = [
        inner
            .bus
            .subscribe(&subjects::gateway_cmd(&inner.id))
            .await?,
        inner
            .bus
            .queue_subscribe(subjects::GATEWAY_ANY_CMD, subjects::GATEWAY_ANY_GROUP)
            .await?,
        inner.bus.subscribe(subjects::GATEWAY_ALL_CMD).await?,
    ];
    for mut commands in subscriptions {
        let task = inner.clone();
        inner.tasks.spawn(async move {
            loop {
                let message = tokio::select! {
                    m = commands.next() => m,
                    () = task.shutdown.cancelled() => None,
                };
                let Some(message) = message else { break };
                let inner = task.clone();
                task.tasks.spawn(async move {
                    let reply = handle(&inner, &message.payload).await;
                    let _ = inner
                        .bus
                        .respond(&message, Bytes::from(reply.encode_to_vec()))
                        .await;
                });
            }
        });
    }
    Ok(())
}

fn error(message: impl Into<String>) -> pb::CommandReply {
    pb::CommandReply {
        error: message.into(),
        peer: None,
    }
}

async fn handle(inner: &Arc<Inner>, payload: &[u8]) -> pb::CommandReply {
    let Ok(command) = pb::GatewayCommand::decode(payload) else {
        return error("malformed GatewayCommand");
    };
    let Some(node) = inner.node() else {
        return error("gateway not running");
    };
    let node_id = match &command.command {
        Some(Command::Dial(c)) => &c.node_id,
        Some(Command::Disconnect(c)) => &c.node_id,
        Some(Command::Ban(c)) => &c.node_id,
        Some(Command::Unban(c)) => &c.node_id,
        None => return error("empty command"),
    };
    let Ok(key) = secp256k1::PublicKey::from_slice(node_id) else {
        return error("bad node id");
    };
    match command.command {
        Some(Command::Dial(dial)) => {
            let Ok(addr) = dial.addr.parse::<SocketAddr>() else {
                return error(format!("bad address {:?}", dial.addr));
            };
            let node_id = key.serialize();
            // Marked before connecting, so that the connection's "up" says
            // it is transient; a keeping dial unmarks (and says so).
            let (marked, kept) = {
                let mut transient = lock(&inner.transient);
                if !dial.transient {
                    (false, transient.remove(&node_id))
                } else if node.connection(&key).is_none() {
                    (transient.insert(node_id), false)
                } else {
                    (false, false)
                }
            };
            match node.connect(addr, &key).await {
                Ok(conn) => {
                    if kept {
                        inner.republish(&conn).await;
                    }
                    pb::CommandReply {
                        error: String::new(),
                        peer: Some(inner.peer(&conn)),
                    }
                }
                Err(e) => {
                    if marked {
                        lock(&inner.transient).remove(&node_id);
                    }
                    error(e.to_string())
                }
            }
        }
        Some(Command::Disconnect(disconnect)) => {
            let node_id = key.serialize();
            let close = !disconnect.if_transient || lock(&inner.transient).remove(&node_id);
            if close && let Some(conn) = node.connection(&key) {
                conn.go_away(Reason::Normal, &disconnect.message);
            }
            error("")
        }
        Some(Command::Ban(ban)) => {
            let duration = Duration::from_millis(ban.duration_ms).min(MAX_BAN);
            node.ban(&key, duration, &ban.reason);
            error("")
        }
        Some(Command::Unban(_)) => {
            node.unban(&key);
            error("")
        }
        None => error("empty command"),
    }
}
