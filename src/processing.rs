//! Processing of uploads in a child process: `rill process-upload` probes the file, refuses
//! what cannot be played with a reason, and transcodes the rest into the VOD ladder
//! (`[[transcode.ladder]]` rungs up to the source's size, H.264 + AAC, keyframes aligned) as
//! CMAF in the recordings storage ([`rill_vod::upload::package`]), printing JSON lines: the
//! probe, progress, then the index or the refusal. The server's [`UploadProcessor`] runs it
//! under `nice -n 19`, so live work (ingest, packaging, the live ladder, all in the server at
//! normal priority) always takes the CPU first, and a decoder crash on a hostile file cannot
//! take the server down. The child exits when the server does (its stdin closes); a job cut
//! off that way starts over cleanly at the next start (its files are removed first).

use anyhow::{Context, Result};
use rill_transcode::file::{file_plan, probe, transcode, FileError, FileLadderConfig, FileOutput};
use rill_transcode::ladder::Rung;
use rill_vod::catalog::UploadRow;
use rill_vod::recorder::{thumbnail_key, Thumbnailer};
use rill_vod::storage::{self, FsStorage, Storage};
use rill_vod::upload::package::{
    rendition_track, track_init_key, track_segment_key, PackagedVideo, Packager, INIT_VERSION,
};
use rill_vod::upload::{Process, ProcessProgress, Processed};
use rill_vod::VideoId;
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Segment length of processed videos.
const SEGMENT: Duration = Duration::from_secs(4);
/// Keyframe interval of processed videos.
const GOP: Duration = Duration::from_secs(2);
const AUDIO_KBPS: u32 = 128;
/// A file whose media ends this much before its declared duration is truncated.
const TRUNCATION_MARGIN: Duration = Duration::from_millis(500);

/// One line the child prints.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum ChildLine {
    Probe { width: u32, height: u32, duration_s: Option<f64>, renditions: Vec<String> },
    Progress { at_s: f64 },
    Refused { reason: String },
    Done { video: PackagedVideo },
}

fn say(line: &ChildLine) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", serde_json::to_string(line).expect("lines serialize"));
    let _ = out.flush();
}

/// `rill process-upload`: see the module doc. Exits (status 0) with a `refused` line for a
/// file that cannot be played; fails only when processing itself fails.
pub fn run_child(input: &Path, recordings: &Path, video: &str, rungs_json: &str, speed_preset: &str) -> Result<()> {
    // The server holds our stdin open; when it goes away, so do we.
    std::thread::spawn(|| {
        let mut sink = Vec::new();
        let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink);
        std::process::exit(3);
    });
    let video = VideoId::parse(video).context("--video is not a video id")?;
    let rungs: Vec<Rung> = serde_json::from_str(rungs_json).context("--rungs is not a JSON list of rungs")?;
    let info = match probe(input) {
        Ok(info) => info,
        Err(FileError::Pipeline(message)) => anyhow::bail!("probing failed: {message}"),
        Err(refusal) => {
            say(&ChildLine::Refused { reason: refusal.to_string() });
            return Ok(());
        }
    };
    let plan = file_plan((info.width, info.height), &rungs);
    let names: Vec<String> = plan.iter().enumerate().map(|(i, r)| rendition_track(i, &r.name)).collect();
    say(&ChildLine::Probe {
        width: info.width,
        height: info.height,
        duration_s: info.duration.map(|d| d.as_secs_f64()),
        renditions: names.clone(),
    });
    let gop = (info.frame_rate.unwrap_or(30.0) * GOP.as_secs_f64()).round().max(1.0) as u32;
    let config = FileLadderConfig { rungs: plan, speed_preset: speed_preset.to_owned(), gop, audio_kbps: AUDIO_KBPS };
    let storage: Arc<dyn Storage> = Arc::new(FsStorage::open(recordings)?);
    let mut packager = Packager::new(video, storage, SEGMENT);
    let mut failure = None;
    let mut last_report = Instant::now();
    let produced = transcode(
        input,
        &info,
        &config,
        |output| {
            if failure.is_some() {
                return;
            }
            let result = match output {
                FileOutput::Tracks { rendition, tracks } => {
                    packager.set_tracks(rendition.map_or("audio", |i| names[i].as_str()), &tracks)
                }
                FileOutput::Frame { rendition, frame } => {
                    packager.push(rendition.map_or("audio", |i| names[i].as_str()), &frame)
                }
            };
            failure = result.err();
        },
        |at| {
            if last_report.elapsed() >= Duration::from_millis(500) {
                last_report = Instant::now();
                say(&ChildLine::Progress { at_s: at.as_secs_f64() });
            }
        },
    );
    if let Some(error) = failure {
        anyhow::bail!("{error}");
    }
    let produced = match produced {
        Ok(produced) => produced,
        Err(FileError::Pipeline(message)) => anyhow::bail!("transcoding failed: {message}"),
        Err(refusal) => {
            say(&ChildLine::Refused { reason: refusal.to_string() });
            return Ok(());
        }
    };
    if let Some(declared) = info.duration {
        if produced + TRUNCATION_MARGIN < declared {
            let refusal = FileError::Truncated { got: produced.as_secs_f64(), declared: declared.as_secs_f64() };
            say(&ChildLine::Refused { reason: refusal.to_string() });
            return Ok(());
        }
    }
    let video = packager.finish()?;
    say(&ChildLine::Done { video });
    Ok(())
}

