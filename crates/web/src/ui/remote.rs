//! The mode switch (Local / Remote) and remote mode's link to `bassline serve`.
//!
//! Remote mode runs a guest [`Backend`] whose host is the serving process. The transport is a
//! WebSocket at `/sync` on the page's own origin (or a URL the person gives). The frames the
//! session produces travel as binary messages, prefixed with their channel byte; the server
//! side of that link arrives with `bassline serve`, so until a server answers this module only
//! says plainly that remote mode needs one. Switching modes never reloads the page, and the
//! local network is kept aside meanwhile.

use std::{cell::RefCell, rc::Rc};

use bassline_sync::Channel;
use leptos::{html, prelude::*};
use wasm_bindgen::{JsCast, closure::Closure};
use web_sys::{BinaryType, MessageEvent, WebSocket};

use super::{Ed, Link, MODE_KEY, REMOTE_URL_KEY, js};
use crate::backend::{Backend, Mode, SERVER_PEER};

thread_local! {
    /// The open socket, if any (one per tab).
    static SOCKET: RefCell<Option<WebSocket>> = const { RefCell::new(None) };
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
    format!("{}://{host}/sync", if secure { "wss" } else { "ws" })
}

fn close_socket() {
    SOCKET.with(|s| {
        if let Some(ws) = s.borrow_mut().take() {
            ws.set_onopen(None);
            ws.set_onclose(None);
            ws.set_onerror(None);
            ws.set_onmessage(None);
            let _ = ws.close();
        }
    });
}

/// Shows the network of `bassline serve` at `url` (the saved or default one if `None`).
pub(super) fn switch_to_remote(ed: Ed, url: Option<String>) {
    let url = url
        .or_else(|| js::local_get(REMOTE_URL_KEY))
        .unwrap_or_else(default_url);
    js::local_set(MODE_KEY, "remote");
    js::local_set(REMOTE_URL_KEY, &url);
    close_socket();
    ed.core.update_value(|c| {
        if matches!(c.backend.mode(), Mode::Local) {
            let local = std::mem::replace(
                &mut c.backend,
                Backend::remote(js::random_peer(), url.clone()),
            );
            c.parked = Some(local.network().clone());
        } else {
            c.backend = Backend::remote(js::random_peer(), url.clone());
        }
        c.history.clear();
    });
    ed.mode.set(Mode::Remote { url: url.clone() });
    ed.link.set(Link::Connecting);
    ed.read_only.set(true);
    ed.selection.set(Default::default());
    ed.group
        .set(bassline_core::Id::new(bassline_core::ROOT).expect("valid"));
    ed.rev.update(|r| *r += 1);
    ed.mark_state();
    connect(ed, url);
}

/// Back to the network in this tab.
pub(super) fn switch_to_local(ed: Ed) {
    js::local_set(MODE_KEY, "local");
    close_socket();
    ed.core.update_value(|c| {
        let net = c.parked.take().unwrap_or_default();
        c.backend = Backend::local(net);
        c.history.clear();
    });
    ed.mode.set(Mode::Local);
    ed.link.set(Link::Local);
    ed.read_only.set(false);
    ed.selection.set(Default::default());
    ed.rev.update(|r| *r += 1);
    ed.mark_state();
    ed.fit();
}

fn connect(ed: Ed, url: String) {
    let ws = match WebSocket::new(&url) {
        Ok(ws) => ws,
        Err(_) => {
            ed.link.set(Link::Offline(format!(
                "{url} is not a WebSocket address; remote mode needs `bassline serve`"
            )));
            return;
        }
    };
    ws.set_binary_type(BinaryType::Arraybuffer);
    let opened = Rc::new(RefCell::new(false));
    let on_open = {
        let opened = opened.clone();
        Closure::<dyn FnMut()>::new(move || {
            *opened.borrow_mut() = true;
            ed.link.set(Link::Connected);
            ed.core
                .update_value(|c| c.backend.handle_link_up(js::now(), SERVER_PEER));
            flush(ed);
        })
    };
    let on_close = {
        let url = url.clone();
        Closure::<dyn FnMut()>::new(move || {
            let why = if *opened.borrow() {
                format!("lost the link to {url}; read-only until it is back")
            } else {
                format!(
                    "no server answers at {url}: remote mode needs `bassline serve` (cargo xtask serve)"
                )
            };
            ed.link.set(Link::Offline(why));
            ed.core
                .update_value(|c| c.backend.handle_link_down(js::now(), SERVER_PEER));
            ed.pump();
        })
    };
    let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |ev: MessageEvent| {
        let Ok(buf) = ev.data().dyn_into::<js_sys::ArrayBuffer>() else {
            return;
        };
        let bytes = js_sys::Uint8Array::new(&buf).to_vec();
        let Some((&ch, frame)) = bytes.split_first() else {
            return;
        };
        let channel = if ch == 0 {
            Channel::Reliable
        } else {
            Channel::Unreliable
        };
        ed.core.update_value(|c| {
            c.backend
                .handle_frame(js::now(), SERVER_PEER, channel, frame)
        });
        flush(ed);
        ed.pump();
    });
    ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
    ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
    ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    // The socket lives as long as the page or until the mode changes; its handlers with it.
    on_open.forget();
    on_close.forget();
    on_message.forget();
    SOCKET.with(|s| *s.borrow_mut() = Some(ws));
}

/// Sends whatever the session queued.
fn flush(ed: Ed) {
    let mut frames = Vec::new();
    ed.core.update_value(|c| {
        while let Some(t) = c.backend.poll_transmit() {
            frames.push(t);
        }
    });
    SOCKET.with(|s| {
        if let Some(ws) = s.borrow().as_ref() {
            for t in frames {
                let mut bytes = Vec::with_capacity(t.frame.len() + 1);
                bytes.push(t.channel as u8);
                bytes.extend_from_slice(&t.frame);
                let _ = ws.send_with_u8_array(&bytes);
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
                </div>
            </Show>
        </div>
    }
}
