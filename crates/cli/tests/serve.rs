//! `bassline serve` over plain HTTP: the editor's files at `/` (or a page saying how to build
//! them), `/healthz` and `/metrics` beside them on the one port.

mod harness;

use std::{
    io::{Read, Write},
    net::TcpStream,
    path::Path,
};

use harness::{Serve, temp_dir};

/// One GET over a fresh connection: (status code, headers in lower case, body).
fn get(addr: &str, path: &str) -> (u16, String, Vec<u8>) {
    let mut s = TcpStream::connect(addr).expect("serve accepts");
    s.set_read_timeout(Some(harness::WAIT)).expect("a timeout");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("request sent");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("a whole answer");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a header block");
    let head = String::from_utf8_lossy(&raw[..split]).to_lowercase();
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("a status line");
    let mut body = raw[split + 4..].to_vec();
    if head.contains("transfer-encoding: chunked") {
        body = dechunk(&body);
    }
    (code, head, body)
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = b.windows(2).position(|w| w == b"\r\n").expect("chunk size");
        let size = usize::from_str_radix(std::str::from_utf8(&b[..line_end]).unwrap().trim(), 16)
            .expect("hex chunk size");
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&b[line_end + 2..line_end + 2 + size]);
        b = &b[line_end + 4 + size..];
    }
}

/// A stand-in bundle: the four files `cargo xtask web` writes, each with known content.
fn fake_bundle(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    for (name, body) in [
        ("index.html", "<!doctype html><title>the editor</title>"),
        ("style.css", "body{}"),
        ("bassline_web.js", "export default 1;"),
        ("bassline_web_bg.wasm", "\0asm"),
    ] {
        std::fs::write(dir.join(name), body).unwrap();
    }
}

#[test]
fn serves_the_editor_health_and_metrics_on_one_port() {
    let root = temp_dir("serve-web");
    let web = root.join("web");
    fake_bundle(&web);
    std::fs::write(root.join("secret.txt"), "not for the web").unwrap();
    let serve = Serve::start_with(
        &root.join("data"),
        "127.0.0.1:0",
        &["--web".as_ref(), web.as_os_str()],
    );
    let (code, head, body) = get(&serve.addr, "/");
    assert_eq!(code, 200);
    assert!(head.contains("content-type: text/html"), "{head}");
    assert_eq!(body, b"<!doctype html><title>the editor</title>");
    for (path, kind) in [
        ("/bassline_web_bg.wasm", "application/wasm"),
        ("/bassline_web.js", "text/javascript"),
        ("/style.css", "text/css"),
    ] {
        let (code, head, _) = get(&serve.addr, path);
        assert_eq!(code, 200, "{path}");
        assert!(head.contains(kind), "{path}: {head}");
    }
    // Only the bundle's own files: nothing else of the folder, nothing above it.
    for path in [
        "/secret.txt",
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/web/index.html",
    ] {
        let (code, _, body) = get(&serve.addr, path);
        assert_ne!(code, 200, "{path} was served");
        assert!(!String::from_utf8_lossy(&body).contains("not for the web"));
    }
    assert_eq!(
        get(&serve.addr, "/healthz"),
        (200, get(&serve.addr, "/healthz").1, b"ok\n".to_vec())
    );
    let (code, _, metrics) = get(&serve.addr, "/metrics");
    assert_eq!(code, 200);
    assert!(!metrics.is_empty());
}

#[test]
fn without_a_built_editor_the_page_says_how_to_build_it() {
    let root = temp_dir("serve-noweb");
    let serve = Serve::start_with(
        &root.join("data"),
        "127.0.0.1:0",
        &["--web".as_ref(), root.join("nothing-here").as_os_str()],
    );
    let (code, head, body) = get(&serve.addr, "/");
    let page = String::from_utf8_lossy(&body);
    assert_eq!(code, 503, "{page}");
    assert!(head.contains("text/html"), "{head}");
    assert!(page.contains("cargo xtask web"), "{page}");
    assert!(page.contains("cargo xtask serve"), "{page}");
    // The rest of the server works meanwhile.
    assert_eq!(get(&serve.addr, "/healthz").0, 200);
}
