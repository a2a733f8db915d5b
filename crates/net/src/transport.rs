//! The one interface every transport offers the driver: a stream of [`TransportEvent`]s.
//! Links that come up carry their own send side ([`crate::Link`]), so sending needs no call
//! into the transport at all.

use tokio::{sync::mpsc, task::JoinHandle};

use crate::link::{EVENT_QUEUE, Events, TransportEvent};

/// A running transport: its events, and the task that owns its connections (stopped when the
/// transport is dropped, which closes every link it opened).
#[derive(Debug)]
pub struct Transport {
    events: mpsc::Receiver<TransportEvent>,
    task: Option<JoinHandle<()>>,
}

impl Transport {
    /// A transport whose connections live in the task `run` returns; it reports through the
    /// sender it is given.
    pub fn spawn<F>(run: impl FnOnce(Events) -> F) -> Self
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        let (tx, rx) = mpsc::channel(EVENT_QUEUE);
        let task = tokio::spawn(run(tx));
        Transport {
            events: rx,
            task: Some(task),
        }
    }

    /// A transport fed by a sender someone else holds (the in-memory network).
    pub fn from_receiver(events: mpsc::Receiver<TransportEvent>) -> Self {
        Transport { events, task: None }
    }

    /// The next event; `None` once the transport has stopped for good.
    pub async fn next_event(&mut self) -> Option<TransportEvent> {
        self.events.recv().await
    }
}

impl Drop for Transport {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}
