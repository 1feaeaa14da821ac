//! Checks that the viewer page assets exist before `src/player.rs` embeds them, so a fresh
//! checkout fails with the command to run instead of a missing-file error. Runs nothing else.

use std::path::Path;

const DIST: &str = "web-player/dist";
const FILES: [&str; 8] =
    ["play.html", "play.js", "play.css", "hls.min.js", "dash.all.min.js", "webrtc.js", "publish.html", "publish.js"];

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed={DIST}");
    let missing: Vec<&str> = FILES.into_iter().filter(|f| !Path::new(DIST).join(f).is_file()).collect();
    if !missing.is_empty() {
        eprintln!(
            "error: {DIST}/ lacks {}: run scripts/web-player.sh (builds the player page assets)",
            missing.join(", ")
        );
        std::process::exit(1);
    }
}
