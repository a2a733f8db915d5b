//! The driver: runs one [`Session`] over a [`Transport`] on tokio. It owns the clock (the only
//! code that reads one), feeds the session frames, link events and timers, carries out its
//! transmits, and tells the user what happened. Everything here is plumbing; every decision
//! about the session's protocol is in `bassline-sync`.

use std::{collections::BTreeMap, time::Duration};

use bassline_core::{Network, Request, Response, Subscribers};
use bassline_sync::{Config, Event, HostSnapshot, LocalOutcome, PeerId, Role, Session, Stats};
use tokio::{
    sync::{broadcast, mpsc, oneshot, watch},
    time::Instant,
};

use crate::{
    Error,
    link::{Link, LinkId, SendError, TransportEvent, TransportStatus},
    status::{LinkState, NetEvent, PeerStatus, Status, role_name},
    transport::Transport,
};

/// How this peer enters the session.
#[derive(Debug)]
pub enum Start {
    /// Hosts, starting from this network.
    Host(Network),
    /// Follows a host, starting empty.
    Guest,
    /// A session made by the caller (a host resumed from its snapshot with
    /// [`Session::host_from`]); the transport's identity must be its id.
    Session(Box<Session>),
}

/// What the user asks of the driver.
#[derive(Debug)]
pub(crate) enum Command {
    Request(Request, oneshot::Sender<Result<Response, Error>>),
    Presence(bassline_sync::Presence),
    Focus(Vec<bassline_core::Id>),
    /// The full status, state hash included.
    Status(oneshot::Sender<Status>),
    /// The sizes of what the session buffers.
    Stats(oneshot::Sender<Option<Stats>>),
    /// What a host needs to host this session again after a restart (`None` unless hosting).
    Snapshot(oneshot::Sender<Option<HostSnapshot>>),
    /// Host: what a member may do (`None`: everyone without a permission of their own).
    Permit(
        Option<PeerId>,
        bassline_sync::Permission,
        oneshot::Sender<Result<(), Error>>,
    ),
}

/// Channels between the driver task and its client handle.
pub(crate) struct Wiring {
    pub commands: mpsc::Receiver<Command>,
    pub status: watch::Sender<Status>,
    pub events: broadcast::Sender<NetEvent>,
    pub subscribers: Subscribers,
}

pub(crate) struct Driver {
    origin: Instant,
    transport: Transport,
    config: Config,
    start: Option<Start>,
    session: Option<Session>,
    links: BTreeMap<PeerId, Link>,
    peers: BTreeMap<PeerId, LinkState>,
    connection: TransportStatus,
    last_role: Option<(Role, u64)>,
    last_synced: bool,
    wiring: Wiring,
}

impl Driver {
    pub(crate) fn new(transport: Transport, config: Config, start: Start, wiring: Wiring) -> Self {
        Driver {
            origin: Instant::now(),
            transport,
            config,
            start: Some(start),
            session: None,
            links: BTreeMap::new(),
            peers: BTreeMap::new(),
            connection: TransportStatus::Connected,
            last_role: None,
            last_synced: false,
            wiring,
        }
    }

    fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    /// Runs until the transport stops or every client handle is gone.
    pub(crate) async fn run(mut self) {
        loop {
            let wake = self
                .session
                .as_ref()
                .and_then(Session::poll_timeout)
                .map(|t| self.origin + t);
            tokio::select! {
                // Network news first: a request must not overtake the identity that creates
                // the session, nor frames that arrived before it.
                biased;
                ev = self.transport.next_event() => match ev {
                    Some(ev) => self.on_transport(ev),
                    None => break,
                },
                cmd = self.wiring.commands.recv() => match cmd {
                    Some(cmd) => self.on_command(cmd),
                    None => break,
                },
                () = sleep_until(wake) => {
                    let now = self.now();
                    if let Some(s) = self.session.as_mut() {
                        s.handle_timeout(now);
                    }
                }
            }
            self.flush();
        }
    }

