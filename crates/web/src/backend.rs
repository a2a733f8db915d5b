//! The editor's one data seam: a [`Session`] of the sync engine, whatever the mode.
//!
//! Local mode is a session that hosts alone with no transport; remote mode is a guest session
//! that never stands for election (the serving process is the permanent host); peer-to-peer
//! will be a guest or host session behind WebRTC. The editor only ever submits requests, reads
//! the session's network and drains [`Update`]s, so a transport plugs in underneath through
//! the `handle_link_*` / [`Backend::poll_transmit`] pair without the editor changing.
//!
//! We chose the session over `bassline_core::NetworkClient` because the session already is what
//! every collaborative mode needs in the tab: optimistic edits with take-back, read-only periods,
//! host changes and a replica to draw from synchronously. A `NetworkClient` would hide those
//! behind futures and force the editor to keep its own copy of the state.
//!
//! ```
//! use bassline_web::backend::{Backend, Update};
//! use bassline_core::{Request, id};
//! let mut b = Backend::local(bassline_core::Network::new());
//! b.submit(Request::AddGroup { id: Some(id!("g")), parent: id!("root"), name: None,
//!     primitive: None }).unwrap();
//! assert!(b.poll_updates().iter().any(|u| matches!(u, Update::Changes(_))));
//! ```

use std::sync::Arc;
use std::time::Duration;

use bassline_core::{Change, Network, Request};
use bassline_sync::{
    Candidacy, Channel, Config, Error, Event, Identity, PeerId, Session, Transmit,
};

/// The peer id a local session uses: it talks to nobody, so any id will do.
pub const LOCAL_PEER: PeerId = 1;

/// Which mode the editor runs in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The engine runs in this tab.
    Local,
    /// The engine runs in `bassline serve`, reached over a WebSocket at `url` (its `/remote`).
    Remote { url: String },
    /// The pages of a peer-to-peer room share the engine over WebRTC; `code` is the room's
    /// (empty until the signaling server confirmed it).
    P2p { code: String },
}

/// What the editor must show after the session moved.
#[derive(Clone, Debug, PartialEq)]
pub enum Update {
    /// Changes to the network, in order, by whoever made them.
    Changes(Vec<Change>),
    /// Edits are refused for now (no host, or the state has not arrived), or allowed again.
    ReadOnly(bool),
    /// An edit of ours was refused by the host, with its reason.
    Refused(String),
    /// What a member may do changed (the host's permit, or a state that brought its table).
    Permissions,
    /// The whole state was replaced (a first sync, a repair that needed everything).
    Replaced,
    /// Another peer's presence: its pointer, group in view, selection and name (see
    /// [`crate::presence`]); relayed by the server in remote mode.
    Presence {
        peer: PeerId,
        presence: bassline_protocol::Presence,
    },
}

/// The session behind the editor, and the clock it was last given.
#[derive(Debug)]
pub struct Backend {
    session: Session,
    mode: Mode,
    now: Duration,
    /// Remote mode: (our peer id, the server's), as the server's welcome named them; `None`
    /// until a welcome arrived.
    joined: Option<(PeerId, PeerId)>,
}

impl Backend {
    /// Local mode over `network`.
    pub fn local(network: Network) -> Self {
        Backend {
            session: Session::host(LOCAL_PEER, Config::default(), network),
            mode: Mode::Local,
            now: Duration::ZERO,
            joined: None,
        }
    }

    /// Remote mode before the server said who we are: empty and read-only, linked to nobody.
    pub fn remote_waiting(url: String) -> Self {
        Backend {
            session: Session::guest(
                0,
                None,
                Config {
                    candidacy: Candidacy::Never,
                    ..Config::default()
                },
            ),
            mode: Mode::Remote { url },
            now: Duration::ZERO,
            joined: None,
        }
    }

    /// Remote mode: a guest of the serving process (`host`, which is the permanent host), with
    /// the id `me` the server gave; it never becomes host itself. Read-only until the
    /// transport links it to the server and the state arrives. `reused`: the server gave back
    /// an id an earlier session of ours used (a reload), so the engine numbers its edits so
    /// that none can be mistaken for one of that session's.
    /// `identity`: this tab's signing key (the same after a reload, so a resumed place keeps
    /// the key the host registered for it).
    pub fn remote(
        me: PeerId,
        host: PeerId,
        url: String,
        reused: bool,
        identity: Arc<dyn Identity>,
    ) -> Self {
        Backend {
            session: Session::guest(me, Some(host), Self::remote_config(reused, identity)),
            mode: Mode::Remote { url },
            now: Duration::ZERO,
            joined: Some((me, host)),
        }
    }

