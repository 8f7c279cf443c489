//! The NATS transport (cluster mode), on async-nats.

use std::time::Duration;

use async_nats::{HeaderMap, HeaderName, client::RequestErrorKind};
use bytes::Bytes;
use futures_util::StreamExt as _;

use crate::{BusError, CONNECT_TIMEOUT, Headers, Message, SUBSCRIPTION_CAPACITY, Subscription};

/// Commands the client queues while the server is unreachable; publishers
/// wait beyond this (backpressure, not unbounded memory).
const CLIENT_CAPACITY: usize = 4096;

/// A NATS connection. Cheap to clone.
#[derive(Clone, Debug)]
pub struct NatsBus {
    client: async_nats::Client,
}

impl NatsBus {
    pub(crate) async fn connect(url: &str, name: &str) -> Result<Self, BusError> {
        let shown = redact(url);
        let options = async_nats::ConnectOptions::new()
            .name(name)
            .connection_timeout(CONNECT_TIMEOUT)
            .subscription_capacity(SUBSCRIPTION_CAPACITY)
            .client_capacity(CLIENT_CAPACITY)
            .event_callback(move |event| async move {
                match event {
                    async_nats::Event::Connected => tracing::info!("NATS connected"),
                    async_nats::Event::Disconnected => tracing::warn!("NATS disconnected"),
                    async_nats::Event::SlowConsumer(sid) => {
                        tracing::warn!(sid, "NATS slow consumer: messages dropped")
                    }
                    other => tracing::debug!(event = %other, "NATS event"),
                }
            });
        let connect = async_nats::connect_with_options(url, options);
        let client = tokio::time::timeout(CONNECT_TIMEOUT, connect)
            .await
            .map_err(|_| BusError::Connect {
                url: shown.clone(),
                message: format!("no answer within {CONNECT_TIMEOUT:?}"),
            })?
            .map_err(|e| BusError::Connect {
                url: shown,
                message: e.to_string(),
            })?;
        Ok(Self { client })
    }

    pub(crate) async fn publish(
        &self,
        subject: &str,
        reply: Option<&str>,
        headers: Headers,
        payload: Bytes,
    ) -> Result<(), BusError> {
        if !crate::valid_subject(subject) {
            return Err(BusError::InvalidSubject(subject.to_owned()));
        }
        let subject = subject.to_owned();
        let result = match reply {
            Some(reply) => {
                self.client
                    .publish_with_reply_and_headers(
                        subject,
                        reply.to_owned(),
                        to_nats(&headers),
                        payload,
                    )
                    .await
            }
            None => {
                self.client
                    .publish_with_headers(subject, to_nats(&headers), payload)
                    .await
            }
        };
        result.map_err(|e| BusError::Nats(e.to_string()))
    }

    pub(crate) async fn request(
        &self,
        subject: &str,
        headers: Headers,
        payload: Bytes,
        timeout: Duration,
    ) -> Result<Message, BusError> {
        if !crate::valid_subject(subject) {
            return Err(BusError::InvalidSubject(subject.to_owned()));
        }
        let request = async_nats::Request::new()
            .payload(payload)
            .headers(to_nats(&headers))
            .timeout(Some(timeout));
        // The client's own timeout covers the reply; this one also covers a
        // client that cannot even queue the request while disconnected.
        let sent = self.client.send_request(subject.to_owned(), request);
        match tokio::time::timeout(timeout, sent).await {
            Ok(Ok(message)) => Ok(from_nats(message)),
            Ok(Err(e)) => Err(match e.kind() {
                RequestErrorKind::NoResponders => BusError::NoResponders {
                    subject: subject.to_owned(),
                },
                RequestErrorKind::TimedOut => BusError::Timeout {
                    subject: subject.to_owned(),
                    after: timeout,
                },
                _ => BusError::Nats(e.to_string()),
            }),
            Err(_) => Err(BusError::Timeout {
                subject: subject.to_owned(),
                after: timeout,
            }),
        }
    }

    pub(crate) async fn subscribe(
        &self,
        pattern: &str,
        group: Option<&str>,
    ) -> Result<Subscription, BusError> {
        if !crate::valid_pattern(pattern) || group.is_some_and(|g| !crate::valid_subject(g)) {
            return Err(BusError::InvalidSubject(pattern.to_owned()));
        }
        let subscriber = match group {
            Some(group) => {
                self.client
                    .queue_subscribe(pattern.to_owned(), group.to_owned())
                    .await
            }
            None => self.client.subscribe(pattern.to_owned()).await,
        }
        .map_err(|e| BusError::Nats(e.to_string()))?;
        // Once this returns, the server has the subscription: nothing
        // published after it is missed.
        self.flush().await?;
        Ok(Subscription::new(subscriber.map(from_nats)))
    }

    pub(crate) async fn flush(&self) -> Result<(), BusError> {
        self.client
            .flush()
            .await
            .map_err(|e| BusError::Nats(e.to_string()))
    }

    pub(crate) fn is_connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }
}

fn to_nats(headers: &Headers) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in headers.iter() {
        // Names that NATS would refuse are left out rather than panicking.
        if let Ok(name) = name.parse::<HeaderName>() {
            map.insert(name, value);
        }
    }
    map
}

fn from_nats(message: async_nats::Message) -> Message {
    let mut headers = Headers::new();
    if let Some(map) = &message.headers {
        for (name, values) in map.iter() {
            if let Some(value) = values.last() {
                headers.insert(name.as_ref(), value.as_str());
            }
        }
    }
    Message {
        subject: message.subject.to_string(),
        reply: message.reply.map(|r| r.to_string()),
        headers,
        payload: message.payload,
    }
}

/// `url` with any password replaced by `***`, for logs and errors.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn redacts_passwords() {
        assert_eq!(
            super::redact("nats://u:secret@h:4222"),
            "nats://u:***@h:4222"
        );
        assert_eq!(super::redact("nats://h:4222"), "nats://h:4222");
        assert_eq!(super::redact("nats://token@h:4222"), "nats://token@h:4222");
    }
}
