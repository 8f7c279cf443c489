//! The in-process bus: NATS core semantics (subjects, `*` and `>` wildcards,
//! queue groups, request/reply, at-most-once delivery) inside one process.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::{BusError, Headers, Message, SUBSCRIPTION_CAPACITY, Subscription};

/// An in-process bus. Cheap to clone; clones share subscriptions.
#[derive(Clone, Default)]
pub struct LocalBus {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for LocalBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalBus").finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Inner {
    subs: RwLock<Subs>,
    next_id: AtomicU64,
    /// Rotates queue-group picks.
    next_pick: AtomicU64,
    /// Messages dropped because a subscriber was [`SUBSCRIPTION_CAPACITY`]
    /// behind.
    dropped: AtomicU64,
}

#[derive(Default)]
struct Subs {
    /// Subscriptions without wildcards, by subject: the common case, O(1).
    exact: HashMap<String, Vec<Sub>>,
    /// Subscriptions with wildcards, tried in turn.
    wild: Vec<(Vec<String>, Sub)>,
}

#[derive(Clone)]
struct Sub {
    id: u64,
    group: Option<String>,
    tx: mpsc::Sender<Message>,
}

impl LocalBus {
    /// A bus with no subscriptions.
    pub fn new() -> Self {
        Self::default()
    }

    /// Messages dropped so far because a subscriber fell too far behind.
    pub fn dropped(&self) -> u64 {
        self.inner.dropped.load(Ordering::Relaxed)
    }

    pub(crate) fn subscribe(
        &self,
        pattern: &str,
        group: Option<&str>,
    ) -> Result<Subscription, BusError> {
        if !crate::valid_pattern(pattern) || group.is_some_and(|g| !crate::valid_subject(g)) {
            return Err(BusError::InvalidSubject(pattern.to_owned()));
        }
        Ok(self.subscribe_with_capacity(pattern, group, SUBSCRIPTION_CAPACITY))
    }

    fn subscribe_with_capacity(
        &self,
        pattern: &str,
        group: Option<&str>,
        capacity: usize,
    ) -> Subscription {
        let (tx, rx) = mpsc::channel(capacity);
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let sub = Sub {
            id,
            group: group.map(str::to_owned),
            tx,
        };
        {
            let mut subs = self.write();
            if pattern.split('.').any(|t| t == "*" || t == ">") {
                let tokens = pattern.split('.').map(str::to_owned).collect();
                subs.wild.push((tokens, sub));
            } else {
                subs.exact.entry(pattern.to_owned()).or_default().push(sub);
            }
        }
        let guard = Unsubscribe {
            bus: Arc::downgrade(&self.inner),
            id,
            pattern: pattern.to_owned(),
        };
        let stream = futures_util::stream::unfold((rx, guard), |(mut rx, guard)| async move {
            rx.recv().await.map(|m| (m, (rx, guard)))
        });
        Subscription::new(stream)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Subs> {
        self.inner
            .subs
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Delivers a message; returns how many subscribers it reached.
    pub(crate) fn publish(
        &self,
        subject: &str,
        reply: Option<&str>,
        headers: Headers,
        payload: Bytes,
    ) -> Result<(), BusError> {
        self.deliver(subject, reply, headers, payload).map(|_| ())
    }

    fn deliver(
        &self,
        subject: &str,
        reply: Option<&str>,
        headers: Headers,
        payload: Bytes,
    ) -> Result<usize, BusError> {
        if !crate::valid_subject(subject) {
            return Err(BusError::InvalidSubject(subject.to_owned()));
        }
        let targets = self.targets(subject);
        let message = Message {
            subject: subject.to_owned(),
            reply: reply.map(str::to_owned),
            headers,
            payload,
        };
        for tx in &targets {
            if let Err(mpsc::error::TrySendError::Full(_)) = tx.try_send(message.clone()) {
                self.inner.dropped.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(subject, "slow consumer: message dropped");
            }
        }
        Ok(targets.len())
    }

    /// The subscribers a message on `subject` goes to: every plain
    /// subscriber, and one member of each queue group.
    fn targets(&self, subject: &str) -> Vec<mpsc::Sender<Message>> {
        let subs = self
            .inner
            .subs
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let tokens: Vec<&str> = subject.split('.').collect();
        let matched = subs
            .exact
            .get(subject)
            .into_iter()
            .flatten()
            .chain(
                subs.wild
                    .iter()
                    .filter(|(pattern, _)| matches(pattern, &tokens))
                    .map(|(_, sub)| sub),
            )
            .filter(|sub| !sub.tx.is_closed());
        let mut targets = Vec::new();
        let mut groups: HashMap<&str, Vec<&Sub>> = HashMap::new();
        for sub in matched {
            match &sub.group {
                None => targets.push(sub.tx.clone()),
                Some(group) => groups.entry(group).or_default().push(sub),
            }
        }
        for members in groups.values() {
            let pick = self.inner.next_pick.fetch_add(1, Ordering::Relaxed) as usize;
            targets.push(members[pick % members.len()].tx.clone());
        }
        targets
    }

    pub(crate) async fn request(
        &self,
        subject: &str,
        headers: Headers,
        payload: Bytes,
        timeout: Duration,
    ) -> Result<Message, BusError> {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let inbox = format!("_INBOX.local.{id}");
        let mut replies = self.subscribe_with_capacity(&inbox, None, 1);
        if self.deliver(subject, Some(&inbox), headers, payload)? == 0 {
            return Err(BusError::NoResponders {
                subject: subject.to_owned(),
            });
        }
        match tokio::time::timeout(timeout, replies.next()).await {
            Ok(Some(reply)) => Ok(reply),
            Ok(None) => Err(BusError::Closed),
            Err(_) => Err(BusError::Timeout {
                subject: subject.to_owned(),
                after: timeout,
            }),
        }
    }
}

/// Whether subject `tokens` match a wildcard `pattern`.
fn matches(pattern: &[String], tokens: &[&str]) -> bool {
    for (i, p) in pattern.iter().enumerate() {
        match p.as_str() {
            ">" => return tokens.len() > i,
            "*" if i < tokens.len() => {}
            p if tokens.get(i) == Some(&p) => {}
            _ => return false,
        }
    }
    pattern.len() == tokens.len()
}

/// Removes a subscription when its stream is dropped.
struct Unsubscribe {
    bus: std::sync::Weak<Inner>,
    id: u64,
    pattern: String,
}

impl Drop for Unsubscribe {
    fn drop(&mut self) {
        let Some(inner) = self.bus.upgrade() else {
            return;
        };
        let mut subs = inner
            .subs
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(list) = subs.exact.get_mut(&self.pattern) {
            list.retain(|s| s.id != self.id);
            if list.is_empty() {
                subs.exact.remove(&self.pattern);
            }
        }
        subs.wild.retain(|(_, s)| s.id != self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(p: &str) -> Vec<String> {
        p.split('.').map(str::to_owned).collect()
    }

    #[test]
    fn wildcards() {
        let subject: Vec<&str> = "sw.svc.echo/1.open".split('.').collect();
        assert!(matches(&tokens("sw.svc.*.open"), &subject));
        assert!(matches(&tokens("sw.>"), &subject));
        assert!(matches(&tokens("sw.svc.echo/1.>"), &subject));
        assert!(!matches(&tokens("sw.svc.echo/1.open.>"), &subject));
        assert!(!matches(&tokens("sw.*"), &subject));
        assert!(!matches(&tokens("sw.svc.*.close"), &subject));
    }
}
