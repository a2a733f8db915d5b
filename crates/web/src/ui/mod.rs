//! The Leptos UI (wasm32 only): the editor's state as signals, and the actions every panel,
//! gesture and shortcut goes through.

mod actions;
mod canvas;
mod js;
mod p2p;
mod panels;
mod presence;
mod remote;

use std::collections::BTreeSet;

use bassline_core::{Change, Id, Network, ROOT, Request, StateDocument};
use leptos::prelude::*;
use wasm_bindgen::prelude::wasm_bindgen;

use crate::{
    backend::{Backend, Mode, Update as SessionUpdate},
    clipboard::Clip,
    geometry::Viewport,
    history::History,
    ids::IdGen,
    view::GroupView,
};

/// Where the local network is autosaved in IndexedDB.
const AUTOSAVE_KEY: &str = "local";
const MODE_KEY: &str = "bassline.mode";
const REMOTE_URL_KEY: &str = "bassline.remote-url";

#[wasm_bindgen(start)]
pub fn start() {
    leptos::mount::mount_to_body(App);
}

/// What is not reactive: the session and what edits need beside it.
pub(crate) struct Core {
    backend: Backend,
    history: History,
    ids: IdGen,
    clip: Clip,
    /// The local network while remote mode is shown, so switching back loses nothing.
    parked: Option<Network>,
}

/// A gesture in progress on the canvas.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Gesture {
    None,
    /// Dragging the empty canvas: the pointer and viewport where it started (screen).
    Pan {
        sx: f64,
        sy: f64,
        from: Viewport,
    },
    /// Dragging the selection by (dx, dy) canvas units from where the pointer went down.
    Move {
        x0: f64,
        y0: f64,
        dx: i32,
        dy: i32,
    },
    /// Dragging a new wire from a contact's handle; `outward` when from an output side.
    Wire {
        from: Id,
        outward: bool,
        x0: f64,
        y0: f64,
        x: f64,
        y: f64,
    },
    /// Drawing a selection box (canvas units).
    Select {
        x0: f64,
        y0: f64,
        x: f64,
        y: f64,
    },
}

/// A wire drawn and dropped, waiting for the person to pick its kind.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct PendingWire {
    pub from: Id,
    /// `None`: dropped on empty canvas, so a new contact is made there.
    pub to: Option<Id>,
    pub outward: bool,
    /// Canvas point of the drop, and the screen point for the prompt.
    pub at: (f64, f64),
    pub screen: (f64, f64),
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Toast {
    pub id: u64,
    pub text: String,
    pub error: bool,
}

/// Connection state as the status bar shows it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Link {
    Local,
    Connecting,
    Connected,
    /// Remote mode with no server answering, and why.
    Offline(String),
}

/// Every piece of UI state, as signals; `Copy`, so every closure can hold it.
#[derive(Clone, Copy)]
pub(crate) struct Ed {
    core: StoredValue<Core, LocalStorage>,
    /// Bumped whenever the network changed.
    pub rev: RwSignal<u64>,
    pub group: RwSignal<Id>,
    pub viewport: RwSignal<Viewport>,
    pub selection: RwSignal<BTreeSet<Id>>,
    pub gesture: RwSignal<Gesture>,
    pub editing: RwSignal<Option<Id>>,
    pub edit_error: RwSignal<Option<String>>,
    pub pending_wire: RwSignal<Option<PendingWire>>,
    /// A gadget (or a plain group with `None`) waiting for a click on the canvas.
    pub armed: RwSignal<Option<Option<bassline_core::Primitive>>>,
    pub toasts: RwSignal<Vec<Toast>>,
    pub help: RwSignal<bool>,
    pub mode: RwSignal<Mode>,
    pub link: RwSignal<Link>,
    pub p2p: p2p::P2pState,
    pub read_only: RwSignal<bool>,
    /// Bumped whenever what members may do changed (redraws the member list).
    pub permissions: RwSignal<u64>,
    pub saved: RwSignal<Option<bool>>,
    pub ready: RwSignal<bool>,
    /// Last pointer position on the canvas, in canvas units (where C and G add things).
    pub pointer: RwSignal<(f64, f64)>,
    /// The canvas element's size in pixels.
    pub screen: RwSignal<(f64, f64)>,
    pub view: Memo<GroupView>,
    /// Other people's pointers, groups and selections, and our own name.
    pub presence: presence::PresenceUi,
    next_toast: StoredValue<u64>,
    save_queued: StoredValue<bool>,
}

