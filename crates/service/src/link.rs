//! Links: one SWP/1 channel carried over the bus between the gateway that
//! holds it and the service instance that owns it, with the same guarantees
//! as the channel itself.
//!
//! Both ends use this module. Each direction has a credit window of
//! [`WINDOW`] bytes: a sender sends while it has credit (a message may
//! overshoot by itself), and the receiver grants credit back as its consumer
//! takes messages, in batches of [`GRANT_BATCH`] bytes. So a slow service
//! stops the gateway reading the peer's channel, SWP/1 flow control stops the
//! peer, and no queue holds more than a window plus one message. Messages
//! larger than one bus payload travel in [`FRAGMENT`]-byte pieces.
//!
//! Trace context crosses a link with each message: the sender publishes in
//! its current span (the bus puts it in the headers), [`Links::dispatch`]
//! queues the headers' context with the data, and the receiver keeps the
//! context of the last message it returned ([`LinkReceiver::trace_context`])
//! so the consumer's span can follow it ([`LinkReceiver::follow`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use bytes::{Bytes, BytesMut};
use prost::Message as _;
use skywire_bus::trace::{self, Context};
use skywire_bus::{Bus, Headers};
use skywire_proto::bus::v1::{self as pb, channel_event::Event};
use skywire_proto::wire::v1::Reason;
use tokio::sync::{Notify, mpsc};

/// Bytes a receiver lets the sender have in flight, per link and direction.
/// 256 KiB keeps a 1 Gbit/s stream busy across a 2 ms bus round trip.
pub const WINDOW: u32 = 256 * 1024;

/// Credit is granted back once this many bytes were consumed: a quarter
/// window, so a sender never waits while the receiver keeps up.
pub const GRANT_BATCH: u64 = WINDOW as u64 / 4;

/// Largest piece of a message in one bus message (NATS' default
/// `max_payload` is 1 MiB; this leaves room for the envelope).
pub const FRAGMENT: usize = 256 * 1024;

/// Largest message a link carries: SWP/1's default `max_message_size`.
pub const MAX_MESSAGE_SIZE: usize = 4 * 1024 * 1024;

/// Links one process holds at once; opening more fails.
pub const MAX_LINKS: usize = 65_536;

/// Identifies a link: the channel it carries.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LinkKey {
    /// Gateway replica holding the SWP/1 connection.
    pub gateway: String,
    /// Connection id within that replica.
    pub connection: u64,
    /// Channel id within the connection.
    pub channel: u64,
}

impl LinkKey {
    /// The key of a protobuf channel reference.
    pub fn from_ref(r: &pb::ChannelRef) -> Self {
        Self {
            gateway: r.gateway.clone(),
            connection: r.connection,
            channel: r.channel,
        }
    }

    /// The protobuf channel reference.
    pub fn to_ref(&self) -> pb::ChannelRef {
        pb::ChannelRef {
            gateway: self.gateway.clone(),
            connection: self.connection,
            channel: self.channel,
        }
    }
}

/// Why a link operation failed.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum LinkError {
    /// The link was reset, by either end or because an end died.
    #[error("link reset: {}: {message}", reason.as_str_name())]
    Reset {
        /// Why.
        reason: Reason,
        /// Detail.
        message: String,
    },
    /// We already finished sending.
    #[error("already finished")]
    Finished,
    /// The process holds [`MAX_LINKS`] links.
    #[error("at the limit of {0} links")]
    TooMany(usize),
    /// A link with this key exists already.
    #[error("link exists already")]
    Exists,
    /// The message is over [`MAX_MESSAGE_SIZE`].
    #[error("message of {size} bytes exceeds {max}")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
}

/// Every link of a process, by key: routes incoming [`pb::ChannelEvent`]s.
#[derive(Clone, Default)]
pub struct Links {
    inner: Arc<Mutex<HashMap<LinkKey, Entry>>>,
}

impl std::fmt::Debug for Links {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Links").field("len", &self.len()).finish()
    }
}

