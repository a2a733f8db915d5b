//! Everything around the canvas: the top bar, the palette, the property panel, the status bar,
//! and the overlays (value editor, wire prompt, help, toasts).

use bassline_core::{BlendMode, Direction, Id, Request, WireKind};
use leptos::{html, prelude::*};
use wasm_bindgen::JsCast;

use super::{Ed, Link, canvas, js, remote};
use crate::{
    backend::Mode,
    palette::{CATEGORIES, describe, signature},
    shortcuts::TABLE,
    value_input::show_value,
    view::{contact_label, contradiction_text, path_to},
};

#[component]
pub fn TopBar() -> impl IntoView {
    let ed = expect_context::<Ed>();
    let file = NodeRef::<html::Input>::new();
    let crumbs = move || {
        ed.rev.track();
        let g = ed.group.get();
        let path = ed.with_net(|n| path_to(n, &g));
        let last = path.len().saturating_sub(1);
        path.into_iter()
            .enumerate()
            .map(|(i, (id, label))| {
                let current = i == last;
                view! {
                    <span class="sep" class:hidden=i == 0>"/"</span>
                    <button class="crumb" class:current=current disabled=current
                        on:click=move |_| ed.enter(id.clone())>{label}</button>
                }
            })
            .collect::<Vec<_>>()
    };
    let center = move || ed.pointer.get_untracked();
    let on_file = move |_| {
        let Some(input) = file.get_untracked() else {
            return;
        };
        let Some(f) = input.files().and_then(|l| l.get(0)) else {
            return;
        };
        input.set_value("");
        leptos::task::spawn_local(async move {
            match js::read_file(&f).await {
                Ok(text) => ed.import_text(&text),
                Err(e) => ed.toast(format!("import failed: {e}"), true),
            }
        });
    };
    view! {
        <header class="topbar">
            <span class="brand">"Bassline"</span>
            <nav class="crumbs" aria-label="groups">{crumbs}</nav>
            <div class="tools">
                <button title="New contact at the pointer (C)" on:click=move |_| { let (x, y) = center(); ed.add_contact_at(x, y, None) }>"+ Contact"</button>
                <button title="New empty group: click the canvas to place it (G places at the pointer)" on:click=move |_| ed.armed.set(Some(None))>"+ Group"</button>
                <button title="New input boundary contact (I)" on:click=move |_| { let (x, y) = center(); ed.add_contact_at(x, y, Some(Direction::Input)) }>"+ Input"</button>
                <button title="New output boundary contact (O)" on:click=move |_| { let (x, y) = center(); ed.add_contact_at(x, y, Some(Direction::Output)) }>"+ Output"</button>
                <span class="divider"></span>
                <button title="Undo (Ctrl+Z)" disabled=move || { ed.rev.track(); !ed.can_undo() } on:click=move |_| ed.undo()>"↶ Undo"</button>
                <button title="Redo (Ctrl+Shift+Z)" disabled=move || { ed.rev.track(); !ed.can_redo() } on:click=move |_| ed.redo()>"↷ Redo"</button>
                <button title="Lay out left to right (L)" on:click=move |_| ed.auto_layout()>"⇶ Layout"</button>
                <span class="divider"></span>
                <button class="export" title="Download the whole network as a state file" on:click=move |_| ed.export()>"⤓ Export"</button>
                <label class="button import" title="Replace the network with a state file">
                    "⤒ Import"
                    <input type="file" accept=".json,application/json" node_ref=file on:change=on_file/>
                </label>
                <button title="Keyboard shortcuts (?)" on:click=move |_| ed.help.update(|h| *h = !*h)>"?"</button>
            </div>
            <remote::ModeButton/>
        </header>
    }
}

