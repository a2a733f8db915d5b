//! The `bassline` binary, run as a process.

use std::{fs, process::Command};

fn bassline() -> Command {
    Command::new(env!("CARGO_BIN_EXE_bassline"))
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("bassline-cli-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("temp dir");
    dir
}

#[test]
fn help_explains_every_command() {
    let out = bassline().arg("--help").output().expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(text.contains("check") && text.contains("apply"), "{text}");
}

#[test]
fn apply_then_check_round_trips_a_state_file() {
    let dir = temp_dir("apply");
    let requests = dir.join("requests.jsonl");
    fs::write(
        &requests,
        concat!(
            r#"{"type":"add-contact","id":"a","group":"root"}"#,
            "\n",
            r#"{"type":"add-contact","id":"b","group":"root","blend":"merge"}"#,
            "\n",
            r#"{"type":"connect","from":"a","to":"b"}"#,
            "\n",
            r#"{"type":"update-content","contact":"a","value":{"$grow-set":[1,2]}}"#,
            "\n",
        ),
    )
    .expect("write");
    let state = dir.join("state.json");
    let out = bassline()
        .args([
            "apply",
            requests.to_str().expect("utf-8"),
            "-o",
            state.to_str().expect("utf-8"),
        ])
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = fs::read_to_string(&state).expect("state written");
    assert!(text.contains("\"$grow-set\""), "{text}");

    let out = bassline()
        .args(["check", state.to_str().expect("utf-8")])
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(
        text.contains("contacts: 2") && text.contains("wires:    1"),
        "{text}"
    );
    fs::remove_dir_all(dir).ok();
}

#[test]
fn bad_files_get_clear_errors() {
    let dir = temp_dir("bad");
    let future = dir.join("future.json");
    fs::write(
        &future,
        r#"{"format":"bassline-state","version":7,"root":{"id":"root"}}"#,
    )
    .expect("write");
    let out = bassline()
        .args(["check", future.to_str().expect("utf-8")])
        .output()
        .expect("runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("upgrade Bassline"));

    let requests = dir.join("bad.jsonl");
    fs::write(&requests, "{\"type\":\"remove-group\",\"id\":\"root\"}\n").expect("write");
    let out = bassline()
        .args(["apply", requests.to_str().expect("utf-8")])
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("line 1: refused") && err.contains("root group"),
        "{err}"
    );
    fs::remove_dir_all(dir).ok();
}
