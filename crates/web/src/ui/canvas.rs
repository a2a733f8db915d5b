//! The canvas: one group's nodes (HTML, so text, inputs and tooltips behave as in any page) over
//! its wires (SVG), in a world that pans and zooms; and every pointer gesture on it.
//!
//! Pointer events are handled once, on the canvas, by looking at what is under the pointer
//! (`data-node`, `data-contact`, `data-handle`, `data-wire`), so a thousand nodes cost no
//! thousand listeners.

use std::collections::{BTreeSet, HashMap};

use bassline_core::{Id, Placement, Point, Request, WireKind};
use leptos::{html, prelude::*};
use wasm_bindgen::JsCast;
use web_sys::{Element, PointerEvent};

use super::{Ed, Gesture, PendingWire, js};
use crate::{
    geometry::{Area, curve_bounds, curve_points, drawn_area},
    value_input::show_value,
    view::{GroupView, NodeKind, NodeView, WireView},
};

fn closest(target: &Element, selector: &str) -> Option<Element> {
    target.closest(selector).ok().flatten()
}

fn attr(el: &Element, name: &str) -> Option<Id> {
    el.get_attribute(name).and_then(|s| Id::new(&s).ok())
}

/// A wire's curve as an SVG path.
fn curve(x1: f64, y1: f64, x2: f64, y2: f64) -> String {
    let [_, (c1, _), (c2, _), _] = curve_points(x1, y1, x2, y2);
    format!("M{x1:.1},{y1:.1} C{c1:.1},{y1:.1} {c2:.1},{y2:.1} {x2:.1},{y2:.1}")
}

impl Ed {
    /// Whether `id` is selected, as a memo: a change of the selection re-runs one cheap
    /// membership test per item, and only the items whose answer changed re-draw. Reading the
    /// selection set directly made every node and wire re-draw whenever it changed (a click
    /// on the background of 1,000 contacts took 0.3-0.8 s in the release build).
    fn is_selected(&self, id: Id) -> Memo<bool> {
        let selection = self.selection;
        Memo::new(move |_| selection.with(|s| s.contains(&id)))
    }

    /// How far a node is being dragged right now: only selected nodes move, and only they
    /// follow the gesture.
    fn drag_offset(&self, selected: Memo<bool>) -> (i32, i32) {
        if !selected.get() {
            return (0, 0);
        }
        match self.gesture.get() {
            Gesture::Move { dx, dy, .. } => (dx, dy),
            _ => (0, 0),
        }
    }

    /// Places every selected node where the drag left it, as one edit.
    fn drop_selection(&self, dx: i32, dy: i32) {
        let view = self.view.get_untracked();
        let sel = self.selection.get_untracked();
        let (mut contacts, mut groups) = (Vec::new(), Vec::new());
        for n in view.nodes.iter().filter(|n| sel.contains(&n.id)) {
            let p = Placement {
                id: n.id.clone(),
                at: Some(Point {
                    x: n.x + dx,
                    y: n.y + dy,
                }),
            };
            match n.kind {
                NodeKind::Contact { .. } => contacts.push(p),
                _ => groups.push(p),
            }
        }
        self.edit(vec![Request::Place { contacts, groups }]);
    }
}

/// Below this zoom nodes are drawn without their text (see `.canvas.far` in style.css): 15 px
/// text is 5 px there.
const FAR_ZOOM: f64 = 0.35;

