//! Peer-to-peer across implementations: the browser editor and the native `bassline` binary
//! in one room (a browser guest of a native host, a native guest of a browser host), and the
//! two browsers, Chromium hosting and Firefox joining. Everything is real: a `bassline serve`
//! for signaling and the page, WebRTC data channels between Chromium, Firefox and webrtc-rs.
//! The outcome is judged by what each side holds (the page's shown values, the native
//! process's answers) and by the state hash the CLI reports equalling the page's.

mod browsers;
mod common;
mod native;

use std::path::PathBuf;

use anyhow::{Context, Result, ensure};
use browsers::{Page, firefox::Firefox};
use common::{
    Session, js_str,
    serve::{Serve, bassline_bin},
};
use native::NativePeer;
use serde_json::json;

/// Opens the room manager through the mode menu.
async fn open_manager(p: &impl Page) -> Result<()> {
    p.click_on(".mode-button").await?;
    p.wait_for(
        "document.querySelector(\"[data-testid='mode-p2p']\")",
        "the mode menu",
    )
    .await?;
    p.click_on("[data-testid='mode-p2p']").await?;
    p.wait_for(
        "document.querySelector(\"[data-testid='room-manager']\")",
        "the room manager",
    )
    .await
}

/// Hosts a room through the page's room manager; returns its join link.
async fn host_from_page(p: &impl Page) -> Result<String> {
    open_manager(p).await?;
    p.click_on("[data-testid='host-room']").await?;
    p.wait_for(
        "document.querySelector(\"[data-testid='join-link']\")?.value?.includes('#join=')",
        "the room's join link",
    )
    .await?;
    let link: String = p
        .eval("document.querySelector(\"[data-testid='join-link']\").value")
        .await?;
    p.click_on("[data-testid='room-close']").await?;
    p.wait_for(
        "document.body.dataset.p2pRole === 'host' && document.body.dataset.readOnly === '0'",
        "the hosting page editable as host",
    )
    .await?;
    Ok(link)
}

/// Waits until the page has open links to `peers` members and may edit.
async fn linked(p: &impl Page, peers: usize) -> Result<()> {
    p.wait_for(
        &format!(
            "document.body.dataset.p2pPeers === '{peers}' && document.body.dataset.readOnly === '0'"
        ),
        &format!("linked to {peers} and editable"),
    )
    .await
}

async fn has_node(p: &impl Page, id: &str) -> Result<()> {
    p.wait_for(
        &format!("document.querySelector(\"[data-node='{id}']\")"),
        &format!("node {id}"),
    )
    .await
}

/// Adds a contact where the pointer is (key C) and returns the id the page gave it.
async fn add_contact(p: &impl Page, at: (f64, f64)) -> Result<String> {
    let before: Vec<String> = p
        .eval("[...document.querySelectorAll('[data-node]')].map(e => e.dataset.node)")
        .await?;
    p.hover(p.canvas_point(at.0, at.1).await?).await?;
    p.key("c").await?;
    p.wait_for(
        &format!(
            "document.querySelectorAll('[data-node]').length === {}",
            before.len() + 1
        ),
        "the new contact",
    )
    .await?;
    let after: Vec<String> = p
        .eval("[...document.querySelectorAll('[data-node]')].map(e => e.dataset.node)")
        .await?;
    after
        .into_iter()
        .find(|id| !before.contains(id))
        .context("a new node id")
}

/// Waits until the page shows the state hash `hash`.
async fn page_hash_is(p: &impl Page, hash: &str) -> Result<()> {
    p.wait_for(
        &format!("document.body.dataset.stateHash === {}", js_str(hash)),
        &format!("the state hash {hash}"),
    )
    .await
}

/// Waits until `b` shows the state hash `a` shows now.
async fn same_hash(a: &impl Page, b: &impl Page) -> Result<String> {
    let hash = a.state_hash().await?;
    page_hash_is(b, &hash).await?;
    Ok(hash)
}