impl Ed {
    fn new() -> Ed {
        let core = StoredValue::new_local(Core {
            backend: Backend::local(Network::new()),
            history: History::default(),
            ids: IdGen::new(""),
            clip: Clip::default(),
            parked: None,
        });
        let rev = RwSignal::new(0u64);
        let group = RwSignal::new(Id::new(ROOT).expect("the root id is valid"));
        let view = Memo::new(move |_| {
            rev.track();
            let g = group.get();
            core.with_value(|c| GroupView::build(c.backend.network(), &g))
                .unwrap_or_default()
        });
        Ed {
            core,
            rev,
            group,
            viewport: RwSignal::new(Viewport::default()),
            selection: RwSignal::new(BTreeSet::new()),
            gesture: RwSignal::new(Gesture::None),
            editing: RwSignal::new(None),
            edit_error: RwSignal::new(None),
            pending_wire: RwSignal::new(None),
            armed: RwSignal::new(None),
            toasts: RwSignal::new(Vec::new()),
            help: RwSignal::new(false),
            mode: RwSignal::new(Mode::Local),
            link: RwSignal::new(Link::Local),
            p2p: p2p::P2pState::new(),
            read_only: RwSignal::new(false),
            permissions: RwSignal::new(0),
            saved: RwSignal::new(None),
            ready: RwSignal::new(false),
            pointer: RwSignal::new((80.0, 80.0)),
            screen: RwSignal::new((800.0, 600.0)),
            view,
            presence: presence::PresenceUi::new(),
            next_toast: StoredValue::new(0),
            save_queued: StoredValue::new(false),
        }
    }

    /// Reads the network (untracked: callers that render track `rev`).
    pub fn with_net<T>(&self, f: impl FnOnce(&Network) -> T) -> T {
        self.core.with_value(|c| f(c.backend.network()))
    }

    /// Sends one edit (one undo step). Shows the reason when it is refused.
    pub fn edit(&self, requests: Vec<Request>) -> bool {
        if requests.is_empty() {
            return false;
        }
        let mut result = Ok(());
        self.core.update_value(|c| {
            c.backend.tick(js::now());
            result = c.history.perform(&mut c.backend, requests);
        });
        let ok = result.is_ok();
        if let Err(e) = result {
            self.toast(e, true);
        }
        self.pump();
        ok
    }

    pub fn undo(&self) {
        self.history_step(true);
    }

    pub fn redo(&self) {
        self.history_step(false);
    }

    fn history_step(&self, undo: bool) {
        let mut result = Ok(());
        self.core.update_value(|c| {
            c.backend.tick(js::now());
            result = if undo {
                c.history.undo(&mut c.backend)
            } else {
                c.history.redo(&mut c.backend)
            };
        });
        if let Err(e) = result {
            self.toast(e, false);
        }
        self.pump();
    }

    /// A fresh id for a new contact ('c'), group ('g') or wire ('w').
    pub fn fresh(&self, kind: char) -> Id {
        let mut id = None;
        self.core
            .update_value(|c| id = Some(c.ids.fresh(c.backend.network(), kind)));
        id.expect("update_value runs its closure")
    }

