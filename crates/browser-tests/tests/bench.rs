//! Browser figures for docs/BENCHMARKS.md, printed and never asserted (timings are not tests):
//! first paint, and frame times while panning a group of 1,000 contacts. Ignored by the test
//! run; `cargo xtask bench web` runs it with BASSLINE_BENCH_OUT (where the figures go).

mod common;

use anyhow::{Context, Result};
use bassline_core::{ContactDocument, GroupDocument, Point, StateDocument, Value, WireDocument};
use common::{Session, run};

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

/// Frame intervals (ms) recorded by requestAnimationFrame while `drive` runs.
async fn frames_during(s: &Session, drive: impl AsyncFnOnce() -> Result<()>) -> Result<Vec<f64>> {
    s.eval::<()>(
        "(() => { window.__frames = []; let last = performance.now(); window.__rec = true; \
         const tick = (t) => { window.__frames.push(t - last); last = t; \
         if (window.__rec) requestAnimationFrame(tick); }; requestAnimationFrame(tick); })()",
    )
    .await?;
    drive().await?;
    s.eval::<Vec<f64>>("(() => { window.__rec = false; return window.__frames.slice(1); })()")
        .await
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[test]
#[ignore = "a benchmark, not a test: `cargo xtask bench web` runs it"]
fn figures() {
    let Some(out) = std::env::var_os("BASSLINE_BENCH_OUT") else {
        eprintln!("`cargo xtask bench web` runs the browser figures (it sets BASSLINE_BENCH_OUT)");
        return;
    };
    run("bench", async |s| {
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
                    .map_err(|e| anyhow::anyhow!(e))?,
            )
            .await?;
        s.wait_for(
            "document.querySelectorAll('.node').length === 1000",
            "1,000 nodes",
        )
        .await?;
        // Pan: a long drag over the background, one mouse event per frame or so.
        let from = s.canvas_point(20.0, 20.0).await?;
        let mut pan = frames_during(s, async || {
            for round in 0..4 {
                let dir = if round % 2 == 0 { 1.0 } else { -1.0 };
                let to = (from.0 + dir * 300.0, from.1 + dir * 200.0);
                s.drag_steps(from, to, 60).await?;
            }
            Ok(())
        })
        .await?;
        pan.sort_by(f64::total_cmp);
        let line = format!(
            "first contentful paint {paint:.0} ms; panning 1,000 contacts and 975 wires: \
             frame interval p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms over {} frames",
            percentile(&pan, 0.5),
            percentile(&pan, 0.95),
            pan.last().copied().unwrap_or(f64::NAN),
            pan.len()
        );
        println!("{line}");
        std::fs::write(&out, line).context("writing the figures")?;
        Ok(())
    });
}
