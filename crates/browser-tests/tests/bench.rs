//! Browser figures for docs/BENCHMARKS.md, printed and never asserted (timings are not tests):
//! first paint, frame times while panning a group of 1,000 contacts, and frame times while
//! 100 remote edits a second arrive from another client of a real `bassline serve`. Ignored by
//! the test run; `cargo xtask bench web` runs it with BASSLINE_BENCH_OUT (where the figures go)
//! and BASSLINE_BIN (the server).

mod common;

use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, ensure};
use bassline_core::{
    ContactDocument, GroupDocument, Id, Placement, Point, Request, StateDocument, Value,
    WireDocument,
};
use bassline_net::{NetClient, Start, wait_for, ws::remote};
use bassline_sync::{Candidacy, Config};
use common::{
    Session,
    serve::{Serve, go_remote},
    trace::{Breakdown, Tracer},
};

/// 1,000 placed contacts in a 40 × 25 grid, each wired to its right-hand neighbour.
fn big_network() -> StateDocument {
    let id = |s: String| bassline_core::Id::new(&s).expect("generated ids are valid");
    let mut root = GroupDocument {
        id: id("root".into()),
        name: None,
        primitive: None,
        at: None,
        contacts: Vec::new(),
        wires: Vec::new(),
        groups: Vec::new(),
    };
    for i in 0..1000 {
        let (col, row) = (i % 40, i / 40);
        root.contacts.push(ContactDocument {
            id: id(format!("c{i}")),
            name: None,
            blend: Default::default(),
            value: Value::from(i as f64),
            contradiction: None,
            boundary: None,
            at: Some(Point {
                x: col * 170,
                y: row * 80,
            }),
        });
        if col > 0 {
            root.wires.push(WireDocument {
                id: id(format!("w{i}")),
                from: id(format!("c{}", i - 1)),
                to: id(format!("c{i}")),
                kind: Default::default(),
            });
        }
    }
    StateDocument::new(root)
}

/// What the page recorded while `drive` ran: frame intervals (ms) from requestAnimationFrame,
/// and where the main thread's time went in frames longer than 50 ms (Chromium's
/// long-animation-frame entries).
#[derive(Debug, serde::Deserialize)]
struct Frames {
    intervals: Vec<f64>,
    /// Long frames: how many, and their summed duration, script time, and style + layout +
    /// paint time (from the rendering start to the frame's end), in ms.
    long: usize,
    long_ms: f64,
    script_ms: f64,
    render_ms: f64,
    /// Where the time went in every frame, from Chromium's trace of the same window.
    #[serde(skip)]
    trace: Breakdown,
}

impl Frames {
    /// One row of the figures table: what ran, frame intervals, main-thread work per frame,
    /// its kinds, and the other threads.
    fn row(&self, what: &str) -> String {
        let mut sorted = self.intervals.clone();
        sorted.sort_by(f64::total_cmp);
        format!(
            "| {what} | {:.1} / {:.1} / {:.1} ms ({} frames) | {} | {} | {} |\n",
            percentile(&sorted, 0.5),
            percentile(&sorted, 0.95),
            sorted.last().copied().unwrap_or(f64::NAN),
            sorted.len(),
            self.trace.work(),
            self.trace.kinds(),
            self.trace.others()
        )
    }

    fn breakdown(&self) -> String {
        format!(
            "{} frames over 50 ms, {:.0} ms in all: script {:.0} ms, style/layout/paint {:.0} ms; \
             main-thread work per frame {} ({}; {})",
            self.long,
            self.long_ms,
            self.script_ms,
            self.render_ms,
            self.trace.work(),
            self.trace.kinds(),
            self.trace.others()
        )
    }
}

