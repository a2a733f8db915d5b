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
