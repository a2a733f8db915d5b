//! The editor in Firefox: the same bundle in headless Firefox (through geckodriver) and
//! headless Chromium, both in remote mode against one real `bassline serve`. An edit made in
//! either browser appears in the other, so the bundle runs in Firefox and both browsers speak
//! the same remote protocol.

mod browsers;
mod common;

use anyhow::{Result, ensure};
use browsers::{Page, firefox::Firefox};
use common::{
    Session, js_str,
    serve::{Serve, bassline_bin},
};

/// Switches a page to remote mode through the mode menu and waits until it can edit.
async fn go_remote(p: &impl Page) -> Result<()> {
    p.click_on(".mode-button").await?;
    p.wait_for(
        "document.querySelector('.mode-remote button')",
        "the mode menu",
    )
    .await?;
    p.click_on(".mode-remote button").await?;
    p.wait_for(
        "document.body.dataset.link === 'connected' && document.body.dataset.readOnly === '0'",
        "remote mode: connected and editable",
    )
    .await
}

/// Waits until `b` shows the state hash `a` shows now.
async fn same_hash(a: &impl Page, b: &impl Page) -> Result<String> {
    let hash = a.state_hash().await?;
    b.wait_for(
        &format!("document.body.dataset.stateHash === {}", js_str(&hash)),
        "the same state hash on both pages",
    )
    .await?;
    Ok(hash)
}

async fn scenario(chromium: &Session, firefox: &Firefox) -> Result<()> {
    ensure!(
        firefox.text(".mode").await?.starts_with("Local"),
        "a fresh Firefox page starts in local mode"
    );
    go_remote(chromium).await?;
    go_remote(firefox).await?;
    let (c_peer, f_peer): (String, String) = (
        chromium.eval("document.body.dataset.peer").await?,
        firefox.eval("document.body.dataset.peer").await?,
    );
    ensure!(c_peer != f_peer, "each browser is a peer of its own");

    ensure!(
        chromium.count("[data-node]").await? == 0,
        "the served network starts empty"
    );
    // Firefox adds a contact where its pointer is; Chromium sees it appear.
    firefox
        .hover(firefox.canvas_point(220.0, 180.0).await?)
        .await?;
    firefox.key("c").await?;
    firefox
        .wait_for(
            "document.querySelectorAll('[data-node]').length === 1",
            "Firefox's new contact",
        )
        .await?;
    let id: String = firefox
        .eval("document.querySelector('[data-node]').dataset.node")
        .await?;
    chromium
        .wait_for(
            &format!("document.querySelector(\"[data-node='{id}']\")"),
            "Firefox's contact in Chromium",
        )
        .await?;

    // A new contact is two edits (add, then place): Chromium may draw it before it is placed.
    // Wait for both pages to hold the same state, so the double-click lands on the contact.
    same_hash(firefox, chromium).await?;
    // Chromium types a value into it; Firefox shows it.
    Page::type_value(chromium, &id, "42").await?;
    firefox.shows_value(&id, "42").await?;
    // ...and back: Firefox types one; Chromium shows it.
    firefox.type_value(&id, "\"from firefox\"").await?;
    chromium.shows_value(&id, "from firefox").await?;
    same_hash(firefox, chromium).await?;
    ensure!(
        chromium
            .eval::<usize>("document.querySelectorAll('[data-node]').length")
            .await?
            == 1,
        "Chromium shows exactly the one contact"
    );
    Ok(())
}

#[test]
fn firefox_and_chromium_edit_one_served_network_live() {
    let Some((dist, chromium)) = common::setup() else {
        return;
    };
    let Some((firefox, driver)) = browsers::firefox::setup() else {
        return;
    };
    let bin = bassline_bin().expect(
        "no bassline binary: cargo xtask test sets BASSLINE_BIN; otherwise build it first \
         (cargo build -p bassline-cli)",
    );
    let data =
        std::env::temp_dir().join(format!("bassline-browser-firefox-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    rt.block_on(async {
        let serve = Serve::start(&bin, &data, &dist, "127.0.0.1:0").expect("serve starts");
        let base = format!("http://{}", serve.addr);
        let c = Session::start_at("firefox-pair-chromium", base.clone(), &chromium)
            .await
            .expect("Chromium starts");
        let f = match Firefox::start("pair", &base, &firefox, &driver).await {
            Ok(f) => f,
            Err(e) => {
                c.close().await;
                panic!("Firefox starts: {e:#}");
            }
        };
        let result = scenario(&c, &f).await;
        if let Err(e) = &result {
            let shots = (
                Page::screenshot(&c, "firefox-pair-chromium-failure.png").await,
                f.screenshot("firefox-pair-firefox-failure.png").await,
            );
            eprintln!(
                "screenshots {shots:?}; status bars: Chromium {:?}, Firefox {:?}",
                c.text(".statusbar").await,
                f.text(".statusbar").await
            );
            eprintln!("{e:#}");
        }
        f.close().await;
        c.close().await;
        drop(serve);
        let _ = std::fs::remove_dir_all(&data);
        result.expect("the Firefox + Chromium remote-mode scenario");
    });
}
