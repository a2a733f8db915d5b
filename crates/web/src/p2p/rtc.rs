//! The browser's WebRTC and WebSocket objects behind plain Rust: every JavaScript callback and
//! promise of peer-to-peer mode is wrapped here, so the driver sees `async fn`s, `Result<_,
//! String>` and one event callback per object.
//!
//! How the closures are kept: each object ([`Peer`], [`Socket`]) owns the `Closure`s it
//! registered, and [`Peer::close`] / [`Socket::close`] first unhook them from the JavaScript
//! object, then drop them. Nothing is `forget`-ed, so a closed link leaks nothing, and an
//! event that fires after close finds no handler (rather than a freed closure). Promises are
//! awaited through `JsFuture`; the driver re-checks, after every await, that the object it
//! awaited on is still the current one.
//!
//! The link mirrors the native one (`bassline_net::rtc`): two *negotiated* data channels, id 0
//! "bassline" reliable and ordered, id 1 "bassline-lossy" unordered with no retransmits; one
//! sync frame per message; trickle ICE; ICE restart by a new offer with `iceRestart`.

use std::rc::Rc;

use bassline_signal::IceServer;
use js_sys::{Array, Function, Object, Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue, closure::Closure};
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    BinaryType, MessageEvent, RtcConfiguration, RtcDataChannel, RtcDataChannelInit,
    RtcDataChannelState, RtcDataChannelType, RtcIceCandidateInit, RtcIceConnectionState,
    RtcOfferOptions, RtcPeerConnection, RtcPeerConnectionIceEvent, RtcSdpType,
    RtcSessionDescriptionInit, WebSocket,
};

use bassline_sync::PeerId;

use super::{room::Signal, trace};

/// Bytes a channel may hold unsent before the reliable queue stops feeding it (the native
/// link's `SEND_BUFFER_LIMIT`).
pub const SEND_BUFFER_LIMIT: u32 = 1 << 20;
/// Bytes below which a full channel counts as drained again.
pub const LOW_WATER: u32 = 1 << 18;

fn message(e: &JsValue) -> String {
    e.as_string()
        .or_else(|| {
            e.dyn_ref::<js_sys::Error>()
                .map(|e| String::from(e.message()))
        })
        .unwrap_or_else(|| format!("{e:?}"))
}

/// What a peer connection reports.
#[derive(Debug)]
pub enum PcEvent {
    /// A local ICE candidate to send to the peer.
    Candidate(Signal),
    /// The ICE connection state changed.
    Ice(Ice),
    /// Channel 0 or 1 opened.
    Open(usize),
    /// A channel closed (or failed).
    Closed,
    /// A message on channel 0 or 1.
    Message(usize, Vec<u8>),
    /// The reliable channel's send buffer drained below [`LOW_WATER`].
    Drained,
    /// A set-up step the driver only notes for [`trace`] (hooked up only while tracing).
    Reached(&'static str),
}

/// The ICE connection states the driver acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ice {
    Connected,
    Disconnected,
    Failed,
    Closed,
    Other,
}

type Handler = Closure<dyn FnMut(JsValue)>;

/// A string property of a JavaScript object (the state fields only the trace reads, without
/// more web-sys features).
fn text_field(o: &JsValue, name: &str) -> Option<String> {
    Reflect::get(o, &name.into()).ok()?.as_string()
}

/// One RTCPeerConnection with its two data channels. Cheap to clone (the JavaScript objects
/// are references); the handlers live in the one the driver keeps.
pub struct Peer {
    pc: RtcPeerConnection,
    channels: [RtcDataChannel; 2],
    handlers: Vec<Handler>,
    /// The member this connection links to (for [`trace`] marks).
    member: PeerId,
    /// The report callback, kept for handlers hooked up later ([`Peer::watch_sctp`]).
    on: Rc<dyn Fn(PcEvent)>,
    sctp_watched: bool,
}

/// What the async operations need: the connection alone (and the member it links to, for
/// [`trace`] marks), cloned out of the driver's state so no borrow is held across an await.
#[derive(Clone)]
pub struct Conn(RtcPeerConnection, PeerId);

fn ice_servers(servers: &[IceServer]) -> Array {
    let list = Array::new();
    for s in servers {
        let o = Object::new();
        let urls: Array = s.urls.iter().map(|u| JsValue::from(u.as_str())).collect();
        let _ = Reflect::set(&o, &"urls".into(), &urls);
        if let Some(u) = &s.username {
            let _ = Reflect::set(&o, &"username".into(), &u.into());
        }
        if let Some(c) = &s.credential {
            let _ = Reflect::set(&o, &"credential".into(), &c.into());
        }
        list.push(&o);
    }
    list
}

