//! The mode switch (Local / Remote) and remote mode's link to `bassline serve`.
//!
//! Remote mode runs a guest [`Backend`] whose host is the serving process, the session's
//! permanent host: the tab never stands for election, and while the server is out of reach it
//! stays read-only and reconnects with backoff. The link is one WebSocket at `/remote` on the
//! page's own origin (or a URL the person gives), framed as `docs/PROTOCOL.md` ("Remote mode")
//! says: the server's welcome names our peer id and its own, then every message is a channel
//! byte and a frame. The welcome's token is kept in this tab's session storage, so a reload
//! gets the same peer id back while another tab gets its own. Switching modes never reloads
//! the page, and the local network is kept aside meanwhile.

use std::{cell::RefCell, time::Duration};

use bassline_protocol::remote::{self, Welcome};
use bassline_sync::Channel;
use leptos::{html, prelude::*};
use wasm_bindgen::{JsCast, closure::Closure};
use web_sys::{BinaryType, MessageEvent, WebSocket};

use super::{Ed, Link, MODE_KEY, REMOTE_URL_KEY, js};
use crate::{
    backend::{Backend, Mode},
    ids::IdGen,
};

/// This tab's resume token, as `<url> <token>` (a token only means something to its server).
const TOKEN_KEY: &str = "bassline.remote-token";
/// Reconnection delays: doubling from the first, capped, each with up to half of it as jitter.
const RETRY_FIRST_MS: f64 = 250.0;
const RETRY_MAX_MS: f64 = 5000.0;
/// How often the session's timers (heartbeats, retries, batching) are looked at.
const TICK: Duration = Duration::from_millis(100);

/// The handlers of one socket: dropped (and so released) when the socket is replaced.
struct Handlers {
    _open: Closure<dyn FnMut()>,
    _close: Closure<dyn FnMut()>,
    _message: Closure<dyn FnMut(MessageEvent)>,
}

/// The link of this tab (one per tab).
#[derive(Default)]
struct Conn {
    socket: Option<WebSocket>,
    handlers: Option<Handlers>,
    /// Bumped whenever the link is given up (mode switch, new URL): callbacks and timers of an
    /// older link see a different number and do nothing.
    generation: u64,
    /// Failed attempts since the last welcome.
    attempt: u32,
    ticker: Option<leptos::prelude::IntervalHandle>,
    /// A redraw is booked for the next animation frame (see [`received`]).
    redraw_booked: bool,
}

thread_local! {
    static CONN: RefCell<Conn> = RefCell::new(Conn::default());
}

fn default_url() -> String {
    let loc = web_sys::window().map(|w| w.location());
    let host = loc
        .as_ref()
        .and_then(|l| l.host().ok())
        .unwrap_or_else(|| "127.0.0.1:8080".into());
    let secure = loc
        .and_then(|l| l.protocol().ok())
        .is_some_and(|p| p == "https:");
    format!("{}://{host}/remote", if secure { "wss" } else { "ws" })
}

/// Closes the socket and makes every callback of it stale; the new generation.
fn give_up_link() -> u64 {
    CONN.with(|c| {
        let mut c = c.borrow_mut();
        c.generation += 1;
        c.attempt = 0;
        if let Some(ws) = c.socket.take() {
            ws.set_onopen(None);
            ws.set_onclose(None);
            ws.set_onmessage(None);
            let _ = ws.close();
        }
        c.handlers = None;
        c.generation
    })
}

fn current(generation: u64) -> bool {
    CONN.with(|c| c.borrow().generation == generation)
}

fn set_link(ed: Ed, link: Link) {
    js::mark_body(
        "link",
        match &link {
            Link::Local => "local",
            Link::Connecting => "connecting",
            Link::Connected => "connected",
            Link::Offline(_) => "offline",
        },
    );
    ed.link.set(link);
}

/// Shows the session's read-only state as it is now (the status bar and `data-read-only`).
fn show_read_only(ed: Ed) {
    let ro = ed.core.with_value(|c| c.backend.is_read_only());
    js::mark_body("read-only", if ro { "1" } else { "0" });
    if ed.read_only.get_untracked() != ro {
        ed.read_only.set(ro);
    }
}

