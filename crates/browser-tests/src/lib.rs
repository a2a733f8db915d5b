//! End-to-end tests of the browser editor live in `tests/`: they drive real headless Chromium
//! against the bundle `cargo xtask web` builds. `cargo xtask test` builds it, installs Chromium
//! when missing and sets `BASSLINE_WEB_DIST` and `BASSLINE_CHROMIUM`; without those the tests
//! say so and skip, so a plain `cargo test` stays quick.