    fn on_transport(&mut self, ev: TransportEvent) {
        let now = self.now();
        match ev {
            TransportEvent::Identity { me, host } => self.identity(now, me, host),
            TransportEvent::Up(link) => {
                let peer = link.peer;
                let path = link.info().path;
                self.links.insert(peer, link);
                self.peers.insert(peer, LinkState::Connected);
                self.emit(NetEvent::Peer {
                    peer,
                    state: LinkState::Connected,
                    path: Some(path),
                });
                if let Some(s) = self.session.as_mut() {
                    s.handle_connected(now, peer);
                }
            }
            TransportEvent::Down { peer, link } => self.link_down(now, peer, Some(link)),
            TransportEvent::Frame {
                peer,
                link,
                channel,
                frame,
            } => {
                // Frames of a link that was already replaced belong to another reassembly.
                if self.links.get(&peer).is_some_and(|l| l.id == link)
                    && let Some(s) = self.session.as_mut()
                {
                    s.handle_receive(now, peer, channel, &frame);
                }
            }
            TransportEvent::Room { code } => self.emit(NetEvent::Room { code }),
            TransportEvent::Left { peer } => {
                self.drop_link(peer, None);
                self.peers.insert(peer, LinkState::Left);
                // Gone for good (its link may have closed long before): it no longer holds
                // back the log, and no election waits for it.
                if let Some(s) = self.session.as_mut() {
                    s.handle_left(now, peer);
                }
                tracing::debug!(peer, "left the room");
            }
            TransportEvent::Status(status) => {
                self.connection = status.clone();
                self.emit(NetEvent::Connection { status });
            }
            TransportEvent::Tampered {
                peer,
                error,
                unsigned,
            } => self.emit(NetEvent::error(
                &Error::Tampered {
                    peer,
                    reason: error,
                    unsigned,
                },
                false,
            )),
            TransportEvent::Fatal(e) => self.emit(NetEvent::error(&e, true)),
        }
    }

    /// The transport says who this peer is. The first time, the session starts; a later,
    /// different id means the transport lost its place and had to start over, so the session
    /// starts over too (its own unconfirmed edits cannot follow it under another id).
    fn identity(&mut self, now: Duration, me: PeerId, host: Option<PeerId>) {
        let start =
            match (self.start.take(), self.session.take()) {
                (Some(start), _) => start,
                (None, Some(old)) if old.id() == me => {
                    self.session = Some(old);
                    return;
                }
                (None, Some(old)) => {
                    if old.pending() > 0 {
                        self.emit(NetEvent::error(&Error::Refused {
                        code: "identity-lost".into(),
                        message: format!(
                            "{} edits were not confirmed before this peer lost its place in \
                             the room; make them again",
                            old.pending()
                        ),
                    }, false));
                    }
                    match old.role() {
                        Role::Host => Start::Host(old.network().clone()),
                        _ => Start::Guest,
                    }
                }
                (None, None) => Start::Guest,
            };
        let mut session = match start {
            Start::Host(net) => Session::host(me, self.config.clone(), net),
            Start::Guest => Session::guest(me, host.filter(|h| *h != me), self.config.clone()),
            Start::Session(s) if s.id() == me => *s,
            Start::Session(s) => {
                // A caller's mistake: a session cannot run under another id than its link's.
                // Start over under the id the transport gave, keeping the network.
                tracing::error!(
                    made = s.id(),
                    told = me,
                    "the session was made for another id"
                );
                match s.role() {
                    Role::Host => Session::host(me, self.config.clone(), s.network().clone()),
                    _ => Session::guest(me, host.filter(|h| *h != me), self.config.clone()),
                }
            }
        };
        for peer in self.links.keys() {
            session.handle_connected(now, *peer);
        }
        self.session = Some(session);
        self.last_role = None;
        self.last_synced = false;
    }

    fn link_down(&mut self, now: Duration, peer: PeerId, link: Option<LinkId>) {
        if self.drop_link(peer, link)
            && let Some(s) = self.session.as_mut()
        {
            s.handle_disconnected(now, peer);
        }
    }