struct World {
    bin: PathBuf,
    dist: PathBuf,
    chromium: PathBuf,
    data: PathBuf,
}

fn world(name: &str) -> Option<World> {
    let (dist, chromium) = common::setup()?;
    let bin = bassline_bin().expect(
        "no bassline binary: cargo xtask test sets BASSLINE_BIN; otherwise build it first \
         (cargo build -p bassline-cli)",
    );
    let data = std::env::temp_dir().join(format!("bassline-interop-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    Some(World {
        bin,
        dist,
        chromium,
        data,
    })
}

/// Runs `scenario` with a fresh `bassline serve` (signaling at `/signal`, the editor at `/`)
/// on a tokio runtime; the scenario owns and closes its pages.
fn run(name: &str, scenario: impl AsyncFnOnce(&World, &Serve) -> Result<()>) {
    let Some(w) = world(name) else { return };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    rt.block_on(async {
        let serve = Serve::start(&w.bin, &w.data, &w.dist, "127.0.0.1:0").expect("serve starts");
        let result = scenario(&w, &serve).await;
        drop(serve);
        let _ = std::fs::remove_dir_all(&w.data);
        if let Err(e) = result {
            panic!("{name}: {e:#}");
        }
    });
}

/// Screenshots and status lines of pages after a failure, then the error unchanged.
async fn report<T>(result: Result<T>, name: &str, pages: &[&dyn Shot]) -> Result<T> {
    if result.is_err() {
        for p in pages {
            p.shot(name).await;
        }
    }
    result
}

/// What a failed scenario saves of a page (object-safe, unlike `Page`).
trait Shot {
    fn shot<'a>(
        &'a self,
        test: &'a str,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + 'a>>;
}

impl<P: Page> Shot for P {
    fn shot<'a>(
        &'a self,
        test: &'a str,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + 'a>> {
        Box::pin(async move {
            let file = format!(
                "interop-{test}-{}-failure.png",
                self.label().replace(' ', "-").to_lowercase()
            );
            let shot = self.screenshot(&file).await;
            eprintln!(
                "{}: screenshot {shot:?}, status bar {:?}, p2p status {:?}",
                self.label(),
                self.text(".statusbar").await,
                self.text("[data-testid='p2p-status']").await
            );
        })
    }
}

