//! The message bus between gateways and services.
//!
//! One API, two transports, so the same service code runs in both modes:
//!
//! - [`Bus::local`]: an in-process bus for `skywire node` (embedded mode):
//!   subjects, wildcards, queue groups and request/reply with the semantics of
//!   NATS core, and nothing to install.
//! - [`Bus::connect_nats`]: NATS for cluster mode, where each service runs in
//!   its own process.
//!
//! Modules: [`subjects`] names every subject Skywire uses (the scheme is
//! documented in `docs/ARCHITECTURE.md`); [`trace`] carries OpenTelemetry
//! context in message headers, so one trace follows a message from the
//! gateway through the bus into a service.
//!
//! Delivery is NATS core's: at most once, in order from one publisher to one
//! subscriber. A subscriber that falls behind by [`SUBSCRIPTION_CAPACITY`]
//! messages loses messages (NATS calls it a slow consumer); the gateway and
//! services avoid that with credit windows per channel, so no queue grows past
//! its window.

mod local;
mod nats;
pub mod subjects;
pub mod trace;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;

pub use local::LocalBus;
pub use nats::NatsBus;

/// Messages a subscription holds before a slow consumer loses messages.
/// Matches async-nats' default, so both transports fail alike.
pub const SUBSCRIPTION_CAPACITY: usize = 65_536;

/// How long [`Bus::connect_nats`] waits for the server.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Largest payload accepted for publishing: NATS' default `max_payload`.
/// SWP/1 messages reach 4 MiB and are split before this (see the gateway).
pub const MAX_PAYLOAD: usize = 1024 * 1024;

/// A message received from the bus.
#[derive(Debug, Clone)]
pub struct Message {
    /// Subject it was published to.
    pub subject: String,
    /// Where to send a reply, for requests.
    pub reply: Option<String>,
    /// Headers (trace context among them).
    pub headers: Headers,
    /// Body.
    pub payload: Bytes,
}

/// Message headers: a short list of name/value pairs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(Vec<(String, String)>);

impl Headers {
    /// No headers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `name` to `value`, replacing an earlier value.
    pub fn insert(&mut self, name: &str, value: &str) {
        match self
            .0
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            Some((_, v)) => *v = value.to_owned(),
            None => self.0.push((name.to_owned(), value.to_owned())),
        }
    }

    /// The value of `name` (case-insensitive).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every header, in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Why a bus operation failed.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// Connecting to NATS failed.
    #[error("cannot connect to NATS at {url}: {message}")]
    Connect {
        /// Server URL (without credentials).
        url: String,
        /// What went wrong.
        message: String,
    },
    /// Nobody subscribes to the subject of a request.
    #[error("no responders on {subject}")]
    NoResponders {
        /// The request's subject.
        subject: String,
    },
    /// A request got no reply in time.
    #[error("request on {subject} timed out after {after:?}")]
    Timeout {
        /// The request's subject.
        subject: String,
        /// How long we waited.
        after: Duration,
    },
    /// The payload is over [`MAX_PAYLOAD`].
    #[error("payload of {size} bytes exceeds the bus limit of {max}")]
    TooLarge {
        /// Payload size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// A subject or queue group name is not valid.
    #[error("invalid subject {0:?}")]
    InvalidSubject(String),
    /// The bus is closed (the connection was dropped or drained).
    #[error("bus closed")]
    Closed,
    /// Another NATS error.
    #[error("NATS: {0}")]
    Nats(String),
}

/// The bus: cheap to clone, shared by every task of a process.
///
/// A bus may have a *namespace* ([`Bus::with_namespace`]): every subject it
/// publishes or subscribes to is prefixed with `<namespace>.`, so several
/// clusters (or tests) can share one NATS server without hearing each other.
#[derive(Clone, Debug)]
pub struct Bus {
    transport: Transport,
    namespace: Option<Arc<str>>,
}

#[derive(Clone, Debug)]
enum Transport {
    Local(LocalBus),
    Nats(NatsBus),
}

impl Bus {
    /// A fresh in-process bus.
    pub fn local() -> Self {
        Self {
            transport: Transport::Local(LocalBus::new()),
            namespace: None,
        }
    }

    /// Connects to NATS at `url` as client `name`. Fails after
    /// [`CONNECT_TIMEOUT`] if the server is not there; once connected, the
    /// client reconnects on its own after outages.
    pub async fn connect_nats(url: &str, name: &str) -> Result<Self, BusError> {
        Ok(Self {
            transport: Transport::Nats(NatsBus::connect(url, name).await?),
            namespace: None,
        })
    }

    /// The same bus, with every subject under `namespace` (one or more
    /// dot-separated tokens, e.g. `prod` or `test.1a2b`).
    pub fn with_namespace(mut self, namespace: &str) -> Result<Self, BusError> {
        if !valid_subject(namespace) {
            return Err(BusError::InvalidSubject(namespace.to_owned()));
        }
        self.namespace = Some(namespace.into());
        Ok(self)
    }