#[component]
pub fn Canvas() -> impl IntoView {
    let ed = expect_context::<Ed>();
    let root = NodeRef::<html::Main>::new();
    let rect = move || root.get_untracked().map(|r| r.get_bounding_client_rect());
    let local = move |ev: &PointerEvent| {
        rect().map_or((0.0, 0.0), |r| {
            (
                f64::from(ev.client_x()) - r.left(),
                f64::from(ev.client_y()) - r.top(),
            )
        })
    };
    let measure = move || {
        if let Some(r) = rect() {
            ed.screen.set((r.width().max(1.0), r.height().max(1.0)));
        }
    };
    Effect::new(move |_| measure());
    let _ = window_event_listener(leptos::ev::resize, move |_| measure());

    let cards = Cards::new(ed);
    let positions = Memo::new(move |_| {
        ed.view.with(|v| {
            v.nodes
                .iter()
                .map(|n| (n.id.clone(), (n.x, n.y)))
                .collect::<HashMap<Id, (i32, i32)>>()
        })
    });

    // Only what lies in (or near) the screen is drawn: a pan of a large group then moves one
    // transform over a few hundred DOM nodes instead of thousands, and a change redraws
    // against that smaller set. Selected items are always drawn, so a drag carries them all.
    let drawn = Memo::new(move |before: Option<&Area>| {
        let (w, h) = ed.screen.get();
        drawn_area(Area::seen(&ed.viewport.get(), w, h), before.copied())
    });
    let nodes_drawn = move || {
        let area = drawn.get();
        ed.selection.with(|sel| {
            ed.view.with(|v| {
                v.nodes
                    .iter()
                    .filter(|n| {
                        area.meets((n.x.into(), n.y.into(), n.w.into(), n.h.into()))
                            || sel.contains(&n.id)
                    })
                    .map(NodeKey::of)
                    .collect::<Vec<_>>()
            })
        })
    };
    let wires_drawn = move || {
        let area = drawn.get();
        ed.selection.with(|sel| {
            positions.with(|p| {
                ed.view.with(|v| {
                    v.wires
                        .iter()
                        .filter(|w| {
                            let end = |(node, ox, oy): &(Id, i32, i32)| {
                                p.get(node)
                                    .map(|&(x, y)| (f64::from(x + ox), f64::from(y + oy)))
                            };
                            let seen = match (end(&w.from), end(&w.to)) {
                                (Some(a), Some(b)) => area.meets(curve_bounds(a.0, a.1, b.0, b.1)),
                                _ => true,
                            };
                            seen || sel.contains(&w.from.0) || sel.contains(&w.to.0)
                        })
                        .cloned()
                        .collect::<Vec<_>>()
                })
            })
        })
    };

    let on_down = move |ev: PointerEvent| {
        if ev.button() != 0 {
            return;
        }
        let Some(target) = ev.target().and_then(|t| t.dyn_into::<Element>().ok()) else {
            return;
        };
        if closest(&target, "input, textarea, button, .prompt, .controls").is_some() {
            return;
        }
        let (sx, sy) = local(&ev);
        let (cx, cy) = ed.viewport.get_untracked().to_canvas(sx, sy);
        let ctrl = ev.ctrl_key() || ev.meta_key();
        if ed.editing.with_untracked(Option::is_some) {
            ed.editing.set(None);
        }
        if let Some(h) = closest(&target, "[data-handle]") {
            if let Some(from) = attr(&h, "data-contact") {
                let outward = h.get_attribute("data-handle").as_deref() == Some("out");
                ed.gesture.set(Gesture::Wire {
                    from,
                    outward,
                    x0: cx,
                    y0: cy,
                    x: cx,
                    y: cy,
                });
            }
        } else if let Some(node) =
            closest(&target, "[data-node]").and_then(|n| attr(&n, "data-node"))
        {
            let selected = ed.selection.with_untracked(|s| s.contains(&node));
            if ctrl {
                ed.selection.update(|s| {
                    if !s.remove(&node) {
                        s.insert(node.clone());
                    }
                });
            } else if !selected {
                ed.selection.set([node].into());
            }
            ed.gesture.set(Gesture::Move {
                x0: cx,
                y0: cy,
                dx: 0,
                dy: 0,
            });
        } else if let Some(wire) =
            closest(&target, "[data-wire]").and_then(|w| attr(&w, "data-wire"))
        {
            if ctrl {
                ed.selection.update(|s| {
                    if !s.remove(&wire) {
                        s.insert(wire);
                    }
                });
            } else {
                ed.selection.set([wire].into());
            }
            return;
        } else if let Some(kind) = ed.armed.get_untracked() {
            ed.armed.set(None);
            ed.add_group_at(cx, cy, kind);
            return;
        } else if ev.shift_key() {
            ed.gesture.set(Gesture::Select {
                x0: cx,
                y0: cy,
                x: cx,
                y: cy,
            });
        } else {
            // Only when something is selected: setting an equal set still notifies.
            if !ctrl && ed.selection.with_untracked(|s| !s.is_empty()) {
                ed.selection.set(BTreeSet::new());
            }
            ed.gesture.set(Gesture::Pan {
                sx,
                sy,
                from: ed.viewport.get_untracked(),
            });
        }
        if let Some(r) = root.get_untracked() {
            let _ = r.set_pointer_capture(ev.pointer_id());
        }
    };

    let on_move = move |ev: PointerEvent| {
        let (sx, sy) = local(&ev);
        let (cx, cy) = ed.viewport.get_untracked().to_canvas(sx, sy);
        ed.pointer.set((cx, cy));
        let next = match ed.gesture.get_untracked() {
            Gesture::None => return,
            Gesture::Pan {
                sx: x0,
                sy: y0,
                from,
            } => {
                let mut v = from;
                v.x += sx - x0;
                v.y += sy - y0;
                ed.viewport.set(v);
                return;
            }
            Gesture::Move { x0, y0, .. } => Gesture::Move {
                x0,
                y0,
                dx: (cx - x0).round() as i32,
                dy: (cy - y0).round() as i32,
            },
            Gesture::Wire {
                from,
                outward,
                x0,
                y0,
                ..
            } => Gesture::Wire {
                from,
                outward,
                x0,
                y0,
                x: cx,
                y: cy,
            },
            Gesture::Select { x0, y0, .. } => Gesture::Select {
                x0,
                y0,
                x: cx,
                y: cy,
            },
        };
        ed.gesture.set(next);
    };

    let on_up = move |ev: PointerEvent| {
        let gesture = ed.gesture.get_untracked();
        ed.gesture.set(Gesture::None);
        match gesture {
            Gesture::Move { dx, dy, .. } if dx != 0 || dy != 0 => ed.drop_selection(dx, dy),
            Gesture::Wire {
                from,
                outward,
                x,
                y,
                ..
            } => {
                let over = js::element_at(f64::from(ev.client_x()), f64::from(ev.client_y()));
                let to = over
                    .as_ref()
                    .and_then(|el| closest(el, "[data-contact]"))
                    .and_then(|el| attr(&el, "data-contact"));
                if to.as_ref() == Some(&from) {
                    return;
                }
                let (sx, sy) = local(&ev);
                ed.pending_wire.set(Some(PendingWire {
                    from,
                    to,
                    outward,
                    at: (x, y),
                    screen: (sx, sy),
                }));
            }
            Gesture::Select { x0, y0, x, y } => {
                let (l, r) = (x0.min(x), x0.max(x));
                let (t, b) = (y0.min(y), y0.max(y));
                let hit: BTreeSet<Id> = ed.view.with_untracked(|v| {
                    v.nodes
                        .iter()
                        .filter(|n| {
                            f64::from(n.x) < r
                                && f64::from(n.x + n.w) > l
                                && f64::from(n.y) < b
                                && f64::from(n.y + n.h) > t
                        })
                        .map(|n| n.id.clone())
                        .collect()
                });
                ed.selection.update(|s| s.extend(hit));
            }
            _ => {}
        }
    };

    let on_dblclick = move |ev: web_sys::MouseEvent| {
        // Not `ev.target()`: the pointer capture taken on pointerdown retargets the clicks to
        // the canvas itself, so look at what is under the pointer.
        let Some(target) = js::element_at(f64::from(ev.client_x()), f64::from(ev.client_y()))
        else {
            return;
        };
        if closest(&target, "input, textarea, button, .prompt, .controls").is_some() {
            return;
        }
        let node = closest(&target, "[data-node]").and_then(|n| attr(&n, "data-node"));
        let kind = node.as_ref().and_then(|id| {
            ed.view
                .with_untracked(|v| v.node(id).map(|n| n.kind.clone()))
        });
        match (node, kind) {
            (Some(id), Some(NodeKind::Contact { .. })) => {
                ed.selection.set([id.clone()].into());
                ed.edit_error.set(None);
                ed.editing.set(Some(id));
            }
            (Some(id), Some(NodeKind::Group)) => ed.enter(id),
            (Some(_), Some(NodeKind::Gadget(p))) => ed.toast(
                format!(
                    "{} is a primitive gadget: it has no inside to enter",
                    p.name()
                ),
                false,
            ),
            _ if closest(&target, "[data-wire]").is_none() => {
                let (x, y) = ed.pointer.get_untracked();
                ed.add_contact_at(x, y, None);
            }
            _ => {}
        }
    };

    let on_wheel = move |ev: web_sys::WheelEvent| {
        ev.prevent_default();
        let r = rect();
        let (sx, sy) = r.map_or((0.0, 0.0), |r| {
            (
                f64::from(ev.client_x()) - r.left(),
                f64::from(ev.client_y()) - r.top(),
            )
        });
        let factor = (-ev.delta_y() * 0.0015).exp();
        ed.viewport.update(|v| v.zoom_at(factor, sx, sy));
    };

    // Panning changes only a 2D translation on the world's own compositor layer, which
    // Chromium applies directly; the zoom is a second element's scale. With both in one
    // transform every pan frame re-layerized the whole canvas (8-12 ms of the main thread's
    // ~22 ms per frame with 1,000 contacts, measured in the trace of `cargo xtask bench web`).
    let zoom = Memo::new(move |_| ed.viewport.get().zoom);
    let panning = Memo::new(move |_| matches!(ed.gesture.get(), Gesture::Pan { .. }));
    let world_style = move || {
        let v = ed.viewport.get();
        format!("transform: translate({:.2}px, {:.2}px)", v.x, v.y)
    };
    let scale_style = move || format!("transform: scale({:.4})", zoom.get());
    // The dot grid moves by a transform (modulo one step) rather than its background
    // position, so a pan never repaints it, only moves its layer.
    let grid_style = move || {
        let v = ed.viewport.get();
        let step = 24.0 * v.zoom;
        format!(
            "background-size: {step:.2}px {step:.2}px; transform: translate({:.2}px, {:.2}px); \
             inset: -{step:.2}px",
            v.x.rem_euclid(step),
            v.y.rem_euclid(step)
        )
    };

    view! {
        <main
            class="canvas"
            node_ref=root
            class:armed=move || ed.armed.get().is_some()
            class:far=move || zoom.get() < FAR_ZOOM
            on:pointerdown=on_down
            on:pointermove=on_move
            on:pointerup=on_up
            on:dblclick=on_dblclick
            on:wheel=on_wheel
            on:contextmenu=|ev| ev.prevent_default()
        >
            // The grabbing hand while panning goes on the grid (the background under the
            // pointer): set on the canvas, the cursor (an inherited property) re-styled all of
            // its ~4,000 elements at the start and end of each pan (50-65 ms frames with 1,000
            // contacts). Nodes keep their own cursor, as before.
            <div class="grid" class:panning=move || panning.get() style=grid_style></div>
            <div class="world" style=world_style>
                <div class="scaled" style=scale_style>
                <svg class="wires" width="100000" height="100000" viewBox="-50000 -50000 100000 100000">
                    <defs>
                        <marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
                            <path d="M0,0 L10,5 L0,10 z" class="arrowhead"></path>
                        </marker>
                    </defs>
                    <For
                        each=wires_drawn
                        key=|w| w.clone()
                        children=move |w| wire_line(ed, positions, w)
                    />
                    {move || match ed.gesture.get() {
                        Gesture::Wire { x0, y0, x, y, outward, .. } => {
                            let d = if outward { curve(x0, y0, x, y) } else { curve(x, y, x0, y0) };
                            Some(view! { <path class="wire-draft" d=d></path> })
                        }
                        _ => None,
                    }}
                </svg>
                <For
                    each=nodes_drawn
                    key=|k| k.clone()
                    children=move |k| node_box(ed, cards, k)
                />
                <super::presence::PeerLayer/>
                {move || match ed.gesture.get() {
                    Gesture::Select { x0, y0, x, y } => Some(view! {
                        <div class="select-box" style=format!(
                            "transform: translate({}px, {}px); width: {}px; height: {}px",
                            x0.min(x), y0.min(y), (x - x0).abs(), (y - y0).abs()
                        )></div>
                    }),
                    _ => None,
                }}
                </div>
            </div>
            <super::panels::ValueEditor/>
            <super::panels::WirePrompt/>
            <Show when=move || ed.ready.get() && ed.view.with(|v| v.nodes.is_empty())>
                <div class="empty-hint">
                    <p class="big">"This group is empty"</p>
                    <p>"Double-click the canvas (or press C) to add a contact, pick a gadget on the left, or press ? for every shortcut."</p>
                </div>
            </Show>
            <div class="controls">
                <button title="Zoom in (+)" on:click=move |_| ed.zoom(1.25)>"+"</button>
                <button title="Zoom out (-)" on:click=move |_| ed.zoom(0.8)>"−"</button>
                <button title="Fit the group in view (F)" on:click=move |_| ed.fit()>"⤢"</button>
                <span class="zoom">{move || format!("{:.0}%", zoom.get() * 100.0)}</span>
            </div>
        </main>
    }
}