    fn remote_config(reused_id: bool, identity: Arc<dyn Identity>) -> Config {
        Config {
            candidacy: Candidacy::Never,
            reused_id,
            identity,
            ..Config::default()
        }
    }

    /// Peer-to-peer mode before the signaling server gave us a member number: empty and
    /// read-only.
    pub fn p2p_waiting(code: String) -> Self {
        Backend {
            session: Session::guest(0, None, Config::default()),
            mode: Mode::P2p { code },
            now: Duration::ZERO,
            joined: None,
        }
    }

    /// Peer-to-peer mode on the page that made the room: it hosts `network` as member `me`.
    pub fn p2p_host(
        me: PeerId,
        code: String,
        network: Network,
        identity: Arc<dyn Identity>,
    ) -> Self {
        Backend {
            session: Session::host(
                me,
                Config {
                    identity,
                    ..Config::default()
                },
                network,
            ),
            mode: Mode::P2p { code },
            now: Duration::ZERO,
            joined: None,
        }
    }

    /// Peer-to-peer mode on a page that joined as member `me`: a guest that learns its host
    /// from the members' heartbeats and stands for election when the host goes. `reused`: the
    /// number is one an earlier page of this tab held (a reload), see [`Backend::remote`].
    pub fn p2p_guest(me: PeerId, code: String, reused: bool, identity: Arc<dyn Identity>) -> Self {
        Backend {
            session: Session::guest(
                me,
                None,
                Config {
                    reused_id: reused,
                    identity,
                    ..Config::default()
                },
            ),
            mode: Mode::P2p { code },
            now: Duration::ZERO,
            joined: None,
        }
    }

    /// Our role in the session (host, guest, or choosing a new host).
    pub fn role(&self) -> bassline_sync::Role {
        self.session.role()
    }

    /// Our peer id in the session.
    pub fn peer_id(&self) -> PeerId {
        self.session.id()
    }

    /// The host the session follows now.
    pub fn host_id(&self) -> PeerId {
        self.session.epoch().host
    }

    /// Remote mode: (our peer id, the server's), once the server welcomed us.
    pub fn joined(&self) -> Option<(PeerId, PeerId)> {
        self.joined
    }

    pub fn mode(&self) -> &Mode {
        &self.mode
    }

    /// The network as shown: the confirmed state plus our edits still in flight.
    pub fn network(&self) -> &Network {
        self.session.network()
    }

    /// What `peer` may do in this session (read-write unless the host decided otherwise).
    pub fn permission(&self, peer: PeerId) -> bassline_sync::Permission {
        self.session.permission(peer)
    }

    /// Host: sets what `peer` may do: read-write, read-only (sees, never edits or hosts) or
    /// removed (served nothing more). Sequenced like an edit; every peer applies it alike.
    pub fn set_permission(
        &mut self,
        peer: PeerId,
        permission: bassline_sync::Permission,
    ) -> Result<(), Error> {
        self.tick(self.now);
        self.session
            .set_permission(self.now, Some(peer), permission)
            .map(|_| ())
    }

    /// Own edits still waiting for the host's decision.
    pub fn pending(&self) -> usize {
        self.session.pending()
    }

    pub fn is_read_only(&self) -> bool {
        self.session.is_read_only()
    }

    /// Advances the clock (the driver's, from `performance.now()` in the browser) and fires
    /// whatever timers fell due.
    pub fn tick(&mut self, now: Duration) {
        self.now = self.now.max(now);
        if self.session.poll_timeout().is_some_and(|t| t <= self.now) {
            self.session.handle_timeout(self.now);
        }
    }

    /// When [`Backend::tick`] next has work to do.
    pub fn next_deadline(&self) -> Option<Duration> {
        self.session.poll_timeout()
    }

    /// Submits an edit (shown at once) or answers a query from the local replica.
    pub fn submit(&mut self, request: Request) -> Result<(), Error> {
        // A local host batches for peers it does not have; firing due timers here keeps that
        // batch short even when no driver timer runs.
        self.tick(self.now);
        self.session.handle_local(self.now, request).map(|_| ())
    }

