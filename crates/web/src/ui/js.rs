//! The browser plumbing, in one place: IndexedDB, local storage, file download and upload, the
//! clock, the URL fragment. Callbacks and promises are wrapped here so the rest of the UI sees
//! plain `async fn`s and `Result<_, String>`s with messages a person can read.

use std::time::Duration;

use wasm_bindgen::{JsCast, JsValue, closure::Closure};
use wasm_bindgen_futures::JsFuture;
use web_sys::{IdbDatabase, IdbRequest, IdbTransactionMode};

const DB: &str = "bassline";
const STORE: &str = "state";

fn window() -> Option<web_sys::Window> {
    web_sys::window()
}

fn message(e: &JsValue) -> String {
    e.as_string()
        .or_else(|| {
            e.dyn_ref::<js_sys::Error>()
                .map(|e| String::from(e.message()))
        })
        .unwrap_or_else(|| format!("{e:?}"))
}

/// Milliseconds since the page started, as the sync engine's clock.
pub fn now() -> Duration {
    let ms = window()
        .and_then(|w| w.performance())
        .map(|p| p.now())
        .unwrap_or(0.0);
    Duration::from_secs_f64(ms.max(0.0) / 1000.0)
}

pub fn local_get(key: &str) -> Option<String> {
    window()?.local_storage().ok()??.get_item(key).ok()?
}

pub fn local_set(key: &str, value: &str) {
    if let Some(s) = window().and_then(|w| w.local_storage().ok().flatten()) {
        // A full or disabled storage only loses a preference; nothing to tell.
        let _ = s.set_item(key, value);
    }
}

/// This tab's storage: survives a reload, not shared with other tabs.
pub fn session_get(key: &str) -> Option<String> {
    window()?.session_storage().ok()??.get_item(key).ok()?
}

pub fn session_set(key: &str, value: &str) {
    if let Some(s) = window().and_then(|w| w.session_storage().ok().flatten()) {
        // Losing it only means a new peer id after a reload.
        let _ = s.set_item(key, value);
    }
}

pub fn session_remove(key: &str) {
    if let Some(s) = window().and_then(|w| w.session_storage().ok().flatten()) {
        let _ = s.remove_item(key);
    }
}

/// Where this tab keeps its signing key's secret (hex): a reload signs with the same key, so a
/// place the server gives back (the resume token, kept next to it) keeps its identity.
const SIGNING_KEY: &str = "bassline.signing-key";

/// This tab's signing identity: made once from `crypto.getRandomValues` and kept in the tab's
/// session storage (not local storage: another tab is another member, with its own key).
/// Without a browser generator there is no key worth having: the error says so.
pub fn signing_identity() -> Result<std::sync::Arc<dyn bassline_sync::Identity>, String> {
    let saved = session_get(SIGNING_KEY).and_then(|hex| {
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
            .collect::<Option<_>>()?;
        <[u8; 32]>::try_from(bytes).ok()
    });
    let secret = match saved {
        Some(s) => s,
        None => {
            let s = bassline_trust::os::random::<32>()
                .map_err(|e| format!("this browser gives no random numbers for a key: {e}"))?;
            let hex: String = s.iter().map(|b| format!("{b:02x}")).collect();
            session_set(SIGNING_KEY, &hex);
            s
        }
    };
    Ok(std::sync::Arc::new(
        bassline_sync::Ed25519Identity::from_secret(secret),
    ))
}

/// This tab's signing identity, or (told as an error toast) the shared default one: the page
/// still works, but its edits are no better protected than before per-peer keys.
pub fn signing_identity_or_toast(ed: super::Ed) -> std::sync::Arc<dyn bassline_sync::Identity> {
    signing_identity().unwrap_or_else(|e| {
        ed.toast(e, true);
        bassline_sync::Config::default().identity
    })
}

/// A number in [0, 1), for jitter.
pub fn random() -> f64 {
    js_sys::Math::random()
}

/// Waits for an IndexedDB request to finish, with its result.
async fn finished(req: &IdbRequest) -> Result<JsValue, String> {
    let promise = js_sys::Promise::new(&mut |resolve, reject| {
        let ok = req.clone();
        let on_success = Closure::once_into_js(move |_: web_sys::Event| {
            let _ = resolve.call1(&JsValue::NULL, &ok.result().unwrap_or(JsValue::UNDEFINED));
        });
        let bad = req.clone();
        let on_error = Closure::once_into_js(move |_: web_sys::Event| {
            let why = bad
                .error()
                .ok()
                .flatten()
                .map(|e| JsValue::from(e.message()))
                .unwrap_or_else(|| JsValue::from("IndexedDB request failed"));
            let _ = reject.call1(&JsValue::NULL, &why);
        });
        req.set_onsuccess(Some(on_success.unchecked_ref()));
        req.set_onerror(Some(on_error.unchecked_ref()));
    });
    JsFuture::from(promise).await.map_err(|e| message(&e))
}

