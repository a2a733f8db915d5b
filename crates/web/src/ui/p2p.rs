//! Peer-to-peer mode in the UI: hosting and joining rooms (the room manager), the connection
//! status (own role, each member's link, the election banner, signaling reconnects), and the
//! glue between the mesh driver (`crate::p2p::driver`) and the session behind the editor.
//!
//! The page that hosts makes a room key, creates the room, and shows its code and join link
//! (`<origin>/#join=CODE&k=KEY`); a page opened from that link joins at once. What a reload
//! needs (code, key, resume token, whether we host) is kept in this tab's session storage, so
//! a reloaded page takes its place back (same member number within the server's grace period)
//! and catches up from the others.
//!
//! A room hosted with a password is joined by code + password: the guest page runs the PAKE
//! with the host page (the server never sees the password), gets the room key from it and
//! keeps that key like a link-joined page. The hosting page keeps its password in session
//! storage too, so it still answers guests after a reload.

use std::{collections::BTreeMap, rc::Rc, time::Duration};

use bassline_sync::{PeerId, Role};
use bassline_trust::RoomKey;
use leptos::{html, prelude::*};
use serde::{Deserialize, Serialize};

use super::{Ed, Link, js};
use crate::{
    backend::{Backend, Mode},
    ids::IdGen,
    p2p::{
        driver::{self, Event, PeerLink, Signaling},
        link::{check_code, join_link, read_location},
        room::Want,
    },
};

/// This tab's room, for a reload (JSON of [`Saved`]).
const ROOM_KEY: &str = "bassline.p2p-room";
/// How often the session's timers (heartbeats, elections, retries) are looked at.
const TICK: Duration = Duration::from_millis(100);
/// How long a page that joined by code alone waits for a link before saying the room may
/// need its link.
const KEYLESS_HINT: Duration = Duration::from_millis(driver::CONNECT_TIMEOUT_MS + 2_000);

/// What survives a reload.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Saved {
    code: String,
    /// The key's fragment text (`#k=...`), when the room has one.
    key: Option<String>,
    token: Option<String>,
    host: bool,
    /// The password the host checks guests' PAKE runs against (hosting pages only).
    #[serde(default)]
    password: Option<String>,
}

/// The peer-to-peer part of the UI state.
#[derive(Clone, Copy)]
pub(crate) struct P2pState {
    pub manager: RwSignal<bool>,
    pub code: RwSignal<Option<String>>,
    pub link: RwSignal<Option<String>>,
    pub signaling: RwSignal<Option<Signaling>>,
    pub peers: RwSignal<BTreeMap<PeerId, PeerLink>>,
    pub role: RwSignal<Option<Role>>,
    pub me: RwSignal<Option<PeerId>>,
    pub host: RwSignal<Option<PeerId>>,
    /// The room is lost for good, and why.
    pub fatal: RwSignal<Option<String>>,
    /// The signaling server lost the room (it restarted) and did not take it back: links and
    /// editing go on, newcomers cannot join. What to tell, until the room is back.
    pub room_lost: RwSignal<Option<String>>,
    pub join_error: RwSignal<Option<String>>,
    /// While the signaling server is out of reach: when the next attempt is due, and the clock
    /// the countdown is drawn against (moved by the ticker only meanwhile).
    retry_at: RwSignal<Option<Duration>>,
    clock: RwSignal<Duration>,
    ticker: StoredValue<Option<IntervalHandle>>,
    saved: StoredValue<Option<Saved>>,
}

impl P2pState {
    pub fn new() -> Self {
        P2pState {
            manager: RwSignal::new(false),
            code: RwSignal::new(None),
            link: RwSignal::new(None),
            signaling: RwSignal::new(None),
            peers: RwSignal::new(BTreeMap::new()),
            role: RwSignal::new(None),
            me: RwSignal::new(None),
            host: RwSignal::new(None),
            fatal: RwSignal::new(None),
            room_lost: RwSignal::new(None),
            join_error: RwSignal::new(None),
            retry_at: RwSignal::new(None),
            clock: RwSignal::new(Duration::ZERO),
            ticker: StoredValue::new(None),
            saved: StoredValue::new(None),
        }
    }
}