impl Peer {
    /// A new connection to member `member` with both channels; `on` hears everything it
    /// reports.
    pub fn new(
        servers: &[IceServer],
        member: PeerId,
        on: Rc<dyn Fn(PcEvent)>,
    ) -> Result<Peer, String> {
        let cfg = RtcConfiguration::new();
        cfg.set_ice_servers(&ice_servers(servers));
        let pc = RtcPeerConnection::new_with_configuration(&cfg).map_err(|e| message(&e))?;
        let mut handlers: Vec<Handler> = Vec::new();
        let channel = |id: u16, label: &str, reliable: bool| {
            let init = RtcDataChannelInit::new();
            init.set_negotiated(true);
            init.set_id(id);
            init.set_ordered(reliable);
            if !reliable {
                init.set_max_retransmits(0);
            }
            pc.create_data_channel_with_data_channel_dict(label, &init)
        };
        let channels = [
            channel(0, "bassline", true),
            channel(1, "bassline-lossy", false),
        ];
        for (i, dc) in channels.iter().enumerate() {
            dc.set_binary_type(RtcDataChannelType::Arraybuffer);
            let f = on.clone();
            let open: Handler = Closure::new(move |_| f(PcEvent::Open(i)));
            dc.set_onopen(Some(open.as_ref().unchecked_ref()));
            let f = on.clone();
            let close: Handler = Closure::new(move |_| f(PcEvent::Closed));
            dc.set_onclose(Some(close.as_ref().unchecked_ref()));
            dc.set_onerror(Some(close.as_ref().unchecked_ref()));
            let f = on.clone();
            let msg: Handler = Closure::new(move |ev: JsValue| {
                let data = ev.unchecked_into::<MessageEvent>().data();
                if let Ok(buf) = data.dyn_into::<js_sys::ArrayBuffer>() {
                    f(PcEvent::Message(i, Uint8Array::new(&buf).to_vec()));
                }
            });
            dc.set_onmessage(Some(msg.as_ref().unchecked_ref()));
            handlers.extend([open, close, msg]);
        }
        channels[0].set_buffered_amount_low_threshold(LOW_WATER);
        let f = on.clone();
        let drained: Handler = Closure::new(move |_| f(PcEvent::Drained));
        channels[0].set_onbufferedamountlow(Some(drained.as_ref().unchecked_ref()));
        handlers.push(drained);
        let f = on.clone();
        let candidate: Handler = Closure::new(move |ev: JsValue| {
            let ev = ev.unchecked_into::<RtcPeerConnectionIceEvent>();
            // `null` marks the end of gathering: nothing to send (as natively).
            if let Some(c) = ev.candidate() {
                f(PcEvent::Candidate(Signal::Candidate {
                    candidate: c.candidate(),
                    sdp_mid: c.sdp_mid(),
                    sdp_m_line_index: c.sdp_m_line_index(),
                }));
            }
        });
        pc.set_onicecandidate(Some(candidate.as_ref().unchecked_ref()));
        handlers.push(candidate);
        let f = on.clone();
        let state_of = pc.clone();
        let tracing = trace::enabled();
        let ice: Handler = Closure::new(move |_| {
            let state = state_of.ice_connection_state();
            if tracing && state == RtcIceConnectionState::Checking {
                f(PcEvent::Reached("ice-checking"));
            }
            f(PcEvent::Ice(match state {
                RtcIceConnectionState::Connected | RtcIceConnectionState::Completed => {
                    Ice::Connected
                }
                RtcIceConnectionState::Disconnected => Ice::Disconnected,
                RtcIceConnectionState::Failed => Ice::Failed,
                RtcIceConnectionState::Closed => Ice::Closed,
                _ => Ice::Other,
            }))
        });
        pc.set_oniceconnectionstatechange(Some(ice.as_ref().unchecked_ref()));
        handlers.push(ice);
        if tracing {
            // Steps only the trace notes: gathering done, and ICE + DTLS done.
            let f = on.clone();
            let state_of = pc.clone();
            let gathering: Handler = Closure::new(move |_| {
                if text_field(&state_of, "iceGatheringState").as_deref() == Some("complete") {
                    f(PcEvent::Reached("gathering-complete"));
                }
            });
            pc.set_onicegatheringstatechange(Some(gathering.as_ref().unchecked_ref()));
            let f = on.clone();
            let state_of = pc.clone();
            let connection: Handler = Closure::new(move |_| {
                if text_field(&state_of, "connectionState").as_deref() == Some("connected") {
                    f(PcEvent::Reached("pc-connected"));
                }
            });
            pc.set_onconnectionstatechange(Some(connection.as_ref().unchecked_ref()));
            handlers.extend([gathering, connection]);
        }
        Ok(Peer {
            pc,
            channels,
            handlers,
            member,
            on,
            sctp_watched: false,
        })
    }

    pub fn conn(&self) -> Conn {
        Conn(self.pc.clone(), self.member)
    }