/// Shows the network of `bassline serve` at `url` (the saved or default one if `None`).
pub(super) fn switch_to_remote(ed: Ed, url: Option<String>) {
    super::p2p::leave(ed);
    let url = url
        .or_else(|| js::local_get(REMOTE_URL_KEY))
        .unwrap_or_else(default_url);
    js::local_set(MODE_KEY, "remote");
    js::local_set(REMOTE_URL_KEY, &url);
    let generation = give_up_link();
    ed.core.update_value(|c| {
        let waiting = Backend::remote_waiting(url.clone());
        let was = std::mem::replace(&mut c.backend, waiting);
        if matches!(was.mode(), Mode::Local) {
            c.parked = Some(was.network().clone());
        }
        c.history.clear();
    });
    ed.mode.set(Mode::Remote { url: url.clone() });
    set_link(ed, Link::Connecting);
    show_read_only(ed);
    shown_network_replaced(ed);
    start_ticker(ed);
    connect(ed, url, generation);
}

/// Back to the network in this tab.
pub(super) fn switch_to_local(ed: Ed) {
    super::p2p::leave(ed);
    js::local_set(MODE_KEY, "local");
    give_up_link();
    CONN.with(|c| {
        if let Some(t) = c.borrow_mut().ticker.take() {
            t.clear();
        }
    });
    ed.core.update_value(|c| {
        let net = c.parked.take().unwrap_or_default();
        c.backend = Backend::local(net);
        c.ids = IdGen::new("");
        c.history.clear();
    });
    ed.mode.set(Mode::Local);
    set_link(ed, Link::Local);
    show_read_only(ed);
    shown_network_replaced(ed);
    ed.fit();
}

/// Peer-to-peer mode takes over: the remote link (if any) is given up and its ticker stopped.
pub(super) fn give_up_for_p2p() {
    give_up_link();
    CONN.with(|c| {
        if let Some(t) = c.borrow_mut().ticker.take() {
            t.clear();
        }
    });
}

/// Another network is on screen: nothing of the old one stays selected.
pub(super) fn shown_network_replaced(ed: Ed) {
    ed.selection.set(Default::default());
    ed.editing.set(None);
    ed.group
        .set(bassline_core::Id::new(bassline_core::ROOT).expect("valid"));
    ed.rev.update(|r| *r += 1);
    ed.mark_state();
}

/// Fires the session's due timers (heartbeats, re-requests) while in remote mode.
fn start_ticker(ed: Ed) {
    let running = CONN.with(|c| c.borrow().ticker.is_some());
    if running {
        return;
    }
    let handle = set_interval_with_handle(
        move || {
            ed.core.update_value(|c| c.backend.tick(js::now()));
            flush(ed);
            ed.pump();
            show_read_only(ed);
        },
        TICK,
    )
    .ok();
    CONN.with(|c| c.borrow_mut().ticker = handle);
}

fn saved_token(url: &str) -> Option<String> {
    let saved = js::session_get(TOKEN_KEY)?;
    let (for_url, token) = saved.split_once(' ')?;
    (for_url == url).then(|| token.to_owned())
}

thread_local! {
    /// This page load's name for the server: a duplicated tab copies the session storage (and
    /// so the token) but not this, which lets the server give the copy an id of its own.
    static INSTANCE: String = format!(
        "{:08x}{:08x}",
        (js::random() * f64::from(u32::MAX)) as u32,
        (js::random() * f64::from(u32::MAX)) as u32
    );
}

