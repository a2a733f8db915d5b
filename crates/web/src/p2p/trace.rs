//! Timestamps of the steps of setting up a link, for the benchmark that asks where the time
//! of a join goes (`cargo xtask bench p2p`, docs/BENCHMARKS.md).
//!
//! Off unless the page asks: only when `window.__basslineP2pTrace` is an array does [`mark`]
//! push `{step, peer, at}` into it, `at` being `performance.timeOrigin + performance.now()`
//! in ms, so the marks of two pages on one machine share one clock. A page never sets the
//! array itself; a benchmark (or a person in the console) does, before the steps to time.
//! `peer` is the member number the step concerns, or `null` for the signaling steps.
//!
//! The steps (each appears once per link set-up, except as noted): `start` (the mesh
//! starts), `ws-open`, `welcome`, `join-sent` (`join-room` or `create-room`), `joined`, then
//! per link `pc-created`, `offer-created`, `offer-local-set`, `offer-sent`, on the answering
//! side `offer-received`, `answer-created` (after setting the offer), `answer-local-set`,
//! `answer-sent`, on the offering side `answer-received`, `answer-set`; `local-candidate`
//! and `remote-candidate` (every candidate), `gathering-complete`, `ice-checking`,
//! `ice-connected`, `pc-connected` (ICE and DTLS done), `sctp-connected`, `channel-0-open`,
//! `channel-1-open`, `link-up` (both channels open: the link is usable), `frame-out` and
//! `frame-in` (every sync frame). The UI adds `ui-identity-done` (the end of the page's
//! redraw on getting its member number, a task after the first offer was started).

use bassline_sync::PeerId;
use js_sys::{Array, Object, Reflect};
use wasm_bindgen::{JsCast, JsValue};

/// The global a benchmark sets to an empty array to collect the marks.
const GLOBAL: &str = "__basslineP2pTrace";

/// The array to push into, when the page asked for marks.
fn sink() -> Option<Array> {
    let w = web_sys::window()?;
    let v = Reflect::get(&w, &GLOBAL.into()).ok()?;
    // `dyn_into`, not `Array::from` (JavaScript's `Array.from`, which would copy it).
    v.dyn_into::<Array>().ok()
}

/// Whether marks are being collected (so handlers that only mark need not be hooked up).
pub fn enabled() -> bool {
    sink().is_some()
}

/// Notes that `step` happened now (for the link to `peer`, if any).
pub fn mark(step: &str, peer: Option<PeerId>) {
    let Some(list) = sink() else { return };
    let Some(perf) = web_sys::window().and_then(|w| w.performance()) else {
        return;
    };
    let o = Object::new();
    let _ = Reflect::set(&o, &"step".into(), &step.into());
    let peer = peer.map_or(JsValue::NULL, |p| JsValue::from(p as f64));
    let _ = Reflect::set(&o, &"peer".into(), &peer);
    let at = perf.time_origin() + perf.now();
    let _ = Reflect::set(&o, &"at".into(), &at.into());
    list.push(&o);
}