fn origin() -> String {
    web_sys::window()
        .and_then(|w| w.location().origin().ok())
        .unwrap_or_else(|| "http://127.0.0.1:8080".into())
}

fn signal_url() -> String {
    let o = origin();
    match o.split_once("://") {
        Some(("https", rest)) => format!("wss://{rest}/signal"),
        Some((_, rest)) => format!("ws://{rest}/signal"),
        None => format!("ws://{o}/signal"),
    }
}

fn save(ed: Ed, saved: Option<Saved>) {
    match &saved {
        Some(s) => js::session_set(
            ROOM_KEY,
            &serde_json::to_string(s).expect("plain strings serialize"),
        ),
        None => js::session_remove(ROOM_KEY),
    }
    ed.p2p.saved.set_value(saved);
}

/// Leaves the room (switching to another mode): the mesh stops and nothing rejoins on reload.
pub(super) fn leave(ed: Ed) {
    driver::stop();
    if let Some(t) = ed.p2p.ticker.try_update_value(Option::take).flatten() {
        t.clear();
    }
    save(ed, None);
    let p = ed.p2p;
    p.code.set(None);
    p.link.set(None);
    p.signaling.set(None);
    p.peers.set(BTreeMap::new());
    p.role.set(None);
    p.me.set(None);
    p.host.set(None);
    p.fatal.set(None);
    set_room_lost(ed, None);
    js::mark_body("p2p-role", "");
    js::mark_body("p2p-code", "");
    js::mark_body("p2p-peers", "0");
}

/// At start: a join link in the address, or a room this tab was in before a reload. `true`
/// when the page went into peer-to-peer mode.
pub(super) fn restore(ed: Ed) -> bool {
    let loc = web_sys::window().map(|w| w.location());
    let search = loc
        .as_ref()
        .and_then(|l| l.search().ok())
        .unwrap_or_default();
    let hash = loc.and_then(|l| l.hash().ok()).unwrap_or_default();
    let saved = js::session_get(ROOM_KEY).and_then(|t| serde_json::from_str::<Saved>(&t).ok());
    match read_location(&search, &hash) {
        // The link of the room this tab is already in (a reload of the link itself): rejoin.
        Some(Ok(t)) if saved.as_ref().is_none_or(|s| s.code != t.code) => {
            join(ed, t.code, t.key, None);
            return true;
        }
        Some(Err(e)) => {
            ed.toast(e.clone(), true);
            ed.p2p.join_error.set(Some(e));
            ed.p2p.manager.set(true);
            return false;
        }
        _ => {}
    }
    let Some(s) = saved else { return false };
    let key = s
        .key
        .as_deref()
        .and_then(|k| RoomKey::from_fragment(k).ok());
    let resume = s.token.clone().map(|t| (s.code.clone(), t));
    let want = if s.host {
        Want::Create {
            password: s.password.clone(),
        }
    } else {
        Want::Join {
            code: s.code.clone(),
            password: None,
        }
    };
    enter(ed, want, key, resume, Some(s.code.clone()));
    true
}

/// Hosts a new room with a fresh room key; with a password, guests may also join by code +
/// password (checked here by PAKE, never by the server).
pub(super) fn host(ed: Ed, password: Option<String>) {
    let key = match RoomKey::generate() {
        Ok(k) => k,
        Err(e) => {
            ed.toast(format!("cannot make a room key: {e}"), true);
            return;
        }
    };
    enter(ed, Want::Create { password }, Some(key), None, None);
}

/// Joins room `code` (with its key when we have the link, or its password for the PAKE).
pub(super) fn join(ed: Ed, code: String, key: Option<RoomKey>, password: Option<String>) {
    let keyless = key.is_none() && password.is_none();
    enter(
        ed,
        Want::Join {
            code: code.clone(),
            password,
        },
        key,
        None,
        Some(code),
    );
    if keyless {
        set_timeout(
            move || {
                if matches!(ed.mode.get_untracked(), Mode::P2p { .. })
                    && ed.p2p.fatal.get_untracked().is_none()
                    && ed.p2p.me.get_untracked().is_some()
                    && !ed
                        .p2p
                        .peers
                        .get_untracked()
                        .values()
                        .any(|l| matches!(l, PeerLink::Open { .. }))
                {
                    ed.toast(
                        "no member of the room answered: a room hosted with a room key (every \
                         room hosted from the editor or by `bassline host`) needs its join \
                         link, not the code alone; ask the host for the link",
                        true,
                    );
                }
            },
            KEYLESS_HINT,
        );
    }
}