/// Runs `rill process-upload` for each upload (see the module doc).
pub struct UploadProcessor {
    pub exe: PathBuf,
    /// The recordings directory (processed videos are written there) and its storage.
    pub recordings_dir: PathBuf,
    pub recordings: Arc<dyn Storage>,
    pub rungs: Vec<Rung>,
    pub speed_preset: String,
    /// Makes the poster (the first picture of the top rendition), when available.
    pub thumbnailer: Option<Thumbnailer>,
    /// Makes the seek previews (from the smallest rendition), when available.
    pub storyboarder: Option<crate::storyboard::Storyboarder>,
}

impl UploadProcessor {
    /// The poster of a processed video, from its top rendition's first segment; best effort.
    async fn thumbnail(&self, video_id: VideoId, video: &PackagedVideo) -> Option<String> {
        let thumbnailer = self.thumbnailer.clone()?;
        let first = video.tracks.iter().find(|t| t.name == "video")?.segments.first()?.sequence;
        let init = track_init_key(video_id, "video", INIT_VERSION);
        let segment = track_segment_key(video_id, "video", first as u64);
        let key = thumbnail_key(video_id);
        let stored = key.clone();
        let made = storage::run(&self.recordings, move |s| {
            let mut media = s.read(&init, 0..s.size(&init)?)?.to_vec();
            media.extend_from_slice(&s.read(&segment, 0..s.size(&segment)?)?);
            let jpeg = thumbnailer(media.into()).map_err(std::io::Error::other)?;
            s.put(&stored, &jpeg)
        })
        .await;
        match made {
            Ok(()) => Some(key),
            Err(error) => {
                tracing::warn!(video = %video_id, %error, "no thumbnail for this upload");
                None
            }
        }
    }
}