    /// Takes in whatever the session produced: redraws, prunes the selection of what went
    /// away, reports refusals, schedules the autosave.
    pub fn pump(&self) {
        let mut updates = Vec::new();
        self.core
            .update_value(|c| updates = c.backend.poll_updates());
        let mut changed = false;
        let mut gone: Vec<Id> = Vec::new();
        for u in updates {
            match u {
                SessionUpdate::Changes(changes) => {
                    changed = true;
                    for ch in &changes {
                        match ch {
                            Change::ContactRemoved { id }
                            | Change::WireRemoved { id }
                            | Change::GroupRemoved { id } => gone.push(id.clone()),
                            _ => {}
                        }
                    }
                }
                SessionUpdate::ReadOnly(ro) => self.read_only.set(ro),
                SessionUpdate::Refused(reason) => {
                    self.toast(format!("edit refused: {reason}"), true)
                }
                SessionUpdate::Replaced => changed = true,
                SessionUpdate::Permissions => self.permissions.update(|n| *n += 1),
                SessionUpdate::Presence { peer, presence } => {
                    presence::received(*self, peer, presence)
                }
            }
        }
        if !changed {
            return;
        }
        if !gone.is_empty() {
            self.selection.update(|s| s.retain(|id| !gone.contains(id)));
        }
        // The group on screen may have been removed by someone: fall back to its nearest
        // surviving ancestor, the root at worst.
        let g = self.group.get_untracked();
        if self.with_net(|n| n.group(&g).is_none()) {
            self.enter(Id::new(ROOT).expect("valid"));
        }
        self.rev.update(|r| *r += 1);
        self.mark_state();
        self.queue_save();
    }

    /// Publishes the state hash on the page (the status bar's tooltip, and for tests).
    fn mark_state(&self) {
        let (hash, counts) = self.with_net(|n| (n.state_hash(), n.counts()));
        js::mark_body("state-hash", &hash.to_string());
        js::mark_body("contacts", &counts.1.to_string());
    }

    pub fn toast(&self, text: impl Into<String>, error: bool) {
        let id = self.next_toast.get_value();
        self.next_toast.set_value(id + 1);
        self.toasts.update(|t| {
            t.push(Toast {
                id,
                text: text.into(),
                error,
            });
            if t.len() > 4 {
                t.remove(0);
            }
        });
        let toasts = self.toasts;
        set_timeout(
            move || toasts.update(|t| t.retain(|x| x.id != id)),
            std::time::Duration::from_millis(if error { 7000 } else { 3500 }),
        );
    }

    /// Shows another group, keeping nothing selected from the one left.
    pub fn enter(&self, group: Id) {
        if self.group.get_untracked() == group {
            return;
        }
        js::set_hash(&format!("g={group}"));
        self.selection.set(BTreeSet::new());
        self.editing.set(None);
        self.group.set(group);
        self.fit();
    }

    /// Fits the group on screen.
    pub fn fit(&self) {
        let (w, h) = self.screen.get_untracked();
        let v = self.view.get_untracked();
        self.viewport.set(match v.bounds() {
            Some(b) => Viewport::fit(b, w, h),
            None => Viewport::default(),
        });
    }

    /// Saves the local network a moment after the last change (one write per burst).
    fn queue_save(&self) {
        if !matches!(self.mode.get_untracked(), Mode::Local) || self.save_queued.get_value() {
            return;
        }
        self.save_queued.set_value(true);
        self.saved.set(Some(false));
        let ed = *self;
        set_timeout(
            move || {
                ed.save_queued.set_value(false);
                let rev = ed.rev.get_untracked();
                let text = ed.with_net(|n| n.export().to_json_pretty());
                leptos::task::spawn_local(async move {
                    match js::idb_put(AUTOSAVE_KEY, &text).await {
                        // Only "saved" if nothing changed meanwhile: a change made while this
                        // write was under way has its own save coming, and until it lands a
                        // reload would lose it.
                        Ok(()) if ed.rev.get_untracked() == rev && !ed.save_queued.get_value() => {
                            ed.saved.set(Some(true));
                            js::mark_body("saved", &rev.to_string());
                        }
                        Ok(()) => {}
                        Err(e) => ed.toast(format!("autosave failed: {e}"), true),
                    }
                });
            },
            std::time::Duration::from_millis(200),
        );
    }