    /// Forgets the link to `peer` (only if it is still `link`, when given) and reports it;
    /// whether there was one.
    fn drop_link(&mut self, peer: PeerId, link: Option<LinkId>) -> bool {
        let current = self.links.get(&peer).map(|l| l.id);
        if current.is_none() || (link.is_some() && link != current) {
            return false;
        }
        self.links.remove(&peer);
        self.peers.insert(peer, LinkState::Disconnected);
        self.emit(NetEvent::Peer {
            peer,
            state: LinkState::Disconnected,
            path: None,
        });
        true
    }

    fn on_command(&mut self, cmd: Command) {
        let now = self.now();
        match cmd {
            Command::Request(request, reply) => {
                let result = self.local(now, request);
                let _ = reply.send(result);
            }
            Command::Presence(p) => {
                if let Some(s) = self.session.as_mut() {
                    s.handle_presence(now, p);
                }
            }
            Command::Focus(groups) => {
                if let Some(s) = self.session.as_mut() {
                    s.set_focus(groups);
                }
            }
            Command::Stats(reply) => {
                let _ = reply.send(self.session.as_ref().map(Session::stats));
            }
            Command::Snapshot(reply) => {
                let snapshot = self
                    .session
                    .as_ref()
                    .filter(|s| s.role() == Role::Host)
                    .map(Session::snapshot);
                let _ = reply.send(snapshot);
            }
            Command::Permit(peer, permission, reply) => {
                let result = match self.session.as_mut() {
                    Some(s) => s
                        .set_permission(now, peer, permission)
                        .map(|_| ())
                        .map_err(Error::from),
                    None => Err(Error::from(bassline_sync::Error::NotHost)),
                };
                let _ = reply.send(result);
            }
            Command::Status(reply) => {
                let mut status = self.status();
                status.hash = self.session.as_mut().map(|s| s.state_hash().to_string());
                let _ = reply.send(status);
            }
        }
    }

    /// A local request: answered at once (queries), or shown at once and sent to the host
    /// (edits); the edit's changes are the ones the session reported while taking it.
    fn local(&mut self, now: Duration, request: Request) -> Result<Response, Error> {
        let Some(s) = self.session.as_mut() else {
            return Err(Error::ReadOnly);
        };
        match s.handle_local(now, request)? {
            LocalOutcome::Answered(response) => Ok(response),
            // `reply` is what the edit answered where it was shown (an add without an id is
            // `Created` with the id it was given); the host's decision follows as an event.
            LocalOutcome::Submitted { reply, .. } => {
                let mut changes = Vec::new();
                while let Some(ev) = self.session.as_mut().and_then(Session::poll_event) {
                    if let Event::Changes(c) = &ev {
                        changes.extend(c.iter().cloned());
                    }
                    self.on_session_event(ev);
                }
                Ok(Response { reply, changes })
            }
        }
    }

    /// Carries out what the session asked for and tells the user what changed.
    fn flush(&mut self) {
        let now = self.now();
        let mut stalled = Vec::new();
        if let Some(s) = self.session.as_mut() {
            while let Some(tx) = s.poll_transmit() {
                let Some(link) = self.links.get(&tx.to) else {
                    continue;
                };
                match link.send(tx.channel, tx.frame) {
                    Ok(()) => {}
                    Err(SendError::Stalled | SendError::Closed) => stalled.push(tx.to),
                }
            }
        }
        for peer in stalled {
            // A peer that does not take its frames is cut off rather than buffered without
            // bound; when its link comes back the session catches it up.
            tracing::info!(peer, "link stalled: closing it");
            self.link_down(now, peer, None);
        }
        while let Some(ev) = self.session.as_mut().and_then(Session::poll_event) {
            self.on_session_event(ev);
        }
        self.report_changes();
    }

