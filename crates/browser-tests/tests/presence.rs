//! Presence in remote mode, in real headless Chromium against a real `bassline serve`: page B
//! shows page A's pointer (named, in A's colour) where A points and A's selection outline;
//! lists A under the group A entered (and stops drawing A's pointer in the root); and drops
//! A's pointer when A's page closes.

mod common;

use anyhow::{Context, Result, ensure};
use common::{
    Session, js_str,
    serve::{Serve, go_remote},
};

/// B's drawing of A's pointer: (left, top) of its tip in window coordinates, its name tag and
/// its colour; `None` when B draws no pointer of A.
async fn pointer_of(b: &Session, a_peer: &str) -> Result<Option<((f64, f64), String, String)>> {
    b.eval(&format!(
        "(() => {{ const e = document.querySelector({}); \
         if (!e) return null; const r = e.getBoundingClientRect(); \
         return [[r.left, r.top], e.querySelector('.peer-name').textContent, getComputedStyle(e).color]; }})()",
        js_str(&format!(".peer-cursor[data-peer='{a_peer}']"))
    ))
    .await
}

/// Window coordinates of `selector`'s centre and its rectangle (left, top, right, bottom).
async fn rect(s: &Session, selector: &str) -> Result<(f64, f64, f64, f64)> {
    let r: Option<(f64, f64, f64, f64)> = s
        .eval(&format!(
            "(() => {{ const e = document.querySelector({}); if (!e) return null; \
             const r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; }})()",
            js_str(selector)
        ))
        .await?;
    r.with_context(|| format!("nothing matches {selector}"))
}

