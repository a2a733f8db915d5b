//! Peer-to-peer mode in real headless Chromium: pages of the editor, each in a browser of its
//! own, share a network over WebRTC data channels, introduced by a real `bassline serve`
//! (signaling at `/signal`). One page hosts a room through the room manager; the others open
//! its join link. Each test judges the outcome by what the pages show (values, node counts)
//! and by their state hashes agreeing, never by asking the driver.

mod common;

use std::path::PathBuf;

use anyhow::{Context, Result, ensure};
use common::{
    Session, js_str,
    serve::{Serve, bassline_bin},
};

/// Opens the room manager through the mode menu.
async fn open_manager(s: &Session) -> Result<()> {
    s.click_on(".mode-button").await?;
    s.click_on("[data-testid='mode-p2p']").await?;
    s.wait_for(
        "document.querySelector(\"[data-testid='room-manager']\")",
        "the room manager",
    )
    .await
}

/// Hosts a room through the UI; returns its join link.
async fn host(s: &Session) -> Result<String> {
    open_manager(s).await?;
    s.click_on("[data-testid='host-room']").await?;
    s.wait_for(
        "document.querySelector(\"[data-testid='join-link']\")?.value?.includes('#join=')",
        "the room's join link",
    )
    .await?;
    let code = s.text("[data-testid='room-code']").await?;
    ensure!(
        code.len() == 6 && code.chars().all(|c| c.is_ascii_alphanumeric()),
        "a six-character code is shown: {code:?}"
    );
    let link: String = s
        .eval("document.querySelector(\"[data-testid='join-link']\").value")
        .await?;
    ensure!(
        link.contains(&format!("#join={code}&k=")),
        "the link carries the code and the key in its fragment: {link}"
    );
    s.click_on("[data-testid='room-close']").await?;
    s.wait_for(
        "document.body.dataset.p2pRole === 'host' && document.body.dataset.readOnly === '0'",
        "the hosting page editable as host",
    )
    .await?;
    Ok(link)
}

/// Waits until `s` has open links to `peers` members and may edit.
async fn linked(s: &Session, peers: usize, what: &str) -> Result<()> {
    s.wait_for(
        &format!(
            "document.body.dataset.p2pPeers === '{peers}' && document.body.dataset.readOnly === '0'"
        ),
        &format!("{what}: linked to {peers} and editable"),
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

async fn has_node(s: &Session, id: &str) -> Result<()> {
    s.wait_for(
        &format!("document.querySelector(\"[data-node='{id}']\")"),
        &format!("node {id}"),
    )
    .await
}

/// Drags a new wire from one handle to another and picks its kind with a key.
async fn wire(s: &Session, from: &str, to: &str, kind_key: &str) -> Result<()> {
    let wires = s.count(".wire").await?;
    s.drag(s.centre(from).await?, s.centre(to).await?).await?;
    s.wait_for("document.querySelector('.prompt')", "the wire-kind prompt")
        .await?;
    s.key(kind_key).await?;
    s.wait_for(
        &format!(
            "document.querySelectorAll('.wire').length === {}",
            wires + 1
        ),
        "the new wire",
    )
    .await
}

/// On `s` (member `me`, so its ids start `p{me}-`): an `add` gadget, contacts a and b wired to
/// its inputs and a result contact wired from its output. Returns the ids (a, b, result).
async fn build_sum(s: &Session, me: &str) -> Result<(String, String, String)> {
    let id = |x: &str| format!("p{me}-{x}");
    s.click_on("button[data-gadget='add']").await?;
    s.wait_for("document.querySelector('.banner')", "the placing banner")
        .await?;
    s.click(s.canvas_point(470.0, 240.0).await?).await?;
    has_node(s, &id("g1")).await?;
    s.hover(s.canvas_point(160.0, 160.0).await?).await?;
    s.key("c").await?;
    has_node(s, &id("c1")).await?;
    s.hover(s.canvas_point(160.0, 340.0).await?).await?;
    s.key("c").await?;
    has_node(s, &id("c2")).await?;
    s.hover(s.canvas_point(780.0, 240.0).await?).await?;
    s.key("c").await?;
    has_node(s, &id("c3")).await?;
    let g = id("g1");
    wire(
        s,
        &format!("[data-node='{}'] .handle.out", id("c1")),
        &format!(".handle[data-contact='{g}/a']"),
        "Enter",
    )
    .await?;
    wire(
        s,
        &format!("[data-node='{}'] .handle.out", id("c2")),
        &format!(".handle[data-contact='{g}/b']"),
        "Enter",
    )
    .await?;
    wire(
        s,
        &format!(".handle[data-contact='{g}/out']"),
        &format!("[data-node='{}'] .handle.in", id("c3")),
        "d",
    )
    .await?;
    Ok((id("c1"), id("c2"), id("c3")))
}

/// Everything one test needs: the binary, the bundle, Chromium, a data folder.
struct World {
    bin: PathBuf,
    dist: PathBuf,
    chromium: PathBuf,
    data: PathBuf,
}

fn world(name: &str) -> Option<World> {
    let (dist, chromium) = common::setup()?;
    // Under `cargo xtask test` (which set up the browser above) the binary must be there: a
    // missing one fails rather than letting the test pass unrun.
    let bin = bassline_bin().expect(
        "no bassline binary: cargo xtask test sets BASSLINE_BIN; otherwise build it first \
         (cargo build -p bassline-cli)",
    );
    let data = std::env::temp_dir().join(format!("bassline-p2p-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    Some(World {
        bin,
        dist,
        chromium,
        data,
    })
}

/// Runs `scenario` against a fresh `bassline serve`, with screenshots of every page if it
/// fails. `pages` names the browsers to start on the editor's page.
fn run(
    name: &str,
    scenario: impl AsyncFnOnce(&World, &str, &mut Vec<(String, Session)>) -> Result<()>,
) {
    run_serving(name, async |w, serve, pages| {
        let base = format!("http://{}", serve.addr);
        scenario(w, &base, pages).await
    });
}

/// [`run`] for scenarios that stop or restart the server themselves (`serve`: the one
/// running, which they may replace).
fn run_serving(
    name: &str,
    scenario: impl AsyncFnOnce(&World, &mut Serve, &mut Vec<(String, Session)>) -> Result<()>,
) {
    let Some(w) = world(name) else { return };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    rt.block_on(async {
        let mut serve =
            Serve::start(&w.bin, &w.data, &w.dist, "127.0.0.1:0").expect("serve starts");
        let mut pages: Vec<(String, Session)> = Vec::new();
        let result = scenario(&w, &mut serve, &mut pages).await;
        if let Err(e) = &result {
            for (n, s) in &pages {
                let shot = s.screenshot(&format!("p2p-{name}-{n}-failure.png")).await;
                eprintln!(
                    "page {n}: screenshot {shot:?}, status bar: {:?}, p2p status: {:?}",
                    s.text(".statusbar").await,
                    s.text("[data-testid='p2p-status']").await
                );
            }
            eprintln!("{e:#}");
        }
        for (_, s) in pages {
            s.close().await;
        }
        drop(serve);
        let _ = std::fs::remove_dir_all(&w.data);
        result.expect("the peer-to-peer scenario");
    });
}

async fn page(w: &World, name: &str, url: &str) -> Result<Session> {
    Session::start_at(name, url.to_owned(), &w.chromium)
        .await
        .with_context(|| format!("browser {name} starts at {url}"))
}

/// Page A (`p2p-{tag}-a`) opens `serve`'s editor and hosts a room, page B (`p2p-{tag}-b`) joins
/// by its link; returns the link once both are linked.
async fn a_hosts_and_b_joins(
    w: &World,
    serve: &Serve,
    pages: &mut Vec<(String, Session)>,
    tag: &str,
) -> Result<String> {
    let base = format!("http://{}", serve.addr);
    pages.push(("a".into(), page(w, &format!("p2p-{tag}-a"), &base).await?));
    let link = host(pick(pages, "a")).await?;
    pages.push(("b".into(), page(w, &format!("p2p-{tag}-b"), &link).await?));
    linked(pick(pages, "a"), 1, "A").await?;
    linked(pick(pages, "b"), 1, "B").await?;
    Ok(link)
}

fn pick<'a>(pages: &'a [(String, Session)], name: &str) -> &'a Session {
    &pages.iter().find(|(n, _)| n == name).expect("started").1
}