async fn frames_during(
    s: &Session,
    name: &str,
    drive: impl AsyncFnOnce() -> Result<()>,
) -> Result<Frames> {
    s.eval::<()>(
        "(() => { window.__frames = []; window.__loaf = []; let last = performance.now(); \
         window.__rec = true; \
         const tick = (t) => { window.__frames.push(t - last); last = t; \
         if (window.__rec) requestAnimationFrame(tick); }; requestAnimationFrame(tick); \
         window.__obs = new PerformanceObserver(l => window.__loaf.push(...l.getEntries())); \
         window.__obs.observe({ type: 'long-animation-frame' }); })()",
    )
    .await?;
    let tracer = Tracer::start(&s.page).await?;
    drive().await?;
    let events = tracer.stop(&s.page).await?;
    let mut frames = s.eval::<Frames>(
        "(() => { window.__rec = false; window.__obs.disconnect(); const l = window.__loaf; \
         const sum = f => l.reduce((a, e) => a + f(e), 0); \
         return { intervals: window.__frames.slice(1), long: l.length, \
           long_ms: sum(e => e.duration), \
           script_ms: sum(e => e.scripts.reduce((a, x) => a + x.duration, 0)), \
           render_ms: sum(e => e.renderStart ? e.startTime + e.duration - e.renderStart : 0) }; })()",
    )
    .await?;
    frames.trace = Breakdown::from_trace(&events);
    // Kept for a closer look: DevTools' Performance panel opens it.
    std::fs::create_dir_all(common::artifacts())?;
    std::fs::write(
        common::artifacts().join(format!("trace-{name}.json")),
        serde_json::to_vec(&events)?,
    )?;
    Ok(frames)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Loads the 1,000-contact network through the import button and pans across it; returns the
/// first contentful paint and the rows of the figures table.
async fn panning(s: &Session) -> Result<(f64, String)> {
    let paint: f64 = s
        .eval("performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? -1")
        .await?;
    let file = common::artifacts().join("bench-1000.json");
    std::fs::create_dir_all(common::artifacts())?;
    std::fs::write(&file, big_network().to_json_pretty())?;
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
        "document.querySelectorAll('.node').length === 1000",
        "1,000 nodes",
    )
    .await?;
    // The autosave of the imported network (one export of it) is not part of panning.
    s.wait_for(
        "document.body.dataset.saved",
        "the autosave after the import",
    )
    .await?;
    // Pan: a long drag over the background, one mouse event per frame or so.
    let from = s.canvas_point(20.0, 20.0).await?;
    let pan = frames_during(s, "pan", async || {
        for round in 0..4 {
            let dir = if round % 2 == 0 { 1.0 } else { -1.0 };
            let to = (from.0 + dir * 300.0, from.1 + dir * 200.0);
            s.drag_steps(from, to, 60).await?;
        }
        Ok(())
    })
    .await?;
    println!("panning: {}", pan.breakdown());
    let zoom: String = s.text(".controls .zoom").await?;
    let mut rows = pan.row(&format!(
        "panning 1,000 contacts and 975 wires, all in view ({zoom} zoom)"
    ));
    rows.push_str(&panning_close_up(s).await?);
    Ok((paint, rows))
}

