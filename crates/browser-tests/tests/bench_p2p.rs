//! Peer-to-peer figures in the browser for docs/BENCHMARKS.md, printed and never asserted
//! (timings are not tests): pages of the editor in headless Chromium, each in a browser of its
//! own, introduced by a real `bassline serve`. Ignored by the test run; `cargo xtask bench
//! p2p` runs it on the release bundle with BASSLINE_BENCH_OUT (where the table rows go).
//!
//! Every time is taken inside the pages, not by polling from the test: a click or key listener
//! notes when the user acted, a MutationObserver on `<body>`'s `data-*` attributes (or on the
//! shown value) notes when the page got there, so the figures do not include the test's own
//! round trips. Page-to-page latency compares `performance.timeOrigin + performance.now()`
//! of two browsers on one machine (one clock).
//!
//! Where a join's time goes: both pages collect the mesh's set-up marks
//! (`window.__basslineP2pTrace`, crates/web/src/p2p/trace.rs) during each channel-open run; the
//! breakdown table gives each step's median time after the click on Join.
//!
//! `BASSLINE_BENCH_P2P_OPEN_ONLY=1` runs only the channel-open runs and their breakdown (for
//! trying a change; `cargo xtask bench p2p` always runs everything).

mod browsers;
mod common;

use anyhow::{Context, Result, anyhow, ensure};
use bassline_core::{ContactDocument, GroupDocument, Point, StateDocument, Value, WireDocument};
use browsers::Page;
use common::{
    Session, js_str,
    serve::{Serve, bassline_bin},
};

/// Runs of each join measurement (a fresh guest browser each).
const OPEN_RUNS: usize = 11;
const SYNC_RUNS: usize = 3;
/// Edits timed in each direction.
const LATENCY_EDITS: usize = 60;

/// `groups` groups of `per_group` contacts under the root, each group a chain of wires:
/// 10,000 contacts is 100 groups of 100 (the canvas shows the root's 100 groups).
fn network(groups: usize, per_group: usize) -> StateDocument {
    let id = |s: String| bassline_core::Id::new(&s).expect("generated ids are valid");
    let group = |g: usize| {
        let mut doc = GroupDocument {
            id: id(format!("g{g}")),
            name: Some(format!("block {g}")),
            primitive: None,
            at: Some(Point {
                x: (g % 10) as i32 * 200,
                y: (g / 10) as i32 * 120,
            }),
            contacts: Vec::new(),
            wires: Vec::new(),
            groups: Vec::new(),
        };
        for i in 0..per_group {
            doc.contacts.push(ContactDocument {
                id: id(format!("g{g}c{i}")),
                name: None,
                blend: Default::default(),
                value: Value::from((g * per_group + i) as f64),
                contradiction: None,
                boundary: None,
                at: Some(Point {
                    x: (i % 10) as i32 * 170,
                    y: (i / 10) as i32 * 80,
                }),
            });
            if i > 0 {
                doc.wires.push(WireDocument {
                    id: id(format!("g{g}w{i}")),
                    from: id(format!("g{g}c{}", i - 1)),
                    to: id(format!("g{g}c{i}")),
                    kind: Default::default(),
                });
            }
        }
        doc
    };
    let root = GroupDocument {
        id: id("root".into()),
        name: None,
        primitive: None,
        at: None,
        contacts: Vec::new(),
        wires: Vec::new(),
        groups: (0..groups).map(group).collect(),
    };
    StateDocument::new(root)
}

/// Loads a network file into a local-mode page through the editor's Import button.
async fn import(s: &Session, doc: &StateDocument, name: &str, nodes: usize) -> Result<()> {
    let file = common::artifacts().join(name);
    std::fs::create_dir_all(common::artifacts())?;
    std::fs::write(&file, doc.to_json_pretty())?;
    let input = s.page.find_element(".import input[type=file]").await?;
    s.page
        .execute(
            chromiumoxide::cdp::browser_protocol::dom::SetFileInputFilesParams::builder()
                .files(vec![file.canonicalize()?.display().to_string()])
                .backend_node_id(input.backend_node_id)
                .build()
                .map_err(|e| anyhow!(e))?,
        )
        .await?;
    s.wait_for(
        &format!("document.querySelectorAll('[data-node]').length === {nodes}"),
        "the imported network",
    )
    .await
}