    /// While tracing: notes when the SCTP association is up. `pc.sctp` exists only once a
    /// description is set, so the driver calls this then.
    pub fn watch_sctp(&mut self) {
        if self.sctp_watched || !trace::enabled() {
            return;
        }
        let Some(sctp) = Reflect::get(&self.pc, &"sctp".into())
            .ok()
            .filter(|s| s.is_object())
        else {
            return;
        };
        self.sctp_watched = true;
        let f = self.on.clone();
        let state_of = sctp.clone();
        let changed: Handler = Closure::new(move |_| {
            if text_field(&state_of, "state").as_deref() == Some("connected") {
                f(PcEvent::Reached("sctp-connected"));
            }
        });
        let _ = Reflect::set(&sctp, &"onstatechange".into(), changed.as_ref());
        self.handlers.push(changed);
    }

    /// Both channels are open.
    pub fn is_open(&self) -> bool {
        self.channels
            .iter()
            .all(|c| c.ready_state() == RtcDataChannelState::Open)
    }

    /// Bytes the channel holds unsent.
    pub fn buffered(&self, channel: usize) -> u32 {
        self.channels[channel].buffered_amount()
    }

    /// Sends one frame on channel 0 or 1.
    pub fn send(&self, channel: usize, frame: &[u8]) -> Result<(), String> {
        self.channels[channel]
            .send_with_u8_array(frame)
            .map_err(|e| message(&e))
    }

    /// Unhooks every handler, then closes the channels and the connection.
    pub fn close(&mut self) {
        for dc in &self.channels {
            dc.set_onopen(None);
            dc.set_onclose(None);
            dc.set_onerror(None);
            dc.set_onmessage(None);
            dc.set_onbufferedamountlow(None);
            dc.close();
        }
        self.pc.set_onicecandidate(None);
        self.pc.set_oniceconnectionstatechange(None);
        self.pc.set_onicegatheringstatechange(None);
        self.pc.set_onconnectionstatechange(None);
        if self.sctp_watched
            && let Ok(sctp) = Reflect::get(&self.pc, &"sctp".into())
            && sctp.is_object()
        {
            let _ = Reflect::set(&sctp, &"onstatechange".into(), &JsValue::NULL);
        }
        self.pc.close();
        self.handlers.clear();
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        if !self.handlers.is_empty() {
            self.close();
        }
    }
}

fn description(kind: RtcSdpType, sdp: &str) -> RtcSessionDescriptionInit {
    let d = RtcSessionDescriptionInit::new(kind);
    d.set_sdp(sdp);
    d
}

fn sdp_of(v: &JsValue) -> Result<String, String> {
    Reflect::get(v, &"sdp".into())
        .ok()
        .and_then(|s| s.as_string())
        .ok_or_else(|| "the browser made a description without SDP".to_owned())
}

async fn wait(p: js_sys::Promise) -> Result<JsValue, String> {
    JsFuture::from(p).await.map_err(|e| message(&e))
}

