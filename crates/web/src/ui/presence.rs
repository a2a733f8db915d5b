//! Presence on screen: other people's pointers and selection outlines (in their colour) in the
//! group on screen, the "who is where" list in the status bar with our own name, and sending
//! ours. The decisions (when to send, when to forget someone, colours) are in
//! [`crate::presence`]; everything goes through the [`crate::backend::Backend`] seam, so any
//! mode with peers (remote now, peer-to-peer next) shows it without changes here.

use std::time::Duration;

use bassline_core::Id;
use bassline_protocol::Presence;
use bassline_sync::PeerId;
use leptos::prelude::*;

use super::{Ed, Link, js};
use crate::{
    presence::{MIN_GAP, Outbox, Peer, Peers, clean_name, default_name},
    view::path_to,
};

/// Where this browser keeps the name others see.
const NAME_KEY: &str = "bassline.name";
/// At most this many selected ids go out (a frame on the unreliable channel stays small).
const MAX_SELECTION: usize = 200;

/// Presence state, as signals (part of [`Ed`]).
#[derive(Clone, Copy)]
pub(crate) struct PresenceUi {
    pub peers: RwSignal<Peers>,
    /// Our own name, as others see it.
    pub name: RwSignal<String>,
    outbox: StoredValue<Outbox>,
}

impl PresenceUi {
    pub fn new() -> Self {
        let name = js::local_get(NAME_KEY)
            .as_deref()
            .and_then(clean_name)
            .unwrap_or_else(|| {
                let name = default_name((js_sys::Math::random() * 65536.0) as u64);
                js::local_set(NAME_KEY, &name);
                name
            });
        PresenceUi {
            peers: RwSignal::new(Peers::default()),
            name: RwSignal::new(name),
            outbox: StoredValue::new(Outbox::default()),
        }
    }
}

/// A peer's presence arrived (from [`Ed::pump`]).
pub(super) fn received(ed: Ed, peer: PeerId, presence: Presence) {
    let me = ed.core.with_value(|c| c.backend.joined().map(|(me, _)| me));
    let now = js::now();
    ed.presence
        .peers
        .maybe_update(|p| p.receive(me, peer, presence, now));
}

/// What we show of ourselves now.
fn own(ed: Ed) -> Presence {
    let (x, y) = ed.pointer.get_untracked();
    Presence {
        name: Some(ed.presence.name.get_untracked()),
        group: Some(ed.group.get_untracked()),
        cursor: Some((x as f32, y as f32)),
        selection: ed
            .selection
            .with_untracked(|s| s.iter().take(MAX_SELECTION).cloned().collect()),
        peer: None,
    }
}

/// Every [`MIN_GAP`]: forget silent peers, and send our presence when it changed (or to keep
/// it alive). Without a link there is nobody to tell and nobody's presence is current.
fn tick(ed: Ed) {
    let now = js::now();
    if ed.link.get_untracked() != Link::Connected {
        ed.presence.peers.maybe_update(Peers::clear);
        ed.presence.outbox.update_value(Outbox::reset);
        return;
    }
    ed.presence.peers.maybe_update(|p| p.expire(now));
    let current = own(ed);
    let mut due = false;
    ed.presence
        .outbox
        .update_value(|o| due = o.due(&current, now));
    if due {
        ed.core.update_value(|c| c.backend.send_presence(current));
        super::flush(ed);
    }
}

/// Starts the presence ticker (once, with the app).
pub(super) fn start(ed: Ed) {
    let interval: Duration = MIN_GAP;
    set_interval(move || tick(ed), interval);
}

/// A group's label as the breadcrumbs show it.
fn group_label(ed: Ed, group: &Id) -> String {
    ed.with_net(|n| path_to(n, group))
        .pop()
        .map_or_else(|| group.to_string(), |(_, label)| label)
}

/// Other people's pointers and selection outlines in the group on screen, in canvas units
/// (inside the world element, so they pan and zoom with it).
#[component]
pub(super) fn PeerLayer() -> impl IntoView {
    let ed = expect_context::<Ed>();
    let here = move || {
        let g = ed.group.get();
        ed.presence
            .peers
            .with(|p| p.in_group(&g).cloned().collect::<Vec<Peer>>())
    };
    let outlines = move || {
        let peers = here();
        ed.view.with(|v| {
            peers
                .iter()
                .flat_map(|p| {
                    p.selection.iter().filter_map(|id| {
                        let n = v.node(id)?;
                        Some(view! {
                            <div
                                class="peer-selection"
                                data-peer=p.id.to_string()
                                data-outlines=id.to_string()
                                style=format!(
                                    "transform: translate({}px, {}px); width: {}px; height: {}px; border-color: {}",
                                    n.x - 5, n.y - 5, n.w + 10, n.h + 10, p.colour
                                )
                            ></div>
                        })
                    })
                })
                .collect_view()
        })
    };
    let cursors = move || {
        here()
            .into_iter()
            .filter_map(|p| {
                let (x, y) = p.cursor?;
                Some(view! {
                    <div
                        class="peer-cursor"
                        data-peer=p.id.to_string()
                        style=format!("transform: translate({x:.1}px, {y:.1}px); color: {}", p.colour)
                    >
                        <svg width="14" height="18" viewBox="0 0 14 18">
                            <path d="M0,0 L0,15 L4,11 L7,18 L9.5,17 L6.5,10.5 L12,10.5 z" fill="currentColor" stroke="white" stroke-width="1"></path>
                        </svg>
                        <span class="peer-name" style=format!("background: {}", p.colour)>{p.name.clone()}</span>
                    </div>
                })
            })
            .collect_view()
    };
    view! { {outlines} {cursors} }
}

/// "Who is where" for the status bar: our own name (editable, kept in this browser) and each
/// other person's name and group, in their colour.
#[component]
pub(super) fn WhoIsWhere() -> impl IntoView {
    let ed = expect_context::<Ed>();
    let rename = move |ev: leptos::ev::Event| {
        let typed = event_target_value(&ev);
        match clean_name(&typed) {
            Some(name) => {
                js::local_set(NAME_KEY, &name);
                ed.presence.name.set(name);
            }
            // Emptied: keep the name we had rather than send none.
            None => ed.presence.name.notify(),
        }
    };
    let others = move || {
        ed.rev.track();
        ed.presence.peers.with(|p| {
            p.iter()
                .map(|p| {
                    let label = group_label(ed, &p.group);
                    let title = format!("{} is looking at {label}", p.name);
                    view! {
                        <span class="peer" data-peer=p.id.to_string() data-group=p.group.to_string()
                            style=format!("color: {}", p.colour)
                            title=title>
                            <b>{p.name.clone()}</b>" · "{label}
                        </span>
                    }
                })
                .collect_view()
        })
    };
    view! {
        <span class="who">
            <input class="my-name" title="Your name, as the others see it" maxlength="32"
                prop:value=move || ed.presence.name.get() on:change=rename/>
            {others}
        </span>
    }
}
