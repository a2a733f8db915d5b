//! Presence in remote mode: the clients of a permanent host have a link to it alone, so the
//! host passes each one's presence on to the others (naming whose it is) and tells them when
//! one's link closes.

use std::time::Duration;

use bassline_core::{Id, Network};
use bassline_sync::{Candidacy, Config, Event, PeerId, Presence, Session};

const HOST: PeerId = 1;

fn id(s: &str) -> Id {
    Id::new(s).expect("valid id")
}

/// A permanent host and its clients, each client linked to the host only.
struct Star {
    host: Session,
    clients: Vec<Session>,
    now: Duration,
}

impl Star {
    fn new(clients: &[PeerId]) -> Star {
        let host_cfg = Config {
            candidacy: Candidacy::Permanent,
            ..Config::default()
        };
        let client_cfg = Config {
            candidacy: Candidacy::Never,
            ..Config::default()
        };
        let mut star = Star {
            host: Session::host(HOST, host_cfg, Network::new()),
            clients: clients
                .iter()
                .map(|&c| Session::guest(c, Some(HOST), client_cfg.clone()))
                .collect(),
            now: Duration::from_millis(1),
        };
        for c in &mut star.clients {
            star.host.handle_connected(star.now, c.id());
            c.handle_connected(star.now, HOST);
        }
        star.settle();
        star
    }

    fn client(&mut self, peer: PeerId) -> &mut Session {
        self.clients
            .iter_mut()
            .find(|c| c.id() == peer)
            .expect("a client of the star")
    }

    /// Delivers every frame until nobody has anything to send.
    fn settle(&mut self) {
        for _ in 0..50 {
            self.now += Duration::from_millis(10);
            let mut moved = false;
            while let Some(t) = self.host.poll_transmit() {
                moved = true;
                if let Some(c) = self.clients.iter_mut().find(|c| c.id() == t.to) {
                    c.handle_receive(self.now, HOST, t.channel, &t.frame);
                }
            }
            for c in &mut self.clients {
                while let Some(t) = c.poll_transmit() {
                    moved = true;
                    assert_eq!(t.to, HOST, "a client sends to its host only");
                    self.host
                        .handle_receive(self.now, c.id(), t.channel, &t.frame);
                }
            }
            if !moved {
                return;
            }
        }
    }

    /// The presences a client was told of since last asked: (whose, what).
    fn seen(&mut self, peer: PeerId) -> Vec<(PeerId, Presence)> {
        let c = self.client(peer);
        let mut out = Vec::new();
        while let Some(e) = c.poll_event() {
            if let Event::Presence { peer, presence } = e {
                out.push((peer, presence));
            }
        }
        out
    }
}

fn pointer_in_root() -> Presence {
    Presence {
        name: Some("ada".into()),
        group: Some(id("root")),
        cursor: Some((120.0, 80.0)),
        selection: vec![id("c1")],
        peer: None,
    }
}

#[test]
fn a_permanent_host_relays_a_clients_presence_to_the_other_clients_and_its_departure() {
    let mut star = Star::new(&[2, 3, 4]);
    for c in [2, 3, 4] {
        star.seen(c);
    }
    let now = star.now;
    star.client(2).handle_presence(now, pointer_in_root());
    star.settle();
    for other in [3, 4] {
        assert_eq!(
            star.seen(other),
            [(2, pointer_in_root())],
            "client {other} sees client 2's presence as 2's, not the host's"
        );
    }
    assert!(
        star.seen(2).is_empty(),
        "nobody echoes a presence to its sender"
    );

    // Client 2's link closes: the others are told it is gone (a presence with no group).
    let now = star.now;
    star.host.handle_disconnected(now, 2);
    star.settle();
    for other in [3, 4] {
        let seen = star.seen(other);
        assert_eq!(seen.len(), 1, "{seen:?}");
        assert_eq!(seen[0].0, 2);
        assert_eq!(seen[0].1.group, None, "a departure has no group");
    }
}

#[test]
fn a_guest_believes_a_named_presence_only_from_its_host() {
    // Two clients of different hosts: 3 follows host 1, and 2 (a mere guest) claims to pass
    // on peer 4's presence.
    let mut follower = Session::guest(3, Some(HOST), Config::default());
    let mut liar = Session::guest(2, Some(HOST), Config::default());
    let now = Duration::from_millis(1);
    follower.handle_connected(now, 2);
    liar.handle_connected(now, 3);
    liar.handle_presence(
        now,
        Presence {
            peer: Some(4),
            ..pointer_in_root()
        },
    );
    while let Some(t) = liar.poll_transmit() {
        if t.to == 3 {
            follower.handle_receive(now, 2, t.channel, &t.frame);
        }
    }
    let told: Vec<PeerId> = std::iter::from_fn(|| follower.poll_event())
        .filter_map(|e| match e {
            Event::Presence { peer, .. } => Some(peer),
            _ => None,
        })
        .collect();
    assert!(told.is_empty(), "a forged relay was believed: {told:?}");
}