fn wire_line(ed: Ed, positions: Memo<HashMap<Id, (i32, i32)>>, w: WireView) -> impl IntoView {
    let (from, to) = (w.from.clone(), w.to.clone());
    let (from_selected, to_selected) =
        (ed.is_selected(from.0.clone()), ed.is_selected(to.0.clone()));
    let d = move || {
        let end = |(node, ox, oy): &(Id, i32, i32), selected| {
            let (x, y) = positions.with(|p| p.get(node).copied().unwrap_or((0, 0)));
            let (dx, dy) = ed.drag_offset(selected);
            (f64::from(x + dx + ox), f64::from(y + dy + oy))
        };
        let (a, b) = (end(&from, from_selected), end(&to, to_selected));
        curve(a.0, a.1, b.0, b.1)
    };
    let selected = ed.is_selected(w.id.clone());
    let marker = w.directed.then_some("url(#arrow)");
    view! {
        <g class="wire" class:selected=move || selected.get() class:directed=w.directed data-wire=w.id.to_string()>
            <path class="hit" d=d.clone()></path>
            <path class="line" d=d marker-end=marker></path>
        </g>
    }
}

/// How a node's DOM is keyed. A contact by its id alone: a new value or place, from here or
/// from a peer, updates its text and position in place (re-creating it laid out the whole
/// canvas again). A subgroup by everything it shows, so it is rebuilt when its ports change.
#[derive(Clone, PartialEq, Eq, Hash)]
enum NodeKey {
    Contact(Id),
    Other(NodeView),
}