async fn scenario(a: &Session, b: &Session) -> Result<()> {
    go_remote(a).await?;
    go_remote(b).await?;
    let a_peer: String = a.eval("document.body.dataset.peer").await?;
    let a_name: String = a.eval("document.querySelector('.my-name').value").await?;
    ensure!(
        a_name.starts_with("guest-"),
        "a fresh browser is called guest-XXXX, not {a_name:?}"
    );

    // A makes a contact and a subgroup; B sees both (the same layout on both pages).
    a.hover(a.canvas_point(200.0, 200.0).await?).await?;
    a.key("c").await?;
    a.hover(a.canvas_point(520.0, 200.0).await?).await?;
    a.key("g").await?;
    a.wait_for(
        "document.querySelectorAll('[data-node]').length === 2",
        "A's two nodes",
    )
    .await?;
    let contact: String = a
        .eval("document.querySelector('.node.contact').dataset.node")
        .await?;
    let group: String = a
        .eval("document.querySelector('.node.group').dataset.node")
        .await?;
    // All of A's state, placements included (a node can show before its placement).
    let hash = a.state_hash().await?;
    b.wait_for(
        &format!("document.body.dataset.stateHash === {}", js_str(&hash)),
        "A's nodes, placed, on B",
    )
    .await?;
    // Both pages frame the same group the same way, so a canvas point is at the same place
    // relative to a node on both.
    for s in [a, b] {
        s.key("f").await?;
    }

    // A points at the middle of the contact's title bar.
    let node = format!("[data-node='{contact}']");
    let (l, t, _, _) = rect(a, &node).await?;
    let spot = a.centre(&format!("{node} .head")).await?;
    let (dx, dy) = (spot.0 - l, spot.1 - t);
    a.hover(spot).await?;
    b.wait_for(
        &format!("document.querySelector(\".peer-cursor[data-peer='{a_peer}']\")"),
        "A's pointer on B",
    )
    .await?;
    // B draws the pointer's tip at the same spot relative to the same contact (B's zoom may
    // differ a little; a few pixels of slack).
    let (bl, bt, _, _) = rect(b, &node).await?;
    let scale = zoom(b, &node).await? / zoom(a, &node).await?;
    let want = (bl + dx * scale, bt + dy * scale);
    let mut got = None;
    for _ in 0..100 {
        got = pointer_of(b, &a_peer).await?;
        if let Some(((x, y), _, _)) = &got
            && (x - want.0).abs() < 4.0
            && (y - want.1).abs() < 4.0
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let ((x, y), name, colour) = got.context("A's pointer vanished")?;
    ensure!(
        (x - want.0).abs() < 4.0 && (y - want.1).abs() < 4.0,
        "A's pointer is drawn at ({x:.0}, {y:.0}) on B, expected near ({:.0}, {:.0})",
        want.0,
        want.1
    );
    ensure!(
        name == a_name,
        "A's pointer is labelled {name:?}, not {a_name:?}"
    );

    // A selects the contact: B outlines it in A's colour.
    a.click(spot).await?;
    let outline = format!(".peer-selection[data-peer='{a_peer}'][data-outlines='{contact}']");
    b.wait_for(
        &format!("document.querySelector(\"{outline}\")"),
        "A's selection outline on B",
    )
    .await?;
    let (ol, ot, or, ob) = rect(b, &outline).await?;
    let (nl, nt, nr, nb) = rect(b, &node).await?;
    ensure!(
        ol <= nl && ot <= nt && or >= nr && ob >= nb,
        "the outline ({ol}, {ot}, {or}, {ob}) does not surround the contact ({nl}, {nt}, {nr}, {nb})"
    );
    let outline_colour: String = b
        .eval(&format!(
            "getComputedStyle(document.querySelector(\"{outline}\")).borderTopColor"
        ))
        .await?;
    ensure!(
        outline_colour == colour,
        "A's outline is {outline_colour}, its pointer {colour}: one colour per peer"
    );
    let b_peer: String = b.eval("document.body.dataset.peer").await?;
    ensure!(b_peer != a_peer, "two peers");

    // A enters the subgroup: B lists A there, and no longer draws A's pointer in the root.
    let centre = a.centre(&format!("[data-node='{group}'] .head")).await?;
    a.double_click(centre).await?;
    a.wait_for(
        &format!("location.hash === {}", js_str(&format!("#g={group}"))),
        "A inside the subgroup",
    )
    .await?;
    a.hover(a.canvas_point(300.0, 300.0).await?).await?;
    let entry = format!(".who .peer[data-peer='{a_peer}']");
    b.wait_for(
        &format!(
            "document.querySelector(\"{entry}\")?.dataset.group === {}",
            js_str(&group)
        ),
        "A listed in the subgroup on B",
    )
    .await?;
    let listed = b.text(&entry).await?;
    ensure!(listed.contains(&a_name), "the list names A: {listed:?}");
    b.wait_for(
        &format!("!document.querySelector(\".peer-cursor[data-peer='{a_peer}']\")"),
        "A's pointer gone from B's root",
    )
    .await?;

    // A comes back to the root and points again; then its page closes: B drops its pointer
    // and its entry.
    a.key("u").await?;
    a.wait_for(
        "!location.hash.includes('g=') || location.hash === '#g=root'",
        "A in the root",
    )
    .await?;
    a.hover(a.canvas_point(100.0, 100.0).await?).await?;
    b.wait_for(
        &format!("document.querySelector(\".peer-cursor[data-peer='{a_peer}']\")"),
        "A's pointer back on B",
    )
    .await?;
    Ok(())
}

/// A page's zoom: a node's drawn width over its layout width.
async fn zoom(s: &Session, node: &str) -> Result<f64> {
    s.eval(&format!(
        "(() => {{ const e = document.querySelector({}); \
         return e.getBoundingClientRect().width / e.offsetWidth; }})()",
        js_str(node)
    ))
    .await
}

#[test]
fn b_sees_as_pointer_selection_and_group_and_loses_them_when_a_leaves() {
    let Some((dist, chromium)) = common::setup() else {
        return;
    };
    let bin = common::serve::require_bin();
    let data = common::serve::data_dir("presence");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    rt.block_on(async {
        let serve = Serve::start(&bin, &data, &dist, "127.0.0.1:0").expect("serve starts");
        let base = format!("http://{}", serve.addr);
        let a = Session::start_at("presence-a", base.clone(), &chromium)
            .await
            .expect("browser A starts");
        let b = Session::start_at("presence-b", base, &chromium)
            .await
            .expect("browser B starts");
        let mut result = scenario(&a, &b).await;
        let a_peer: Option<String> = a.eval("document.body.dataset.peer").await.ok();
        if let Err(e) = &result {
            for (s, name) in [(&a, "a"), (&b, "b")] {
                let shot = s.screenshot(&format!("presence-{name}-failure.png")).await;
                eprintln!(
                    "page {name}: screenshot {shot:?}, status bar: {:?}",
                    s.text(".statusbar").await
                );
            }
            eprintln!("{e:#}");
        }
        a.close().await;
        if result.is_ok() {
            let a_peer = a_peer.unwrap_or_default();
            result = b
                .wait_for(
                    &format!(
                        "!document.querySelector(\".peer-cursor[data-peer='{a_peer}']\") && \
                         !document.querySelector(\".who .peer[data-peer='{a_peer}']\")"
                    ),
                    "A's pointer and entry gone from B after A's page closed",
                )
                .await;
            if result.is_err() {
                let _ = b.screenshot("presence-b-failure.png").await;
            }
        }
        b.close().await;
        drop(serve);
        let _ = std::fs::remove_dir_all(&data);
        result.expect("the presence scenario");
    });
}