fn enter(
    ed: Ed,
    want: Want,
    key: Option<RoomKey>,
    resume: Option<(String, String)>,
    code: Option<String>,
) {
    super::remote::give_up_for_p2p();
    driver::stop();
    let hosting = matches!(want, Want::Create { .. });
    let host_password = match &want {
        Want::Create { password } => password.clone(),
        Want::Join { .. } => None,
    };
    save(
        ed,
        code.clone().map(|c| Saved {
            code: c,
            key: key.as_ref().map(RoomKey::to_fragment),
            token: resume.as_ref().map(|(_, t)| t.clone()),
            host: hosting,
            password: host_password.clone(),
        }),
    );
    if hosting && code.is_none() {
        // Remember the key until the code comes back.
        ed.p2p.saved.set_value(Some(Saved {
            code: String::new(),
            key: key.as_ref().map(RoomKey::to_fragment),
            token: None,
            host: true,
            password: host_password,
        }));
    }
    ed.core.update_value(|c| {
        let waiting = Backend::p2p_waiting(code.clone().unwrap_or_default());
        let was = std::mem::replace(&mut c.backend, waiting);
        if matches!(was.mode(), Mode::Local) {
            c.parked = Some(was.network().clone());
        }
        c.history.clear();
    });
    let p = ed.p2p;
    p.fatal.set(None);
    set_room_lost(ed, None);
    p.join_error.set(None);
    p.peers.set(BTreeMap::new());
    p.role.set(None);
    p.me.set(None);
    p.code.set(code.clone());
    p.link.set(None);
    ed.mode.set(Mode::P2p {
        code: code.clone().unwrap_or_default(),
    });
    set_link(ed, Link::Connecting);
    show(ed);
    super::remote::shown_network_replaced(ed);
    start_ticker(ed);
    let room_key = key;
    let on: Rc<dyn Fn(Event)> = Rc::new(move |e| on_event(ed, e));
    driver::start(driver::Config {
        url: signal_url(),
        want,
        key: room_key,
        resume,
        on,
    });
}

