//! `rill`: the server binary. Parses the command line and runs the server ([`rill::app`]),
//! prints the effective configuration, or (as a child of the server) makes one thumbnail or
//! storyboard, or processes one upload.

use anyhow::Result;
use clap::{Parser, Subcommand};
use rill::config::Config;
use rill::thumbnailer::THUMBNAIL_WIDTH;
use std::path::PathBuf;

/// Rill: a live-first media server. Publish over RTMP, watch over HTTP-FLV or RTMP.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    /// Configuration file (default: ./conf/rill.toml if present, else the embedded defaults).
    /// Every key can be overridden with RILL_<SECTION>_<KEY>.
    #[arg(long, short, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve,
    /// Print the effective configuration (file + environment overrides) and exit.
    Config,
    /// Probe an uploaded file and transcode it into the VOD ladder as CMAF under --recordings,
    /// printing JSON lines (probe, progress, then the index or the refusal). The server runs
    /// this in a low-priority child process for each upload (src/processing.rs).
    #[command(hide = true)]
    ProcessUpload {
        #[arg(long)]
        input: PathBuf,
        #[arg(long)]
        recordings: PathBuf,
        #[arg(long)]
        video: String,
        /// The ladder, as JSON: [{"name", "width", "height", "video_kbps"}, …].
        #[arg(long)]
        rungs: String,
        #[arg(long, default_value = "veryfast")]
        speed_preset: String,
    },
    /// Read a video track (fMP4: init, then segments) on stdin, write a storyboard (a JSON
    /// layout line, then a JPEG sprite of a picture every --interval seconds) on stdout. The
    /// server runs this in a child process for each video's seek previews (src/storyboard.rs).
    #[command(hide = true)]
    Storyboard {
        #[arg(long)]
        interval: f64,
        #[arg(long, default_value_t = rill::storyboard::MAX_TILES)]
        max_tiles: u32,
        #[arg(long, default_value_t = rill::storyboard::TILE_WIDTH)]
        width: u32,
    },
    /// Read an fMP4 (init + segment) on stdin, write its first picture as a JPEG on stdout.
    /// The server runs this in a child process for each video's thumbnail, so decoding stays
    /// out of the server's memory and a decoder crash cannot take the server down.
    #[command(hide = true)]
    Thumbnail {
        #[arg(long, default_value_t = THUMBNAIL_WIDTH)]
        width: u32,
        /// The first picture this long after the media's first (a poster chosen by time).
        #[arg(long, default_value_t = 0)]
        at_ms: u64,
    },
}

fn main() -> std::process::ExitCode {
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // One line with its causes: what a user needs, without a backtrace.
            eprintln!("rill: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    let load = || Config::load(cli.config.as_deref(), std::env::vars());
    match cli.command.unwrap_or(Command::Serve) {
        Command::Thumbnail { width, at_ms } => rill::thumbnailer::run_child(width, at_ms),
        Command::Storyboard { interval, max_tiles, width } => rill::storyboard::run_child(interval, max_tiles, width),
        Command::ProcessUpload { input, recordings, video, rungs, speed_preset } => {
            rill::processing::run_child(&input, &recordings, &video, &rungs, &speed_preset)
        }
        Command::Config => {
            print!("{}", toml::to_string_pretty(&load()?)?);
            Ok(())
        }
        Command::Serve => {
            let config = load()?;
            tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(rill::app::serve(config))
        }
    }
}