struct Entry {
    /// Who is at the other end (instance or gateway id): links die with it.
    peer: String,
    credit: Arc<Credit>,
    inbound: mpsc::UnboundedSender<Inbound>,
    /// Bytes received and not yet granted back; bounded by the window.
    unacked: Arc<Mutex<u64>>,
    /// Where credit goes back to, for data arriving after our receiver was
    /// dropped: it is discarded and its credit granted at once, so the
    /// sender is never stuck (SWP/1 channels behave the same).
    back: Back,
}

/// The other end's subject and our channel reference.
#[derive(Clone)]
struct Back {
    bus: Bus,
    subject: String,
    reference: pb::ChannelRef,
}

impl Back {
    /// Publishes `event` from a task of its own (callers may not await or
    /// may be in `Drop`); does nothing outside a tokio runtime.
    fn spawn_publish(&self, event: Event) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let back = self.clone();
        runtime.spawn(async move {
            let event = pb::ChannelEvent {
                channel: Some(back.reference),
                event: Some(event),
                more: false,
            };
            let _ = back
                .bus
                .publish(&back.subject, Bytes::from(event.encode_to_vec()))
                .await;
        });
    }
}

enum Inbound {
    /// A piece of a message, whether more follow, and the trace context it
    /// was sent in.
    Data(Bytes, bool, Context),
    Finish,
    Reset(Reason, String),
}

/// Send credit and liveness, shared by a sender and the dispatcher.
#[derive(Default)]
struct Credit {
    state: Mutex<CreditState>,
    notify: Notify,
}

#[derive(Default)]
struct CreditState {
    available: i64,
    dead: Option<LinkError>,
}

impl Credit {
    fn lock(&self) -> MutexGuard<'_, CreditState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn kill(&self, error: LinkError) {
        self.lock().dead.get_or_insert(error);
        self.notify.notify_waiters();
    }
}

impl Links {
    /// No links.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<LinkKey, Entry>> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Links held.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Registers a link to `peer` (the other end's id), which receives our
    /// messages on `subject`. We may send `credit` bytes before the other end
    /// grants more; it may send us [`WINDOW`]. The link is forgotten when both
    /// halves are dropped.
    pub fn insert(
        &self,
        bus: &Bus,
        key: LinkKey,
        peer: &str,
        subject: String,
        credit: i64,
    ) -> Result<(LinkSender, LinkReceiver), LinkError> {
        let (tx, rx) = mpsc::unbounded_channel();
        let credit = Arc::new(Credit {
            state: Mutex::new(CreditState {
                available: credit,
                dead: None,
            }),
            notify: Notify::new(),
        });
        let unacked = Arc::new(Mutex::new(0));
        {
            let mut links = self.lock();
            if links.contains_key(&key) {
                return Err(LinkError::Exists);
            }
            if links.len() >= MAX_LINKS {
                return Err(LinkError::TooMany(MAX_LINKS));
            }
            links.insert(
                key.clone(),
                Entry {
                    peer: peer.to_owned(),
                    credit: credit.clone(),
                    inbound: tx.clone(),
                    unacked: unacked.clone(),
                    back: Back {
                        bus: bus.clone(),
                        subject: subject.clone(),
                        reference: key.to_ref(),
                    },
                },
            );
        }
        let registration = Arc::new(Registration {
            links: Arc::downgrade(&self.inner),
            key: key.clone(),
        });
        let end = End {
            bus: bus.clone(),
            subject,
            reference: key.to_ref(),
            _registration: registration,
        };
        let sender = LinkSender {
            end: end.clone(),
            credit: credit.clone(),
            local: tx,
            finished: false,
        };
        let receiver = LinkReceiver {
            end,
            rx,
            credit,
            unacked,
            ungranted: 0,
            partial: BytesMut::new(),
            context: Context::new(),
            done: false,
        };
        Ok((sender, receiver))
    }

