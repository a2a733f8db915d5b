//! Where a page's frames spend their time, from Chromium's own trace (CDP `Tracing`): the
//! renderer's main thread split into script (our wasm and Leptos included), style, layout,
//! paint and the rest, and the threads behind it (compositor, raster workers, the display
//! compositor). The benchmark prints it; nothing asserts on it (timings are not tests).

use std::{collections::HashMap, time::Duration};

use anyhow::{Result, anyhow};
use chromiumoxide::{
    Page,
    cdp::browser_protocol::tracing::{
        EndParams, EventDataCollected, EventTracingComplete, StartParams, StartTransferMode,
        TraceConfig,
    },
    listeners::EventStream,
};
use futures::StreamExt;
use serde_json::Value;

/// Categories that hold the DevTools timeline (what the Performance panel shows) and each
/// thread's top-level tasks.
const CATEGORIES: [&str; 6] = [
    "__metadata",
    "toplevel",
    "devtools.timeline",
    "disabled-by-default-devtools.timeline",
    "disabled-by-default-devtools.timeline.frame",
    "v8.execute",
];

/// A trace being recorded.
pub struct Tracer {
    data: EventStream<EventDataCollected>,
    done: EventStream<EventTracingComplete>,
}

impl Tracer {
    pub async fn start(page: &Page) -> Result<Tracer> {
        let data = page.event_listener::<EventDataCollected>().await?;
        let done = page.event_listener::<EventTracingComplete>().await?;
        let mut config = TraceConfig::builder();
        for c in CATEGORIES {
            config = config.included_categorie(c);
        }
        page.execute(
            StartParams::builder()
                .transfer_mode(StartTransferMode::ReportEvents)
                .trace_config(config.build())
                .build(),
        )
        .await?;
        Ok(Tracer { data, done })
    }

    /// Ends the trace and returns its events.
    pub async fn stop(mut self, page: &Page) -> Result<Vec<Value>> {
        page.execute(EndParams::default()).await?;
        self.done
            .next()
            .await
            .ok_or_else(|| anyhow!("the trace never completed"))?;
        // Chromium sends every data event before the completion, but the two listeners are
        // separate queues: take data until none has come for a while.
        let mut events = Vec::new();
        while let Ok(Some(batch)) =
            tokio::time::timeout(Duration::from_millis(500), self.data.next()).await
        {
            events.extend(batch.value.iter().cloned());
        }
        Ok(events)
    }
}

/// What the main thread was doing, by the name of the innermost slice DevTools would name.
fn category(name: &str) -> Option<&'static str> {
    Some(match name {
        "FunctionCall" | "EventDispatch" | "TimerFire" | "FireAnimationFrame" | "v8.execute"
        | "V8.Execute" | "v8.callFunction" | "v8.run" | "RunMicrotasks" | "v8.compile"
        | "v8.compileModule" | "EvaluateScript" => "script",
        "UpdateLayoutTree" | "RecalculateStyles" | "ParseAuthorStyleSheet" => "style",
        "Layout" => "layout",
        "PrePaint" | "Paint" | "PaintImage" | "UpdateLayer" | "UpdateLayerTree" => "paint",
        // Turning the painted chunks into compositor layers, and handing them over.
        "Layerize" | "PaintArtifactCompositor::Update" | "Commit" | "CompositeLayers" => "layerize",
        "HitTest" => "hit-test",
        "MinorGC"
        | "MajorGC"
        | "V8.GC_SCAVENGER"
        | "V8.GC_MARK_COMPACTOR"
        | "BlinkGC.AtomicPhase" => "gc",
        _ => return None,
    })
}

/// One slice of a thread's timeline, in microseconds.
#[derive(Clone, Debug)]
struct Slice {
    name: String,
    ts: f64,
    dur: f64,
}

/// A trace's slices, per (pid, tid), and each thread's name.
struct Threads {
    names: HashMap<(u64, u64), String>,
    slices: HashMap<(u64, u64), Vec<Slice>>,
}