impl Conn {
    /// Makes an offer (with fresh ICE credentials when `restart`), sets it as the local
    /// description and returns its SDP.
    ///
    /// The browser starts on the offer when this is called, not when the future is first
    /// polled: a spawned future first runs after the current task (the UI's work on the same
    /// event), and the browser can make the offer meanwhile.
    pub fn offer(&self, restart: bool) -> impl Future<Output = Result<String, String>> + 'static {
        let opts = RtcOfferOptions::new();
        if restart {
            opts.set_ice_restart(true);
        }
        let made = self.0.create_offer_with_rtc_offer_options(&opts);
        let conn = self.clone();
        async move { conn.set_offer(made).await }
    }

    async fn set_offer(&self, made: js_sys::Promise) -> Result<String, String> {
        let offer = wait(made).await?;
        trace::mark("offer-created", Some(self.1));
        let sdp = sdp_of(&offer)?;
        wait(
            self.0
                .set_local_description(&description(RtcSdpType::Offer, &sdp)),
        )
        .await?;
        trace::mark("offer-local-set", Some(self.1));
        Ok(sdp)
    }

    /// Takes the peer's offer and returns our answer's SDP (set as the local description).
    /// Like [`Conn::offer`], the browser starts on the offer at the call.
    pub fn answer(&self, offer: &str) -> impl Future<Output = Result<String, String>> + 'static {
        let set = self
            .0
            .set_remote_description(&description(RtcSdpType::Offer, offer));
        let conn = self.clone();
        async move { conn.answer_set(set).await }
    }

    async fn answer_set(&self, set: js_sys::Promise) -> Result<String, String> {
        wait(set).await?;
        let answer = wait(self.0.create_answer()).await?;
        trace::mark("answer-created", Some(self.1));
        let sdp = sdp_of(&answer)?;
        wait(
            self.0
                .set_local_description(&description(RtcSdpType::Answer, &sdp)),
        )
        .await?;
        trace::mark("answer-local-set", Some(self.1));
        Ok(sdp)
    }

    /// Takes the peer's answer to our offer (the browser starts on it at the call).
    pub fn accept(&self, answer: &str) -> impl Future<Output = Result<(), String>> + 'static {
        let set = self
            .0
            .set_remote_description(&description(RtcSdpType::Answer, answer));
        let conn = self.clone();
        async move { conn.accepted(set).await }
    }

    async fn accepted(&self, set: js_sys::Promise) -> Result<(), String> {
        wait(set).await?;
        trace::mark("answer-set", Some(self.1));
        Ok(())
    }

    /// Adds one of the peer's ICE candidates.
    pub async fn candidate(
        &self,
        candidate: &str,
        sdp_mid: Option<&str>,
        sdp_m_line_index: Option<u16>,
    ) -> Result<(), String> {
        let init = RtcIceCandidateInit::new(candidate);
        init.set_sdp_mid(sdp_mid);
        init.set_sdp_m_line_index(sdp_m_line_index);
        wait(
            self.0
                .add_ice_candidate_with_opt_rtc_ice_candidate_init(Some(&init)),
        )
        .await
        .map(|_| ())
    }

    /// The selected candidate pair: whether it goes through a TURN relay, and its current
    /// round-trip time in seconds (when measured yet).
    pub async fn path(&self) -> Option<(bool, Option<f64>)> {
        let report = wait(self.0.get_stats()).await.ok()?;
        let values: Function = Reflect::get(&report, &"values".into())
            .ok()?
            .dyn_into()
            .ok()?;
        let iter = values.call0(&report).ok()?;
        let stats: Vec<JsValue> = js_sys::try_iter(&iter).ok()??.flatten().collect();
        let field = |o: &JsValue, k: &str| Reflect::get(o, &k.into()).ok();
        let text = |o: &JsValue, k: &str| field(o, k).and_then(|v| v.as_string());
        let by_id = |id: &str| stats.iter().find(|s| text(s, "id").as_deref() == Some(id));
        // The transport names the selected pair; older reports only mark it nominated.
        let selected = stats
            .iter()
            .find(|s| text(s, "type").as_deref() == Some("transport"))
            .and_then(|t| text(t, "selectedCandidatePairId"));
        let pair = match selected.as_deref().and_then(by_id) {
            Some(p) => p,
            None => stats.iter().find(|s| {
                text(s, "type").as_deref() == Some("candidate-pair")
                    && field(s, "nominated").and_then(|v| v.as_bool()) == Some(true)
                    && text(s, "state").as_deref() == Some("succeeded")
            })?,
        };
        let relay = |key: &str| {
            text(pair, key)
                .as_deref()
                .and_then(by_id)
                .and_then(|c| text(c, "candidateType"))
                .as_deref()
                == Some("relay")
        };
        let rtt = field(pair, "currentRoundTripTime").and_then(|v| v.as_f64());
        Some((relay("localCandidateId") || relay("remoteCandidateId"), rtt))
    }
}

/// What a signaling socket reports.
pub enum SocketEvent {
    Open,
    Text(String),
    Closed,
}

/// One WebSocket to the signaling server (JSON text frames).
pub struct Socket {
    ws: WebSocket,
    _handlers: Vec<Handler>,
}

impl Socket {
    pub fn open(url: &str, on: Rc<dyn Fn(SocketEvent)>) -> Result<Socket, String> {
        let ws = WebSocket::new(url).map_err(|e| message(&e))?;
        ws.set_binary_type(BinaryType::Arraybuffer);
        let f = on.clone();
        let open: Handler = Closure::new(move |_| f(SocketEvent::Open));
        let f = on.clone();
        let close: Handler = Closure::new(move |_| f(SocketEvent::Closed));
        let f = on;
        let msg: Handler = Closure::new(move |ev: JsValue| {
            if let Some(t) = ev.unchecked_into::<MessageEvent>().data().as_string() {
                f(SocketEvent::Text(t));
            }
        });
        ws.set_onopen(Some(open.as_ref().unchecked_ref()));
        ws.set_onclose(Some(close.as_ref().unchecked_ref()));
        ws.set_onmessage(Some(msg.as_ref().unchecked_ref()));
        Ok(Socket {
            ws,
            _handlers: vec![open, close, msg],
        })
    }

    /// Sends one message; `false` when the socket is not open.
    pub fn send(&self, text: &str) -> bool {
        self.ws.ready_state() == WebSocket::OPEN && self.ws.send_with_str(text).is_ok()
    }

    /// Unhooks the handlers and closes.
    pub fn close(self) {
        self.ws.set_onopen(None);
        self.ws.set_onclose(None);
        self.ws.set_onmessage(None);
        let _ = self.ws.close();
    }
}