fn connect(ed: Ed, url: String, generation: u64) {
    let instance = INSTANCE.with(String::clone);
    let address = match saved_token(&url) {
        Some(t) => format!("{url}?resume={t}&instance={instance}"),
        None => format!("{url}?instance={instance}"),
    };
    let ws = match WebSocket::new(&address) {
        Ok(ws) => ws,
        Err(_) => {
            set_link(
                ed,
                Link::Offline(format!(
                    "{url} is not a WebSocket address; remote mode needs `bassline serve` \
                     (its /remote)"
                )),
            );
            return;
        }
    };
    ws.set_binary_type(BinaryType::Arraybuffer);
    let on_open = Closure::<dyn FnMut()>::new(move || {
        if current(generation) {
            set_link(ed, Link::Connected);
        }
    });
    let on_close = {
        let url = url.clone();
        Closure::<dyn FnMut()>::new(move || {
            if !current(generation) {
                return;
            }
            let joined = ed.core.with_value(|c| c.backend.joined());
            let linked = matches!(ed.link.get_untracked(), Link::Connected);
            if let Some((_, host)) = joined {
                ed.core
                    .update_value(|c| c.backend.handle_link_down(js::now(), host));
            }
            let delay = next_delay();
            let why = if linked || joined.is_some() {
                format!(
                    "lost the link to {url}; read-only until it is back (retrying in {:.1} s)",
                    delay.as_secs_f64()
                )
            } else {
                format!(
                    "no server answers at {url}: remote mode needs `bassline serve` (cargo \
                     xtask serve); retrying in {:.1} s",
                    delay.as_secs_f64()
                )
            };
            set_link(ed, Link::Offline(why));
            ed.pump();
            show_read_only(ed);
            let url = url.clone();
            set_timeout(
                move || {
                    if current(generation) {
                        connect(ed, url, generation);
                    }
                },
                delay,
            );
        })
    };
    let on_message = {
        let url = url.clone();
        Closure::<dyn FnMut(MessageEvent)>::new(move |ev: MessageEvent| {
            if !current(generation) {
                return;
            }
            let data = ev.data();
            if let Some(text) = data.as_string() {
                welcomed(ed, &url, &text);
            } else if let Ok(buf) = data.dyn_into::<js_sys::ArrayBuffer>() {
                received(ed, &js_sys::Uint8Array::new(&buf).to_vec());
            }
        })
    };
    ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
    ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
    ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    CONN.with(|c| {
        let mut c = c.borrow_mut();
        c.socket = Some(ws);
        c.handlers = Some(Handlers {
            _open: on_open,
            _close: on_close,
            _message: on_message,
        });
    });
}

/// The delay before the next attempt, counting this failure.
fn next_delay() -> Duration {
    let attempt = CONN.with(|c| {
        let mut c = c.borrow_mut();
        c.attempt = c.attempt.saturating_add(1);
        c.attempt
    });
    let base = (RETRY_FIRST_MS * 2f64.powi(attempt.min(16) as i32 - 1)).min(RETRY_MAX_MS);
    Duration::from_secs_f64(base * (0.5 + 0.5 * js::random()) / 1000.0)
}

/// Ends the current socket (its close handler reconnects).
fn drop_socket() {
    CONN.with(|c| {
        if let Some(ws) = c.borrow().socket.as_ref() {
            let _ = ws.close();
        }
    });
}

/// The server's welcome: who we are in its session. The same ids as before (a reconnect)
/// carry the session on, unconfirmed edits and all; other ids (a new tab, a server that lost
/// its data) start a new session.
fn welcomed(ed: Ed, url: &str, text: &str) {
    let Ok(w) = serde_json::from_str::<Welcome>(text) else {
        ed.toast(
            format!("{url} does not speak Bassline's remote mode (its first message: {text:.80})"),
            true,
        );
        drop_socket();
        return;
    };
    js::session_set(TOKEN_KEY, &format!("{url} {}", w.token));
    CONN.with(|c| c.borrow_mut().attempt = 0);
    let mut replaced = false;
    let mut discarded = 0;
    let identity = js::signing_identity_or_toast(ed);
    ed.core.update_value(|c| {
        if c.backend.joined() != Some((w.peer, w.host)) {
            // Edits the old session still waited on cannot be carried into a new one: under a
            // new id they could be applied a second time. Say so instead of dropping them quietly.
            discarded = c.backend.pending();
            c.backend =
                Backend::remote(w.peer, w.host, url.to_owned(), w.resumed, identity.clone());
            // New items get ids of our own, so two tabs adding at once never clash.
            c.ids = IdGen::new(&format!("p{}-", w.peer));
            c.history.clear();
            replaced = true;
        }
        c.backend.handle_link_up(js::now(), w.host);
    });
    js::mark_body("peer", &w.peer.to_string());
    set_link(ed, Link::Connected);
    if replaced {
        shown_network_replaced(ed);
    }
    if discarded > 0 {
        ed.toast(
            format!(
                "the server started a new session for this tab (it lost its data, or this tab's \
                 id is in use by another tab): {discarded} edit(s) it had not yet confirmed were \
                 discarded; check the network and make them again if they are missing"
            ),
            true,
        );
    }
    flush(ed);
    ed.pump();
    show_read_only(ed);
}