/// Reloads `s` (in a room of two) and waits until it is linked again under the member number
/// it had: the server gives that number back only to the holder of its resume token.
async fn reload_into_its_place(s: &Session, name: &str) -> Result<()> {
    let number: String = s.eval("document.body.dataset.peer").await?;
    s.page.reload().await?;
    s.wait_ready().await?;
    linked(s, 1, &format!("{name} after its reload")).await?;
    ensure!(
        s.eval::<String>("document.body.dataset.peer").await? == number,
        "{name} came back as member {number}"
    );
    Ok(())
}

#[test]
fn two_pages_build_a_network_over_p2p_and_a_reloaded_guest_catches_up() {
    run("two", async |w, base, pages| {
        pages.push(("a".into(), page(w, "p2p-a", base).await?));
        let link = host(pick(pages, "a")).await?;
        // B opens the link: straight into the room, no clicks.
        pages.push(("b".into(), page(w, "p2p-b", &link).await?));
        let (a, b) = (pick(pages, "a"), pick(pages, "b"));
        linked(a, 1, "A").await?;
        linked(b, 1, "B").await?;
        // A figure, not a check: how long the newcomer's link took from its new connection
        // (before the offer) to both channels open.
        eprintln!(
            "p2p channel open (offering page): {} ms",
            b.eval::<String>("document.body.dataset.p2pOpenMs").await?
        );
        ensure!(
            b.eval::<String>("document.body.dataset.p2pRole").await? == "guest",
            "the page that joined is a guest"
        );
        ensure!(
            b.text("[data-testid='p2p-peer']").await?.contains("host"),
            "B's status names the host"
        );
        b.wait_for(
            "/direct|relayed/.test(document.querySelector(\"[data-testid='p2p-peer']\")?.textContent ?? '')",
            "B's status shows the link's path",
        )
        .await?;

        // A builds a small network; B fills in one input: both show the propagated sum.
        let (x, y, sum) = build_sum(a, "1").await?;
        has_node(b, &sum).await?;
        a.type_value(&x, "2").await?;
        shows_value(b, &x, "2").await?;
        b.type_value(&y, "3").await?;
        shows_value(a, &sum, "5").await?;
        shows_value(b, &sum, "5").await?;
        same_hash(a, b).await?;

        // B reloads: it takes its place back (the same member number, which the server gives
        // only to the holder of its resume token), catches up, and edits on.
        reload_into_its_place(b, "B").await?;
        shows_value(b, &sum, "5").await?;
        a.type_value(&x, "10").await?;
        shows_value(b, &sum, "13").await?;
        b.type_value(&y, "1").await?;
        shows_value(a, &sum, "11").await?;
        same_hash(a, b).await?;
        Ok(())
    });
}