#[component]
pub fn Palette() -> impl IntoView {
    let ed = expect_context::<Ed>();
    view! {
        <aside class="palette">
            <h2>"Gadgets"</h2>
            <p class="hint">"Click one, then click the canvas to place it."</p>
            {CATEGORIES
                .iter()
                .map(|(name, prims)| {
                    view! {
                        <h3>{*name}</h3>
                        <ul>
                            {prims
                                .iter()
                                .map(|p| {
                                    let p = *p;
                                    let armed = move || ed.armed.get() == Some(Some(p));
                                    view! {
                                        <li>
                                            <button class="gadget" class:armed=armed data-gadget=p.name()
                                                title=describe(p)
                                                on:click=move |_| ed.armed.set(if armed() { None } else { Some(Some(p)) })>
                                                <span class="name">{p.name()}</span>
                                                <span class="sig">{signature(p)}</span>
                                            </button>
                                        </li>
                                    }
                                })
                                .collect::<Vec<_>>()}
                        </ul>
                    }
                })
                .collect::<Vec<_>>()}
        </aside>
    }
}

/// The property panel: the selected item's fields, editable.
#[component]
pub fn Properties() -> impl IntoView {
    let ed = expect_context::<Ed>();
    let body = move || {
        ed.rev.track();
        let sel: Vec<Id> = ed.selection.get().into_iter().collect();
        match sel.as_slice() {
            [] => group_summary(ed).into_any(),
            [one] => one_item(ed, one.clone()).into_any(),
            many => {
                let contacts = ed.selected_contacts();
                let blends: Vec<BlendMode> = ed.with_net(|n| {
                    contacts
                        .iter()
                        .filter_map(|c| n.contact(c).map(|c| c.blend))
                        .collect()
                });
                let mixed = blends.windows(2).any(|w| w[0] != w[1]);
                let blend = if mixed {
                    "Mixed".to_owned()
                } else {
                    blends.first().map(blend_name).unwrap_or("—").to_owned()
                };
                let (c1, c2) = (contacts.clone(), contacts);
                view! {
                    <h2>{format!("{} items selected", many.len())}</h2>
                    <p>"Blend mode: " <b class="blend-state">{blend}</b></p>
                    <div class="row">
                        <button on:click=move |_| ed.set_blend(&c1, BlendMode::AcceptLast)>"accept-last"</button>
                        <button on:click=move |_| ed.set_blend(&c2, BlendMode::Merge)>"merge"</button>
                    </div>
                    <button class="danger" on:click=move |_| ed.delete_selection()>"Delete selection"</button>
                }
                .into_any()
            }
        }
    };
    view! { <aside class="properties">{body}</aside> }
}

fn blend_name(b: &BlendMode) -> &'static str {
    match b {
        BlendMode::AcceptLast => "accept-last",
        BlendMode::Merge => "merge",
    }
}

fn group_summary(ed: Ed) -> impl IntoView {
    let g = ed.group.get_untracked();
    let (name, contacts, wires, groups) = ed.with_net(|n| {
        let s = n.group_state(&g).ok();
        (
            n.group(&g)
                .and_then(|g| g.name.clone())
                .unwrap_or_else(|| g.to_string()),
            s.as_ref().map_or(0, |s| s.contacts.len()),
            s.as_ref().map_or(0, |s| s.wires.len()),
            s.as_ref().map_or(0, |s| s.subgroups.len()),
        )
    });
    view! {
        <h2>{if g.as_str() == bassline_core::ROOT { "Root group".to_owned() } else { name }}</h2>
        <p class="muted">{format!("{contacts} contacts · {wires} wires · {groups} subgroup{}", if groups == 1 { "" } else { "s" })}</p>
        <p class="muted">"Select something to see and edit its properties. Drag from a contact's right handle to another contact to wire them."</p>
    }
}