    /// Routes one event that arrived from the bus, with the headers of its
    /// bus message, to its link. Data keeps the headers' trace context for
    /// the receiver ([`LinkReceiver::trace_context`]). Events for unknown
    /// links (already closed) are dropped; a sender that overruns its window
    /// has its link reset with `REASON_FLOW_CONTROL`.
    pub fn dispatch(&self, event: pb::ChannelEvent, headers: &Headers) {
        let Some(reference) = &event.channel else {
            return;
        };
        // Outside the lock; only data is ever followed.
        let context = match &event.event {
            Some(Event::Data(_)) => trace::context(headers),
            _ => Context::new(),
        };
        let key = LinkKey::from_ref(reference);
        let links = self.lock();
        let Some(entry) = links.get(&key) else {
            return;
        };
        match event.event {
            Some(Event::Data(data)) if entry.inbound.is_closed() => {
                // Nobody reads any more: discard, give the credit back.
                entry.back.spawn_publish(Event::Credit(data.len() as u64));
            }
            Some(Event::Data(data)) => {
                let mut unacked = entry
                    .unacked
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                *unacked += data.len() as u64;
                if *unacked > u64::from(WINDOW) + MAX_MESSAGE_SIZE as u64 {
                    drop(unacked);
                    let error = LinkError::Reset {
                        reason: Reason::FlowControl,
                        message: "link window exceeded".into(),
                    };
                    entry.credit.kill(error);
                    let _ = entry.inbound.send(Inbound::Reset(
                        Reason::FlowControl,
                        "link window exceeded".into(),
                    ));
                    return;
                }
                let _ = entry.inbound.send(Inbound::Data(data, event.more, context));
            }
            Some(Event::Finish(_)) => {
                let _ = entry.inbound.send(Inbound::Finish);
            }
            Some(Event::Reset(reset)) => {
                let reason = Reason::try_from(reset.reason).unwrap_or(Reason::Unspecified);
                entry.credit.kill(LinkError::Reset {
                    reason,
                    message: reset.message.clone(),
                });
                let _ = entry.inbound.send(Inbound::Reset(reason, reset.message));
            }
            Some(Event::Credit(n)) => {
                let n = i64::try_from(n).unwrap_or(i64::MAX);
                let mut state = entry.credit.lock();
                state.available = state.available.saturating_add(n);
                drop(state);
                entry.credit.notify.notify_waiters();
            }
            None => {}
        }
    }

    /// Resets, locally, every link whose other end is `peer` (it died).
    pub fn reset_peer(&self, peer: &str, reason: Reason, message: &str) {
        self.reset_where(|_, entry| entry.peer == peer, reason, message);
    }

    /// Resets, locally, every link of one connection (it closed).
    pub fn reset_connection(&self, gateway: &str, connection: u64, reason: Reason, message: &str) {
        self.reset_where(
            |key, _| key.gateway == gateway && key.connection == connection,
            reason,
            message,
        );
    }

    fn reset_where(
        &self,
        mut which: impl FnMut(&LinkKey, &Entry) -> bool,
        reason: Reason,
        message: &str,
    ) {
        for (key, entry) in self.lock().iter() {
            if which(key, entry) {
                entry.credit.kill(LinkError::Reset {
                    reason,
                    message: message.to_owned(),
                });
                let _ = entry
                    .inbound
                    .send(Inbound::Reset(reason, message.to_owned()));
            }
        }
    }
}

/// Forgets a link when both of its halves are gone.
struct Registration {
    links: Weak<Mutex<HashMap<LinkKey, Entry>>>,
    key: LinkKey,
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Some(links) = self.links.upgrade() {
            links
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .remove(&self.key);
        }
    }
}

/// What both halves need to publish to the other end.
#[derive(Clone)]
struct End {
    bus: Bus,
    subject: String,
    reference: pb::ChannelRef,
    _registration: Arc<Registration>,
}

impl End {
    async fn publish(&self, event: Event, more: bool) -> Result<(), skywire_bus::BusError> {
        let event = pb::ChannelEvent {
            channel: Some(self.reference.clone()),
            event: Some(event),
            more,
        };
        self.bus
            .publish(&self.subject, Bytes::from(event.encode_to_vec()))
            .await
    }
}

/// Sends a link's messages to the other end.
pub struct LinkSender {
    end: End,
    credit: Arc<Credit>,
    /// Our own receiver's queue: a local reset ends it too.
    local: mpsc::UnboundedSender<Inbound>,
    finished: bool,
}