async fn open_manager(s: &Session) -> Result<()> {
    s.click_on(".mode-button").await?;
    s.click_on("[data-testid='mode-p2p']").await?;
    s.wait_for(
        "document.querySelector(\"[data-testid='room-manager']\")",
        "the room manager",
    )
    .await
}

/// Hosts a room from the page; returns its join link.
async fn host(s: &Session) -> Result<String> {
    open_manager(s).await?;
    s.click_on("[data-testid='host-room']").await?;
    s.wait_for(
        "document.querySelector(\"[data-testid='join-link']\")?.value?.includes('#join=')",
        "the room's join link",
    )
    .await?;
    let link: String = s
        .eval("document.querySelector(\"[data-testid='join-link']\").value")
        .await?;
    s.click_on("[data-testid='room-close']").await?;
    s.wait_for(
        "document.body.dataset.p2pRole === 'host' && document.body.dataset.readOnly === '0'",
        "the hosting page editable as host",
    )
    .await?;
    Ok(link)
}

/// Times of one join, in ms from the click on Join.
struct Join {
    open: f64,
    synced: f64,
    /// The set-up marks of both pages: (page, step) to ms after the click, the first of each.
    steps: Vec<((&'static str, String), f64)>,
}

/// One mark of `window.__basslineP2pTrace` (crates/web/src/p2p/trace.rs).
#[derive(serde::Deserialize)]
struct Mark {
    step: String,
    peer: Option<u64>,
    at: f64,
}

/// The first time of each step at or after `since` (ms on the shared clock), concerning
/// member `peer` (or no member), as ms after `since`.
fn first_marks(
    page: &'static str,
    marks: &[Mark],
    peer: u64,
    since: f64,
) -> Vec<((&'static str, String), f64)> {
    let mut out: Vec<((&'static str, String), f64)> = Vec::new();
    for m in marks {
        if m.at < since || m.peer.is_some_and(|p| p != peer) {
            continue;
        }
        if !out.iter().any(|((_, s), _)| *s == m.step) {
            out.push(((page, m.step.clone()), m.at - since));
        }
    }
    out
}

/// Starts collecting set-up marks on a page (dropping earlier ones), and the page's long
/// animation frames (a task and its rendering taking 50 ms or more: the page too busy to
/// handle a network event meanwhile).
async fn start_trace(s: &Session) -> Result<()> {
    s.eval::<()>(
        "void (window.__basslineP2pTrace = [], window.__busy = [], \
           window.__busyObserver?.disconnect(), \
           window.__busyObserver = new PerformanceObserver((list) => { \
             for (const e of list.getEntries()) window.__busy.push({ \
               at: performance.timeOrigin + e.startTime, duration: e.duration, \
               render: e.renderStart ? e.startTime + e.duration - e.renderStart : 0, \
               scripts: (e.scripts || []).map((x) => `${x.invoker} ${x.sourceFunctionName} ${Math.round(x.duration)}ms`) }); }), \
           window.__busyObserver.observe({ type: 'long-animation-frame' }))",
    )
    .await
}

/// A long animation frame of the page (`PerformanceLongAnimationFrameTiming`).
#[derive(serde::Deserialize)]
struct Busy {
    at: f64,
    duration: f64,
    /// Of `duration`, the style, layout and paint at its end.
    render: f64,
    /// What ran in it: invoker, function, ms.
    scripts: Vec<String>,
}

/// The page's long animation frames that started in `[from, to)` (shared clock): their total
/// duration and, of it, rendering.
async fn busy(s: &Session, from: f64, to: f64) -> Result<(f64, f64)> {
    let frames: Vec<Busy> = s.eval("window.__busy").await?;
    let inside = frames.iter().filter(|f| f.at >= from && f.at < to);
    for f in inside.clone() {
        eprintln!(
            "    busy at {:.1} ms for {:.1} ms: {}",
            f.at - from,
            f.duration,
            f.scripts.join("; ")
        );
    }
    Ok(inside.fold((0.0, 0.0), |(d, r), f| (d + f.duration, r + f.render)))
}

async fn trace_of(s: &Session) -> Result<Vec<Mark>> {
    s.eval("window.__basslineP2pTrace").await
}

/// A fresh guest page types the link into the room manager and clicks Join; the page notes
/// the click, the first open link (`data-p2p-peers` 1) and the first frame after it holds the
/// host's state (`data-state-hash` equal to `hash`, editable).
async fn join_once(
    host: &Session,
    base: &str,
    chromium: &std::path::Path,
    link: &str,
    hash: &str,
    run: usize,
) -> Result<(Session, Join)> {
    let g = Session::start_at(&format!("bench-p2p-guest{run}"), base.to_owned(), chromium).await?;
    open_manager(&g).await?;
    g.click_on("[data-testid='join-code']").await?;
    g.type_text(link).await?;
    start_trace(host).await?;
    start_trace(&g).await?;
    g.eval::<()>(&format!(
        "(() => {{ const t = window.__join = {{}}; const want = {}; \
         document.querySelector(\"[data-testid='join-room']\").addEventListener('click', \
           () => {{ t.click = performance.now(); t.clickAt = performance.timeOrigin + t.click; }}, \
           {{ capture: true, once: true }}); \
         new MutationObserver(() => {{ const d = document.body.dataset; \
           if (t.click === undefined) return; \
           if (t.open === undefined && d.p2pPeers === '1') t.open = performance.now(); \
           if (t.synced === undefined && d.stateHash === want && d.readOnly === '0' && d.p2pPeers === '1') {{ \
             t.synced = performance.now(); requestAnimationFrame(() => {{ t.painted = performance.now(); }}); }} \
         }}).observe(document.body, {{ attributes: true }}); }})()",
        js_str(hash)
    ))
    .await?;
    g.click_on("[data-testid='join-room']").await?;
    g.wait_for(
        "window.__join.painted !== undefined",
        "the guest synced with the host",
    )
    .await?;
    let (click, click_at, open, painted): (f64, f64, f64, f64) = g
        .eval("[window.__join.click, window.__join.clickAt, window.__join.open, window.__join.painted]")
        .await?;
    // The guest's member number names its link in the host's marks; the host is member 1.
    let me: String = g.eval("document.body.dataset.peer").await?;
    let me: u64 = me.parse().context("the guest's member number")?;
    let mut steps = first_marks("guest", &trace_of(&g).await?, 1, click_at);
    steps.extend(first_marks("host", &trace_of(host).await?, me, click_at));
    let (busy_total, busy_render) = busy(&g, click_at, click_at + open - click).await?;
    steps.push((
        (
            "guest",
            "busy before the link opened: long frames (>= 50 ms), in all (ms)".into(),
        ),
        busy_total,
    ));
    steps.push((
        (
            "guest",
            "busy before the link opened: their style, layout, paint (ms)".into(),
        ),
        busy_render,
    ));
    steps.push((
        ("guest", "shown open (data-p2p-peers 1)".into()),
        open - click,
    ));
    Ok((
        g,
        Join {
            open: open - click,
            synced: painted - click,
            steps,
        },
    ))
}

/// Times `LATENCY_EDITS` edits typed on `from` until `to` shows them: Enter on `from` (a
/// window keydown listener, before the editor's own) to the DOM change on `to`.
async fn latencies(from: &Session, to: &Session, contact: &str, base: usize) -> Result<Vec<f64>> {
    for s in [from, to] {
        s.eval::<()>(&format!(
            "(() => {{ window.__sent = {{}}; window.__seen = {{}}; \
             const at = () => performance.timeOrigin + performance.now(); \
             window.addEventListener('keydown', (e) => {{ \
               if (e.key === 'Enter' && e.target.value !== undefined) window.__sent[e.target.value] = at(); \
             }}, {{ capture: true }}); \
             new MutationObserver(() => {{ \
               const v = document.querySelector(\"[data-node='{contact}'] .value\")?.textContent; \
               if (v !== undefined && window.__seen[v] === undefined) window.__seen[v] = at(); \
             }}).observe(document.querySelector('.canvas'), {{ subtree: true, childList: true, characterData: true }}); }})()"
        ))
        .await?;
    }
    for i in 0..LATENCY_EDITS {
        let v = (base + i).to_string();
        Page::type_value(from, contact, &v).await?;
        to.shows_value(contact, &v).await?;
    }
    let sent: std::collections::HashMap<String, f64> = from.eval("window.__sent").await?;
    let seen: std::collections::HashMap<String, f64> = to.eval("window.__seen").await?;
    let mut out = Vec::new();
    for i in 0..LATENCY_EDITS {
        let v = (base + i).to_string();
        let (s, r) = (
            sent.get(&v)
                .with_context(|| format!("no send time for {v}"))?,
            seen.get(&v)
                .with_context(|| format!("no arrival time for {v}"))?,
        );
        out.push(r - s);
    }
    Ok(out)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    v
}

fn summary(v: &[f64]) -> String {
    format!(
        "median {:.0} ms (min {:.0}, max {:.0}; {} runs)",
        percentile(v, 0.5),
        v.first().copied().unwrap_or(f64::NAN),
        v.last().copied().unwrap_or(f64::NAN),
        v.len()
    )
}

async fn figures(base: &str, chromium: &std::path::Path) -> Result<Vec<String>> {
    let mut rows = Vec::new();
    // 1. Channel open: an empty room, a fresh guest page each run.
    let a = Session::start_at("bench-p2p-host", base.to_owned(), chromium).await?;
    let link = host(&a).await?;
    let empty = a.state_hash().await?;
    let mut opens = Vec::new();
    let mut steps: Vec<((&'static str, String), Vec<f64>)> = Vec::new();
    let mut guest = None;
    for run in 0..OPEN_RUNS {
        if let Some(g) = guest.take() {
            Session::close(g).await;
            a.wait_for("document.body.dataset.p2pPeers === '0'", "the guest gone")
                .await?;
        }
        let (g, t) = join_once(&a, base, chromium, &link, &empty, run).await?;
        eprintln!("join {run}: link open after {:.1} ms", t.open);
        let mut line = t.steps.clone();
        line.sort_by(|x, y| x.1.total_cmp(&y.1));
        for ((page, step), ms) in &line {
            eprintln!("    {ms:7.1} ms  {page:5} {step}");
        }
        for (key, ms) in t.steps {
            match steps.iter_mut().find(|(k, _)| *k == key) {
                Some((_, v)) => v.push(ms),
                None => steps.push((key, vec![ms])),
            }
        }
        opens.push(t.open);
        guest = Some(g);
    }
    let opens = sorted(opens);
    rows.push(format!(
        "| data channel open, click Join to the link open (empty room; target < 150 ms) | {} |",
        summary(&opens)
    ));
    let breakdown = breakdown(steps);
    if std::env::var_os("BASSLINE_BENCH_P2P_OPEN_ONLY").is_some() {
        if let Some(g) = guest {
            Session::close(g).await;
        }
        Session::close(a).await;
        rows.push(breakdown);
        return Ok(rows);
    }

    // 2. Change latency between the host page and the last guest, both directions.
    let b = guest.context("a guest")?;
    let at = a.canvas_point(300.0, 200.0).await?;
    a.hover(at).await?;
    a.key("c").await?;
    a.wait_for(
        "document.querySelectorAll('[data-node]').length === 1",
        "a contact",
    )
    .await?;
    let x: String = a
        .eval("document.querySelector('[data-node]').dataset.node")
        .await?;
    b.wait_for(
        &format!("document.querySelector(\"[data-node='{x}']\")"),
        "the contact on the guest",
    )
    .await?;
    let down = sorted(latencies(&a, &b, &x, 1000).await?);
    let up = sorted(latencies(&b, &a, &x, 5000).await?);
    for (what, v) in [
        ("host page to guest page", &down),
        ("guest page to host page", &up),
    ] {
        rows.push(format!(
            "| change latency, {what} (Enter to shown, one edit at a time) | p50 {:.1} ms, p99 {:.1} ms ({} edits) |",
            percentile(v, 0.5),
            percentile(v, 0.99),
            v.len()
        ));
    }
    Session::close(b).await;
    Session::close(a).await;

    // 3. Join a room holding 10,000 contacts: click Join to the first frame with the host's
    //    state, editable.
    let big = Session::start_at("bench-p2p-bighost", base.to_owned(), chromium).await?;
    import(&big, &network(100, 100), "bench-p2p-10000.json", 100).await?;
    let link = host(&big).await?;
    let hash = big.state_hash().await?;
    let mut syncs = Vec::new();
    let mut guest = None;
    for run in 0..SYNC_RUNS {
        if let Some(g) = guest.take() {
            Session::close(g).await;
            big.wait_for("document.body.dataset.p2pPeers === '0'", "the guest gone")
                .await?;
        }
        let (g, t) = join_once(&big, base, chromium, &link, &hash, 100 + run).await?;
        ensure!(
            g.count("[data-node]").await? == 100,
            "the guest shows the root's 100 groups"
        );
        eprintln!(
            "join 10k {run}: open {:.0} ms, synced {:.0} ms",
            t.open, t.synced
        );
        syncs.push(t.synced);
        guest = Some(g);
    }
    if let Some(g) = guest {
        Session::close(g).await;
    }
    Session::close(big).await;
    let syncs = sorted(syncs);
    rows.push(format!(
        "| click Join to a synced editor, 10,000 contacts and 9,900 wires (target < 1 s) | {} |",
        summary(&syncs)
    ));
    rows.push(breakdown);
    Ok(rows)
}

/// The breakdown of the channel-open runs, as text following the figures' table: each step's
/// median (min, max) in ms after the click on Join, in the order of the medians.
fn breakdown(steps: Vec<((&'static str, String), Vec<f64>)>) -> String {
    let runs = steps.iter().map(|(_, v)| v.len()).max().unwrap_or(0);
    let mut lines: Vec<(f64, String)> = steps
        .into_iter()
        .map(|((page, step), v)| {
            let v = sorted(v);
            let median = percentile(&v, 0.5);
            let seen = if v.len() < runs {
                format!(" (in {} of {runs} runs)", v.len())
            } else {
                String::new()
            };
            (
                median,
                format!(
                    "| {page} | {step}{seen} | {median:.1} | {:.1} | {:.1} |",
                    v.first().copied().unwrap_or(f64::NAN),
                    v.last().copied().unwrap_or(f64::NAN)
                ),
            )
        })
        .collect();
    // Durations (the page's busy time) go last, times after the click in their order.
    lines.sort_by(|a, b| {
        (a.1.contains("| busy "), a.0)
            .partial_cmp(&(b.1.contains("| busy "), b.0))
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    let mut out = format!(
        "\nWhere the channel-open time goes ({runs} runs): the first time each page reached each \
         set-up step, in ms after the click on Join (marks of crates/web/src/p2p/trace.rs; both \
         pages read one clock). The `busy` rows at the end are durations: the guest page's long \
         animation frames (a task with its rendering, 50 ms or more, during which no network \
         event is handled) between the click and the open link.\n\n| page | step | median | min | max |\n|---|---|---:|---:|---:|"
    );
    for (_, l) in lines {
        out.push('\n');
        out.push_str(&l);
    }
    out
}

#[test]
#[ignore = "a benchmark, not a test: `cargo xtask bench p2p` runs it"]
fn p2p_figures() {
    let Some(out) = std::env::var_os("BASSLINE_BENCH_OUT") else {
        eprintln!(
            "`cargo xtask bench p2p` runs the peer-to-peer figures (it sets BASSLINE_BENCH_OUT)"
        );
        return;
    };
    let Some((dist, chromium)) = common::setup() else {
        panic!("the benchmark needs BASSLINE_WEB_DIST and BASSLINE_CHROMIUM");
    };
    let bin = bassline_bin().expect("the bassline binary (BASSLINE_BIN)");
    let data = std::env::temp_dir().join(format!("bassline-bench-p2p-{}", std::process::id()));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let rows = rt.block_on(async {
        let serve = Serve::start(&bin, &data, &dist, "127.0.0.1:0").expect("serve starts");
        let base = format!("http://{}", serve.addr);
        let rows = figures(&base, &chromium).await;
        drop(serve);
        rows
    });
    let _ = std::fs::remove_dir_all(&data);
    let rows = rows.expect("the peer-to-peer figures");
    for r in &rows {
        println!("{r}");
    }
    std::fs::write(&out, rows.join("\n") + "\n").expect("writing the figures");
}