/// Shows (or, with `None`, takes down) the notice that the signaling server lost the room;
/// `data-p2p-room-lost` carries the server's code for it (tests read it).
fn set_room_lost(ed: Ed, lost: Option<(String, String)>) {
    js::mark_body(
        "p2p-room-lost",
        lost.as_ref().map_or("", |(code, _)| code.as_str()),
    );
    let message = lost.map(|(_, m)| m);
    if ed.p2p.room_lost.get_untracked() != message {
        ed.p2p.room_lost.set(message);
    }
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

fn start_ticker(ed: Ed) {
    if ed.p2p.ticker.with_value(Option::is_some) {
        return;
    }
    let handle = set_interval_with_handle(
        move || {
            ed.core.update_value(|c| c.backend.tick(js::now()));
            flush(ed);
            ed.pump();
            show(ed);
            if ed.p2p.retry_at.get_untracked().is_some() {
                ed.p2p.clock.set(js::now());
            }
        },
        TICK,
    )
    .ok();
    ed.p2p.ticker.set_value(handle);
}

/// Sends whatever the session queued, each frame on its member's link.
pub(super) fn flush(ed: Ed) {
    let mut frames = Vec::new();
    ed.core.update_value(|c| {
        while let Some(t) = c.backend.poll_transmit() {
            frames.push(t);
        }
    });
    for t in frames {
        driver::send(t.to, t.channel, &t.frame);
    }
}

/// Shows the session's role and read-only state (status, banner, `data-*` marks).
fn show(ed: Ed) {
    if !matches!(ed.mode.get_untracked(), Mode::P2p { .. }) {
        return;
    }
    let (ro, role, host, me) = ed.core.with_value(|c| {
        (
            c.backend.is_read_only(),
            c.backend.role(),
            c.backend.host_id(),
            c.backend.peer_id(),
        )
    });
    let role = (me != 0).then_some(role);
    js::mark_body("read-only", if ro { "1" } else { "0" });
    if ed.read_only.get_untracked() != ro {
        ed.read_only.set(ro);
    }
    js::mark_body(
        "p2p-role",
        match role {
            Some(Role::Host) => "host",
            Some(Role::Guest) => "guest",
            Some(Role::Electing) => "electing",
            None => "",
        },
    );
    if ed.p2p.role.get_untracked() != role {
        ed.p2p.role.set(role);
    }
    let host = (me != 0 && host != 0).then_some(host);
    if ed.p2p.host.get_untracked() != host {
        ed.p2p.host.set(host);
    }
}

fn on_event(ed: Ed, e: Event) {
    let p = ed.p2p;
    match e {
        Event::Signaling(s) => {
            match &s {
                Signaling::Connecting if p.me.get_untracked().is_none() => {
                    set_link(ed, Link::Connecting)
                }
                Signaling::Connecting => {}
                Signaling::Connected => set_link(ed, Link::Connected),
                Signaling::Reconnecting { retry_in, reached } => {
                    p.clock.set(js::now());
                    p.retry_at.set(Some(js::now() + *retry_in));
                    let why = if *reached {
                        format!(
                            "lost the signaling server; links stay up; reconnecting in {:.1} s",
                            retry_in.as_secs_f64()
                        )
                    } else {
                        format!(
                            "no signaling server answers at {}: peer-to-peer mode needs \
                             `bassline serve`; reconnecting in {:.1} s",
                            signal_url(),
                            retry_in.as_secs_f64()
                        )
                    };
                    set_link(ed, Link::Offline(why));
                }
            }
            if !matches!(s, Signaling::Reconnecting { .. }) {
                p.retry_at.set(None);
            }
            p.signaling.set(Some(s));
        }
        Event::Room { code, token } => {
            let mut saved = p.saved.get_value().unwrap_or(Saved {
                code: code.clone(),
                key: None,
                token: None,
                host: false,
                password: None,
            });
            saved.code = code.clone();
            saved.token = token;
            let key = saved
                .key
                .as_deref()
                .and_then(|k| RoomKey::from_fragment(k).ok());
            save(ed, Some(saved));
            js::mark_body("p2p-code", &code);
            // The server has the room (again): newcomers can join.
            set_room_lost(ed, None);
            p.link.set(key.map(|k| join_link(&origin(), &code, &k)));
            p.code.set(Some(code.clone()));
            ed.mode.set(Mode::P2p { code });
        }
        Event::Identity {
            me,
            created,
            resumed,
        } => {
            let code = p.code.get_untracked().unwrap_or_default();
            let identity = js::signing_identity_or_toast(ed);
            ed.core.update_value(|c| {
                c.backend = if created {
                    Backend::p2p_host(me, code, c.parked.clone().unwrap_or_default(), identity)
                } else {
                    Backend::p2p_guest(me, code, resumed, identity)
                };
                // New items get ids of our own, so two pages adding at once never clash.
                c.ids = IdGen::new(&format!("p{me}-"));
                c.history.clear();
            });
            js::mark_body("peer", &me.to_string());
            p.me.set(Some(me));
            // Redrawing for the new session waits one task: the driver has just started the
            // first offer, whose promises need this thread (measured: the redraw, ~35 ms on
            // the benchmark's pages, came before the offer was made).
            set_timeout(
                move || {
                    super::remote::shown_network_replaced(ed);
                    ed.pump();
                    ed.fit();
                    crate::p2p::trace::mark("ui-identity-done", None);
                },
                Duration::ZERO,
            );
        }
        Event::Up { peer, open_ms } => {
            // The last link's set-up time, for the figure in docs/ARCHITECTURE.md.
            js::mark_body("p2p-open-ms", &format!("{open_ms:.0}"));
            ed.core
                .update_value(|c| c.backend.handle_link_up(js::now(), peer));
            count_open(ed);
        }
        Event::Down(peer) => {
            ed.core
                .update_value(|c| c.backend.handle_link_down(js::now(), peer));
            count_open(ed);
        }
        Event::Peer(peer, state) => {
            p.peers.update(|m| match state {
                Some(s) => {
                    m.insert(peer, s);
                }
                None => {
                    m.remove(&peer);
                }
            });
            count_open(ed);
        }
        Event::Frame(peer, channel, frame) => {
            ed.core
                .update_value(|c| c.backend.handle_frame(js::now(), peer, channel, &frame));
        }
        Event::Tampered(reason) => {
            ed.toast(
                format!(
                    "the signaling path was tampered with: {reason}; that connection was refused"
                ),
                true,
            );
        }
        Event::Key(key) => {
            // The host confirmed our password: keep its key for a reload, show the link.
            let mut saved = p.saved.get_value();
            if let Some(s) = saved.as_mut() {
                s.key = Some(key.to_fragment());
            }
            save(ed, saved);
            if let Some(code) = p.code.get_untracked().filter(|c| !c.is_empty()) {
                p.link.set(Some(join_link(&origin(), &code, &key)));
            }
            ed.toast("the host confirmed the password; connecting", false);
        }
        Event::RoomLost { code, message } => {
            // Not fatal: the links, the session and editing stay; said once per change, and
            // kept in the status panel while it holds.
            if p.room_lost.get_untracked().as_deref() != Some(message.as_str()) {
                ed.toast(message.clone(), true);
            }
            set_room_lost(ed, Some((code, message)));
        }
        Event::Fatal { code, message } => {
            js::mark_body("p2p-error", &code);
            ed.toast(message.clone(), true);
            p.fatal.set(Some(message.clone()));
            p.join_error.set(Some(message.clone()));
            p.manager.set(true);
            set_link(ed, Link::Offline(message));
            // Nothing to rejoin after a reload.
            save(ed, None);
        }
    }
    flush(ed);
    ed.pump();
    show(ed);
}

fn count_open(ed: Ed) {
    let open = ed
        .p2p
        .peers
        .get_untracked()
        .values()
        .filter(|l| matches!(l, PeerLink::Open { .. }))
        .count();
    js::mark_body("p2p-peers", &open.to_string());
}

fn copy(ed: Ed, text: String, what: &'static str) {
    let Some(w) = web_sys::window() else { return };
    let navigator = js_sys::Reflect::get(&w, &"navigator".into()).ok();
    let clipboard = navigator.and_then(|n| js_sys::Reflect::get(&n, &"clipboard".into()).ok());
    let write = clipboard.as_ref().and_then(|c| {
        let f = js_sys::Reflect::get(c, &"writeText".into()).ok()?;
        let f: js_sys::Function = wasm_bindgen::JsCast::dyn_into(f).ok()?;
        f.call1(c, &text.into()).ok()
    });
    match write {
        Some(_) => ed.toast(format!("{what} copied"), false),
        None => ed.toast(
            format!("select the {what} and copy it (no clipboard access here)"),
            true,
        ),
    }
}

fn role_name(role: Option<Role>) -> &'static str {
    match role {
        Some(Role::Host) => "host",
        Some(Role::Guest) => "guest",
        Some(Role::Electing) => "electing a host",
        None => "joining…",
    }
}

