//! Remote mode in real headless Chromium against a real `bassline serve` process: the server
//! serves the editor at `/` and is the permanent host of its network; two browsers edit it and
//! see each other's edits live, and a restart of the server keeps the network.

mod common;

use anyhow::{Result, ensure};
use common::{
    Session, js_str,
    serve::{Serve, bassline_bin},
};

/// Switches a page to remote mode against the server it was loaded from, through the mode
/// menu, and waits until it can edit.
async fn go_remote(s: &Session) -> Result<()> {
    s.click_on(".mode-button").await?;
    s.click_on(".mode-remote button").await?;
    editable(s, "remote mode").await
}

async fn editable(s: &Session, what: &str) -> Result<()> {
    s.wait_for(
        "document.body.dataset.link === 'connected' && document.body.dataset.readOnly === '0'",
        &format!("{what}: connected and editable"),
    )
    .await
}

async fn same_hash(a: &Session, b: &Session) -> Result<String> {
    let hash = a.state_hash().await?;
    b.wait_for(
        &format!("document.body.dataset.stateHash === {}", js_str(&hash)),
        "the same state hash on both pages",
    )
    .await?;
    Ok(hash)
}

async fn shows_value(s: &Session, contact: &str, value: &str) -> Result<()> {
    s.wait_for(
        &format!(
            "document.querySelector(\"[data-node='{contact}'] .value\")?.textContent === {}",
            js_str(value)
        ),
        &format!("{contact} showing {value}"),
    )
    .await
}

async fn scenario(
    a: &Session,
    b: &Session,
    serve: &mut Serve,
    restart: impl Fn(&str) -> Result<Serve>,
) -> Result<()> {
    ensure!(
        a.text(".mode").await?.starts_with("Local"),
        "a fresh page starts in local mode"
    );
    go_remote(a).await?;
    go_remote(b).await?;
    ensure!(
        a.text(".mode").await?.starts_with("Remote"),
        "the status bar shows the mode"
    );
    ensure!(
        a.eval::<String>("document.body.dataset.peer").await?
            != b.eval::<String>("document.body.dataset.peer").await?,
        "each page is a peer of its own"
    );

    // A adds a contact; B sees it appear without doing anything.
    a.hover(a.canvas_point(200.0, 200.0).await?).await?;
    a.key("c").await?;
    a.wait_for(
        "document.querySelectorAll('[data-node]').length === 1",
        "A's new contact",
    )
    .await?;
    let id: String = a
        .eval("document.querySelector('[data-node]').dataset.node")
        .await?;
    b.wait_for(
        &format!("document.querySelector(\"[data-node='{id}']\")"),
        "A's contact on B",
    )
    .await?;
    // B types a value into it; A sees the value.
    b.type_value(&id, "42").await?;
    shows_value(a, &id, "42").await?;
    let before = same_hash(a, b).await?;

    // The server goes away: both pages say so and refuse edits meanwhile.
    serve.stop()?;
    for (s, name) in [(a, "A"), (b, "B")] {
        s.wait_for(
            "document.body.dataset.link === 'offline' && document.body.dataset.readOnly === '1'",
            &format!("{name} offline and read-only"),
        )
        .await?;
        ensure!(
            s.text(".readonly")
                .await?
                .contains("waiting for the server"),
            "{name}: the status bar shows the read-only period"
        );
        ensure!(
            s.text(".link").await?.contains("lost the link"),
            "{name}: the status bar says the link is lost"
        );
    }

    // It comes back on the same address with the same data: the pages reconnect on their
    // own, the network is as it was, and edits flow again.
    *serve = restart(&serve.addr)?;
    editable(a, "A after the restart").await?;
    editable(b, "B after the restart").await?;
    shows_value(a, &id, "42").await?;
    shows_value(b, &id, "42").await?;
    ensure!(
        a.state_hash().await? == before,
        "the network changed across the restart"
    );
    a.type_value(&id, "7").await?;
    shows_value(b, &id, "7").await?;

    // The choice of mode survives a reload, and the reloaded page shows the server's network.
    b.page.reload().await?;
    b.wait_ready().await?;
    editable(b, "B after a reload").await?;
    ensure!(
        b.text(".mode").await?.starts_with("Remote"),
        "B is still in remote mode"
    );
    shows_value(b, &id, "7").await?;
    // ...and keeps editing it live.
    b.type_value(&id, "9").await?;
    shows_value(a, &id, "9").await?;
    same_hash(a, b).await?;
    Ok(())
}

#[test]
fn two_pages_in_remote_mode_edit_live_and_a_serve_restart_keeps_the_network() {
    let Some((dist, chromium)) = common::setup() else {
        return;
    };
    // Under `cargo xtask test` (which set up the browser above) the binary must be there:
    // a missing one fails rather than letting the test pass unrun.
    let bin = bassline_bin().expect(
        "no bassline binary: cargo xtask test sets BASSLINE_BIN; otherwise build it first \
         (cargo build -p bassline-cli)",
    );
    let data = std::env::temp_dir().join(format!("bassline-browser-remote-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    rt.block_on(async {
        let mut serve = Serve::start(&bin, &data, &dist, "127.0.0.1:0").expect("serve starts");
        let base = format!("http://{}", serve.addr);
        let a = Session::start_at("remote-a", base.clone(), &chromium)
            .await
            .expect("browser A starts");
        let b = Session::start_at("remote-b", base, &chromium)
            .await
            .expect("browser B starts");
        let result = scenario(&a, &b, &mut serve, |addr| {
            Serve::start(&bin, &data, &dist, addr)
        })
        .await;
        if let Err(e) = &result {
            for (s, name) in [(&a, "a"), (&b, "b")] {
                let shot = s.screenshot(&format!("remote-{name}-failure.png")).await;
                eprintln!(
                    "page {name}: screenshot {shot:?}, status bar: {:?}",
                    s.text(".statusbar").await
                );
            }
            eprintln!("{e:#}");
        }
        a.close().await;
        b.close().await;
        drop(serve);
        let _ = std::fs::remove_dir_all(&data);
        result.expect("the remote-mode scenario");
    });
}