impl NodeKey {
    fn of(n: &NodeView) -> NodeKey {
        match n.kind {
            NodeKind::Contact { .. } => NodeKey::Contact(n.id.clone()),
            _ => NodeKey::Other(n.clone()),
        }
    }
}

fn node_box(ed: Ed, cards: Cards, key: NodeKey) -> AnyView {
    match key {
        NodeKey::Contact(id) => match cards.of(ed, &id) {
            Some(node) => contact_box(ed, id, RwSignal::from(node)).into_any(),
            None => ().into_any(),
        },
        NodeKey::Other(n) => group_box(ed, n).into_any(),
    }
}

/// What each drawn contact shows, one signal per contact: a change to the group compares every
/// contact once and wakes only the cards whose contact changed. A memo per card over the whole
/// view woke all 1,000 cards at every remote edit (52 ms of script a frame in the trace).
#[derive(Clone, Copy)]
struct Cards(StoredValue<HashMap<Id, ArcRwSignal<NodeView>>>);

impl Cards {
    fn new(ed: Ed) -> Cards {
        let cards = Cards(StoredValue::new(HashMap::new()));
        Effect::new(move |_| ed.view.with(|v| cards.follow(v)));
        cards
    }

    /// Brings every card up to date with the group's view, and forgets what left it.
    fn follow(&self, v: &GroupView) {
        let mut changed = Vec::new();
        self.0.update_value(|cards| {
            cards.retain(|id, card| match v.node(id) {
                Some(n) => {
                    if card.with_untracked(|shown| shown != n) {
                        changed.push((card.clone(), n.clone()));
                    }
                    true
                }
                None => false,
            });
        });
        // Outside the store: setting wakes the card's readers.
        for (card, n) in changed {
            card.set(n);
        }
    }

