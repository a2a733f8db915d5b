//! One WebRTC link to one peer (webrtc-rs): two negotiated data channels, trickle ICE, ICE
//! restart, and send-buffer back-pressure.
//!
//! Both channels are *negotiated* (ids 0 and 1 agreed in advance), so neither side waits for
//! an in-band OPEN/ACK exchange and both hold their channel objects from the start. Channel 0 is
//! reliable and ordered (state, operations, elections); channel 1 is unordered without
//! retransmits (heartbeats, presence).
//!
//! The signaling that carries offers, answers and candidates is the caller's: [`run_peer`]
//! takes what arrives for this peer and hands back what to send.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use bassline_sync::{Channel, PeerId};
use bytes::BytesMut;
use tokio::sync::mpsc;
use webrtc::{
    data_channel::{DataChannel, DataChannelEvent, RTCDataChannelInit, RTCDataChannelState},
    peer_connection::{
        PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCConfigurationBuilder,
        RTCIceCandidateInit, RTCIceCandidateType, RTCIceConnectionState, RTCIceServer,
        RTCPeerConnectionIceEvent, RTCSessionDescription, RTCStatsReportEntry, SettingEngine,
        SettingEngineBuilder, StatsSelector,
    },
};

use crate::link::{Events, Link, LinkEnds, LinkId, LinkInfo, Path, TransportEvent, deliver};

/// Bytes a data channel may hold unacknowledged before `send` waits (the high-water mark of
/// the send buffer); the reliable channel's writer then stops taking frames from its queue.
pub const SEND_BUFFER_LIMIT: usize = 1 << 20;

/// How a link is set up.
#[derive(Clone, Debug)]
pub struct RtcConfig {
    /// STUN and TURN servers (from the signaling server's `welcome`).
    pub ice_servers: Vec<bassline_signal::IceServer>,
    /// Local UDP addresses to bind: `0.0.0.0:0` means every non-loopback interface;
    /// `127.0.0.1:0` keeps a link on this machine (tests, benchmarks).
    pub bind: Vec<String>,
    /// Connect quickly: ICE checks every few milliseconds while connecting (see
    /// docs/ARCHITECTURE.md for the measurements). Off gives webrtc-rs's defaults.
    pub fast_connect: bool,
}

impl Default for RtcConfig {
    fn default() -> Self {
        RtcConfig {
            ice_servers: Vec::new(),
            bind: vec!["0.0.0.0:0".into()],
            fast_connect: true,
        }
    }
}

/// An offer, answer or candidate for the peer at the other end.
#[derive(Clone, Debug, PartialEq)]
pub enum Signal {
    Offer(String),
    Answer(String),
    Candidate {
        candidate: String,
        sdp_mid: Option<String>,
        sdp_m_line_index: Option<u16>,
    },
}

/// The ICE settings for `cfg`.
fn setting_engine(cfg: &RtcConfig) -> SettingEngine {
    let mut b = SettingEngineBuilder::new();
    if cfg.fast_connect {
        // webrtc-rs checks a candidate pair every 200 ms by default; every 2 ms finds the
        // working pair at once. 1,000 tries keep a pair alive for 2 s, so paths slower than
        // loopback still connect (the default 7 tries would give up after 14 ms).
        b = b.with_ice_connection_attempts(Some(Duration::from_millis(2)), Some(1000));
    }
    b = b.with_ice_timeouts(
        Some(Duration::from_secs(3)),
        Some(Duration::from_secs(8)),
        Some(Duration::from_secs(1)),
    );
    b.build()
}

/// What the connection's callbacks report to its task. Unbounded because the callbacks run on
/// webrtc-rs's driver loop, which must never wait for us; ICE gathering yields a handful of
/// candidates and state changes, so the queue stays tiny.
#[derive(Debug)]
enum PcEvent {
    Candidate(RTCIceCandidateInit),
    Ice(RTCIceConnectionState),
}