    /// Tells every peer linked to us where this user is and what they look at (the
    /// unreliable channel; nothing happens in local mode, which has no peers).
    pub fn send_presence(&mut self, presence: bassline_protocol::Presence) {
        self.session.handle_presence(self.now, presence);
    }

    /// Replaces the whole network (import in local mode). Only a host that owns the state can
    /// do this; a guest would need the host to accept it.
    pub fn replace_network(&mut self, network: Network) -> Result<(), String> {
        match self.mode {
            Mode::Local => {
                self.session = Session::host(LOCAL_PEER, Config::default(), network);
                Ok(())
            }
            Mode::Remote { .. } => Err(
                "importing replaces the server's network for everyone; switch to Local mode to \
                 import"
                    .to_owned(),
            ),
            Mode::P2p { .. } => Err(
                "importing replaces the room's network for everyone; switch to Local mode to \
                 import, then host a room"
                    .to_owned(),
            ),
        }
    }

    /// Everything the editor must show since the last call, in order.
    pub fn poll_updates(&mut self) -> Vec<Update> {
        let mut out = Vec::new();
        while let Some(event) = self.session.poll_event() {
            match event {
                Event::Changes(changes) if !changes.is_empty() => {
                    out.push(Update::Changes(changes))
                }
                Event::ReadOnly(ro) => out.push(Update::ReadOnly(ro)),
                // The fate of one of our own edits (told once per lineage that decides it).
                Event::Decided {
                    decision: bassline_sync::Decision::Refused { reason },
                    ..
                } => out.push(Update::Refused(reason)),
                Event::Decided {
                    decision: bassline_sync::Decision::Denied { permission },
                    ..
                } => out.push(Update::Refused(format!(
                    "not applied: the host made this editor {permission}"
                ))),
                Event::PermissionChanged { .. } => out.push(Update::Permissions),
                Event::StateReplaced { .. } | Event::PartialState { .. } => {
                    out.push(Update::Replaced);
                    out.push(Update::Permissions);
                }
                Event::Presence { peer, presence } => out.push(Update::Presence { peer, presence }),
                _ => {}
            }
        }
        out
    }

    // ---- the transport's side ----

    /// The link to `peer` is open.
    pub fn handle_link_up(&mut self, now: Duration, peer: PeerId) {
        self.now = self.now.max(now);
        self.session.handle_connected(self.now, peer);
    }

    /// The link to `peer` closed.
    pub fn handle_link_down(&mut self, now: Duration, peer: PeerId) {
        self.now = self.now.max(now);
        self.session.handle_disconnected(self.now, peer);
    }

    /// A frame arrived from `peer`.
    pub fn handle_frame(&mut self, now: Duration, peer: PeerId, channel: Channel, frame: &[u8]) {
        self.now = self.now.max(now);
        self.session.handle_receive(self.now, peer, channel, frame);
    }

    /// A frame the transport must send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.session.poll_transmit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bassline_core::{Value, id};