    fn on_session_event(&mut self, ev: Event) {
        match ev {
            Event::Changes(changes) => {
                if changes.is_empty() {
                    return;
                }
                self.wiring.subscribers.publish(&changes);
                self.emit(NetEvent::Changes { changes });
            }
            Event::ReadOnly(value) => {
                // Read-only for good (the host's choice) reads differently from read-only
                // for a while (no host, no state yet).
                let because = self
                    .session
                    .as_ref()
                    .map(|s| s.permission(s.id()))
                    .filter(|p| value && *p != bassline_sync::Permission::ReadWrite);
                self.emit(NetEvent::ReadOnly { value, because })
            }
            Event::StateReplaced { .. } => self.emit(NetEvent::Replaced),
            // The origin's own edits, once per lineage that decides them: an edit decided on
            // the losing side of a partition is told again when the sides meet.
            Event::Decided {
                op,
                position,
                decision,
            } => self.emit(NetEvent::Decided {
                op,
                position,
                decision,
            }),
            Event::PermissionChanged { peer, permission } => {
                self.emit(NetEvent::Permission { peer, permission })
            }
            Event::PeerMisbehaved { peer, reason } => {
                tracing::warn!(peer, %reason, "peer misbehaved");
                self.emit(NetEvent::Misbehaved { peer, reason });
            }
            // The rest (other peers' decisions, host changes, presence, divergence, and any
            // event a later engine adds) shows up through the role, synced and changes
            // reports; log it for whoever debugs.
            other => tracing::debug!(event = ?other, "session event"),
        }
    }

    /// Role, epoch and synced changes, and the status stream.
    fn report_changes(&mut self) {
        let Some(s) = self.session.as_mut() else {
            return;
        };
        let role = (s.role(), s.epoch().number);
        if self.last_role != Some(role) {
            self.last_role = Some(role);
            let host = s.current_host();
            self.emit(NetEvent::Role {
                role: role_name(role.0),
                epoch: role.1,
                host,
            });
        }
        // The status first: the synced event below needs the state hash, a pass over the whole
        // network (~90 ms at 100,000 contacts), which whoever waits for the status need not
        // wait for.
        let status = self.status();
        self.wiring.status.send_if_modified(|old| {
            let changed = *old != status;
            *old = status;
            changed
        });
        let s = self.session.as_mut().expect("checked above");
        let synced = s.is_synced();
        if synced != self.last_synced {
            self.last_synced = synced;
            // Nobody listening for events: do not compute a hash nobody reads.
            if synced && self.wiring.events.receiver_count() > 0 {
                let hash = s.state_hash().to_string();
                self.emit(NetEvent::Synced { hash });
            }
        }
    }

    fn status(&self) -> Status {
        let peers = self
            .peers
            .iter()
            .map(|(&peer, &state)| {
                let info = self.links.get(&peer).map(Link::info);
                PeerStatus {
                    peer,
                    state,
                    path: info.map(|i| i.path),
                    rtt_ms: info.and_then(|i| i.rtt).map(|d| d.as_secs_f64() * 1e3),
                    permission: self
                        .session
                        .as_ref()
                        .map(|s| s.permission(peer))
                        .unwrap_or_default(),
                }
            })
            .collect();
        match &self.session {
            Some(s) => Status {
                me: Some(s.id()),
                role: role_name(s.role()),
                epoch: s.epoch().number,
                position: s.position(),
                host: s.current_host(),
                read_only: s.is_read_only(),
                synced: s.is_synced(),
                pending: s.pending(),
                permission: s.permission(s.id()),
                hash: None,
                peers,
                connection: self.connection.clone(),
            },
            None => initial_status(self.connection.clone(), peers),
        }
    }

    fn emit(&self, ev: NetEvent) {
        // No subscriber is fine: events are for whoever listens.
        let _ = self.wiring.events.send(ev);
    }
}

/// The status before the session exists.
pub(crate) fn initial_status(connection: TransportStatus, peers: Vec<PeerStatus>) -> Status {
    Status {
        me: None,
        role: "starting",
        epoch: 0,
        position: Default::default(),
        host: None,
        read_only: true,
        synced: false,
        pending: 0,
        permission: Default::default(),
        hash: None,
        peers,
        connection,
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