fn threads(events: &[Value]) -> Threads {
    let mut names = HashMap::new();
    let mut slices: HashMap<(u64, u64), Vec<Slice>> = HashMap::new();
    let mut open: HashMap<(u64, u64), Vec<(String, f64)>> = HashMap::new();
    for e in events {
        let key = (
            e["pid"].as_u64().unwrap_or(0),
            e["tid"].as_u64().unwrap_or(0),
        );
        let name = e["name"].as_str().unwrap_or("").to_owned();
        let ts = e["ts"].as_f64().unwrap_or(0.0);
        match e["ph"].as_str() {
            Some("M") if name == "thread_name" => {
                if let Some(n) = e["args"]["name"].as_str() {
                    names.insert(key, n.to_owned());
                }
            }
            // Instants (frame starts among them) as slices of no length.
            Some("X" | "I" | "i") => slices.entry(key).or_default().push(Slice {
                name,
                ts,
                dur: e["dur"].as_f64().unwrap_or(0.0),
            }),
            Some("B") => open.entry(key).or_default().push((name, ts)),
            Some("E") => {
                if let Some((name, start)) = open.entry(key).or_default().pop() {
                    slices.entry(key).or_default().push(Slice {
                        name,
                        ts: start,
                        dur: ts - start,
                    });
                }
            }
            _ => {}
        }
    }
    for s in slices.values_mut() {
        // Parents first: earlier start, and the longer of two that start together.
        s.sort_by(|a, b| a.ts.total_cmp(&b.ts).then(b.dur.total_cmp(&a.dur)));
    }
    Threads { names, slices }
}

/// The top-level slices of one thread (those inside no other), merged into busy intervals.
fn busy(slices: &[Slice]) -> Vec<(f64, f64)> {
    let mut out: Vec<(f64, f64)> = Vec::new();
    for s in slices {
        let end = s.ts + s.dur;
        match out.last_mut() {
            Some(last) if s.ts < last.1 => last.1 = last.1.max(end),
            _ => out.push((s.ts, end)),
        }
    }
    out
}

/// Time of `intervals` inside `[from, to)`.
fn overlap(intervals: &[(f64, f64)], from: f64, to: f64) -> f64 {
    intervals
        .iter()
        .map(|&(a, b)| (b.min(to) - a.max(from)).max(0.0))
        .sum()
}

