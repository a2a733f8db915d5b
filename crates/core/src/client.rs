//! The NetworkClient interface every editor talks through, and its local mode.
//!
//! ```
//! use bassline_core::{LocalClient, NetworkClient, Request, Value, id};
//! # futures_executor_free::run(async {
//! let client = LocalClient::new();
//! let mut changes = client.subscribe();
//! let response = client.request(Request::AddContact { id: Some(id!("x")), group: id!("root"),
//!     name: None, blend: Default::default(), value: Value::Null, boundary: None }).await.unwrap();
//! assert_eq!(response.changes.len(), 1);
//! assert_eq!(changes.try_next_batch().unwrap().len(), 1);
//! # });
//! # mod futures_executor_free {
//! #     pub fn run(f: impl std::future::Future<Output = ()>) {
//! #         let mut f = std::pin::pin!(f);
//! #         let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
//! #         assert!(f.as_mut().poll(&mut cx).is_ready(), "local requests finish at once");
//! #     }
//! # }
//! ```

use std::{
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex, MutexGuard},
    task::{Context, Poll},
};

use futures_channel::mpsc;
use futures_core::Stream;

use crate::{Change, Error, Network, Request, Response, StateHash};

/// What every mode (local, remote, peer-to-peer) offers an editor.
///
/// The futures carry no `Send` bound so that the same trait serves the browser, where nothing
/// is `Send`; native implementations return `Send` futures where they can.
pub trait NetworkClient {
    /// Sends a request and waits for its response.
    fn request(&self, request: Request) -> impl Future<Output = Result<Response, Error>>;

    /// A stream of change batches: one batch for each applied request, by whoever made it.
    fn subscribe(&self) -> ChangeStream;
}

/// Change batches a client delivers to one subscriber. Dropping it unsubscribes.
#[derive(Debug)]
pub struct ChangeStream {
    rx: mpsc::UnboundedReceiver<ChangeBatch>,
}

impl ChangeStream {
    /// A batch that is already waiting, without blocking.
    pub fn try_next_batch(&mut self) -> Option<ChangeBatch> {
        self.rx.try_recv().ok()
    }
}

impl Stream for ChangeStream {
    type Item = ChangeBatch;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.rx).poll_next(cx)
    }
}

/// One batch of changes, shared by every subscriber it goes to.
pub type ChangeBatch = Arc<[Change]>;

/// Fans change batches out to subscribers, forgetting those that went away.
#[derive(Debug, Default, Clone)]
pub struct Subscribers {
    senders: Arc<Mutex<Vec<mpsc::UnboundedSender<ChangeBatch>>>>,
}

impl Subscribers {
    /// A new subscriber's stream.
    pub fn subscribe(&self) -> ChangeStream {
        let (tx, rx) = mpsc::unbounded();
        lock(&self.senders).push(tx);
        ChangeStream { rx }
    }

    /// Sends a batch to every live subscriber.
    pub fn publish(&self, changes: &[Change]) {
        if changes.is_empty() {
            return;
        }
        let batch: ChangeBatch = changes.into();
        lock(&self.senders).retain(|tx| tx.unbounded_send(batch.clone()).is_ok());
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave these structures half-updated (every update
    // is a single call), so a poisoned lock is still safe to use.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Local mode: the engine runs in this process (or browser tab).
#[derive(Debug, Clone, Default)]
pub struct LocalClient {
    network: Arc<Mutex<Network>>,
    subscribers: Subscribers,
}

impl LocalClient {
    /// A client over a new, empty network.
    pub fn new() -> Self {
        Self::default()
    }

    /// A client over an existing network.
    pub fn from_network(network: Network) -> Self {
        LocalClient {
            network: Arc::new(Mutex::new(network)),
            subscribers: Subscribers::default(),
        }
    }

    /// The current state hash.
    pub fn state_hash(&self) -> StateHash {
        lock(&self.network).state_hash()
    }

    fn apply(&self, request: Request) -> Result<Response, Error> {
        // Publish while holding the engine lock so every subscriber sees batches in the order
        // the engine applied them.
        let mut net = lock(&self.network);
        let response = net.apply(request)?;
        self.subscribers.publish(&response.changes);
        drop(net);
        Ok(response)
    }
}

impl NetworkClient for LocalClient {
    fn request(&self, request: Request) -> impl Future<Output = Result<Response, Error>> {
        std::future::ready(self.apply(request))
    }

    fn subscribe(&self) -> ChangeStream {
        self.subscribers.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Change, Value, id};

    fn ready<T>(f: impl Future<Output = T>) -> T {
        let mut f = std::pin::pin!(f);
        let mut cx = Context::from_waker(std::task::Waker::noop());
        match f.as_mut().poll(&mut cx) {
            Poll::Ready(v) => v,
            Poll::Pending => panic!("local requests finish at once"),
        }
    }

    fn add(c: &str) -> Request {
        Request::AddContact {
            id: Some(id!(c)),
            group: id!("root"),
            name: None,
            blend: Default::default(),
            value: Value::Null,
            boundary: None,
        }
    }

    #[test]
    fn every_subscriber_gets_every_batch_in_order_and_dropped_ones_are_forgotten() {
        let client = LocalClient::new();
        let mut a = client.subscribe();
        let b = client.subscribe();
        ready(client.request(add("x"))).expect("applies");
        drop(b);
        ready(client.request(Request::UpdateContent {
            contact: id!("x"),
            value: Value::from(1.0),
        }))
        .expect("applies");
        let first = a.try_next_batch().expect("first batch");
        assert!(matches!(&first[..], [Change::ContactAdded { .. }]));
        let second = a.try_next_batch().expect("second batch");
        assert!(matches!(&second[..], [Change::ContactUpdated { .. }]));
        assert!(a.try_next_batch().is_none());
        assert_eq!(
            lock(&client.subscribers.senders).len(),
            1,
            "the dropped subscriber is gone"
        );
    }

    #[test]
    fn refused_requests_and_queries_publish_nothing() {
        let client = LocalClient::new();
        let mut a = client.subscribe();
        assert!(ready(client.request(Request::RemoveGroup { id: id!("root") })).is_err());
        ready(client.request(Request::ExportState)).expect("answers");
        assert!(a.try_next_batch().is_none());
        let other = LocalClient::from_network(Network::new());
        assert_eq!(other.state_hash(), client.state_hash());
    }
}