    /// The card signal of contact `id`, made when it is first drawn.
    fn of(&self, ed: Ed, id: &Id) -> Option<ArcRwSignal<NodeView>> {
        let now = ed.view.with_untracked(|v| v.node(id).cloned())?;
        let mut card = None;
        self.0.update_value(|cards| {
            let c = cards
                .entry(id.clone())
                .or_insert_with(|| ArcRwSignal::new(now.clone()));
            card = Some(c.clone());
        });
        let card = card.expect("update_value runs its closure");
        if card.with_untracked(|shown| *shown != now) {
            card.set(now);
        }
        Some(card)
    }
}

/// Where a node sits, dragged or not. `left`/`top` rather than a transform: a transform per
/// node gave Chromium a paint chunk per node to layerize at every repaint.
fn place(ed: Ed, selected: Memo<bool>, (x, y, w, h): (i32, i32, i32, i32)) -> String {
    let (dx, dy) = ed.drag_offset(selected);
    format!(
        "left: {}px; top: {}px; width: {w}px; height: {h}px",
        x + dx,
        y + dy
    )
}

fn contact_title(n: &NodeView) -> String {
    match &n.contradiction {
        Some(c) => format!("{}\n⚠ {c}", n.full_value),
        None => format!(
            "{} = {}",
            n.id,
            if n.full_value.is_empty() {
                "(empty)"
            } else {
                &n.full_value
            }
        ),
    }
}