fn one_item(ed: Ed, id: Id) -> impl IntoView {
    if let Some(c) = ed.with_net(|n| n.contact(&id).cloned()) {
        let value = NodeRef::<html::Textarea>::new();
        let name = NodeRef::<html::Input>::new();
        let error = RwSignal::new(None::<String>);
        let (vid, nid, bid1, bid2) = (id.clone(), id.clone(), id.clone(), id.clone());
        let set = move |_| {
            let Some(t) = value.get_untracked() else {
                return;
            };
            match ed.set_value(&vid, &t.value()) {
                Ok(()) => error.set(None),
                Err(e) => error.set(Some(e)),
            }
        };
        let rename = move |_| {
            let Some(t) = name.get_untracked() else {
                return;
            };
            ed.edit(vec![Request::UpdateContact {
                id: nid.clone(),
                name: Some(t.value()),
                blend: None,
            }]);
        };
        let merge = c.blend == BlendMode::Merge;
        let contradiction = c.contradiction.clone();
        return view! {
            <h2>{contact_label(&c)}</h2>
            <p class="muted mono">{c.id.to_string()}{c.boundary.map(|d| if d == Direction::Input { " · input" } else { " · output" })}</p>
            <label>"Name"<input node_ref=name value=c.name.clone().unwrap_or_default() placeholder="(none)" on:change=rename/></label>
            <label>"Value"
                <textarea class="mono" node_ref=value rows="3" prop:value=show_value(&c.value)></textarea>
            </label>
            <div class="row"><button on:click=set>"Set value"</button></div>
            {move || error.get().map(|e| view! { <p class="error">{e}</p> })}
            <p>"Blend mode"</p>
            <div class="row segmented">
                <button class:on=!merge on:click=move |_| ed.set_blend(std::slice::from_ref(&bid1), BlendMode::AcceptLast)>"accept-last"</button>
                <button class:on=merge on:click=move |_| ed.set_blend(std::slice::from_ref(&bid2), BlendMode::Merge)>"merge"</button>
            </div>
            {contradiction.map(|k| view! {
                <div class="contradiction-box">
                    <h3>"⚠ Contradiction"</h3>
                    <p>"Kept: " <code>{k.existing.to_string()}</code></p>
                    <p>"Refused: " <code>{k.incoming.to_string()}</code></p>
                    <p>"Reason: " {k.reason.clone()}</p>
                </div>
            })}
            <button class="danger" on:click=move |_| ed.delete_selection()>"Delete contact"</button>
        }
        .into_any();
    }
    if let Some(w) = ed.with_net(|n| n.wire(&id).cloned()) {
        let (w1, w2) = (w.clone(), w.clone());
        let flip = move |kind: WireKind, w: &bassline_core::Wire| {
            ed.edit(vec![
                Request::Disconnect { id: w.id.clone() },
                Request::Connect {
                    id: Some(w.id.clone()),
                    from: w.from.clone(),
                    to: w.to.clone(),
                    kind,
                },
            ]);
        };
        let directed = w.kind == WireKind::Directed;
        return view! {
            <h2>"Wire"</h2>
            <p class="mono">{format!("{} {} {}", w.from, if directed { "→" } else { "⇄" }, w.to)}</p>
            <div class="row segmented">
                <button class:on=!directed on:click=move |_| flip(WireKind::Bidirectional, &w1)>"⇄ bidirectional"</button>
                <button class:on=directed on:click=move |_| flip(WireKind::Directed, &w2)>"→ directed"</button>
            </div>
            <button class="danger" on:click=move |_| ed.delete_selection()>"Delete wire"</button>
        }
        .into_any();
    }
    if let Some(g) = ed.with_net(|n| n.group(&id).cloned()) {
        let ports = ed.with_net(|n| {
            n.group_state(&id)
                .map(|s| {
                    s.contacts
                        .into_iter()
                        .filter(|c| c.boundary.is_some())
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        });
        let name = NodeRef::<html::Input>::new();
        let gid = id.clone();
        let rename = move |_| {
            let Some(t) = name.get_untracked() else {
                return;
            };
            ed.edit(vec![Request::UpdateGroup {
                id: gid.clone(),
                name: Some(t.value()),
                parent: None,
            }]);
        };
        let enter_id = id.clone();
        return view! {
            <h2>{g.primitive.map(|p| format!("⚡ {}", p.name())).unwrap_or_else(|| g.name.clone().unwrap_or_else(|| g.id.to_string()))}</h2>
            <p class="muted">{g.primitive.map(describe).unwrap_or("a group: double-click it to go inside")}</p>
            {g.primitive.is_none().then(|| view! {
                <label>"Name"<input node_ref=name value=g.name.clone().unwrap_or_default() on:change=rename/></label>
                <div class="row"><button on:click=move |_| ed.enter(enter_id.clone())>"Enter group"</button></div>
            })}
            <h3>"Ports"</h3>
            <ul class="ports">
                {ports.into_iter().map(|c| view! {
                    <li class:contradiction=c.contradiction.is_some() title=contradiction_text(&c).unwrap_or_default()>
                        <span class="mono">{contact_label(&c)}</span>
                        <span class="muted">{if c.boundary == Some(Direction::Input) { " in" } else { " out" }}</span>
                        " = " <code>{crate::value_input::short_value(&c.value, 24)}</code>
                    </li>
                }).collect::<Vec<_>>()}
            </ul>
            <button class="danger" on:click=move |_| ed.delete_selection()>"Delete group"</button>
        }
        .into_any();
    }
    view! { <p class="muted">"The selected item is gone."</p> }.into_any()
}

#[component]
pub fn StatusBar() -> impl IntoView {
    let ed = expect_context::<Ed>();
    let mode = move || match ed.mode.get() {
        Mode::Local => "Local".to_owned(),
        Mode::Remote { url } => format!("Remote · {url}"),
        Mode::P2p { code } => format!("Peer-to-peer · {code}"),
    };
    let link = move || match ed.link.get() {
        Link::Local => ("engine in this tab".to_owned(), "ok"),
        Link::Connecting => ("connecting…".to_owned(), "busy"),
        Link::Connected => ("connected".to_owned(), "ok"),
        Link::Offline(why) => (why, "bad"),
    };
    let counts = move || {
        ed.rev.track();
        ed.view
            .with(|v| format!("{} nodes · {} wires here", v.nodes.len(), v.wires.len()))
    };
    let hash = move || {
        ed.rev.track();
        ed.with_net(|n| n.state_hash().to_string())
    };
    view! {
        <footer class="statusbar">
            <span class="mode">{mode}</span>
            <span class=move || format!("link {}", link().1)>{move || link().0}</span>
            <Show when=move || ed.read_only.get()>
                <span class="readonly">{move || match ed.mode.get() {
                    Mode::Local | Mode::P2p { .. } => "read-only: waiting for the host",
                    Mode::Remote { .. } => "read-only: waiting for the server",
                }}</span>
            </Show>
            <span class="counts">{counts}</span>
            <span class="saved">{move || match ed.saved.get() {
                Some(true) => "saved in this browser",
                Some(false) => "saving…",
                None => "",
            }}</span>
            <span class="hash mono" title=move || format!("state hash {}", hash())>{move || format!("#{}", &hash()[..8])}</span>
        </footer>
    }
}

/// The inline value editor, over the contact being edited.
#[component]
pub fn ValueEditor() -> impl IntoView {
    let ed = expect_context::<Ed>();
    move || {
        let id = ed.editing.get()?;
        let node = ed.view.with_untracked(|v| v.node(&id).cloned())?;
        let input = NodeRef::<html::Input>::new();
        let done = StoredValue::new(false);
        let initial = canvas::editable_value(&ed, &id);
        let v = ed.viewport.get_untracked();
        let style = format!(
            "left: {:.0}px; top: {:.0}px; width: {:.0}px",
            f64::from(node.x) * v.zoom + v.x,
            f64::from(node.y + 20) * v.zoom + v.y,
            (f64::from(node.w) * v.zoom).max(160.0)
        );
        let commit_id = id.clone();
        let commit = move || {
            let Some(el) = input.get_untracked() else {
                return;
            };
            match ed.set_value(&commit_id, &el.value()) {
                Ok(()) => {
                    done.set_value(true);
                    ed.editing.set(None);
                }
                Err(e) => {
                    ed.edit_error.set(Some(e.clone()));
                    ed.toast(e, true);
                }
            }
        };
        let commit_on_blur = commit.clone();
        let on_key = move |ev: web_sys::KeyboardEvent| match ev.key().as_str() {
            "Enter" => {
                ev.prevent_default();
                commit();
            }
            "Escape" => {
                done.set_value(true);
                ed.editing.set(None);
            }
            _ => {}
        };
        let on_blur = move |_| {
            if !done.get_value() && ed.edit_error.get_untracked().is_none() {
                commit_on_blur();
            }
        };
        Effect::new(move |_| {
            if let Some(el) = input.get() {
                let _ = el.focus();
                el.select();
            }
        });
        Some(view! {
            <div class="value-editor" style=style>
                <input class="mono" node_ref=input value=initial placeholder="42, text, [1,2], {\"$grow-set\":[1]}"
                    on:keydown=on_key on:blur=on_blur on:input=move |_| ed.edit_error.set(None)/>
                {move || ed.edit_error.get().map(|e| view! { <p class="error">{e}</p> })}
            </div>
        })
    }
}

/// Asks what kind of wire was just drawn.
#[component]
pub fn WirePrompt() -> impl IntoView {
    let ed = expect_context::<Ed>();
    move || {
        let p = ed.pending_wire.get()?;
        let style = format!(
            "left: {:.0}px; top: {:.0}px",
            p.screen.0 + 8.0,
            p.screen.1 + 8.0
        );
        let buttons = canvas::WIRE_KINDS
            .iter()
            .map(|(kind, label, key)| {
                let (kind, p) = (*kind, p.clone());
                view! {
                    <button data-kind=format!("{kind:?}").to_lowercase() on:click=move |_| ed.finish_wire(p.clone(), kind)>
                        {*label} <kbd>{*key}</kbd>
                    </button>
                }
            })
            .collect::<Vec<_>>();
        Some(view! {
            <div class="prompt" style=style>
                <p>{if p.to.is_some() { "Wire these contacts:" } else { "Wire to a new contact here:" }}</p>
                {buttons}
                <button class="ghost" on:click=move |_| ed.pending_wire.set(None)>"Cancel " <kbd>"Esc"</kbd></button>
            </div>
        })
    }
}

#[component]
pub fn Overlays() -> impl IntoView {
    let ed = expect_context::<Ed>();
    let close = move |ev: web_sys::MouseEvent| {
        let outside = ev
            .target()
            .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
            .is_some_and(|el| el.class_list().contains("modal-back"));
        if outside {
            ed.help.set(false);
        }
    };
    view! {
        <div class="toasts">
            <For each=move || ed.toasts.get() key=|t| t.id let:t>
                <div class="toast" class:error=t.error>{t.text.clone()}</div>
            </For>
        </div>
        <Show when=move || ed.armed.get().is_some()>
            <div class="banner">
                {move || match ed.armed.get() {
                    Some(Some(p)) => format!("Click the canvas to place {} — Esc cancels", p.name()),
                    _ => "Click the canvas to place the new group — Esc cancels".to_owned(),
                }}
            </div>
        </Show>
        <Show when=move || ed.help.get()>
            <div class="modal-back" on:click=close>
                <div class="modal help" role="dialog" aria-label="Keyboard shortcuts">
                    <h2>"Keyboard shortcuts"</h2>
                    <p class="muted">"They never fire while you type in a field."</p>
                    <table>
                        {TABLE.iter().map(|(keys, _, what)| view! {
                            <tr><td><kbd>{*keys}</kbd></td><td>{*what}</td></tr>
                        }).collect::<Vec<_>>()}
                        <tr><td><kbd>"Drag canvas / wheel"</kbd></td><td>"pan / zoom"</td></tr>
                        <tr><td><kbd>"Shift+drag"</kbd></td><td>"select with a box"</td></tr>
                        <tr><td><kbd>"Ctrl+click"</kbd></td><td>"add to or remove from the selection"</td></tr>
                        <tr><td><kbd>"Drag a handle"</kbd></td><td>"draw a wire (drop on empty canvas: new contact)"</td></tr>
                    </table>
                    <button on:click=move |_| ed.help.set(false)>"Close"</button>
                </div>
            </div>
        </Show>
    }
}