#[test]
fn three_pages_keep_editing_when_the_host_page_closes() {
    run("three", async |w, base, pages| {
        pages.push(("a".into(), page(w, "p2p3-a", base).await?));
        let link = host(pick(pages, "a")).await?;
        pages.push(("b".into(), page(w, "p2p3-b", &link).await?));
        pages.push(("c".into(), page(w, "p2p3-c", &link).await?));
        for n in ["a", "b", "c"] {
            linked(pick(pages, n), 2, n).await?;
        }
        let (a, b, c) = (pick(pages, "a"), pick(pages, "b"), pick(pages, "c"));
        // Everyone edits before the host goes.
        a.hover(a.canvas_point(200.0, 200.0).await?).await?;
        a.key("c").await?;
        has_node(c, "p1-c1").await?;
        b.type_value("p1-c1", "7").await?;
        shows_value(c, "p1-c1", "7").await?;
        c.hover(c.canvas_point(400.0, 300.0).await?).await?;
        c.key("c").await?;
        let c_node: String = c
            .eval("[...document.querySelectorAll('[data-node]')].map(e => e.dataset.node).find(n => n !== 'p1-c1')")
            .await?;
        has_node(b, &c_node).await?;
        same_hash(a, b).await?;
        same_hash(a, c).await?;

        // The host page closes mid-session.
        let (_, host_page) = pages.remove(0);
        host_page.close().await;
        let (b, c) = (pick(pages, "b"), pick(pages, "c"));
        for (s, n) in [(b, "B"), (c, "C")] {
            s.wait_for(
                "document.body.dataset.p2pPeers === '1' && document.body.dataset.readOnly === '0'",
                &format!("{n} editable again, linked to the other guest"),
            )
            .await?;
        }
        one_host(b, c).await?;
        // Nothing was lost, and edits continue both ways.
        shows_value(b, "p1-c1", "7").await?;
        has_node(b, &c_node).await?;
        c.type_value("p1-c1", "8").await?;
        shows_value(b, "p1-c1", "8").await?;
        b.hover(b.canvas_point(600.0, 200.0).await?).await?;
        b.key("c").await?;
        ensure!(b.count("[data-node]").await? == 3, "B shows three contacts");
        c.wait_for(
            "document.querySelectorAll('[data-node]').length === 3",
            "B's new contact on C",
        )
        .await?;
        same_hash(b, c).await?;
        Ok(())
    });
}