/// A contact's card: built once per id; every part of it follows the contact's current view.
fn contact_box(ed: Ed, id: Id, node: RwSignal<NodeView>) -> impl IntoView {
    let read = move |f: fn(&NodeView) -> String| move || node.with(f);
    let flags = move || {
        node.with(|n| match n.kind {
            NodeKind::Contact { merge, boundary } => (merge, boundary),
            _ => (false, None),
        })
    };
    let selected = ed.is_selected(id.clone());
    let style = move || {
        let at = node.with(|n| (n.x, n.y, n.w, n.h));
        place(ed, selected, at)
    };
    let contradiction = move || node.with(|n| n.contradiction.is_some());
    let empty = move || node.with(|n| n.full_value.is_empty());
    let port_kind = move || match flags().1 {
        Some(bassline_core::Direction::Input) => {
            Some(view! { <span class="port-kind">"input"</span> })
        }
        Some(bassline_core::Direction::Output) => {
            Some(view! { <span class="port-kind">"output"</span> })
        }
        None => None,
    };
    let merge = move || flags().0;
    view! {
        <div
            class="node contact"
            class:selected=move || selected.get()
            class:merge=merge
            class:boundary=move || flags().1.is_some()
            class:contradiction=contradiction
            data-node=id.to_string()
            data-contact=id.to_string()
            style=style
            title=read(contact_title)
        >
            <div class="handle in" data-contact=id.to_string() data-handle="in"></div>
            <div class="head">
                <span class="label">{read(|n| n.label.clone())}</span>
                {port_kind}
                <span class="blend" title=move || if merge() { "merge: joins values" } else { "accept-last: takes each new value" }>
                    {move || if merge() { "⊔ merge" } else { "↻ last" }}
                </span>
            </div>
            <div class="value" class:empty=empty>{read(|n| n.value.clone())}</div>
            {move || contradiction().then(|| view! { <div class="warn" title="contradiction">"⚠"</div> })}
            <div class="handle out" data-contact=id.to_string() data-handle="out"></div>
        </div>
    }
}

/// A gadget or plain group with its ports, rebuilt whenever anything on it changes.
fn group_box(ed: Ed, n: NodeView) -> impl IntoView {
    let id = n.id.clone();
    let selected = ed.is_selected(id.clone());
    let at = (n.x, n.y, n.w, n.h);
    let style = move || place(ed, selected, at);
    let contradiction = n.contradiction.clone();
    let gadget = matches!(n.kind, NodeKind::Gadget(_));
    let ports = n
        .ports
        .iter()
        .map(|p| {
            let side = if p.input { "in" } else { "out" };
            // `dy` counts from the node's outer top; the title bar's 4px border is outside the box.
            let style = format!("top: {}px", p.dy - 14);
            let title = format!("{} = {}", p.contact, p.value);
            view! {
                <div class=format!("port {side}") class:contradiction=p.contradiction style=style title=title>
                    <div class=format!("handle {side}") data-contact=p.contact.to_string() data-handle=side></div>
                    <span class="port-label">{p.label.clone()}</span>
                    <span class="port-value">{p.value.clone()}</span>
                </div>
            }
        })
        .collect::<Vec<_>>();
    let title = if gadget {
        format!("{} — a primitive gadget", n.label)
    } else {
        format!("{} — double-click to enter", n.label)
    };
    view! {
        <div
            class="node group"
            class:gadget=gadget
            class:selected=move || selected.get()
            class:contradiction=contradiction.is_some()
            data-node=id.to_string()
            style=style
            title=contradiction.map(|c| format!("{title}\n⚠ {c}")).unwrap_or(title)
        >
            <div class="head">
                <span class="icon">{if gadget { "⚡" } else { "▣" }}</span>
                <span class="label">{n.label.clone()}</span>
            </div>
            {ports}
        </div>
    }
}

/// The text the value editor starts with.
pub(super) fn editable_value(ed: &Ed, id: &Id) -> String {
    ed.with_net(|n| {
        n.contact(id)
            .map(|c| show_value(&c.value))
            .unwrap_or_default()
    })
}

/// Wire kinds offered by the prompt, with their keys.
pub(super) const WIRE_KINDS: [(WireKind, &str, &str); 2] = [
    (WireKind::Bidirectional, "⇄ Bidirectional", "Enter"),
    (WireKind::Directed, "→ Directed", "D"),
];