    /// `subject` under this bus's namespace.
    fn full<'a>(&self, subject: &'a str) -> std::borrow::Cow<'a, str> {
        match &self.namespace {
            Some(ns) => format!("{ns}.{subject}").into(),
            None => subject.into(),
        }
    }

    /// Publishes `payload` to `subject`, with the current span's trace
    /// context in the headers.
    pub async fn publish(&self, subject: &str, payload: Bytes) -> Result<(), BusError> {
        self.publish_with_reply(subject, None, payload).await
    }

    /// Publishes with a reply subject (an inbox, outside the namespace).
    pub async fn publish_with_reply(
        &self,
        subject: &str,
        reply: Option<&str>,
        payload: Bytes,
    ) -> Result<(), BusError> {
        self.publish_raw(&self.full(subject), reply, payload).await
    }

    async fn publish_raw(
        &self,
        subject: &str,
        reply: Option<&str>,
        payload: Bytes,
    ) -> Result<(), BusError> {
        check_size(&payload)?;
        let headers = trace::current_headers();
        match &self.transport {
            Transport::Local(bus) => bus.publish(subject, reply, headers, payload),
            Transport::Nats(bus) => bus.publish(subject, reply, headers, payload).await,
        }
    }

    /// Sends a request and waits up to `timeout` for the first reply.
    pub async fn request(
        &self,
        subject: &str,
        payload: Bytes,
        timeout: Duration,
    ) -> Result<Message, BusError> {
        check_size(&payload)?;
        let headers = trace::current_headers();
        let full = self.full(subject);
        let reply = match &self.transport {
            Transport::Local(bus) => bus.request(&full, headers, payload, timeout).await,
            Transport::Nats(bus) => bus.request(&full, headers, payload, timeout).await,
        };
        reply.map_err(|e| match e {
            BusError::NoResponders { .. } => BusError::NoResponders {
                subject: subject.to_owned(),
            },
            BusError::Timeout { after, .. } => BusError::Timeout {
                subject: subject.to_owned(),
                after,
            },
            other => other,
        })
    }

    /// Answers a request. A message without a reply subject is ignored.
    pub async fn respond(&self, request: &Message, payload: Bytes) -> Result<(), BusError> {
        match &request.reply {
            // Inboxes are not namespaced: the requester chose the subject.
            Some(reply) => self.publish_raw(reply, None, payload).await,
            None => Ok(()),
        }
    }

    /// Receives every message published to `subject` (wildcards `*` for one
    /// token and `>` for the rest).
    pub async fn subscribe(&self, subject: &str) -> Result<Subscription, BusError> {
        self.subscribe_in(subject, None).await
    }

    /// Like [`Bus::subscribe`], but each message goes to one member of
    /// `group`: how replicas of a service share work.
    pub async fn queue_subscribe(
        &self,
        subject: &str,
        group: &str,
    ) -> Result<Subscription, BusError> {
        self.subscribe_in(subject, Some(group)).await
    }

    async fn subscribe_in(
        &self,
        subject: &str,
        group: Option<&str>,
    ) -> Result<Subscription, BusError> {
        let full = self.full(subject);
        let subscription = match &self.transport {
            Transport::Local(bus) => bus.subscribe(&full, group)?,
            Transport::Nats(bus) => bus.subscribe(&full, group).await?,
        };
        Ok(match &self.namespace {
            None => subscription,
            Some(ns) => {
                let strip = format!("{ns}.");
                Subscription::new(futures_util::StreamExt::map(subscription, move |mut m| {
                    if let Some(rest) = m.subject.strip_prefix(&strip) {
                        m.subject = rest.to_owned();
                    }
                    m
                }))
            }
        })
    }

    /// Waits until everything published so far has reached the server.
    pub async fn flush(&self) -> Result<(), BusError> {
        match &self.transport {
            Transport::Local(_) => Ok(()),
            Transport::Nats(bus) => bus.flush().await,
        }
    }

    /// Whether the bus can carry messages now (NATS connected).
    pub fn is_connected(&self) -> bool {
        match &self.transport {
            Transport::Local(_) => true,
            Transport::Nats(bus) => bus.is_connected(),
        }
    }
}

fn check_size(payload: &Bytes) -> Result<(), BusError> {
    if payload.len() > MAX_PAYLOAD {
        return Err(BusError::TooLarge {
            size: payload.len(),
            max: MAX_PAYLOAD,
        });
    }
    Ok(())
}

/// A stream of messages from [`Bus::subscribe`] or [`Bus::queue_subscribe`].
/// Dropping it unsubscribes.
pub struct Subscription {
    inner: std::pin::Pin<Box<dyn Stream<Item = Message> + Send>>,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription").finish_non_exhaustive()
    }
}

impl Subscription {
    fn new(inner: impl Stream<Item = Message> + Send + 'static) -> Self {
        Self {
            inner: Box::pin(inner),
        }
    }

    /// The next message; `None` once the bus is closed. Cancel-safe.
    pub async fn next(&mut self) -> Option<Message> {
        futures_util::StreamExt::next(&mut self.inner).await
    }
}

impl Stream for Subscription {
    type Item = Message;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Message>> {
        self.inner.as_mut().poll_next(cx)
    }
}

/// Checks a subject for publishing: non-empty dot-separated tokens without
/// whitespace or wildcards.
pub fn valid_subject(subject: &str) -> bool {
    valid_pattern(subject) && !subject.split('.').any(|t| t == "*" || t == ">")
}

/// Checks a subscription pattern: like a subject, but `*` may stand for a
/// token and `>` for the rest (last token only).
pub fn valid_pattern(pattern: &str) -> bool {
    if pattern.is_empty() || pattern.len() > subjects::MAX_SUBJECT_LEN {
        return false;
    }
    let tokens: Vec<&str> = pattern.split('.').collect();
    tokens.iter().enumerate().all(|(i, t)| {
        !t.is_empty()
            && !t.chars().any(|c| c.is_whitespace() || c.is_control())
            && (*t == "*" || *t == ">" || !t.contains(['*', '>']))
            && (*t != ">" || i == tokens.len() - 1)
    })
}