/// The room manager: host a room, or join one by code; shows the room's code and link.
#[component]
pub fn RoomManager() -> impl IntoView {
    let ed = expect_context::<Ed>();
    let p = ed.p2p;
    let code_input = NodeRef::<html::Input>::new();
    let join_password = NodeRef::<html::Input>::new();
    let host_password = NodeRef::<html::Input>::new();
    // An empty field is no password.
    let typed_password = |field: NodeRef<html::Input>| {
        field
            .get_untracked()
            .map(|i| i.value())
            .filter(|v| !v.is_empty())
    };
    // A host or join is likely while the manager is open: have the signaling socket ready, so
    // the click does not wait for it (docs/BENCHMARKS.md, the channel-open breakdown).
    Effect::new(move |_| {
        if p.manager.get() {
            driver::prepare(&signal_url());
        } else {
            driver::discard_spare();
        }
    });
    let try_host = move || host(ed, typed_password(host_password));
    let try_join = move || {
        let typed = code_input
            .get_untracked()
            .map(|i| i.value())
            .unwrap_or_default();
        // A whole link pasted into the field works too.
        let (search, hash) = match typed.split_once('#') {
            Some((before, after)) => (
                before
                    .split_once('?')
                    .map(|(_, q)| q)
                    .unwrap_or_default()
                    .to_owned(),
                format!("#{after}"),
            ),
            None => (String::new(), String::new()),
        };
        if let Some(found) = read_location(&search, &hash) {
            match found {
                Ok(t) => join(ed, t.code, t.key, None),
                Err(e) => p.join_error.set(Some(e)),
            }
            return;
        }
        match check_code(&typed) {
            Ok(code) => join(ed, code, None, typed_password(join_password)),
            Err(e) => p.join_error.set(Some(e)),
        }
    };
    view! {
        <Show when=move || p.manager.get()>
            <div class="room-manager" data-testid="room-manager">
                <div class="room-head">
                    <b>"Peer-to-peer"</b>
                    <button class="room-close" data-testid="room-close" on:click=move |_| p.manager.set(false)>"×"</button>
                </div>
                {move || p.code.get().filter(|c| !c.is_empty()).map(|code| {
                    let code_copy = code.clone();
                    view! {
                        <div class="room-current">
                            <span class="muted">"Room code"</span>
                            <div class="room-code mono" data-testid="room-code">{code}</div>
                            <button data-testid="copy-code" on:click=move |_| copy(ed, code_copy.clone(), "code")>"Copy code"</button>
                            {move || p.link.get().map(|l| {
                                let l2 = l.clone();
                                view! {
                                    <span class="muted">"Join link (carries the room key: share it only with people you invite)"</span>
                                    <input class="room-link mono" data-testid="join-link" readonly value=l/>
                                    <button data-testid="copy-link" on:click=move |_| copy(ed, l2.clone(), "link")>"Copy link"</button>
                                }
                            })}
                        </div>
                    }
                })}
                <div class="room-host">
                    <input node_ref=host_password type="password" data-testid="host-password"
                        placeholder="Password (optional)" autocomplete="new-password"/>
                    <button data-testid="host-room" on:click=move |_| try_host()>"Host a new room"</button>
                    <span class="muted">"Shares this tab's network with whoever opens the link, or types the code and this password (checked by this page, never sent to the server)."</span>
                </div>
                <div class="room-join">
                    <input node_ref=code_input data-testid="join-code" placeholder="Room code (A3B7K9) or link"
                        on:input=move |_| p.join_error.set(None)
                        on:keydown=move |e| if e.key() == "Enter" { try_join() }/>
                    <input node_ref=join_password type="password" data-testid="join-password"
                        placeholder="Password" autocomplete="off"
                        on:input=move |_| p.join_error.set(None)
                        on:keydown=move |e| if e.key() == "Enter" { try_join() }/>
                    <button data-testid="join-room" on:click=move |_| try_join()>"Join"</button>
                </div>
                {move || p.join_error.get().map(|e| view! { <p class="room-error" data-testid="join-error">{e}</p> })}
            </div>
        </Show>
    }
}