impl std::fmt::Debug for LinkSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkSender")
            .field("channel", &self.end.reference)
            .finish_non_exhaustive()
    }
}

/// Dropping a sender that did not finish finishes it, as dropping an SWP/1
/// channel does: the other end sees the end of the messages.
impl Drop for LinkSender {
    fn drop(&mut self) {
        if self.finished || self.credit.lock().dead.is_some() {
            return;
        }
        let back = Back {
            bus: self.end.bus.clone(),
            subject: self.end.subject.clone(),
            reference: self.end.reference.clone(),
        };
        back.spawn_publish(Event::Finish(pb::Finish {}));
    }
}

impl LinkSender {
    /// Sends one message, waiting for credit. Cancelling while waiting for
    /// credit sends nothing; cancelling once publishing began resets the link
    /// (the other end cannot tell where the message stopped).
    pub async fn send(&mut self, message: Bytes) -> Result<(), LinkError> {
        if self.finished {
            return Err(LinkError::Finished);
        }
        if message.len() > MAX_MESSAGE_SIZE {
            return Err(LinkError::TooLarge {
                size: message.len(),
                max: MAX_MESSAGE_SIZE,
            });
        }
        self.wait_credit().await?;
        self.credit.lock().available -= message.len() as i64;
        let mut guard = FragmentGuard(Some(self));
        let this = guard.0.as_deref_mut().ok_or(LinkError::Finished)?;
        let mut rest = message;
        loop {
            let piece = rest.split_to(rest.len().min(FRAGMENT));
            let more = !rest.is_empty();
            if let Err(e) = this.end.publish(Event::Data(piece), more).await {
                tracing::debug!(error = %e, "link publish failed");
            }
            if !more {
                break;
            }
        }
        guard.0 = None;
        Ok(())
    }

    async fn wait_credit(&self) -> Result<(), LinkError> {
        loop {
            let notified = self.credit.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let state = self.credit.lock();
                if let Some(error) = &state.dead {
                    return Err(error.clone());
                }
                if state.available > 0 {
                    return Ok(());
                }
            }
            notified.await;
        }
    }

    /// Says we will send no more (half-close).
    pub async fn finish(&mut self) -> Result<(), LinkError> {
        if let Some(error) = &self.credit.lock().dead {
            return Err(error.clone());
        }
        if self.finished {
            return Ok(());
        }
        self.finished = true;
        let _ = self.end.publish(Event::Finish(pb::Finish {}), false).await;
        Ok(())
    }

    /// Resets the link: both ends stop, with `reason`.
    pub async fn reset(&mut self, reason: Reason, message: &str) {
        reset(&self.end, &self.credit, &self.local, reason, message).await;
    }
}

/// Resets a link whose multi-fragment send was cancelled half-way: the other
/// end would otherwise glue the rest of this message to the next one.
struct FragmentGuard<'a>(Option<&'a mut LinkSender>);

impl Drop for FragmentGuard<'_> {
    fn drop(&mut self) {
        if let Some(sender) = self.0.take() {
            let end = sender.end.clone();
            let credit = sender.credit.clone();
            let local = sender.local.clone();
            tokio::spawn(async move {
                reset(&end, &credit, &local, Reason::Internal, "send cancelled").await;
            });
        }
    }
}

async fn reset(
    end: &End,
    credit: &Credit,
    local: &mpsc::UnboundedSender<Inbound>,
    reason: Reason,
    message: &str,
) {
    if credit.lock().dead.is_some() {
        return;
    }
    credit.kill(LinkError::Reset {
        reason,
        message: message.to_owned(),
    });
    let _ = local.send(Inbound::Reset(reason, message.to_owned()));
    let event = Event::Reset(pb::Reset {
        reason: reason as i32,
        message: message.to_owned(),
    });
    let _ = end.publish(event, false).await;
}

