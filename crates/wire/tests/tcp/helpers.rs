//! Shared set-up for the TCP tests: nodes on 127.0.0.1:0 and a raw BOLT 8
//! client that speaks frames by hand, for the bad-input tests.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use secp256k1::{PublicKey, SecretKey};
use skywire_wire::limits::Limits;
use skywire_wire::testing::{connection_config, loopback_node};
use skywire_wire::{Connection, ConnectionConfig, Node, NodeHandle, Service, driver};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

pub(crate) use skywire_wire::testing::{RawClient, control_frame, init_logging};

/// A fresh identity's connection config with `limits`.
pub(crate) fn config(limits: Limits) -> ConnectionConfig {
    ConnectionConfig {
        limits,
        ..connection_config(SecretKey::new(&mut rand::rng()))
    }
}

/// A running node on 127.0.0.1:0.
pub(crate) struct TestNode {
    pub(crate) handle: NodeHandle,
    pub(crate) task: tokio::task::JoinHandle<()>,
}

impl TestNode {
    pub(crate) async fn spawn() -> Self {
        Self::with(Limits::default(), Vec::new()).await
    }

    pub(crate) async fn with(limits: Limits, services: Vec<(String, Service)>) -> Self {
        init_logging();
        let config = loopback_node(config(limits), 5000);
        let node = Node::bind(config, services).await.unwrap();
        let handle = node.handle();
        let task = tokio::spawn(node.run());
        Self { handle, task }
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.handle.local_addr()
    }

    pub(crate) fn key(&self) -> PublicKey {
        self.handle.public_key()
    }

    /// Connects a fresh client identity.
    pub(crate) async fn client(&self) -> Connection {
        driver::dial(self.addr(), &self.key(), &config(Limits::default()))
            .await
            .unwrap()
    }

    /// Checks the node still serves echo/1 to a new client.
    pub(crate) async fn assert_serving(&self) {
        let conn = self.client().await;
        let mut ch = conn.open("echo/1", 0).await.unwrap();
        ch.send(Bytes::from_static(b"still there?")).await.unwrap();
        assert_eq!(
            ch.recv().await.unwrap().unwrap(),
            Bytes::from_static(b"still there?")
        );
    }
}

/// Reads until EOF, failing after `within`; returns the bytes read.
pub(crate) async fn read_to_eof(stream: &mut TcpStream, within: Duration) -> Vec<u8> {
    let mut buf = Vec::new();
    tokio::time::timeout(within, stream.read_to_end(&mut buf))
        .await
        .expect("not closed in time")
        .ok();
    buf
}