/// What the host reported about `peer` since last asked.
fn reports(host: &mut Session, peer: PeerId) -> Vec<String> {
    std::iter::from_fn(|| host.poll_event())
        .filter_map(|e| match e {
            Event::PeerMisbehaved { peer: p, reason } if p == peer => Some(reason),
            _ => None,
        })
        .collect()
}

#[test]
fn a_flood_of_presence_is_relayed_only_up_to_the_limit_and_reported_once() {
    let mut star = Star::new(&[2, 3]);
    star.seen(3);
    reports(&mut star.host, 2);
    let limit = Config::default().limits.presence;
    // 500 updates at one instant: far beyond the burst an honest editor could need.
    let now = star.now;
    for i in 0..500 {
        let p = Presence {
            cursor: Some((i as f32, 0.0)),
            ..pointer_in_root()
        };
        star.client(2).handle_presence(now, p);
    }
    star.settle();
    let relayed = star.seen(3).len();
    // Settling takes a few simulated 10 ms steps, in which the bucket refills a little.
    let most = limit.burst as usize + limit.per_second as usize;
    assert!(
        relayed >= limit.burst as usize && relayed <= most,
        "client 3 got {relayed} of 500 updates; the limit lets {} through at once",
        limit.burst
    );
    let told = reports(&mut star.host, 2);
    assert_eq!(
        told.len(),
        1,
        "one report per flood, got {}: {:?}",
        told.len(),
        told.first()
    );
    assert!(told[0].contains("faster than"), "{told:?}");

    // A second later the sender is within its rate again: its update goes through.
    star.now += Duration::from_secs(1);
    let now = star.now;
    star.client(2).handle_presence(now, pointer_in_root());
    star.settle();
    assert_eq!(star.seen(3), [(2, pointer_in_root())]);
    assert!(reports(&mut star.host, 2).is_empty());
}

#[test]
fn a_presence_selecting_too_much_is_dropped_and_reported() {
    let mut star = Star::new(&[2, 3]);
    star.seen(3);
    reports(&mut star.host, 2);
    let max = Config::default().limits.max_presence_selection;
    let selecting = |n: usize| Presence {
        selection: (0..n).map(|i| id(&format!("c{i}"))).collect(),
        ..pointer_in_root()
    };
    let now = star.now;
    star.client(2).handle_presence(now, selecting(max + 1));
    star.settle();
    assert!(star.seen(3).is_empty(), "an oversized presence was relayed");
    let told = reports(&mut star.host, 2);
    assert_eq!(told.len(), 1, "{told:?}");
    assert!(told[0].contains(&format!("{}", max + 1)), "{told:?}");

    let now = star.now;
    star.client(2).handle_presence(now, selecting(max));
    star.settle();
    assert_eq!(
        star.seen(3).len(),
        1,
        "a presence at the limit goes through"
    );
}

#[test]
fn many_clients_moving_at_once_are_all_relayed_and_nobody_is_reported() {
    // Five clients each at the editor's fastest (20 updates a second) for three seconds: every
    // client gets the other four's 240 updates through its one link to the server, 80 a
    // second, above what one peer may send; the limit is per person, so none is dropped.
    let clients = [2, 3, 4, 5, 6];
    let mut star = Star::new(&clients);
    for c in clients {
        star.seen(c);
    }
    reports(&mut star.host, 0);
    let mut got: std::collections::HashMap<PeerId, usize> = Default::default();
    for tick in 0..60 {
        let now = star.now;
        for c in clients {
            let p = Presence {
                cursor: Some((tick as f32, c as f32)),
                ..pointer_in_root()
            };
            star.client(c).handle_presence(now, p);
        }
        star.settle();
        for c in clients {
            let client = star.client(c);
            while let Some(e) = client.poll_event() {
                match e {
                    Event::Presence { .. } => *got.entry(c).or_default() += 1,
                    Event::PeerMisbehaved { peer, reason } => {
                        panic!("client {c} reported {peer}: {reason}")
                    }
                    _ => {}
                }
            }
        }
        // settle() moved the clock by at least 10 ms; fill the rest of the 50 ms gap.
        star.now = now + Duration::from_millis(50);
    }
    for c in clients {
        assert_eq!(got.get(&c), Some(&(60 * 4)), "client {c}");
    }
    let host_reports = reports(&mut star.host, 2);
    assert!(host_reports.is_empty(), "{host_reports:?}");
}