    /// A peer's own Ed25519 key, as a tab would make one.
    fn key(peer: u8) -> Arc<dyn Identity> {
        Arc::new(bassline_sync::Ed25519Identity::from_secret([peer; 32]))
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

    /// Shuttles frames between two backends until both are quiet.
    fn pump(a: &mut Backend, a_id: PeerId, b: &mut Backend, b_id: PeerId, now: Duration) {
        for _ in 0..20 {
            a.tick(now);
            b.tick(now);
            while let Some(t) = a.poll_transmit() {
                b.handle_frame(now, a_id, t.channel, &t.frame);
            }
            while let Some(t) = b.poll_transmit() {
                a.handle_frame(now, b_id, t.channel, &t.frame);
            }
        }
    }

    #[test]
    fn local_edits_show_at_once_and_bad_ones_are_refused_with_a_reason() {
        let mut b = Backend::local(Network::new());
        b.submit(add("a")).expect("applies");
        assert!(b.network().contact(&id!("a")).is_some());
        let e = b.submit(add("a")).expect_err("duplicate id");
        assert!(e.to_string().contains("already in use"), "{e}");
        let updates = b.poll_updates();
        assert_eq!(updates.len(), 2, "{updates:?}");
        assert!(matches!(updates[0], Update::ReadOnly(false)));
        assert!(matches!(updates[1], Update::Changes(_)));
        assert!(b.replace_network(Network::new()).is_ok());
        assert!(b.network().contact(&id!("a")).is_none());
    }

    /// The seam remote mode uses: a guest backend behind any transport sees the host's edits
    /// as changes, and is read-only until it holds the state.
    #[test]
    fn a_remote_guest_follows_its_host_through_the_transport_side() {
        const SERVER_PEER: PeerId = 1;
        let mut server = Backend::local(Network::new());
        // A local host stands in for the serving process.
        server.session = Session::host(SERVER_PEER, Config::default(), Network::new());
        let waiting = Backend::remote_waiting("ws://127.0.0.1:1/remote".into());
        assert!(waiting.is_read_only() && waiting.joined().is_none());
        let mut guest = Backend::remote(
            7,
            SERVER_PEER,
            "ws://127.0.0.1:1/remote".into(),
            false,
            key(7),
        );
        assert_eq!(guest.joined(), Some((7, SERVER_PEER)));
        assert!(guest.is_read_only());
        assert!(guest.submit(add("x")).is_err(), "no edits before the state");
        let t = Duration::from_millis(1);
        server.handle_link_up(t, 7);
        guest.handle_link_up(t, SERVER_PEER);
        pump(&mut server, SERVER_PEER, &mut guest, 7, t);
        assert!(!guest.is_read_only());
        server.submit(add("from-server")).expect("applies");
        let t = Duration::from_millis(100);
        pump(&mut server, SERVER_PEER, &mut guest, 7, t);
        assert!(guest.network().contact(&id!("from-server")).is_some());
        let updates = guest.poll_updates();
        assert!(
            updates.iter().any(|u| matches!(u, Update::Changes(c)
                if c.iter().any(|c| matches!(c, Change::ContactAdded { .. })))),
            "{updates:?}"
        );
        guest
            .submit(add("from-guest"))
            .expect("a synced guest edits");
        pump(
            &mut server,
            SERVER_PEER,
            &mut guest,
            7,
            Duration::from_millis(200),
        );
        assert!(server.network().contact(&id!("from-guest")).is_some());
        assert_eq!(server.network().state_hash(), guest.network().state_hash());
        assert!(guest.replace_network(Network::new()).is_err());

        // Presence goes through the same seam, both ways.
        server.poll_updates();
        let here = bassline_protocol::Presence {
            name: Some("ada".into()),
            group: Some(id!("root")),
            ..Default::default()
        };
        guest.send_presence(here.clone());
        pump(
            &mut server,
            SERVER_PEER,
            &mut guest,
            7,
            Duration::from_millis(300),
        );
        let told: Vec<Update> = server
            .poll_updates()
            .into_iter()
            .filter(|u| matches!(u, Update::Presence { .. }))
            .collect();
        assert_eq!(
            told,
            [Update::Presence {
                peer: 7,
                presence: here
            }]
        );
    }

    /// Peer-to-peer: the page that made the room hosts its network, a joining page follows
    /// it, and when the host is gone the guest takes over with everything it had.
    #[test]
    fn a_p2p_guest_syncs_edits_and_takes_over_when_the_host_goes() {
        let mut net = Network::new();
        net.apply(add("before")).expect("applies");
        let mut host = Backend::p2p_host(1, "A3B7K9".into(), net, key(1));
        let mut guest = Backend::p2p_guest(2, "A3B7K9".into(), false, key(2));
        assert!(guest.is_read_only());
        assert_eq!(host.role(), bassline_sync::Role::Host);
        let t = Duration::from_millis(1);
        host.handle_link_up(t, 2);
        guest.handle_link_up(t, 1);
        pump(&mut host, 1, &mut guest, 2, t);
        assert!(!guest.is_read_only());
        assert!(guest.network().contact(&id!("before")).is_some());
        assert_eq!(guest.host_id(), 1);
        guest
            .submit(add("from-guest"))
            .expect("a synced guest edits");
        pump(&mut host, 1, &mut guest, 2, Duration::from_millis(50));
        assert!(host.network().contact(&id!("from-guest")).is_some());
        // The host page closes: the lone guest becomes host and keeps editing.
        guest.handle_link_down(Duration::from_millis(100), 1);
        for ms in (200..20_000).step_by(100) {
            guest.tick(Duration::from_millis(ms));
        }
        assert_eq!(guest.role(), bassline_sync::Role::Host);
        guest.submit(add("after")).expect("the new host edits");
        assert!(guest.network().contact(&id!("before")).is_some());
        assert!(guest.replace_network(Network::new()).is_err());
    }
}