/// What a member may do, as the member list shows it: a choice for the host (over anyone but
/// itself), a label for everyone else (only when it is not read-write).
fn permission_control(ed: Ed, peer: PeerId) -> Option<AnyView> {
    use bassline_sync::Permission;
    ed.permissions.track();
    let (current, hosting) = ed.core.with_value(|c| {
        (
            c.backend.permission(peer),
            c.backend.role() == Role::Host && c.backend.peer_id() != peer,
        )
    });
    let name = |p: Permission| match p {
        Permission::ReadWrite => "read-write",
        Permission::ReadOnly => "read-only",
        Permission::Removed => "removed",
    };
    if !hosting {
        return (current != Permission::ReadWrite).then(|| {
            view! { <span class="perm" data-testid="p2p-permission">{format!(" · {}", name(current))}</span> }
                .into_any()
        });
    }
    let choose = move |ev: leptos::ev::Event| {
        let chosen = match event_target_value(&ev).as_str() {
            "read-only" => Permission::ReadOnly,
            "removed" => Permission::Removed,
            _ => Permission::ReadWrite,
        };
        let result = ed
            .core
            .try_update_value(|c| c.backend.set_permission(peer, chosen));
        match result {
            Some(Err(e)) => ed.toast(format!("could not change #{peer}: {e}"), true),
            _ => {
                flush(ed);
                ed.pump();
            }
        }
    };
    let options = [
        Permission::ReadWrite,
        Permission::ReadOnly,
        Permission::Removed,
    ]
    .map(|p| view! { <option value=name(p) selected=p == current>{name(p)}</option> });
    Some(
        view! {
            " · "
            <select class="perm" data-testid="p2p-permission" title="What this member may do" on:change=choose>
                {options.to_vec()}
            </select>
        }
        .into_any(),
    )
}