/// Zooms to about 100% and pans across the same group in long strokes: the canvas draws only
/// the contacts near the screen, and adds and drops them as the pan goes.
async fn panning_close_up(s: &Session) -> Result<String> {
    let zoom: f64 = s
        .eval("parseFloat(document.querySelector('.controls .zoom').textContent) / 100")
        .await?;
    let (w, h): (f64, f64) = s
        .eval(
            "(() => { const r = document.querySelector('.canvas').getBoundingClientRect(); \
             return [r.width, r.height]; })()",
        )
        .await?;
    let centre = s.canvas_point(w / 2.0, h / 2.0).await?;
    s.hover(centre).await?;
    // The editor zooms by exp(-deltaY * 0.0015) per wheel event.
    s.page
        .execute(
            chromiumoxide::cdp::browser_protocol::input::DispatchMouseEventParams::builder()
                .r#type(
                    chromiumoxide::cdp::browser_protocol::input::DispatchMouseEventType::MouseWheel,
                )
                .x(centre.0)
                .y(centre.1)
                .delta_x(0.0)
                .delta_y(zoom.ln() / 0.0015)
                .build()
                .map_err(|e| anyhow!(e))?,
        )
        .await?;
    // Within the rounding of the zoom shown (1%) and of the wheel's arithmetic.
    s.wait_for(
        "Math.abs(parseFloat(document.querySelector('.controls .zoom').textContent) - 100) <= 5",
        "about 100% zoom",
    )
    .await?;
    let drawn = s.count(".node").await?;
    let pan = frames_during(s, "pan-100", async || {
        for _ in 0..4 {
            // A point of empty canvas near the lower right, to drag up and left from.
            let from: Option<(f64, f64)> = s
                .eval(&format!(
                    "(() => {{ const r = document.querySelector('.canvas').getBoundingClientRect(); \
                     for (let dy = 0; dy < 120; dy += 6) for (let dx = 0; dx < 120; dx += 6) {{ \
                       const x = r.x + {w} * 0.8 + dx, y = r.y + {h} * 0.8 + dy; \
                       const e = document.elementFromPoint(x, y); \
                       if (e && (e.classList.contains('grid') || e.classList.contains('canvas'))) return [x, y]; }} \
                     return null; }})()"
                ))
                .await?;
            let from = from.ok_or_else(|| anyhow!("no empty canvas to start a pan from"))?;
            s.drag_steps(from, (from.0 - 500.0, from.1 - 300.0), 60).await?;
        }
        Ok(())
    })
    .await?;
    println!("panning at 100%: {}", pan.breakdown());
    Ok(pan.row(&format!(
        "panning the same group at 100% zoom, 2,000 × 1,200 px in 4 strokes ({drawn} of the 1,000 contacts drawn at the start)"
    )))
}

/// Edits per second the other client sends, and for how long.
const EDIT_RATE: u32 = 100;
const EDIT_WINDOW: Duration = Duration::from_secs(5);