async fn open() -> Result<IdbDatabase, String> {
    let factory = window()
        .and_then(|w| w.indexed_db().ok().flatten())
        .ok_or("this browser offers no IndexedDB (private window?)")?;
    let req = factory.open_with_u32(DB, 1).map_err(|e| message(&e))?;
    let upgrade = req.clone();
    let on_upgrade = Closure::once_into_js(move |_: web_sys::Event| {
        if let Ok(db) = upgrade.result().and_then(|r| r.dyn_into::<IdbDatabase>()) {
            let _ = db.create_object_store(STORE);
        }
    });
    req.set_onupgradeneeded(Some(on_upgrade.unchecked_ref()));
    let db = finished(&req).await?;
    db.dyn_into::<IdbDatabase>()
        .map_err(|_| "IndexedDB opened something else".to_owned())
}

/// The text saved under `key`, if any.
pub async fn idb_get(key: &str) -> Result<Option<String>, String> {
    let db = open().await?;
    let store = db
        .transaction_with_str(STORE)
        .and_then(|t| t.object_store(STORE))
        .map_err(|e| message(&e))?;
    let req = store.get(&JsValue::from(key)).map_err(|e| message(&e))?;
    Ok(finished(&req).await?.as_string())
}

/// Saves `text` under `key`.
pub async fn idb_put(key: &str, text: &str) -> Result<(), String> {
    let db = open().await?;
    let store = db
        .transaction_with_str_and_mode(STORE, IdbTransactionMode::Readwrite)
        .and_then(|t| t.object_store(STORE))
        .map_err(|e| message(&e))?;
    let req = store
        .put_with_key(&JsValue::from(text), &JsValue::from(key))
        .map_err(|e| message(&e))?;
    finished(&req).await.map(|_| ())
}

/// Offers `text` as a file download.
pub fn download(filename: &str, text: &str) -> Result<(), String> {
    let doc = window().and_then(|w| w.document()).ok_or("no document")?;
    let parts = js_sys::Array::of1(&JsValue::from(text));
    let bag = web_sys::BlobPropertyBag::new();
    bag.set_type("application/json");
    let blob =
        web_sys::Blob::new_with_str_sequence_and_options(&parts, &bag).map_err(|e| message(&e))?;
    let url = web_sys::Url::create_object_url_with_blob(&blob).map_err(|e| message(&e))?;
    let a: web_sys::HtmlAnchorElement = doc
        .create_element("a")
        .map_err(|e| message(&e))?
        .unchecked_into();
    a.set_href(&url);
    a.set_download(filename);
    a.click();
    // Revoking at once can cancel the download before the browser has read the blob.
    let revoke = Closure::once_into_js(move || {
        let _ = web_sys::Url::revoke_object_url(&url);
    });
    if let Some(w) = window() {
        let _ =
            w.set_timeout_with_callback_and_timeout_and_arguments_0(revoke.unchecked_ref(), 60_000);
    }
    Ok(())
}

/// The text of a file the person picked.
pub async fn read_file(file: &web_sys::File) -> Result<String, String> {
    let text = JsFuture::from(file.text()).await.map_err(|e| message(&e))?;
    text.as_string()
        .ok_or_else(|| "the file is not text".to_owned())
}

/// The element under a point of the window (for dropping a wire).
pub fn element_at(x: f64, y: f64) -> Option<web_sys::Element> {
    window()?.document()?.element_from_point(x as f32, y as f32)
}

/// The URL fragment without `#`.
pub fn hash() -> String {
    window()
        .and_then(|w| w.location().hash().ok())
        .map(|h| h.trim_start_matches('#').to_owned())
        .unwrap_or_default()
}

pub fn set_hash(h: &str) {
    if let Some(w) = window()
        && w.location().hash().ok().as_deref() != Some(&format!("#{h}"))
    {
        let _ = w.location().set_hash(h);
    }
}

/// Marks the page for tests and tools: `data-<name>` on `<body>`.
pub fn mark_body(name: &str, value: &str) {
    if let Some(body) = window().and_then(|w| w.document()).and_then(|d| d.body()) {
        let _ = body.set_attribute(&format!("data-{name}"), value);
    }
}