/// Waits until exactly one of the two pages hosts and the other follows it.
async fn one_host(b: &Session, c: &Session) -> Result<()> {
    let start = std::time::Instant::now();
    loop {
        let roles = (
            b.eval::<String>("document.body.dataset.p2pRole").await?,
            c.eval::<String>("document.body.dataset.p2pRole").await?,
        );
        if matches!(
            (roles.0.as_str(), roles.1.as_str()),
            ("host", "guest") | ("guest", "host")
        ) {
            return Ok(());
        }
        ensure!(
            start.elapsed() < std::time::Duration::from_secs(60),
            "no single new host after the host page closed: {roles:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

async fn join_error(s: &Session, typed: &str, expect: &str) -> Result<()> {
    s.click_on("[data-testid='join-code']").await?;
    s.eval::<()>("(document.querySelector(\"[data-testid='join-code']\").value = '', null)")
        .await?;
    s.type_text(typed).await?;
    s.click_on("[data-testid='join-room']").await?;
    s.wait_for(
        &format!(
            "(document.querySelector(\"[data-testid='join-error']\")?.textContent ?? '').includes({})",
            js_str(expect)
        ),
        &format!("the message {expect:?} for {typed:?}"),
    )
    .await
}

#[test]
fn bad_codes_and_damaged_links_say_what_is_wrong() {
    run("bad", async |w, base, pages| {
        pages.push(("a".into(), page(w, "p2pbad-a", base).await?));
        let a = pick(pages, "a");
        open_manager(a).await?;
        join_error(a, "A3B7", "6 characters").await?;
        join_error(a, "A3B7K!", "letters A-Z").await?;
        // Well-formed but no such room: the server's answer, with the code.
        join_error(a, "zz99zz", "room ZZ99ZZ: no room with this code").await?;
        ensure!(
            a.eval::<String>("document.body.dataset.p2pError").await? == "room-not-found",
            "the page marks the server's refusal"
        );
        // A link whose key was cut short.
        let damaged = format!("{base}/#join=A3B7K9&k=AAAA");
        pages.push(("b".into(), page(w, "p2pbad-b", &damaged).await?));
        let b = pick(pages, "b");
        b.wait_for(
            "(document.querySelector(\"[data-testid='join-error']\")?.textContent ?? '').includes('cannot join with this link')",
            "the damaged link's message",
        )
        .await?;
        ensure!(
            b.eval::<String>("document.body.dataset.link ?? ''").await? != "connected",
            "a damaged link joins nothing"
        );
        Ok(())
    });
}

#[test]
fn a_bare_code_into_a_keyed_room_is_refused_and_told_to_use_the_link() {
    run("keyless", async |w, base, pages| {
        pages.push(("a".into(), page(w, "p2pkey-a", base).await?));
        let link = host(pick(pages, "a")).await?;
        let code = link
            .split("#join=")
            .nth(1)
            .and_then(|r| r.split('&').next())
            .context("the code in the link")?
            .to_owned();
        pages.push(("b".into(), page(w, "p2pkey-b", base).await?));
        let (a, b) = (pick(pages, "a"), pick(pages, "b"));
        open_manager(b).await?;
        b.click_on("[data-testid='join-code']").await?;
        b.type_text(&code).await?;
        b.click_on("[data-testid='join-room']").await?;
        // The host refuses B's unsigned offer and says why; B learns the link is needed.
        a.wait_for(
            "(document.querySelector('.toasts')?.textContent ?? '').includes('the signaling path was tampered with')",
            "the host's refusal toast",
        )
        .await?;
        ensure!(
            a.text(".toasts").await?.contains("unsigned offer"),
            "the host says the offer was unsigned"
        );
        b.wait_for(
            "(document.querySelector('.toasts')?.textContent ?? '').includes('needs its join link')",
            "the guest's message that the link is needed",
        )
        .await?;
        ensure!(
            a.eval::<String>("document.body.dataset.p2pPeers").await? == "0"
                && b.eval::<String>("document.body.dataset.readOnly").await? == "1",
            "no link was made and B cannot edit"
        );
        Ok(())
    });
}

/// Hosts a room through the UI with `password` (a PAKE room); returns its code.
async fn host_with_password(s: &Session, password: &str) -> Result<String> {
    open_manager(s).await?;
    s.click_on("[data-testid='host-password']").await?;
    s.type_text(password).await?;
    s.click_on("[data-testid='host-room']").await?;
    s.wait_for(
        "document.querySelector(\"[data-testid='join-link']\")?.value?.includes('#join=')",
        "the room's code and link",
    )
    .await?;
    let code = s.text("[data-testid='room-code']").await?;
    s.click_on("[data-testid='room-close']").await?;
    s.wait_for(
        "document.body.dataset.p2pRole === 'host' && document.body.dataset.readOnly === '0'",
        "the hosting page editable as host",
    )
    .await?;
    Ok(code)
}

/// Types `code` and `password` into the room manager of `s` and presses Join.
async fn join_by_password(s: &Session, code: &str, password: &str) -> Result<()> {
    open_manager(s).await?;
    s.click_on("[data-testid='join-code']").await?;
    s.type_text(code).await?;
    s.click_on("[data-testid='join-password']").await?;
    s.type_text(password).await?;
    s.click_on("[data-testid='join-room']").await
}

#[test]
fn a_page_joins_by_code_and_password_and_a_wrong_password_is_refused_by_the_host() {
    run("pake", async |w, base, pages| {
        pages.push(("a".into(), page(w, "p2ppake-a", base).await?));
        let code = host_with_password(pick(pages, "a"), "correct horse").await?;

        // B: code + the right password, no link. The host hands over the key; they link.
        pages.push(("b".into(), page(w, "p2ppake-b", base).await?));
        join_by_password(pick(pages, "b"), &code, "correct horse").await?;
        let (a, b) = (pick(pages, "a"), pick(pages, "b"));
        linked(a, 1, "A").await?;
        linked(b, 1, "B").await?;
        a.hover(a.canvas_point(200.0, 200.0).await?).await?;
        a.key("c").await?;
        has_node(b, "p1-c1").await?;
        b.type_value("p1-c1", "7").await?;
        shows_value(a, "p1-c1", "7").await?;
        b.hover(b.canvas_point(400.0, 300.0).await?).await?;
        b.key("c").await?;
        has_node(a, "p2-c1").await?;
        same_hash(a, b).await?;

        // B reloads: it rejoins with the key the host gave it (no password typed again).
        b.page.reload().await?;
        b.wait_ready().await?;
        linked(b, 1, "B after a reload").await?;
        a.type_value("p1-c1", "8").await?;
        shows_value(b, "p1-c1", "8").await?;

        // C: the right code, a wrong password. The host refuses it; nothing links; A and B
        // carry on.
        pages.push(("c".into(), page(w, "p2ppake-c", base).await?));
        let c = pick(pages, "c");
        join_by_password(c, &code, "wrong horse").await?;
        c.wait_for(
            "(document.querySelector(\"[data-testid='join-error']\")?.textContent ?? '').includes('wrong password')",
            "C's wrong-password message",
        )
        .await?;
        let (a, b) = (pick(pages, "a"), pick(pages, "b"));
        ensure!(
            c.eval::<String>("document.body.dataset.p2pError").await? == "wrong-password",
            "C marks the refusal as a wrong password"
        );
        ensure!(
            c.eval::<String>("document.body.dataset.p2pPeers ?? '0'")
                .await?
                == "0",
            "C linked to no one"
        );
        ensure!(
            c.count("[data-node='p1-c1']").await? == 0,
            "C received none of the room's network"
        );
        b.type_value("p1-c1", "9").await?;
        shows_value(a, "p1-c1", "9").await?;
        ensure!(
            a.eval::<String>("document.body.dataset.p2pPeers").await? == "1",
            "A is still linked to B only"
        );
        same_hash(a, b).await?;
        Ok(())
    });
}

#[test]
fn a_password_room_joined_by_code_alone_says_it_needs_the_password() {
    run("pake-none", async |w, base, pages| {
        pages.push(("a".into(), page(w, "p2ppk0-a", base).await?));
        let code = host_with_password(pick(pages, "a"), "s3cret").await?;
        pages.push(("b".into(), page(w, "p2ppk0-b", base).await?));
        let b = pick(pages, "b");
        open_manager(b).await?;
        join_error(b, &code, "needs its password").await?;
        ensure!(
            b.eval::<String>("document.body.dataset.p2pError").await? == "password-required",
            "B marks the missing password"
        );
        Ok(())
    });
}

/// A native `bassline join` in `--json` mode: its JSON lines, read on a thread of their own.
struct Native {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    lines: std::sync::mpsc::Receiver<serde_json::Value>,
    seen: Vec<serde_json::Value>,
}

impl Native {
    fn join(bin: &std::path::Path, signal: &str, code: &str, password: &str) -> Result<Native> {
        Native::spawn(
            bin,
            &["join", code, "--signal", signal, "--password", password],
        )
    }

    /// `bassline host --no-room-key`: a room guests join by the bare code, with no room key.
    fn host_keyless(bin: &std::path::Path, signal: &str) -> Result<Native> {
        Native::spawn(bin, &["host", "--no-room-key", "--signal", signal])
    }

    fn spawn(bin: &std::path::Path, args: &[&str]) -> Result<Native> {
        use std::{
            io::{BufRead, BufReader},
            process::{Command, Stdio},
        };
        let mut child = Command::new(bin)
            .args(args)
            .args(["--json", "--bind", "127.0.0.1:0"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("bassline {} starts", args[0]))?;
        let out = BufReader::new(child.stdout.take().context("piped stdout")?);
        let stdin = child.stdin.take().context("piped stdin")?;
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in out.lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str(&line)
                    && tx.send(v).is_err()
                {
                    return;
                }
            }
        });
        Ok(Native {
            child,
            stdin,
            lines,
            seen: Vec::new(),
        })
    }

    fn send(&mut self, json: &str) -> Result<()> {
        use std::io::Write;
        writeln!(self.stdin, "{json}")?;
        self.stdin.flush()?;
        Ok(())
    }

    /// The next line matching `pred` (a bounded wait, not a timing assertion).
    fn wait(
        &mut self,
        what: &str,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> Result<serde_json::Value> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let got = tokio::task::block_in_place(|| self.lines.recv_timeout(left));
            match got {
                Ok(v) => {
                    self.seen.push(v.clone());
                    if pred(&v) {
                        return Ok(v);
                    }
                }
                Err(_) => anyhow::bail!("the native guest printed no {what}: {:?}", self.seen),
            }
        }
    }
}