struct Handler(mpsc::UnboundedSender<PcEvent>);

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_candidate(&self, event: RTCPeerConnectionIceEvent) {
        if let Ok(init) = event.candidate.to_json() {
            let _ = self.0.send(PcEvent::Candidate(init));
        }
    }
    async fn on_ice_connection_state_change(&self, state: RTCIceConnectionState) {
        let _ = self.0.send(PcEvent::Ice(state));
    }
}

/// Why a link ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    /// The peer connection failed or a channel closed: dial again later.
    Failed(String),
    /// The driver let go of the link, or the signaling side went away.
    Closed,
    /// The peer dialled again with a new connection (a new certificate in its offer): answer
    /// this offer on a fresh connection.
    Redial(String),
}

/// The DTLS fingerprint line of an SDP: the same for every offer of one connection (ICE
/// restarts included), new for a new connection.
fn fingerprint(sdp: &str) -> Option<&str> {
    sdp.lines().find(|l| l.starts_with("a=fingerprint:"))
}

/// Runs one link to `peer` until it ends. `offerer` sides send the offer (and the ICE restart
/// offers); the other side answers. Offers, answers and candidates from the peer arrive on
/// `signals`; ours go out on `out`. Once both channels are open the link is reported `Up` on
/// `events`, and `Down` when it ends. `connected` turns true once the link is up, so the caller
/// can tell a pending attempt (which a refused offer or answer stops) from a live link (which
/// it leaves alone).
pub async fn run_peer(
    cfg: RtcConfig,
    peer: PeerId,
    offerer: bool,
    mut signals: mpsc::Receiver<Signal>,
    out: mpsc::Sender<(PeerId, Signal)>,
    events: Events,
    connected: Arc<AtomicBool>,
) -> Ended {
    let (htx, mut hrx) = mpsc::unbounded_channel();
    let ice_servers = cfg
        .ice_servers
        .iter()
        .map(|s| RTCIceServer {
            urls: s.urls.clone(),
            username: s.username.clone().unwrap_or_default(),
            credential: s.credential.clone().unwrap_or_default(),
        })
        .collect();
    let built = PeerConnectionBuilder::new()
        .with_configuration(
            RTCConfigurationBuilder::new()
                .with_ice_servers(ice_servers)
                .build(),
        )
        .with_setting_engine(setting_engine(&cfg))
        .with_handler(Arc::new(Handler(htx)))
        .with_udp_addrs(cfg.bind.clone())
        .with_data_channel_send_buffer_limit(SEND_BUFFER_LIMIT)
        .build()
        .await;
    let pc: Arc<dyn PeerConnection> = match built {
        Ok(pc) => Arc::new(pc),
        Err(e) => return Ended::Failed(format!("cannot create a peer connection: {e}")),
    };
    let mut up = None;
    let ended = drive(
        &pc,
        peer,
        offerer,
        cfg.fast_connect,
        &mut signals,
        &out,
        &events,
        &mut hrx,
        &mut up,
        &connected,
    )
    .await;
    let _ = pc.close().await;
    if let Some(link) = up {
        let _ = events.send(TransportEvent::Down { peer, link }).await;
    }
    ended
}

/// Bytes of unacknowledged data below which a channel counts as drained again (the low-water
/// mark of its send buffer).
const LOW_WATER: u32 = 1 << 18;

/// Pokes the connection's driver every millisecond until the channel is open (at most
/// [`CONNECT_TIMEOUT`]). webrtc-rs's driver loop sends what the handshake queued (the DTLS
/// hello, the SCTP INIT) only when something wakes it, and otherwise sleeps until its next
/// timer: measured on loopback, 207 ms to open without this and 7 ms with it (see
/// docs/ARCHITECTURE.md). Any call that reaches the driver wakes it; setting the send buffer's
/// low-water mark is one worth making anyway.
fn spawn_waker(dc: Arc<dyn DataChannel>) {
    tokio::spawn(async move {
        let deadline = tokio::time::Instant::now() + CONNECT_TIMEOUT;
        let mut tick = tokio::time::interval(Duration::from_millis(1));
        while tokio::time::Instant::now() < deadline {
            tick.tick().await;
            if dc
                .set_buffered_amount_low_threshold(LOW_WATER)
                .await
                .is_err()
                || matches!(dc.ready_state().await, Ok(RTCDataChannelState::Open))
            {
                return;
            }
        }
    });
}