/// A page in remote mode shows 1,000 contacts while a native client of the same `bassline
/// serve` writes a new value into one of them 100 times a second; the page records its frame
/// intervals and counts the contacts it re-drew with a new value (the edits it really applied).
async fn remote_edits(s: &Session, serve: &Serve) -> Result<String> {
    let writer = NetClient::spawn(
        remote(serve.remote_url()),
        Config {
            candidacy: Candidacy::Never,
            ..Config::default()
        },
        Start::Guest,
    );
    tokio::time::timeout(
        Duration::from_secs(30),
        wait_for(&writer, |st| st.synced && !st.read_only),
    )
    .await
    .context("the writing client did not get editable")??;
    // 1,000 contacts in a 40 × 25 grid, no wires: each edit changes exactly one contact, so
    // the count of re-drawn contacts is the count of edits applied.
    let id = |s: String| Id::new(&s).map_err(|e| anyhow!("{e}"));
    let root = id("root".into())?;
    let mut places = Vec::new();
    for i in 0..1000 {
        writer
            .submit(Request::AddContact {
                id: Some(id(format!("c{i}"))?),
                group: root.clone(),
                name: None,
                blend: Default::default(),
                value: Value::from(i as f64),
                boundary: None,
            })
            .await?;
        places.push(Placement {
            id: id(format!("c{i}"))?,
            at: Some(Point {
                x: (i % 40) * 170,
                y: (i / 40) * 80,
            }),
        });
    }
    writer
        .submit(Request::Place {
            contacts: places,
            groups: Vec::new(),
        })
        .await?;
    go_remote(s).await?;
    s.wait_for(
        "document.body.dataset.contacts === '1000'",
        "1,000 contacts in remote mode",
    )
    .await?;
    // All of them in view (the canvas draws only what is near the screen), as in the pan.
    s.hover(s.canvas_point(20.0, 20.0).await?).await?;
    s.key("f").await?;
    s.wait_for(
        "document.querySelectorAll('.node').length === 1000",
        "1,000 nodes drawn in remote mode",
    )
    .await?;
    // Counts the values this run wrote (from 100000 up) that a contact came to show, whether
    // its card was re-drawn or only its text changed.
    s.eval::<()>(
        "(() => { window.__shown = new Set(); \
         const seen = v => { if (v && Number(v.textContent) >= 100000) window.__shown.add(v.textContent); }; \
         window.__mo = new MutationObserver(ms => { for (const m of ms) { \
           const t = m.target.nodeType === 1 ? m.target : m.target.parentElement; \
           seen(t?.closest('.value')); \
           for (const n of m.addedNodes) if (n.nodeType === 1) n.querySelectorAll('.value').forEach(seen); } }); \
         window.__mo.observe(document.querySelector('.world'), \
           { childList: true, subtree: true, characterData: true }); })()",
    )
    .await?;
    let started = Instant::now();
    let mut sent = 0u32;
    let frames = frames_during(s, "remote-edits", async || {
        let mut tick = tokio::time::interval(Duration::from_secs(1) / EDIT_RATE);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        while started.elapsed() < EDIT_WINDOW {
            tick.tick().await;
            let k = 100_000 + sent;
            writer
                .submit(Request::UpdateContent {
                    contact: id(format!("c{}", sent % 1000))?,
                    value: Value::from(f64::from(k)),
                })
                .await?;
            sent += 1;
        }
        Ok(())
    })
    .await?;
    let window = started.elapsed().as_secs_f64();
    let applied: u32 = s.eval("window.__shown.size").await?;
    ensure!(sent > 0, "the writer sent nothing");
    println!("remote edits: {}", frames.breakdown());
    Ok(frames.row(&format!(
        "another client of `bassline serve` sends {:.0} edits/s to a group of 1,000 contacts \
         (all in view) for {window:.1} s; the page showed {:.0} edits/s",
        f64::from(sent) / window,
        f64::from(applied) / window,
    )))
}

#[test]
#[ignore = "a benchmark, not a test: `cargo xtask bench web` runs it"]
fn figures() {
    let Some(out) = std::env::var_os("BASSLINE_BENCH_OUT") else {
        eprintln!("`cargo xtask bench web` runs the browser figures (it sets BASSLINE_BENCH_OUT)");
        return;
    };
    let Some((dist, chromium)) = common::setup() else {
        return;
    };
    let bin = common::serve::require_bin();
    let data = common::serve::data_dir("bench");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let result: Result<String> = rt.block_on(async {
        let s = Session::start("bench", &dist, &chromium).await?;
        let pan = panning(&s).await;
        s.close().await;
        let serve = Serve::start(&bin, &data, &dist, "127.0.0.1:0")?;
        let s =
            Session::start_at("bench-remote", format!("http://{}", serve.addr), &chromium).await?;
        let edits = remote_edits(&s, &serve).await;
        s.close().await;
        let (paint, pan) = pan?;
        Ok(format!(
            "first contentful paint {paint:.0} ms. Frame intervals (requestAnimationFrame; the \
             display runs at 60 Hz, so 16.7 ms is every refresh drawn) and, from Chromium's trace of \
             the same window, the renderer main thread's work between two frame starts (script \
             includes our wasm and Leptos; layerize includes the commit to the compositor), in ms:\n\n\
             | what | frame interval p50 / p95 / max | main-thread work per frame p50 / p95 / max | \
             main thread, mean per frame | other threads, mean per frame |\n|---|---|---|---|---|\n\
             {pan}{}\nThe display compositor draws every frame in software here (a floor set by \
             the browser, not the page); the trace of each run is kept in \
             target/browser-artifacts/trace-*.json",
            edits?
        ))
    });
    let _ = std::fs::remove_dir_all(&data);
    let line = result.expect("the browser figures");
    println!("{line}");
    std::fs::write(&out, line).expect("writing the figures");
}