/// Where the time of the frames went, in ms.
#[derive(Debug, Default)]
pub struct Breakdown {
    /// Frames the main thread began (windows between its `BeginMainThreadFrame`s).
    pub frames: usize,
    /// The renderer main thread's busy time in each frame window.
    pub main_per_frame: Vec<f64>,
    /// Main-thread time by kind (script, style, layout, paint, layerize, hit-test, gc,
    /// other), summed.
    pub main: Vec<(&'static str, f64)>,
    /// Busy time summed over the window, per other thread kind: the renderer's compositor
    /// thread, its raster workers (none here: this software-rendered Chromium rasterizes
    /// elsewhere), and the display compositor (viz) that draws each frame.
    pub compositor: f64,
    pub raster: f64,
    pub display: f64,
    /// The window (first to last frame), ms.
    pub window: f64,
}

impl Breakdown {
    pub fn from_trace(events: &[Value]) -> Breakdown {
        let t = threads(events);
        let named = |want: &dyn Fn(&str) -> bool| -> Vec<(u64, u64)> {
            t.names
                .iter()
                .filter(|(_, n)| want(n))
                .map(|(k, _)| *k)
                .collect()
        };
        // The page's renderer: the main thread with the most frames begun.
        let frames_of = |k: &(u64, u64)| -> Vec<f64> {
            t.slices.get(k).map_or_else(Vec::new, |s| {
                s.iter()
                    .filter(|s| s.name == "BeginMainThreadFrame")
                    .map(|s| s.ts)
                    .collect()
            })
        };
        let Some(main) = named(&|n| n == "CrRendererMain")
            .into_iter()
            .max_by_key(|k| frames_of(k).len())
        else {
            return Breakdown::default();
        };
        let starts = frames_of(&main);
        let (Some(&first), Some(&last)) = (starts.first(), starts.last()) else {
            return Breakdown::default();
        };
        let slices = t.slices.get(&main).cloned().unwrap_or_default();
        let main_busy = busy(&slices);
        let main_per_frame = starts
            .windows(2)
            .map(|w| overlap(&main_busy, w[0], w[1]) / 1000.0)
            .collect();
        // Exclusive time of each slice, charged to its own kind or its nearest parent's.
        let mut kinds: HashMap<&'static str, f64> = HashMap::new();
        let mut stack: Vec<(f64, &'static str)> = Vec::new(); // (end, kind) of open slices
        for s in slices.iter().filter(|s| s.ts >= first && s.ts < last) {
            while stack.last().is_some_and(|&(end, _)| s.ts >= end) {
                stack.pop();
            }
            let parent = stack.last().map_or("other", |p| p.1);
            let kind = category(&s.name).unwrap_or(parent);
            // The parent's exclusive time shrinks by this child's.
            *kinds.entry(parent).or_default() -= if stack.is_empty() { 0.0 } else { s.dur };
            *kinds.entry(kind).or_default() += s.dur;
            stack.push((s.ts + s.dur, kind));
        }
        let mut main: Vec<(&'static str, f64)> = [
            "script", "style", "layout", "paint", "layerize", "hit-test", "gc", "other",
        ]
        .into_iter()
        .map(|k| (k, kinds.get(k).copied().unwrap_or(0.0) / 1000.0))
        .collect();
        main.retain(|(_, ms)| *ms > 0.0);
        let total = |want: &dyn Fn(&str) -> bool| -> f64 {
            named(want)
                .iter()
                .map(|k| overlap(&busy(t.slices.get(k).map_or(&[][..], |s| s)), first, last))
                .sum::<f64>()
                / 1000.0
        };
        Breakdown {
            frames: starts.len().saturating_sub(1),
            main_per_frame,
            main,
            compositor: total(&|n| n == "Compositor"),
            raster: total(&|n| n.starts_with("CompositorTileWorker")),
            display: total(&|n| n == "VizCompositorThread" || n == "CrGpuMain"),
            window: (last - first) / 1000.0,
        }
    }

    /// Main-thread work per frame: "p50 / p95 / max ms (N frames)".
    pub fn work(&self) -> String {
        let mut sorted = self.main_per_frame.clone();
        sorted.sort_by(f64::total_cmp);
        let pct = |p: f64| {
            sorted
                .get(((sorted.len().max(1) - 1) as f64 * p).round() as usize)
                .copied()
                .unwrap_or(f64::NAN)
        };
        format!(
            "{:.1} / {:.1} / {:.1} ms ({} frames)",
            pct(0.5),
            pct(0.95),
            sorted.last().copied().unwrap_or(f64::NAN),
            self.frames
        )
    }

    fn per_frame(&self, ms: f64) -> f64 {
        ms / self.frames.max(1) as f64
    }

    /// The main thread's mean time per frame by kind, in ms.
    pub fn kinds(&self) -> String {
        self.main
            .iter()
            .map(|(k, ms)| format!("{k} {:.1}", self.per_frame(*ms)))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The other threads' mean busy time per frame, in ms.
    pub fn others(&self) -> String {
        let mut out = format!(
            "compositor {:.1}, display compositor {:.1}",
            self.per_frame(self.compositor),
            self.per_frame(self.display)
        );
        if self.raster >= 0.05 {
            out.push_str(&format!(", raster {:.1}", self.per_frame(self.raster)));
        }
        out
    }
}