async fn open_channels(
    pc: &Arc<dyn PeerConnection>,
) -> webrtc::error::Result<[Arc<dyn DataChannel>; 2]> {
    let reliable = pc
        .create_data_channel(
            "bassline",
            Some(RTCDataChannelInit {
                ordered: true,
                negotiated: Some(0),
                ..Default::default()
            }),
        )
        .await?;
    let unreliable = pc
        .create_data_channel(
            "bassline-lossy",
            Some(RTCDataChannelInit {
                ordered: false,
                max_retransmits: Some(0),
                negotiated: Some(1),
                ..Default::default()
            }),
        )
        .await?;
    Ok([reliable, unreliable])
}

async fn send_offer(
    pc: &Arc<dyn PeerConnection>,
    peer: PeerId,
    out: &mpsc::Sender<(PeerId, Signal)>,
) -> Result<(), String> {
    let offer = pc.create_offer(None).await.map_err(|e| e.to_string())?;
    let sdp = offer.sdp.clone();
    pc.set_local_description(offer)
        .await
        .map_err(|e| e.to_string())?;
    out.send((peer, Signal::Offer(sdp)))
        .await
        .map_err(|_| "signaling closed".to_string())
}

/// How often a link's path and round-trip time are read from the ICE statistics.
const MEASURE_EVERY: Duration = Duration::from_secs(2);

/// The path (direct or through a TURN relay) and round-trip time of the link's nominated
/// candidate pair, from the connection's statistics.
async fn measure(pc: &Arc<dyn PeerConnection>) -> Option<LinkInfo> {
    let report = pc
        .get_stats(std::time::Instant::now(), StatsSelector::None)
        .await;
    let pair = report.iter().find_map(|e| match e {
        RTCStatsReportEntry::IceCandidatePair(p) if p.nominated => Some(p),
        _ => None,
    })?;
    let relay = |id: &str| {
        matches!(
            report.get(id),
            Some(RTCStatsReportEntry::LocalCandidate(c) | RTCStatsReportEntry::RemoteCandidate(c))
                if c.candidate_type == RTCIceCandidateType::Relay
        )
    };
    let path = if relay(&pair.local_candidate_id) || relay(&pair.remote_candidate_id) {
        Path::Relayed
    } else {
        Path::Direct
    };
    let rtt = (pair.current_round_trip_time > 0.0)
        .then(|| Duration::from_secs_f64(pair.current_round_trip_time));
    Some(LinkInfo { path, rtt })
}

/// How long a link may take to open before it is dialled again.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// Restarts that may be tried on one connection before it is torn down and dialled anew.
const MAX_RESTARTS: u32 = 3;