impl Drop for Native {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_native_guest_joins_a_browser_hosted_room_by_code_and_password() {
    run("pake-native", async |w, base, pages| {
        pages.push(("a".into(), page(w, "p2ppkn-a", base).await?));
        let a = pick(pages, "a");
        let code = host_with_password(a, "tr0ub4dor").await?;
        let signal = format!("{}/signal", base.replacen("http://", "ws://", 1));
        let mut native = Native::join(&w.bin, &signal, &code, "tr0ub4dor")?;
        native.wait("editable", |v| {
            v["event"] == "read-only" && v["value"] == false
        })?;
        linked(a, 1, "A linked to the native guest").await?;
        // The native guest adds a contact; the page shows it. The page sets its value; the
        // native guest reads it back.
        native.send(r#"{"type":"add-contact","id":"from-native","group":"root","value":4}"#)?;
        shows_value(a, "from-native", "4").await?;
        a.type_value("from-native", "6").await?;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            native.send(r#"{"type":"get-contact","id":"from-native"}"#)?;
            let got = native.wait("answer", |v| {
                v["event"] == "answer" || v["event"] == "error"
            })?;
            if got["reply"]["contact"]["value"] == 6 {
                break;
            }
            ensure!(
                std::time::Instant::now() < deadline,
                "the native guest never saw the page's value: {got}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        Ok(())
    });
}

/// The host page's choice for `guest` in its member list.
async fn set_permission(host: &Session, guest: &str, permission: &str) -> Result<()> {
    let select = format!(
        "[data-testid='p2p-peer'][data-peer='{guest}'] select[data-testid='p2p-permission']"
    );
    host.wait_for(
        &format!("document.querySelector({})", js_str(&select)),
        "the host's choice of what the guest may do",
    )
    .await?;
    host.eval::<bool>(&format!(
        "(() => {{ const s = document.querySelector({}); s.value = {}; \
         s.dispatchEvent(new Event('change', {{ bubbles: true }})); return true; }})()",
        js_str(&select),
        js_str(permission)
    ))
    .await?;
    Ok(())
}

#[test]
fn the_host_page_makes_a_guest_read_only_and_back() {
    run("permit", async |w, base, pages| {
        pages.push(("a".into(), page(w, "p2p-permit-a", base).await?));
        let link = host(pick(pages, "a")).await?;
        pages.push(("b".into(), page(w, "p2p-permit-b", &link).await?));
        let (a, b) = (pick(pages, "a"), pick(pages, "b"));
        linked(a, 1, "A").await?;
        linked(b, 1, "B").await?;
        let guest: String = b.eval("document.body.dataset.peer").await?;

        set_permission(a, &guest, "read-only").await?;
        b.wait_for(
            "document.body.dataset.readOnly === '1' && \
             (document.querySelector(\"[data-testid='read-only']\")?.textContent ?? '').includes('view only')",
            "B told the host made it read-only",
        )
        .await?;
        ensure!(
            b.eval::<bool>("document.querySelector(\"button[title^='New contact']\").disabled")
                .await?,
            "B's add buttons are disabled"
        );
        // The keyboard shortcut is refused too, and nothing reaches the host.
        let before = a.state_hash().await?;
        let nodes = b.count("[data-node]").await?;
        b.hover(b.canvas_point(200.0, 200.0).await?).await?;
        b.key("c").await?;
        b.wait_for(
            "[...document.querySelectorAll('.toast.error')].some(t => t.textContent.includes('read-only'))",
            "a message for the refused edit",
        )
        .await?;
        ensure!(
            b.count("[data-node]").await? == nodes,
            "a read-only page adds nothing"
        );
        ensure!(
            a.state_hash().await? == before,
            "the host's network is unchanged"
        );

        set_permission(a, &guest, "read-write").await?;
        linked(b, 1, "B editable again").await?;
        b.click_on("button[title^='New contact']").await?;
        a.wait_for(
            &format!(
                "document.querySelectorAll('[data-node]').length === {}",
                nodes + 1
            ),
            "B's new contact on the host's page",
        )
        .await?;
        same_hash(a, b).await?;
        Ok(())
    });
}

/// The number of seconds the guest's "reconnecting in N s" shows, if it shows one.
async fn countdown(s: &Session) -> Result<Option<u64>> {
    let text: String = s
        .eval("document.querySelector(\"[data-testid='p2p-reconnecting']\")?.textContent ?? ''")
        .await?;
    Ok(text
        .split("reconnecting in ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok()))
}

#[test]
fn while_signaling_is_down_links_stay_up_and_the_retry_counts_down() {
    run_serving("outage", async |w, serve, pages| {
        a_hosts_and_b_joins(w, serve, pages, "outage").await?;
        let (a, b) = (pick(pages, "a"), pick(pages, "b"));
        let (x, _, sum) = build_sum(a, "1").await?;
        has_node(b, &sum).await?;

        serve.stop()?;
        // The retry delay doubles with each failed attempt; wait for one long enough to
        // watch it count down, then see a smaller number while it is still waiting.
        let mut first = None;
        for _ in 0..600 {
            if let Some(n) = countdown(b).await?
                && n >= 3
            {
                first = Some(n);
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let first = first.context("B never showed a retry at least 3 s away")?;
        let mut lower = None;
        for _ in 0..100 {
            match countdown(b).await? {
                Some(n) if n < first => {
                    lower = Some(n);
                    break;
                }
                _ => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
            }
        }
        ensure!(
            lower.is_some(),
            "the countdown stayed at {first} s instead of counting down"
        );
        ensure!(
            b.count("[data-testid='p2p-retry']").await? == 1,
            "a retry button is offered"
        );
        // The data channels do not go through the server: edits still cross.
        a.type_value(&x, "7").await?;
        shows_value(b, &x, "7").await?;
        Ok(())
    });
}

/// How many rooms the server holds, from its `/metrics` (plain HTTP/1.0 on loopback): what
/// the server says, not what the pages think.
fn rooms_on_server(addr: &str) -> Option<u64> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    write!(s, "GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    body.lines()
        .find_map(|l| l.strip_prefix("signal_rooms ")?.trim().parse().ok())
}

#[test]
fn after_a_signaling_restart_the_pages_put_the_room_back_and_a_newcomer_joins_by_the_link() {
    run_serving("restart", async |w, serve, pages| {
        let addr = serve.addr.clone();
        let link = a_hosts_and_b_joins(w, serve, pages, "restart").await?;
        let (a, b) = (pick(pages, "a"), pick(pages, "b"));
        let (x, _, sum) = build_sum(a, "1").await?;
        has_node(b, &sum).await?;

        serve.stop()?;
        *serve = Serve::start(&w.bin, &w.data, &w.dist, &addr)?;
        // Both pages reclaim: the first back re-creates the room on the new server.
        let mut back = false;
        for _ in 0..600 {
            if rooms_on_server(&addr) == Some(1) {
                back = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        ensure!(back, "the room never came back on the restarted server");

        // A newcomer by the old link: into the same room, linked to both.
        pages.push(("c".into(), page(w, "p2p-restart-c", &link).await?));
        let (a, b, c) = (pick(pages, "a"), pick(pages, "b"), pick(pages, "c"));
        for (s, name) in [(a, "A"), (b, "B"), (c, "C")] {
            linked(s, 2, name).await?;
        }
        has_node(c, &sum).await?;
        a.type_value(&x, "9").await?;
        shows_value(c, &x, "9").await?;
        shows_value(b, &x, "9").await?;
        let mut numbers = Vec::new();
        for s in [a, b, c] {
            numbers.push(s.eval::<String>("document.body.dataset.peer").await?);
        }
        ensure!(
            numbers == ["1", "2", "3"],
            "the old members kept their numbers, the newcomer got the next: {numbers:?}"
        );
        Ok(())
    });
}

/// Two pages in a room without a room key (a native `bassline host --no-room-key`, the pages
/// joined by its code): no member can put the room back after a signaling restart, and the
/// pages keep their links, keep editing, and say that nobody new can join.
#[test]
fn after_a_signaling_restart_pages_in_a_keyless_room_keep_editing_and_say_the_room_is_lost() {
    run_serving("roomlost", async |w, serve, pages| {
        let addr = serve.addr.clone();
        let signal = format!("ws://{addr}/signal");
        let mut native = Native::host_keyless(&w.bin, &signal)?;
        let room = native.wait("room", |v| v["event"] == "room")?;
        let code = room["code"].as_str().context("the room's code")?.to_owned();
        // The page's join link without a key: the pages join by the bare code.
        let link = format!("http://{addr}/#join={code}");
        pages.push(("a".into(), page(w, "p2p-roomlost-a", &link).await?));
        pages.push(("b".into(), page(w, "p2p-roomlost-b", &link).await?));
        let (a, b) = (pick(pages, "a"), pick(pages, "b"));
        linked(a, 2, "A").await?;
        linked(b, 2, "B").await?;
        let me_a: String = a.eval("document.body.dataset.peer").await?;
        let me_b: String = b.eval("document.body.dataset.peer").await?;
        let (x, y, sum) = build_sum(a, &me_a).await?;
        has_node(b, &sum).await?;

        serve.stop()?;
        *serve = Serve::start(&w.bin, &w.data, &w.dist, &addr)?;
        for (s, name) in [(a, "A"), (b, "B")] {
            s.wait_for(
                "document.body.dataset.p2pRoomLost === 'room-not-found' && \
                 document.body.dataset.link === 'connected'",
                &format!("{name} told the server lost the room, signaling connected again"),
            )
            .await?;
            let notice = s.text("[data-testid='p2p-room-lost']").await?;
            ensure!(
                notice.contains(&format!("no longer knows room {code}"))
                    && notice.contains("nobody new can join")
                    && notice.contains("Host a new room"),
                "{name}'s notice says what happened and what to do: {notice:?}"
            );
            ensure!(
                s.count("[data-testid='p2p-fatal']").await? == 0
                    && s.eval::<String>("document.body.dataset.p2pError ?? ''")
                        .await?
                        .is_empty(),
                "{name}: nothing fatal"
            );
        }
        native.wait("the native host's room-lost", |v| {
            v["event"] == "connection" && v["status"]["state"] == "room-lost"
        })?;
        // Nobody re-created the room open under its old code.
        ensure!(
            rooms_on_server(&addr) == Some(0),
            "no room on the restarted server: {:?}",
            rooms_on_server(&addr)
        );

        // The links never went through the server: both pages still edit, each sees the
        // other's edit, and they end in the same state.
        linked(a, 2, "A after the restart").await?;
        linked(b, 2, "B after the restart").await?;
        a.type_value(&x, "7").await?;
        shows_value(b, &x, "7").await?;
        b.type_value(&y, "5").await?;
        shows_value(a, &y, "5").await?;
        b.click_on("button[title^='New contact']").await?;
        has_node(a, &format!("p{me_b}-c1")).await?;
        same_hash(a, b).await?;
        // Still said after the edits, on both.
        for s in [a, b] {
            ensure!(s.count("[data-testid='p2p-room-lost']").await? == 1);
        }
        let shot = b.screenshot("p2p-roomlost-b.png").await?;
        eprintln!("screenshot of B after the restart: {}", shot.display());
        Ok(())
    });
}

/// A keyed room whose restarted server throttles the second reclaim (the address used up its
/// failed joins for the minute, re-creating the room counted as one): the throttled page keeps its links
/// and edits, says when it tries again, and does, after the server's `retry_after_secs`; the
/// room is then whole again and a newcomer joins by the old link.
#[test]
fn after_a_signaling_restart_a_throttled_page_keeps_editing_and_reclaims_after_the_wait() {
    run_serving("throttled", async |w, serve, pages| {
        let addr = serve.addr.clone();
        let link = a_hosts_and_b_joins(w, serve, pages, "throttled").await?;
        let (a, b) = (pick(pages, "a"), pick(pages, "b"));
        let (x, y, sum) = build_sum(a, "1").await?;
        has_node(b, &sum).await?;

        let code: String = a.eval("document.body.dataset.p2pCode").await?;

        serve.stop()?;
        // Wait until both pages' next attempt is seconds away, so that the joins below reach
        // the new server before either page does.
        let mut far = false;
        for _ in 0..900 {
            if countdown(a).await?.is_some_and(|n| n >= 3)
                && countdown(b).await?.is_some_and(|n| n >= 3)
            {
                far = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        ensure!(far, "the pages never waited 3 s between reconnects");
        *serve = Serve::start(&w.bin, &w.data, &w.dist, &addr)?;
        // Nine joins to a room that does not exist from this address (ten are allowed a
        // minute): the first reclaim, which re-creates the room and counts as one, is the
        // tenth; the other page's is refused for up to a minute.
        let unknown = if code == "A3B7K9" { "K9A3B7" } else { "A3B7K9" };
        a.eval::<bool>(&format!(
            "(() => {{ window.__refused = 0; \
             const ws = new WebSocket({}); \
             ws.onopen = () => {{ ws.send(JSON.stringify({{type: 'hello', version: 1}})); \
               for (let i = 0; i < 9; i++) ws.send(JSON.stringify({{type: 'join-room', code: {}}})); }}; \
             ws.onmessage = (e) => {{ if (JSON.parse(e.data).code === 'room-not-found') window.__refused++; }}; \
             return true; }})()",
            js_str(&format!("ws://{addr}/signal")),
            js_str(unknown)
        ))
        .await?;
        a.wait_for("window.__refused === 9", "nine joins refused")
            .await?;
        let mut throttled = None;
        for _ in 0..600 {
            for (s, name) in [(a, "A"), (b, "B")] {
                if s.eval::<String>("document.body.dataset.p2pRoomLost ?? ''")
                    .await?
                    == "too-many-attempts"
                {
                    throttled = Some((s, name));
                }
                let fatal: String = s.eval("document.body.dataset.p2pError ?? ''").await?;
                ensure!(fatal.is_empty(), "{name} gave the room up: {fatal}");
            }
            if throttled.is_some() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let (slow, name) = throttled.context("neither page was told its reclaim was throttled")?;
        let notice = slow.text("[data-testid='p2p-room-lost']").await?;
        ensure!(
            notice.contains("refused to put room")
                && notice.contains("stays connected")
                && notice.contains("Trying again in"),
            "{name}'s notice says what happened and that it tries again: {notice:?}"
        );
        ensure!(
            slow.count("[data-testid='p2p-fatal']").await? == 0,
            "{name}: nothing fatal"
        );
        let shot = slow.screenshot("p2p-throttled.png").await?;
        eprintln!(
            "screenshot of the throttled page {name}: {}",
            shot.display()
        );

        // Meanwhile the links carry edits both ways.
        a.type_value(&x, "7").await?;
        shows_value(b, &x, "7").await?;
        b.type_value(&y, "5").await?;
        shows_value(a, &y, "5").await?;

        // After the wait the page reclaims its place: the notice goes, the number stays.
        let mut back = false;
        for _ in 0..1500 {
            if slow
                .eval::<String>("document.body.dataset.p2pRoomLost ?? ''")
                .await?
                .is_empty()
            {
                back = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        ensure!(back, "{name} never put its place back after the wait");
        ensure!(
            slow.count("[data-testid='p2p-room-lost']").await? == 0,
            "{name}'s notice is gone"
        );
        pages.push(("c".into(), page(w, "p2p-throttled-c", &link).await?));
        let (a, b, c) = (pick(pages, "a"), pick(pages, "b"), pick(pages, "c"));
        for (s, name) in [(a, "A"), (b, "B"), (c, "C")] {
            linked(s, 2, name).await?;
        }
        let mut numbers = Vec::new();
        for s in [a, b, c] {
            numbers.push(s.eval::<String>("document.body.dataset.peer").await?);
        }
        ensure!(
            numbers == ["1", "2", "3"],
            "the old members kept their numbers, the newcomer got the next: {numbers:?}"
        );
        same_hash(a, c).await?;
        same_hash(a, b).await?;
        Ok(())
    });
}

#[test]
fn a_reloaded_host_page_rejoins_and_the_room_goes_on() {
    run("host-reload", async |w, base, pages| {
        pages.push(("a".into(), page(w, "p2phr-a", base).await?));
        let link = host(pick(pages, "a")).await?;
        pages.push(("b".into(), page(w, "p2phr-b", &link).await?));
        let (a, b) = (pick(pages, "a"), pick(pages, "b"));
        linked(a, 1, "A").await?;
        linked(b, 1, "B").await?;
        let (x, y, sum) = build_sum(a, "1").await?;
        a.type_value(&x, "2").await?;
        b.type_value(&y, "3").await?;
        shows_value(a, &sum, "5").await?;
        same_hash(a, b).await?;

        // The host page reloads: it takes its place back in the room (same member number),
        // one of the two leads, nothing is lost, and both edit on.
        reload_into_its_place(a, "A").await?;
        linked(b, 1, "B after A's reload").await?;
        one_host(a, b).await?;
        shows_value(a, &sum, "5").await?;
        shows_value(b, &sum, "5").await?;
        a.type_value(&x, "10").await?;
        shows_value(b, &sum, "13").await?;
        b.type_value(&y, "1").await?;
        shows_value(a, &sum, "11").await?;
        same_hash(a, b).await?;
        Ok(())
    });
}