/// Receives a link's messages from the other end.
pub struct LinkReceiver {
    end: End,
    rx: mpsc::UnboundedReceiver<Inbound>,
    credit: Arc<Credit>,
    unacked: Arc<Mutex<u64>>,
    ungranted: u64,
    partial: BytesMut,
    /// Trace context of the last message returned.
    context: Context,
    done: bool,
}

impl std::fmt::Debug for LinkReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkReceiver")
            .field("channel", &self.end.reference)
            .finish_non_exhaustive()
    }
}

impl LinkReceiver {
    /// The next whole message; `Ok(None)` once the other end finished.
    /// Cancel-safe: a partly received message stays buffered.
    pub async fn recv(&mut self) -> Result<Option<Bytes>, LinkError> {
        if self.done {
            return Ok(None);
        }
        loop {
            let Some(inbound) = self.rx.recv().await else {
                return Err(LinkError::Reset {
                    reason: Reason::Internal,
                    message: "link gone".into(),
                });
            };
            match inbound {
                Inbound::Data(piece, more, context) => {
                    let len = piece.len() as u64;
                    if self.partial.len() + piece.len() > MAX_MESSAGE_SIZE {
                        let mut sender = self.sender_for_reset();
                        sender
                            .reset(Reason::MessageTooLarge, "message over the link limit")
                            .await;
                        return Err(LinkError::TooLarge {
                            size: self.partial.len() + piece.len(),
                            max: MAX_MESSAGE_SIZE,
                        });
                    }
                    let message = if more || !self.partial.is_empty() {
                        self.partial.extend_from_slice(&piece);
                        if more {
                            self.consumed(len);
                            continue;
                        }
                        self.partial.split().freeze()
                    } else {
                        piece
                    };
                    // Every piece of a message is sent in the same span.
                    self.context = context;
                    self.consumed(len);
                    return Ok(Some(message));
                }
                Inbound::Finish => {
                    self.done = true;
                    return Ok(None);
                }
                Inbound::Reset(reason, message) => {
                    return Err(LinkError::Reset { reason, message });
                }
            }
        }
    }

    /// The trace context the last message [`recv`](Self::recv) returned was
    /// sent in (empty before the first, or when the sender traced nothing).
    pub fn trace_context(&self) -> &Context {
        &self.context
    }

    /// Makes `span` a child of the span that sent the last message
    /// [`recv`](Self::recv) returned, so the work it covers joins the
    /// sender's trace. Call it before `span` is first entered; does nothing
    /// when that message carried no trace context.
    ///
    /// ```no_run
    /// # async fn handle(mut link: skywire_service::LinkReceiver) {
    /// use tracing::Instrument as _;
    ///
    /// while let Ok(Some(message)) = link.recv().await {
    ///     let span = tracing::info_span!("handle", bytes = message.len());
    ///     link.follow(&span);
    ///     async { /* handle `message` */ }.instrument(span).await;
    /// }
    /// # }
    /// ```
    pub fn follow(&self, span: &tracing::Span) {
        trace::follow_context(span, &self.context);
    }

    /// Grants credit for consumed bytes, a batch at a time.
    ///
    /// The grant is published from its own task, so `recv` never awaits
    /// after taking a message off the queue: cancelling it loses nothing.
    /// Grants add up, so their order does not matter.
    fn consumed(&mut self, bytes: u64) {
        self.ungranted += bytes;
        if self.ungranted < GRANT_BATCH {
            return;
        }
        let grant = std::mem::take(&mut self.ungranted);
        {
            let mut unacked = self
                .unacked
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            *unacked = unacked.saturating_sub(grant);
        }
        let end = self.end.clone();
        tokio::spawn(async move {
            let _ = end.publish(Event::Credit(grant), false).await;
        });
    }

    /// Grants the other end its first window: for links whose other end
    /// starts without credit (outbound opens), once this end is ready.
    pub async fn open_window(&self) {
        let _ = self
            .end
            .publish(Event::Credit(u64::from(WINDOW)), false)
            .await;
    }

    fn sender_for_reset(&self) -> LinkSender {
        let (local, _) = mpsc::unbounded_channel();
        LinkSender {
            end: self.end.clone(),
            credit: self.credit.clone(),
            local,
            finished: true,
        }
    }
}