#[allow(clippy::too_many_arguments)]
async fn drive(
    pc: &Arc<dyn PeerConnection>,
    peer: PeerId,
    offerer: bool,
    fast: bool,
    signals: &mut mpsc::Receiver<Signal>,
    out: &mpsc::Sender<(PeerId, Signal)>,
    events: &Events,
    hrx: &mut mpsc::UnboundedReceiver<PcEvent>,
    up: &mut Option<LinkId>,
    connected: &AtomicBool,
) -> Ended {
    let channels = match open_channels(pc).await {
        Ok(c) => c,
        Err(e) => return Ended::Failed(format!("cannot create data channels: {e}")),
    };
    if offerer && let Err(e) = send_offer(pc, peer, out).await {
        return Ended::Failed(e);
    }
    // Candidates that arrive before the remote description are held until it is set.
    let mut early: Vec<RTCIceCandidateInit> = Vec::new();
    let mut have_remote = false;
    let mut remote_fingerprint: Option<String> = None;
    let (opened_tx, mut opened_rx) = mpsc::channel::<(usize, bool)>(8);
    for (i, dc) in channels.iter().enumerate() {
        let dc = dc.clone();
        let tx = opened_tx.clone();
        // Watch each channel only until it opens; afterwards its reader owns `poll`.
        tokio::spawn(async move {
            while let Some(ev) = dc.poll().await {
                match ev {
                    DataChannelEvent::OnOpen => {
                        let _ = tx.send((i, true)).await;
                        return;
                    }
                    DataChannelEvent::OnClose => break,
                    _ => {}
                }
            }
            let _ = tx.send((i, false)).await;
        });
    }
    drop(opened_tx);
    if fast {
        spawn_waker(channels[0].clone());
    }
    let mut open = [false; 2];
    let mut link_ends: Option<(LinkId, LinkEnds)> = None;
    let mut restarts = 0u32;
    let mut lost_since: Option<tokio::time::Instant> = None;
    let (closed_tx, mut closed_rx) = mpsc::channel::<()>(2);
    // ICE can stay `checking` without ever failing (a peer that vanished mid-handshake); a
    // link not open by then is given up and dialled again.
    let connect_deadline = tokio::time::Instant::now() + CONNECT_TIMEOUT;
    let mut measure_every = tokio::time::interval(MEASURE_EVERY);
    loop {
        let close = async {
            match &link_ends {
                Some((_, ends)) => ends.close.notified().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = close => return Ended::Closed,
            () = tokio::time::sleep_until(connect_deadline), if link_ends.is_none() => {
                return Ended::Failed("not connected in time".into());
            }
            _ = measure_every.tick(), if link_ends.is_some() => {
                if let (Some((_, ends)), Some(info)) = (&link_ends, measure(pc).await) {
                    ends.info.send_if_modified(|old| std::mem::replace(old, info) != info);
                }
            }
            _ = closed_rx.recv() => return Ended::Failed("a data channel closed".into()),
            sig = signals.recv() => {
                let Some(sig) = sig else { return Ended::Closed };
                match sig {
                    Signal::Offer(sdp) if !offerer => {
                        let fp = fingerprint(&sdp).map(str::to_owned);
                        if remote_fingerprint.is_some() && fp != remote_fingerprint {
                            return Ended::Redial(sdp);
                        }
                        remote_fingerprint = fp;
                        let Ok(desc) = RTCSessionDescription::offer(sdp) else { continue };
                        if pc.set_remote_description(desc).await.is_err() { continue }
                        have_remote = true;
                        for c in early.drain(..) { let _ = pc.add_ice_candidate(c).await; }
                        match pc.create_answer(None).await {
                            Ok(answer) => {
                                let sdp = answer.sdp.clone();
                                if pc.set_local_description(answer).await.is_ok() {
                                    let _ = out.send((peer, Signal::Answer(sdp))).await;
                                }
                            }
                            Err(e) => return Ended::Failed(format!("cannot answer: {e}")),
                        }
                    }
                    Signal::Answer(sdp) if offerer => {
                        let Ok(desc) = RTCSessionDescription::answer(sdp) else { continue };
                        if pc.set_remote_description(desc).await.is_err() { continue }
                        have_remote = true;
                        for c in early.drain(..) { let _ = pc.add_ice_candidate(c).await; }
                    }
                    Signal::Candidate { candidate, sdp_mid, sdp_m_line_index } => {
                        let init = RTCIceCandidateInit {
                            candidate,
                            sdp_mid,
                            sdp_mline_index: sdp_m_line_index,
                            ..Default::default()
                        };
                        if have_remote { let _ = pc.add_ice_candidate(init).await; } else { early.push(init); }
                    }
                    // An offer to the offering side or an answer to the answering side breaks
                    // the rule of who offers; ignore it rather than let two offers race.
                    other => tracing::debug!(peer, ?other, "unexpected signal ignored"),
                }
            }
            ev = hrx.recv() => {
                let Some(ev) = ev else { return Ended::Closed };
                match ev {
                    PcEvent::Candidate(c) => {
                        let _ = out.send((peer, Signal::Candidate {
                            candidate: c.candidate,
                            sdp_mid: c.sdp_mid,
                            sdp_m_line_index: c.sdp_mline_index,
                        })).await;
                    }
                    PcEvent::Ice(state) => match state {
                        RTCIceConnectionState::Connected | RTCIceConnectionState::Completed => {
                            lost_since = None;
                        }
                        RTCIceConnectionState::Disconnected | RTCIceConnectionState::Failed => {
                            lost_since.get_or_insert_with(tokio::time::Instant::now);
                            if restarts >= MAX_RESTARTS || (state == RTCIceConnectionState::Failed && !offerer) {
                                return Ended::Failed(format!("ICE {state}"));
                            }
                            if offerer {
                                restarts += 1;
                                tracing::info!(peer, %state, restarts, "restarting ICE");
                                if pc.restart_ice().await.is_err() || send_offer(pc, peer, out).await.is_err() {
                                    return Ended::Failed("ICE restart failed".into());
                                }
                            }
                        }
                        RTCIceConnectionState::Closed => return Ended::Failed("ICE closed".into()),
                        _ => {}
                    },
                }
            }
            opened = opened_rx.recv(), if link_ends.is_none() => {
                match opened {
                    Some((i, true)) => open[i] = true,
                    Some((_, false)) | None => return Ended::Failed("a data channel closed before opening".into()),
                }
                if open == [true, true] {
                    let (link, ends) = Link::new(peer, LinkId::fresh(), LinkInfo { path: Path::Direct, rtt: None });
                    let id = link.id;
                    if events.send(TransportEvent::Up(link)).await.is_err() {
                        return Ended::Closed;
                    }
                    *up = Some(id);
                    connected.store(true, Ordering::Release);
                    let ends = serve_link(channels.clone(), peer, id, ends, events.clone(), closed_tx.clone());
                    link_ends = Some((id, ends));
                }
            }
        }
    }
}

/// Starts the reader and writer tasks of an open link; returns what the link task keeps (the
/// close signal and the measurements).
fn serve_link(
    channels: [Arc<dyn DataChannel>; 2],
    peer: PeerId,
    id: LinkId,
    ends: LinkEnds,
    events: Events,
    closed: mpsc::Sender<()>,
) -> LinkEnds {
    let LinkEnds {
        mut reliable,
        mut unreliable,
        info,
        close,
    } = ends;
    for (i, dc) in channels.iter().enumerate() {
        let dc = dc.clone();
        let events = events.clone();
        let closed = closed.clone();
        let channel = if i == 0 {
            Channel::Reliable
        } else {
            Channel::Unreliable
        };
        tokio::spawn(async move {
            while let Some(ev) = dc.poll().await {
                match ev {
                    DataChannelEvent::OnMessage(m)
                        if !deliver(&events, peer, id, channel, m.data.to_vec()).await =>
                    {
                        return;
                    }
                    DataChannelEvent::OnClose => break,
                    _ => {}
                }
            }
            let _ = closed.send(()).await;
        });
    }
    let [rdc, udc] = channels;
    let closed_r = closed.clone();
    tokio::spawn(async move {
        // `send` waits while the channel holds SEND_BUFFER_LIMIT unacknowledged bytes, so
        // frames back up into the bounded queue in front of it, and past that the driver
        // gives the link up.
        while let Some(frame) = reliable.recv().await {
            if rdc.send(BytesMut::from(&frame[..])).await.is_err() {
                let _ = closed_r.send(()).await;
                return;
            }
        }
    });
    tokio::spawn(async move {
        while let Some(frame) = unreliable.recv().await {
            // A full send buffer drops the frame: it is a heartbeat or presence update.
            if let Err(e) = udc.try_send(BytesMut::from(&frame[..])).await
                && !matches!(e, webrtc::error::Error::ErrSendBufferFull)
            {
                let _ = closed.send(()).await;
                return;
            }
        }
    });
    // The queues now belong to the writer tasks; give back fresh, closed receivers so the
    // caller's `LinkEnds` keeps only the close signal and the measurements.
    let (_, r) = mpsc::channel(1);
    let (_, u) = mpsc::channel(1);
    LinkEnds {
        reliable: r,
        unreliable: u,
        info,
        close,
    }
}