/// The connection status in peer-to-peer mode: own role, each member's link, the election
/// banner and signaling reconnects.
#[component]
pub fn P2pStatus() -> impl IntoView {
    let ed = expect_context::<Ed>();
    let p = ed.p2p;
    let in_p2p = move || matches!(ed.mode.get(), Mode::P2p { .. });
    let peers = move || {
        let host = p.host.get();
        p.peers
            .get()
            .into_iter()
            .map(|(peer, link)| {
                let role = if Some(peer) == host { "host" } else { "guest" };
                let state = match link {
                    PeerLink::Connecting => "connecting".to_owned(),
                    PeerLink::Retrying => "retrying".to_owned(),
                    PeerLink::Open { relayed, rtt_ms } => format!(
                        "{}{}",
                        if relayed { "relayed" } else { "direct" },
                        rtt_ms.map(|r| format!(" · {r:.0} ms")).unwrap_or_default()
                    ),
                };
                view! {
                    <li data-testid="p2p-peer" data-peer=peer.to_string()>
                        <b>{format!("#{peer}")}</b>" "{role}" · "{state}
                        {move || permission_control(ed, peer)}
                    </li>
                }
            })
            .collect::<Vec<_>>()
    };
    let reconnecting = move || match p.signaling.get() {
        Some(Signaling::Reconnecting { .. }) => Some(view! {
            <div class="p2p-reconnect" data-testid="p2p-reconnecting">
                // Counts down with the ticker rather than showing the delay it started from.
                {move || {
                    let left = p
                        .retry_at
                        .get()
                        .map(|at| at.saturating_sub(p.clock.get()))
                        .unwrap_or_default();
                    format!("signaling: reconnecting in {:.0} s", left.as_secs_f64().ceil())
                }}
                <button data-testid="p2p-retry" on:click=move |_| driver::retry_now()>"Retry now"</button>
            </div>
        }),
        _ => None,
    };
    view! {
        <Show when=in_p2p>
            <Show when=move || p.role.get() == Some(Role::Electing)>
                <div class="p2p-banner" data-testid="p2p-electing">
                    "The host left: the room is choosing a new host. Read-only until it has one."
                </div>
            </Show>
            <div class="p2p-status" data-testid="p2p-status">
                <div>
                    "You: " <b data-testid="p2p-role">{move || role_name(p.role.get())}</b>
                    {move || p.me.get().map(|m| format!(" (#{m})"))}
                    <span data-testid="p2p-my-permission">{move || {
                        ed.permissions.track();
                        let mine = ed.core.with_value(|c| c.backend.permission(c.backend.peer_id()));
                        (mine != bassline_sync::Permission::ReadWrite)
                            .then(|| format!(" · {mine} (the host's choice)"))
                    }}</span>
                    {move || p.code.get().filter(|c| !c.is_empty()).map(|c| format!(" · room {c}"))}
                    <button class="room-open" data-testid="room-open" on:click=move |_| p.manager.set(true)>"Room…"</button>
                </div>
                <ul class="p2p-peers">{peers}</ul>
                {reconnecting}
                {move || p.room_lost.get().map(|m| view! { <p class="p2p-room-lost" data-testid="p2p-room-lost">{m}</p> })}
                {move || p.fatal.get().map(|f| view! { <p class="room-error" data-testid="p2p-fatal">{f}</p> })}
            </div>
        </Show>
    }
}