impl Process for UploadProcessor {
    fn process<'a>(
        &'a self,
        upload: &'a UploadRow,
        video_id: VideoId,
        file: PathBuf,
        progress: Arc<ProcessProgress>,
    ) -> Pin<Box<dyn Future<Output = Result<Processed, String>> + Send + 'a>> {
        Box::pin(async move {
            // Whatever an earlier, interrupted run of this job wrote.
            let prefix = video_id.to_string();
            storage::run(&self.recordings, move |s| s.remove_all(&prefix))
                .await
                .map_err(|e| format!("cannot clear the video's directory: {e}"))?;
            let mut command = if Path::new("/usr/bin/nice").exists() {
                let mut nice = std::process::Command::new("/usr/bin/nice");
                nice.args(["-n", "19"]).arg(&self.exe);
                nice
            } else {
                std::process::Command::new(&self.exe)
            };
            command
                .arg("process-upload")
                .arg("--input")
                .arg(&file)
                .arg("--recordings")
                .arg(&self.recordings_dir)
                .args(["--video", video_id.as_str(), "--speed-preset", &self.speed_preset, "--rungs"])
                .arg(serde_json::to_string(&self.rungs).expect("rungs serialize"))
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            tracing::info!(upload = %upload.id, video = %video_id, "processing an upload");
            let outcome = tokio::task::spawn_blocking(move || run_parent(command, &progress))
                .await
                .map_err(|e| format!("processing failed: {e}"))?;
            match outcome {
                Ok(video) => {
                    let thumbnail = self.thumbnail(video_id, &video).await;
                    if let Some(storyboarder) = &self.storyboarder {
                        if let Some(source) = storyboard_source(video_id, &video) {
                            storyboarder.make(source).await;
                        }
                    }
                    Ok(Processed { thumbnail, video })
                }
                Err(reason) => {
                    let prefix = video_id.to_string();
                    let _ = storage::run(&self.recordings, move |s| s.remove_all(&prefix)).await;
                    Err(reason)
                }
            }
        })
    }
}

/// The smallest video rendition of a processed upload.
fn storyboard_source(video_id: VideoId, video: &PackagedVideo) -> Option<crate::storyboard::StoryboardSource> {
    let height =
        |info: &str| serde_json::from_str::<rill_media::manifest::TrackDescription>(info).ok().and_then(|d| d.height);
    let track = video
        .tracks
        .iter()
        .filter(|t| t.name.starts_with("video") && !t.segments.is_empty())
        .min_by_key(|t| height(&t.info).unwrap_or(u32::MAX))?;
    Some(crate::storyboard::StoryboardSource {
        video: video_id,
        track: track.name.clone(),
        segments: track.segments.clone(),
    })
}

/// Runs the child, following its progress; its `done` index or its refusal.
fn run_parent(mut command: std::process::Command, progress: &ProcessProgress) -> Result<PackagedVideo, String> {
    let mut child = command.spawn().map_err(|e| format!("processing failed: cannot start {command:?}: {e}"))?;
    // Held (never written) until the child is done: the child exits if this process dies.
    let _stdin = child.stdin.take();
    let stdout = child.stdout.take().ok_or("processing failed: no stdout")?;
    let mut stderr = child.stderr.take().ok_or("processing failed: no stderr")?;
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
        text
    });
    let started = Instant::now();
    let mut duration = None;
    let mut last = None;
    for line in std::io::BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        match serde_json::from_str::<ChildLine>(&line) {
            Ok(ChildLine::Probe { duration_s, .. }) => duration = duration_s.filter(|d| *d > 0.0),
            Ok(ChildLine::Progress { at_s }) => {
                if let Some(total) = duration {
                    let fraction = (at_s / total).clamp(0.0, 1.0);
                    let elapsed = started.elapsed().as_secs_f64();
                    let eta = (fraction > 0.01).then(|| Duration::from_secs_f64(elapsed * (1.0 - fraction) / fraction));
                    progress.set(fraction, eta);
                }
            }
            Ok(other) => last = Some(other),
            Err(_) => tracing::debug!(%line, "process-upload printed a line that is not JSON"),
        }
    }
    let status = child.wait().map_err(|e| format!("processing failed: {e}"))?;
    let stderr = errors.join().unwrap_or_default();
    match last {
        Some(ChildLine::Done { video }) if status.success() => {
            progress.set(1.0, Some(Duration::ZERO));
            Ok(video)
        }
        Some(ChildLine::Refused { reason }) => Err(reason),
        _ => {
            let detail = stderr.trim().trim_start_matches("rill: ").lines().last().unwrap_or("no output").to_owned();
            Err(format!("processing failed ({status}): {detail}"))
        }
    }
}