#[test]
fn a_browser_guest_joins_a_native_host_and_both_converge() {
    run("native-host", async |w, serve| {
        let mut host = NativePeer::host(&w.bin, &format!("ws://{}/signal", serve.addr))?;
        let room = host.wait_event("room").await?;
        let link = room["link"]
            .as_str()
            .context("the room event's link")?
            .to_owned();
        ensure!(
            link.starts_with(&format!("http://{}/", serve.addr)),
            "the native host's link opens the served editor: {link}"
        );
        // The native host starts the network: a contact with a value.
        host.send(r#"{"type":"add-contact","id":"native","group":"root"}"#)?;
        host.send(r#"{"type":"update-content","contact":"native","value":5}"#)?;
        host.wait_value("native", &json!(5)).await?;

        // Chromium opens the link: straight into the room, as a guest.
        let page = Session::start_at("interop-guest", link.clone(), &w.chromium).await?;
        let result = async {
            linked(&page, 1).await?;
            ensure!(
                page.eval::<String>("document.body.dataset.p2pRole").await? == "guest",
                "the page that opened the link is a guest"
            );
            page.shows_value("native", "5").await?;
            // The page edits the host's contact and adds one of its own: the host has both.
            Page::type_value(&page, "native", "42").await?;
            host.wait_value("native", &json!(42)).await?;
            let mine = add_contact(&page, (420.0, 260.0)).await?;
            Page::type_value(&page, &mine, "7").await?;
            host.wait_value(&mine, &json!(7)).await?;
            // The host edits again; the page shows it.
            host.send(r#"{"type":"update-content","contact":"native","value":9}"#)?;
            page.shows_value("native", "9").await?;
            // One state: the hash the CLI reports is the one the page shows.
            let hash = host.settled_hash().await?;
            page_hash_is(&page, &hash).await?;
            Ok(())
        }
        .await;
        let result = report(result, "native-host", &[&page]).await;
        page.close().await;
        result
    });
}

#[test]
fn a_native_guest_joins_a_browser_host_and_both_converge() {
    run("browser-host", async |w, serve| {
        let base = format!("http://{}", serve.addr);
        let page = Session::start_at("interop-host", base, &w.chromium).await?;
        let result = async {
            let link = host_from_page(&page).await?;
            // The page's network before anyone joins: one contact with a value.
            let first = add_contact(&page, (220.0, 200.0)).await?;
            Page::type_value(&page, &first, "3").await?;
            page.shows_value(&first, "3").await?;

            let mut guest = NativePeer::join(&w.bin, &link)?;
            guest.editable().await?;
            linked(&page, 1).await?;
            guest.wait_value(&first, &json!(3)).await?;
            // The native guest edits the page's contact and adds its own.
            guest.send(&format!(
                r#"{{"type":"update-content","contact":{},"value":11}}"#,
                js_str(&first)
            ))?;
            page.shows_value(&first, "11").await?;
            guest.send(r#"{"type":"add-contact","id":"native","group":"root"}"#)?;
            guest.send(r#"{"type":"update-content","contact":"native","value":"from the cli"}"#)?;
            has_node(&page, "native").await?;
            page.shows_value("native", "from the cli").await?;
            // The page edits the guest's contact; the guest has it.
            Page::type_value(&page, "native", "12").await?;
            guest.wait_value("native", &json!(12)).await?;
            let hash = guest.settled_hash().await?;
            page_hash_is(&page, &hash).await?;
            Ok(())
        }
        .await;
        let result = report(result, "browser-host", &[&page]).await;
        page.close().await;
        result
    });
}

#[test]
fn firefox_joins_a_room_chromium_hosts() {
    let Some((firefox, driver)) = browsers::firefox::setup() else {
        return;
    };
    run("firefox-guest", async |w, serve| {
        let base = format!("http://{}", serve.addr);
        let chromium = Session::start_at("interop-chromium-host", base, &w.chromium).await?;
        let link = match host_from_page(&chromium).await {
            Ok(l) => l,
            Err(e) => {
                let e = report(Err(e), "firefox-guest", &[&chromium]).await;
                chromium.close().await;
                return e;
            }
        };
        let ff = match Firefox::start("guest", &link, &firefox, &driver).await {
            Ok(f) => f,
            Err(e) => {
                chromium.close().await;
                return Err(e.context("Firefox starts on the join link"));
            }
        };
        let result = async {
            linked(&chromium, 1).await?;
            linked(&ff, 1).await?;
            ensure!(
                ff.eval::<String>("document.body.dataset.p2pRole").await? == "guest",
                "Firefox is the guest"
            );
            // Firefox adds a contact; Chromium sees it and types into it; Firefox shows that.
            let id = add_contact(&ff, (260.0, 220.0)).await?;
            has_node(&chromium, &id).await?;
            Page::type_value(&chromium, &id, "21").await?;
            ff.shows_value(&id, "21").await?;
            // ...and the other way.
            ff.type_value(&id, "\"from firefox\"").await?;
            chromium.shows_value(&id, "from firefox").await?;
            same_hash(&chromium, &ff).await?;
            // The host's status panel lists its guest: two peers in one room (the README's
            // picture comes from here).
            ensure!(
                chromium.count("[data-testid='p2p-peer']").await? == 1,
                "the host's status lists one other member"
            );
            Page::screenshot(&chromium, "p2p-two-peers.png").await?;
            Ok(())
        }
        .await;
        let result = report(result, "firefox-guest", &[&chromium, &ff]).await;
        ff.close().await;
        chromium.close().await;
        result
    });
}
