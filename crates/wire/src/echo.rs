//! `echo/1`, built into every node (SWP1.md section 9): each message
//! received on an echo channel is sent back whole, in order, on the same
//! channel; a half-close from the opener is answered with a half-close after
//! the last echo.

use std::sync::Arc;

use crate::driver::Channel;
use crate::node::Service;

/// The service name.
pub const SERVICE: &str = "echo/1";

/// Echoes until the peer finishes, then finishes.
pub async fn serve(mut channel: Channel) {
    loop {
        match channel.recv().await {
            Ok(Some(message)) => {
                if channel.send(message).await.is_err() {
                    return;
                }
            }
            Ok(None) => {
                let _ = channel.finish();
                return;
            }
            Err(_) => return,
        }
    }
}

/// `echo/1` as a [`Service`].
pub fn service() -> Service {
    Arc::new(|channel| Box::pin(serve(channel)))
}
