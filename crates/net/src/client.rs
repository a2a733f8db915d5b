//! The network client of the real-network modes: the same interface as local mode
//! ([`bassline_core::NetworkClient`]), plus a status stream, an event stream and typed errors.

use bassline_core::{ChangeStream, NetworkClient, Request, Response, Subscribers};
use bassline_sync::Config;
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use crate::{
    Error,
    driver::{Command, Driver, Start, Wiring, initial_status},
    link::TransportStatus,
    status::{NetEvent, Status},
    transport::Transport,
};

/// Events kept for a subscriber that falls behind before it starts missing some.
const EVENT_BACKLOG: usize = 4096;

/// A session running over a transport: send requests, watch its status, hear its events. Cheap
/// to clone; the session stops when the last clone is dropped.
#[derive(Clone, Debug)]
pub struct NetClient {
    commands: mpsc::Sender<Command>,
    status: watch::Receiver<Status>,
    events: broadcast::Sender<NetEvent>,
    subscribers: Subscribers,
}

impl NetClient {
    /// Starts a session over `transport` on the current tokio runtime.
    pub fn spawn(transport: Transport, config: Config, start: Start) -> Self {
        Self::spawn_subscribed(transport, config, start).0
    }

    /// Like [`NetClient::spawn`], with a receiver of its events subscribed before the session
    /// runs, so not even the first one (the room, the role) can be missed: a receiver from
    /// [`NetClient::events`] taken after `spawn` only sees what happens after that call.
    pub fn spawn_subscribed(
        transport: Transport,
        config: Config,
        start: Start,
    ) -> (Self, broadcast::Receiver<NetEvent>) {
        let (ctx, crx) = mpsc::channel(256);
        let (stx, srx) = watch::channel(initial_status(TransportStatus::Connected, Vec::new()));
        let (etx, erx) = broadcast::channel(EVENT_BACKLOG);
        let subscribers = Subscribers::default();
        let driver = Driver::new(
            transport,
            config,
            start,
            Wiring {
                commands: crx,
                status: stx,
                events: etx.clone(),
                subscribers: subscribers.clone(),
            },
        );
        tokio::spawn(driver.run());
        let client = NetClient {
            commands: ctx,
            status: srx,
            events: etx,
            subscribers,
        };
        (client, erx)
    }

    /// Sends a request: a query is answered from this peer's state; an edit is shown here at
    /// once and sent to the host, and its decision arrives later as [`NetEvent::Decided`].
    pub async fn submit(&self, request: Request) -> Result<Response, Error> {
        self.ask(|tx| Command::Request(request, tx)).await?
    }

    /// The status stream: the latest status, and a way to wait for the next change.
    pub fn status(&self) -> watch::Receiver<Status> {
        self.status.clone()
    }

    /// The full status now, state hash included.
    pub async fn status_now(&self) -> Result<Status, Error> {
        self.ask(Command::Status).await
    }

    /// The sizes of what the session buffers (log, pending edits, peers, ...), once it exists.
    pub async fn stats(&self) -> Result<Option<bassline_sync::Stats>, Error> {
        self.ask(Command::Stats).await
    }

    /// What this peer needs to host the session again after a restart
    /// ([`bassline_sync::Session::host_from`]); `None` unless it is the host.
    pub async fn snapshot(&self) -> Result<Option<bassline_sync::HostSnapshot>, Error> {
        self.ask(Command::Snapshot).await
    }

    async fn ask<T>(
        &self,
        command: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, Error> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(command(tx))
            .await
            .map_err(|_| Error::Stopped)?;
        rx.await.map_err(|_| Error::Stopped)
    }

    /// Host: sets what `peer` may do (`None`: every member without a permission of its own,
    /// later joiners included): read-write, read-only (sees everything, edits nothing, never
    /// hosts) or removed (served nothing more). Sequenced like an edit, so every peer applies
    /// it at the same place; a new host keeps enforcing it. [`Error::code`] `not-host` when
    /// this peer does not host.
    pub async fn set_permission(
        &self,
        peer: Option<bassline_sync::PeerId>,
        permission: bassline_sync::Permission,
    ) -> Result<(), Error> {
        self.ask(|tx| Command::Permit(peer, permission, tx)).await?
    }

    /// Everything that happens from now on, in order.
    pub fn events(&self) -> broadcast::Receiver<NetEvent> {
        self.events.subscribe()
    }

    /// Tells the other peers where this user is and what they look at.
    pub async fn presence(&self, presence: bassline_sync::Presence) {
        let _ = self.commands.send(Command::Presence(presence)).await;
    }

    /// The groups on screen: sent first when this peer needs the whole state.
    pub async fn focus(&self, groups: Vec<bassline_core::Id>) {
        let _ = self.commands.send(Command::Focus(groups)).await;
    }
}

impl NetworkClient for NetClient {
    async fn request(&self, request: Request) -> Result<Response, bassline_core::Error> {
        self.submit(request).await.map_err(|e| match e {
            Error::Request(r) => r,
            other => bassline_core::Error::Unavailable {
                reason: other.to_string(),
            },
        })
    }

    fn subscribe(&self) -> ChangeStream {
        self.subscribers.subscribe()
    }
}

/// Waits until `client`'s status satisfies `pred` (or the session stops).
pub async fn wait_for(client: &NetClient, pred: impl Fn(&Status) -> bool) -> Result<Status, Error> {
    let mut rx = client.status();
    let s = rx.wait_for(|s| pred(s)).await.map_err(|_| Error::Stopped)?;
    Ok(s.clone())
}