/// A binary message: a channel byte and a frame for the session. Anything else ends the link.
fn received(ed: Ed, message: &[u8]) {
    let joined = ed.core.with_value(|c| c.backend.joined());
    let (Some((_, host)), Some((tag, frame))) = (joined, remote::untag(message)) else {
        drop_socket();
        return;
    };
    let channel = if tag == remote::RELIABLE {
        Channel::Reliable
    } else {
        Channel::Unreliable
    };
    ed.core
        .update_value(|c| c.backend.handle_frame(js::now(), host, channel, frame));
    flush(ed);
    book_redraw(ed);
}

/// Shows what arrived at the next animation frame, once for however many messages came before
/// it. Taking each message in at once rebuilt the group's view (and hashed the network) per
/// message: with 100 remote edits a second over 1,000 contacts that cost 6-23 ms a message
/// and frames of 50-100 ms in the release build. Answers to the server (acks) still go out
/// per message, above.
fn book_redraw(ed: Ed) {
    let booked = CONN.with(|c| std::mem::replace(&mut c.borrow_mut().redraw_booked, true));
    if booked {
        return;
    }
    request_animation_frame(move || {
        CONN.with(|c| c.borrow_mut().redraw_booked = false);
        ed.pump();
        show_read_only(ed);
    });
}

/// Sends whatever the session queued.
pub(super) fn flush(ed: Ed) {
    let mut frames = Vec::new();
    ed.core.update_value(|c| {
        while let Some(t) = c.backend.poll_transmit() {
            frames.push(t);
        }
    });
    if frames.is_empty() {
        return;
    }
    CONN.with(|c| {
        if let Some(ws) = c.borrow().socket.as_ref()
            && ws.ready_state() == WebSocket::OPEN
        {
            for t in frames {
                let _ = ws.send_with_u8_array(&remote::tag(t.channel as u8, &t.frame));
            }
        }
    });
}

/// The top-right button showing the mode, with the switch.
#[component]
pub fn ModeButton() -> impl IntoView {
    let ed = expect_context::<Ed>();
    let open = RwSignal::new(false);
    let url = NodeRef::<html::Input>::new();
    let label = move || match ed.mode.get() {
        Mode::Local => "● Local".to_owned(),
        Mode::Remote { .. } => match ed.link.get() {
            Link::Connected => "● Remote".to_owned(),
            Link::Connecting => "● Remote (connecting)".to_owned(),
            _ => "● Remote (offline)".to_owned(),
        },
        Mode::P2p { .. } => match ed.link.get() {
            Link::Offline(_) => "● Peer-to-peer (offline)".to_owned(),
            _ => "● Peer-to-peer".to_owned(),
        },
    };
    let class = move || match (ed.mode.get(), ed.link.get()) {
        (Mode::Local, _) => "mode-button local",
        (_, Link::Connected) => "mode-button remote",
        _ => "mode-button offline",
    };
    view! {
        <div class="mode-switch">
            <button class=class on:click=move |_| open.update(|o| *o = !*o)>{label}</button>
            <Show when=move || open.get()>
                <div class="mode-menu">
                    <button class="mode-local" on:click=move |_| { open.set(false); switch_to_local(ed) }>
                        <b>"Local"</b><span>"The engine runs in this tab; saved in this browser."</span>
                    </button>
                    <div class="mode-remote">
                        <b>"Remote"</b>
                        <span>"Edit the network of a running `bassline serve`."</span>
                        <input node_ref=url value=js::local_get(REMOTE_URL_KEY).unwrap_or_else(default_url)/>
                        <button on:click=move |_| {
                            open.set(false);
                            let u = url.get_untracked().map(|i| i.value()).filter(|u| !u.is_empty());
                            switch_to_remote(ed, u);
                        }>"Connect"</button>
                    </div>
                    <button class="mode-p2p" data-testid="mode-p2p" on:click=move |_| { open.set(false); ed.p2p.manager.set(true) }>
                        <b>"Peer-to-peer"</b><span>"Host a room or join one: pages connect directly over WebRTC."</span>
                    </button>
                </div>
            </Show>
        </div>
    }
}
