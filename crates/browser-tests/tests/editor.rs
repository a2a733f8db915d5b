//! The editor in real headless Chromium, driven by mouse and keyboard events.

mod common;

use anyhow::{Result, ensure};
use common::{CTRL, SHIFT, Session, run};

/// Drags a new wire from one handle to another and picks its kind with a key.
async fn wire(s: &Session, from: &str, to: &str, kind_key: &str) -> Result<()> {
    let wires = s.count(".wire").await?;
    let a = s.centre(from).await?;
    let b = s.centre(to).await?;
    s.drag(a, b).await?;
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

/// Builds: an `add` gadget from the palette, contacts a and b wired to its inputs, a result
/// contact wired from its output. Returns nothing; ids are c1 (a), c2 (b), c3 (result), g1.
async fn build_sum(s: &Session) -> Result<()> {
    s.click_on("button[data-gadget='add']").await?;
    s.wait_for("document.querySelector('.banner')", "the placing banner")
        .await?;
    s.click(s.canvas_point(470.0, 240.0).await?).await?;
    s.wait_for("document.querySelector(\"[data-node='g1']\")", "the gadget")
        .await?;
    // One contact with the C key at the pointer, one by double-clicking the canvas.
    s.hover(s.canvas_point(160.0, 160.0).await?).await?;
    s.key("c").await?;
    s.wait_for("document.querySelector(\"[data-node='c1']\")", "contact c1")
        .await?;
    s.double_click(s.canvas_point(160.0, 340.0).await?).await?;
    s.wait_for("document.querySelector(\"[data-node='c2']\")", "contact c2")
        .await?;
    s.hover(s.canvas_point(780.0, 240.0).await?).await?;
    s.key("c").await?;
    s.wait_for("document.querySelector(\"[data-node='c3']\")", "contact c3")
        .await?;
    wire(
        s,
        "[data-node='c1'] .handle.out",
        ".handle[data-contact='g1/a']",
        "Enter",
    )
    .await?;
    wire(
        s,
        "[data-node='c2'] .handle.out",
        ".handle[data-contact='g1/b']",
        "Enter",
    )
    .await?;
    wire(
        s,
        ".handle[data-contact='g1/out']",
        "[data-node='c3'] .handle.in",
        "d",
    )
    .await?;
    ensure!(s.count(".wire.directed").await? == 1, "one directed wire");
    s.type_value("c1", "2").await?;
    s.wait_for(
        "document.querySelector(\"[data-node='c1'] .value\").textContent === '2'",
        "a = 2",
    )
    .await?;
    s.type_value("c2", "3").await?;
    Ok(())
}

async fn shows_sum(s: &Session) -> Result<()> {
    s.wait_for(
        "document.querySelector(\"[data-node='c3'] .value\")?.textContent === '5'",
        "the propagated sum 5 in the result contact",
    )
    .await
}

#[test]
fn a_network_built_by_mouse_and_keyboard_propagates() {
    run("build", async |s| {
        build_sum(s).await?;
        shows_sum(s).await?;
        ensure!(
            s.text(".port.out .port-value").await? == "5",
            "the gadget's output port shows 5"
        );
        // Deselect and let the picture settle for the screenshot the README shows.
        s.key("Escape").await?;
        s.key("f").await?;
        s.screenshot("network.png").await?;
        Ok(())
    });
}

#[test]
fn undo_redo_and_bad_input() {
    run("undo", async |s| {
        s.hover(s.canvas_point(300.0, 200.0).await?).await?;
        s.key("c").await?;
        s.wait_for("document.querySelector(\"[data-node='c1']\")", "contact c1")
            .await?;
        s.type_value("c1", "7").await?;
        s.wait_for(
            "document.querySelector(\"[data-node='c1'] .value\").textContent === '7'",
            "7",
        )
        .await?;
        s.key_with("z", CTRL).await?;
        s.wait_for(
            "document.querySelector(\"[data-node='c1'] .value\").textContent === '∅'",
            "undone",
        )
        .await?;
        s.key_with("z", CTRL | SHIFT).await?;
        s.wait_for(
            "document.querySelector(\"[data-node='c1'] .value\").textContent === '7'",
            "redone",
        )
        .await?;
        // Bad input: a message, and nothing changes.
        let before = s.state_hash().await?;
        s.type_value("c1", "{\"a\": ").await?;
        s.wait_for(
            "document.querySelector('.value-editor .error')?.textContent.includes('not valid JSON')",
            "the bad-value message",
        )
        .await?;
        // Backspace while typing edits the text; it never deletes the contact.
        s.key("Backspace").await?;
        ensure!(
            s.count("[data-node='c1']").await? == 1,
            "the contact survived Backspace"
        );
        ensure!(
            s.state_hash().await? == before,
            "bad input changed the state"
        );
        ensure!(s.value_of("c1").await? == "7", "the value is unchanged");
        s.key("Escape").await?;
        s.wait_for(
            "!document.querySelector('.value-editor')",
            "the editor to close",
        )
        .await?;
        // Undo the removal of a selected contact brings it back with its value.
        s.click_on("[data-node='c1'] .head").await?;
        s.key("Delete").await?;
        s.wait_for(
            "!document.querySelector(\"[data-node='c1']\")",
            "the deletion",
        )
        .await?;
        s.key_with("z", CTRL).await?;
        s.wait_for(
            "document.querySelector(\"[data-node='c1'] .value\")?.textContent === '7'",
            "restored",
        )
        .await?;
        Ok(())
    });
}

#[test]
fn groups_are_entered_and_left_and_their_boundary_becomes_ports() {
    run("groups", async |s| {
        s.hover(s.canvas_point(400.0, 250.0).await?).await?;
        s.key("g").await?;
        s.wait_for("document.querySelector(\"[data-node='g1']\")", "the group")
            .await?;
        s.double_click(s.centre("[data-node='g1'] .head").await?)
            .await?;
        s.wait_for(
            "document.querySelector('.crumb.current')?.textContent === 'g1'",
            "the breadcrumbs to show the group",
        )
        .await?;
        ensure!(
            s.eval::<String>("location.hash").await? == "#g=g1",
            "one URL per group"
        );
        s.hover(s.canvas_point(200.0, 200.0).await?).await?;
        s.key("i").await?;
        s.wait_for(
            "document.querySelector('.contact.boundary')",
            "an input boundary contact",
        )
        .await?;
        s.click_on(".crumb:not(.current)").await?;
        s.wait_for(
            "document.querySelector('.crumb.current')?.textContent === 'Root'",
            "back at the root",
        )
        .await?;
        s.wait_for(
            "document.querySelector(\"[data-node='g1'] .port.in\")",
            "the input as a port on the group node",
        )
        .await?;
        // Copy and paste the group: a second one, with its own port.
        s.click_on("[data-node='g1'] .head").await?;
        s.key_with("c", CTRL).await?;
        s.key_with("v", CTRL).await?;
        s.wait_for(
            "document.querySelectorAll('.node.group').length === 2",
            "the pasted group",
        )
        .await?;
        ensure!(s.count(".port.in").await? == 2, "the copy has its port");
        Ok(())
    });
}

#[test]
fn a_reload_restores_the_network_and_the_mode() {
    run("reload", async |s| {
        build_sum(s).await?;
        shows_sum(s).await?;
        let hash = s.state_hash().await?;
        s.wait_for(
            "document.querySelector('.saved')?.textContent === 'saved in this browser'",
            "the autosave",
        )
        .await?;
        s.page.reload().await?;
        s.wait_ready().await?;
        ensure!(s.state_hash().await? == hash, "the restored state differs");
        shows_sum(s).await?;
        // Remote mode without a server says so plainly, and the choice survives a reload.
        s.click_on(".mode-button").await?;
        s.click_on(".mode-remote button").await?;
        s.wait_for(
            "document.querySelector('.link')?.textContent.includes('remote mode needs `bassline serve`')",
            "the remote-mode message",
        )
        .await?;
        s.page.reload().await?;
        s.wait_ready().await?;
        s.wait_for(
            "document.querySelector('.mode-button')?.textContent.includes('Remote')",
            "remote mode after the reload",
        )
        .await?;
        s.click_on(".mode-button").await?;
        s.click_on(".mode-local").await?;
        s.wait_for(
            &format!(
                "document.body.dataset.stateHash === {}",
                common::js_str(&hash)
            ),
            "the local network back",
        )
        .await?;
        Ok(())
    });
}

/// Puts a file into the import input, as choosing it in the file dialog would.
async fn import_file(s: &Session, path: &std::path::Path) -> Result<()> {
    use chromiumoxide::cdp::browser_protocol::dom::SetFileInputFilesParams;
    let input = s.page.find_element(".import input[type=file]").await?;
    let params = SetFileInputFilesParams::builder()
        .files(vec![path.display().to_string()])
        .backend_node_id(input.backend_node_id)
        .build()
        .map_err(|e| anyhow::anyhow!(e))?;
    s.page.execute(params).await?;
    Ok(())
}

#[test]
fn export_then_import_round_trips_and_bad_files_are_refused() {
    run("export", async |s| {
        use chromiumoxide::cdp::browser_protocol::browser::{
            SetDownloadBehaviorBehavior, SetDownloadBehaviorParams,
        };
        let downloads = common::artifacts().join(format!("downloads-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&downloads);
        std::fs::create_dir_all(&downloads)?;
        let downloads = downloads.canonicalize()?;
        s.browser
            .execute(
                SetDownloadBehaviorParams::builder()
                    .behavior(SetDownloadBehaviorBehavior::Allow)
                    .download_path(downloads.display().to_string())
                    .build()
                    .map_err(|e| anyhow::anyhow!(e))?,
            )
            .await?;
        build_sum(s).await?;
        shows_sum(s).await?;
        let hash = s.state_hash().await?;
        s.click_on("button.export").await?;
        let file = downloads.join("bassline-network.json");
        let start = std::time::Instant::now();
        while !(file.exists() && std::fs::metadata(&file)?.len() > 0) {
            ensure!(start.elapsed().as_secs() < 30, "no download appeared");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let exported = std::fs::read_to_string(&file)?;
        let doc = bassline_core::StateDocument::from_json(&exported)?;
        let net = bassline_core::Network::import(&doc)?;
        ensure!(
            net.state_hash().to_string() == hash,
            "the file holds the page's state"
        );

        // Bad files: a clear message, and nothing changes.
        let garbage = downloads.join("garbage.json");
        std::fs::write(&garbage, "this is not a network")?;
        import_file(s, &garbage).await?;
        s.wait_for(
            "[...document.querySelectorAll('.toast.error')].some(t => t.textContent.includes('not JSON'))",
            "the not-JSON message",
        )
        .await?;
        let newer = downloads.join("newer.json");
        std::fs::write(
            &newer,
            exported.replacen("\"version\": 2", "\"version\": 99", 1),
        )?;
        import_file(s, &newer).await?;
        s.wait_for(
            "[...document.querySelectorAll('.toast.error')].some(t => t.textContent.includes('upgrade Bassline'))",
            "the upgrade message",
        )
        .await?;
        ensure!(
            s.state_hash().await? == hash,
            "a refused import changed the state"
        );

        // Clear everything, then import the export: the same state comes back.
        s.hover(s.canvas_point(50.0, 50.0).await?).await?;
        s.key_with("a", CTRL).await?;
        s.key("Delete").await?;
        s.wait_for(
            "document.querySelectorAll('.node').length === 0",
            "an empty network",
        )
        .await?;
        ensure!(s.state_hash().await? != hash, "deleting changed the state");
        import_file(s, &file).await?;
        s.wait_for(
            &format!(
                "document.body.dataset.stateHash === {}",
                common::js_str(&hash)
            ),
            "the imported state",
        )
        .await?;
        shows_sum(s).await?;
        let _ = std::fs::remove_dir_all(&downloads);
        Ok(())
    });
}

/// Contact `near` at (100, 100), contact `far` at (4100, 2100), and wire `w` from `near` to
/// `far`: far enough apart that at 100% zoom each is off screen when the other is on it.
fn far_apart() -> bassline_core::StateDocument {
    use bassline_core::{ContactDocument, GroupDocument, Id, Point, Value, WireDocument};
    let id = |s: &str| Id::new(s).expect("valid ids");
    let contact = |name: &str, x, y| ContactDocument {
        id: id(name),
        name: None,
        blend: Default::default(),
        value: Value::from(1.0),
        contradiction: None,
        boundary: None,
        at: Some(Point { x, y }),
    };
    bassline_core::StateDocument::new(GroupDocument {
        id: id("root"),
        name: None,
        primitive: None,
        at: None,
        contacts: vec![contact("near", 100, 100), contact("far", 4100, 2100)],
        wires: vec![WireDocument {
            id: id("w"),
            from: id("near"),
            to: id("far"),
            kind: Default::default(),
        }],
        groups: Vec::new(),
    })
}

/// Where canvas point (x, y) is on screen: from a drawn contact's box, whose size (132 canvas
/// units wide) gives the zoom and whose corner gives the offset. The page's layout, not the
/// editor's own viewport state, is the witness.
struct Mapping {
    zoom: f64,
    x: f64,
    y: f64,
}

impl Mapping {
    async fn from_contact(s: &Session, id: &str, at: (f64, f64)) -> Result<Mapping> {
        let (left, top, width): (f64, f64, f64) = s
            .eval(&format!(
                "(() => {{ const r = document.querySelector(\"[data-node='{id}']\").getBoundingClientRect(); \
                 return [r.left, r.top, r.width]; }})()"
            ))
            .await?;
        let zoom = width / 132.0;
        Ok(Mapping {
            zoom,
            x: left - at.0 * zoom,
            y: top - at.1 * zoom,
        })
    }

    fn screen(&self, (x, y): (f64, f64)) -> (f64, f64) {
        (x * self.zoom + self.x, y * self.zoom + self.y)
    }
}

/// Drags the empty canvas so the view moves by (dx, dy) screen pixels, in strokes short enough
/// to stay inside the canvas, each starting on a point where nothing is drawn.
async fn pan_by(s: &Session, map: &mut Mapping, dx: f64, dy: f64) -> Result<()> {
    let strokes = (dx.abs().max(dy.abs()) / 200.0).ceil().max(1.0);
    let (sx, sy) = (dx / strokes, dy / strokes);
    for _ in 0..strokes as u32 {
        let (cw, ch): (f64, f64) = s
            .eval(
                "(() => { const r = document.querySelector('.canvas').getBoundingClientRect(); \
                 return [r.width, r.height]; })()",
            )
            .await?;
        let mut from = None;
        for (fx, fy) in [(0.5, 0.5), (0.3, 0.3), (0.7, 0.3), (0.3, 0.7), (0.7, 0.7)] {
            let at = s
                .canvas_point(cw * fx - sx / 2.0, ch * fy - sy / 2.0)
                .await?;
            let empty: bool = s
                .eval(&format!(
                    "(() => {{ const e = document.elementFromPoint({}, {}); \
                     return !!e && (e.classList.contains('canvas') || e.classList.contains('grid')); }})()",
                    at.0, at.1
                ))
                .await?;
            if empty {
                from = Some(at);
                break;
            }
        }
        let from = from.ok_or_else(|| anyhow::anyhow!("no empty canvas to drag"))?;
        s.drag_steps(from, (from.0 + sx, from.1 + sy), 4).await?;
        map.x += sx;
        map.y += sy;
    }
    Ok(())
}

/// A contact (or wire) drawn only near the screen: zoomed in, the far contact is not in the
/// page; the wire between two contacts that are both off screen is still drawn where it
/// crosses it, and can be clicked; panned to, the far contact appears where it belongs, takes
/// a click and a new value.
#[test]
fn contacts_and_wires_off_screen_appear_when_panned_to_and_respond() {
    run("culling", async |s| {
        let file = common::artifacts().join(format!("far-apart-{}.json", std::process::id()));
        std::fs::create_dir_all(common::artifacts())?;
        std::fs::write(&file, far_apart().to_json_pretty())?;
        import_file(s, &file.canonicalize()?).await?;
        s.wait_for(
            "document.querySelector(\"[data-node='far']\") && document.querySelector(\"[data-wire='w']\")",
            "both contacts and the wire, the whole group fitted in view",
        )
        .await?;
        // Only now: the page reads the file after the input took it.
        let _ = std::fs::remove_file(&file);
        // Zoom in on `near` with the wheel until at least 100%.
        let near = s.centre("[data-node='near']").await?;
        s.hover(near).await?;
        for _ in 0..20 {
            let zoom: f64 = s
                .eval("parseFloat(document.querySelector('.controls .zoom').textContent)")
                .await?;
            if zoom >= 100.0 {
                break;
            }
            use chromiumoxide::cdp::browser_protocol::input::{
                DispatchMouseEventParams, DispatchMouseEventType,
            };
            s.page
                .execute(
                    DispatchMouseEventParams::builder()
                        .r#type(DispatchMouseEventType::MouseWheel)
                        .x(near.0)
                        .y(near.1)
                        .delta_x(0.0)
                        .delta_y(-200.0)
                        .build()
                        .map_err(|e| anyhow::anyhow!(e))?,
                )
                .await?;
        }
        // Wheel events may still be on their way: measure once the view holds still.
        let mut map = Mapping::from_contact(s, "near", (100.0, 100.0)).await?;
        for _ in 0..50 {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            let again = Mapping::from_contact(s, "near", (100.0, 100.0)).await?;
            let still = (again.zoom, again.x, again.y) == (map.zoom, map.x, map.y);
            map = again;
            if still {
                break;
            }
        }
        ensure!(map.zoom >= 0.99, "zoomed in to {}", map.zoom);
        s.wait_for(
            "!document.querySelector(\"[data-node='far']\")",
            "the far contact to leave the page (4,000 units off screen)",
        )
        .await?;

        // The middle of the wire's curve: both ends are off screen there.
        let (cw, ch): (f64, f64) = s
            .eval(
                "(() => { const r = document.querySelector('.canvas').getBoundingClientRect(); \
                 return [r.x + r.width / 2, r.y + r.height / 2]; })()",
            )
            .await?;
        // The curve from near's output (232, 125) to far's input (4100, 2125) bends by half
        // their distance: at its middle it passes (2166, 1125).
        let middle = map.screen((2166.0, 1125.0));
        pan_by(s, &mut map, cw - middle.0, ch - middle.1).await?;
        let middle = map.screen((2166.0, 1125.0));
        s.wait_for(
            "!document.querySelector(\"[data-node='near']\") && !document.querySelector(\"[data-node='far']\")",
            "both contacts off the page",
        )
        .await?;
        // Along a short horizontal line there (the curve runs at about 45° at its middle): the
        // pan strokes may not move the view by exactly what the test asked.
        let hit: Option<f64> = s
            .eval(&format!(
                "(() => {{ for (let d = 0; d <= 40; d += 2) for (const x of [{x} + d, {x} - d]) \
                 if (document.elementFromPoint(x, {y})?.closest('[data-wire]')?.dataset.wire === 'w') \
                 return x; return null; }})()",
                x = middle.0,
                y = middle.1
            ))
            .await?;
        let x = hit
            .ok_or_else(|| anyhow::anyhow!("the wire is not drawn where it crosses the screen"))?;
        s.click((x, middle.1)).await?;
        s.wait_for(
            "document.querySelector(\"[data-wire='w'].selected\")",
            "the clicked wire selected",
        )
        .await?;

        // Bring `far` to the middle of the screen: it appears where it belongs and responds.
        let far = map.screen((4100.0 + 66.0, 2100.0 + 25.0));
        pan_by(s, &mut map, cw - far.0, ch - far.1).await?;
        s.wait_for(
            "document.querySelector(\"[data-node='far']\")",
            "the far contact drawn once panned to",
        )
        .await?;
        let seen = s.centre("[data-node='far']").await?;
        let want = map.screen((4100.0 + 66.0, 2100.0 + 25.0));
        ensure!(
            (seen.0 - want.0).abs() < 40.0 && (seen.1 - want.1).abs() < 40.0,
            "far is drawn at {seen:?}, expected about {want:?}"
        );
        s.click(seen).await?;
        s.wait_for(
            "document.querySelector(\"[data-node='far'].selected\")",
            "far selected by a click",
        )
        .await?;
        s.type_value("far", "42").await?;
        s.wait_for(
            "document.querySelector(\"[data-node='far'] .value\").textContent === '42'",
            "far's new value",
        )
        .await?;
        Ok(())
    });
}