    /// Replaces the local network with an imported document.
    pub fn import_text(&self, text: &str) {
        let network = StateDocument::from_json(text).and_then(|d| Network::import(&d));
        match network {
            Err(e) => self.toast(format!("import failed: {e}"), true),
            Ok(net) => {
                let counts = net.counts();
                let mut result = Ok(());
                self.core.update_value(|c| {
                    result = c.backend.replace_network(net);
                    c.history.clear();
                });
                match result {
                    Err(e) => self.toast(e, true),
                    Ok(()) => {
                        self.selection.set(BTreeSet::new());
                        self.group.set(Id::new(ROOT).expect("valid"));
                        self.rev.update(|r| *r += 1);
                        self.mark_state();
                        self.queue_save();
                        self.fit();
                        self.toast(
                            format!(
                                "imported {} contacts, {} wires (undo history cleared)",
                                counts.1, counts.2
                            ),
                            false,
                        );
                    }
                }
            }
        }
    }

    pub fn export(&self) {
        let text = self.with_net(|n| n.export().to_json_pretty());
        match js::download("bassline-network.json", &text) {
            Ok(()) => self.toast("exported bassline-network.json", false),
            Err(e) => self.toast(format!("export failed: {e}"), true),
        }
    }

    pub fn can_undo(&self) -> bool {
        self.core.with_value(|c| c.history.can_undo())
    }

    pub fn can_redo(&self) -> bool {
        self.core.with_value(|c| c.history.can_redo())
    }
}

/// Loads the autosaved network (local mode) or connects (remote mode), then shows the editor.
async fn restore(ed: Ed) {
    let remote = js::local_get(MODE_KEY).as_deref() == Some("remote");
    match js::idb_get(AUTOSAVE_KEY).await {
        Ok(Some(text)) => {
            match StateDocument::from_json(&text).and_then(|d| Network::import(&d)) {
                Ok(net) => ed.core.update_value(|c| c.backend = Backend::local(net)),
                Err(e) => {
                    // Keep the unreadable save aside rather than overwrite it with an empty
                    // network at the next edit.
                    let _ = js::idb_put("unreadable", &text).await;
                    ed.toast(
                        format!("the autosaved network could not be restored: {e}"),
                        true,
                    );
                }
            }
        }
        Ok(None) => {}
        Err(e) => ed.toast(format!("autosave unavailable: {e}"), true),
    }
    if !p2p::restore(ed) && remote {
        remote::switch_to_remote(ed, None);
    }
    let wanted = js::hash().strip_prefix("g=").and_then(|g| Id::new(g).ok());
    ed.pump();
    ed.rev.update(|r| *r += 1);
    ed.mark_state();
    if let Some(g) = wanted.filter(|g| ed.with_net(|n| n.group(g).is_some())) {
        ed.group.set(g);
    }
    ed.ready.set(true);
    request_animation_frame(move || {
        ed.fit();
        js::mark_body("ready", "1");
    });
}

/// Sends what the session queued over the link of the mode it is in. Each mode's link drains
/// the session's whole queue (edits included), so only that mode's may do it.
fn flush(ed: Ed) {
    match ed.mode.get_untracked() {
        Mode::Local => {}
        Mode::Remote { .. } => remote::flush(ed),
        Mode::P2p { .. } => p2p::flush(ed),
    }
}

#[component]
fn App() -> impl IntoView {
    let ed = Ed::new();
    provide_context(ed);
    actions::install_keys(ed);
    presence::start(ed);
    leptos::task::spawn_local(restore(ed));
    // Back and forward move between groups (one URL per group).
    let _ = window_event_listener(leptos::ev::hashchange, move |_| {
        let wanted = js::hash()
            .strip_prefix("g=")
            .and_then(|g| Id::new(g).ok())
            .unwrap_or_else(|| Id::new(ROOT).expect("valid"));
        if ed.with_net(|n| n.group(&wanted).is_some()) {
            ed.enter(wanted);
        }
    });
    view! {
        <div class="app" class:ready=move || ed.ready.get()>
            <panels::TopBar/>
            <panels::Palette/>
            <canvas::Canvas/>
            <panels::Properties/>
            <panels::StatusBar/>
            <panels::Overlays/>
            <p2p::RoomManager/>
            <p2p::P2pStatus/>
        </div>
    }
}
