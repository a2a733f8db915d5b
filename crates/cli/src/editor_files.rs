//! The browser editor's files as `bassline serve` serves them: the four files `cargo xtask
//! web` writes, read from the build folder on each request (a rebuild shows on reload), and a
//! page that says how to build them when they are missing.

use std::path::PathBuf;

use axum::{
    http::{StatusCode, header},
    response::{Html, IntoResponse, Response},
};

/// Every file of the bundle, with its content type. Nothing else is served from the folder.
const FILES: [(&str, &str); 4] = [
    ("index.html", "text/html; charset=utf-8"),
    ("style.css", "text/css; charset=utf-8"),
    ("bassline_web.js", "text/javascript; charset=utf-8"),
    ("bassline_web_bg.wasm", "application/wasm"),
];

/// The build folder of the editor (`target/web`).
#[derive(Debug)]
pub struct EditorFiles {
    dir: PathBuf,
}

impl EditorFiles {
    pub fn new(dir: PathBuf) -> Self {
        EditorFiles { dir }
    }

    /// The first file of the bundle that is not there, if any.
    pub fn missing(&self) -> Option<&'static str> {
        FILES
            .iter()
            .map(|(name, _)| *name)
            .find(|name| !self.dir.join(name).is_file())
    }
}

/// The answer to `GET /<name>` (`/` is `index.html`).
pub async fn respond(files: &EditorFiles, name: &str) -> Response {
    let Some(&(name, kind)) = FILES.iter().find(|(n, _)| *n == name) else {
        return (StatusCode::NOT_FOUND, "not found\n").into_response();
    };
    match tokio::fs::read(files.dir.join(name)).await {
        Ok(body) => (
            [
                (header::CONTENT_TYPE, kind),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            body,
        )
            .into_response(),
        Err(_) if name == "index.html" || files.missing().is_some() => {
            (StatusCode::SERVICE_UNAVAILABLE, not_built(files)).into_response()
        }
        Err(_) => (StatusCode::NOT_FOUND, "not found\n").into_response(),
    }
}

fn not_built(files: &EditorFiles) -> Html<String> {
    let dir = html_escape(&files.dir.display().to_string());
    Html(format!(
        "<!doctype html><meta charset=utf-8><title>Bassline: the editor is not built</title>\
         <h1>The editor is not built yet</h1>\
         <p>This server looks for the browser editor in <code>{dir}</code> and found nothing \
         there. Build it from the Bassline source folder with</p>\
         <pre>cargo xtask web</pre>\
         <p>and reload this page, or start everything at once with <code>cargo xtask \
         serve</code>. Another folder: <code>bassline serve --web DIR</code>.</p>\
         <p>Meanwhile the server works: peer-to-peer rooms (<code>bassline host --signal \
         ws://THIS-HOST/signal</code>, <code>bassline join CODE --signal \
         ws://THIS-HOST/signal</code>), remote mode at <code>/remote</code>, \
         <a href=/healthz>/healthz</a>, <a href=/metrics>/metrics</a>.</p>"
    ))
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
