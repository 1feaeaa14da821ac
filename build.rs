//! Chooses the viewer page assets that `src/player.rs` embeds and tells it where they are
//! (`RILL_PLAYER_DIST`). Runs nothing else.
//!
//! `web-player/dist/` (built by `scripts/web-player.sh`: hls.js and dash.js from npm, our own
//! files copied from `web-player/src/`) is used when complete. Otherwise — a fresh checkout, or
//! the fast test tier on a machine without npm — the assets are staged in `OUT_DIR`: each file
//! from `dist/` when there, else our own file from `web-player/src/`, else (the npm players) a
//! placeholder script that says the player was not built. The build then prints a cargo warning
//! naming the placeholders, so a binary without its players is never built silently.

use std::path::{Path, PathBuf};

const DIST: &str = "web-player/dist";
const SRC: &str = "web-player/src";
/// Every file `src/player.rs` embeds.
const FILES: [&str; 14] = [
    "play.html",
    "common.js",
    "play.js",
    "play.css",
    "hls.min.js",
    "dash.all.min.js",
    "watch.html",
    "watch.js",
    "webrtc.js",
    "publish.html",
    "publish.js",
    "tus.min.js",
    "upload.html",
    "upload.js",
];

fn main() {
    let root = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let dist = root.join(DIST);
    println!("cargo:rerun-if-changed=build.rs");
    // A path that does not exist would rerun this script, and rebuild the binary, every time.
    if dist.is_dir() {
        println!("cargo:rerun-if-changed={DIST}");
        println!("cargo:rerun-if-changed={SRC}");
    } else {
        println!("cargo:rerun-if-changed=web-player"); // where dist/ will appear
    }
    if FILES.iter().all(|f| dist.join(f).is_file()) {
        println!("cargo:rustc-env=RILL_PLAYER_DIST={}", dist.display());
        return;
    }
    let staged = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("player");
    std::fs::create_dir_all(&staged).expect("create OUT_DIR/player");
    let mut placeholders = Vec::new();
    for file in FILES {
        let body = [dist.join(file), root.join(SRC).join(file)].iter().find_map(|p| read(p)).unwrap_or_else(|| {
            placeholders.push(file);
            placeholder(file)
        });
        let target = staged.join(file);
        if read(&target).as_deref() != Some(body.as_slice()) {
            std::fs::write(&target, body).expect("write a staged player asset");
        }
    }
    if !placeholders.is_empty() {
        println!(
            "cargo:warning=web-player/dist/ is not built: {} are placeholders in this binary (the player pages will not play); run scripts/web-player.sh and rebuild",
            placeholders.join(", ")
        );
    }
    println!("cargo:rustc-env=RILL_PLAYER_DIST={}", staged.display());
}

fn read(path: &Path) -> Option<Vec<u8>> {
    std::fs::read(path).ok()
}

/// A script (or page) that says, in the browser's console and on the page, what is missing.
fn placeholder(file: &str) -> Vec<u8> {
    let message = format!(
        "Rill was built without web-player/dist/{file} (a placeholder is served): run scripts/web-player.sh and rebuild."
    );
    match file.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => format!(
            "<!doctype html>\n<meta charset=\"utf-8\">\n<title>Rill: player not built</title>\n<p>{message}</p>\n"
        ),
        Some("css") => format!("/* {message} */\n"),
        _ => format!(
            "// {message}\nconsole.error({message:?});\n\
             document.addEventListener(\"DOMContentLoaded\", () => document.body.prepend({message:?}));\n"
        ),
    }
    .into_bytes()
}
