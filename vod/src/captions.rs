//! Captions of a video, sans-IO: a caption file as uploaded (WebVTT, or SubRip converted to
//! WebVTT) is checked and rewritten into one normalized form that every player reads (a
//! `WEBVTT` header, then cues sorted by start time, each with its timing line and text;
//! comments, styles and regions are left out), and its language tag (BCP 47, the form HLS
//! `LANGUAGE` and DASH `lang` take) is checked and put in canonical case. Hostile input is
//! refused with a reason a user can act on ([`CaptionError`]); nothing else reaches storage.
//!
//! A stored caption file is `<video-id>/captions/<lang>.vtt` ([`caption_key`]); the catalog
//! lists each video's languages (`video_captions`), so manifests never look at storage.

use crate::VideoId;
use std::fmt::Write as _;

/// Largest caption file accepted, in bytes (a feature film's subtitles are ~100 KB).
pub const MAX_CAPTION_BYTES: usize = 2 * 1024 * 1024;
/// Most cues in one file.
pub const MAX_CUES: usize = 50_000;
/// Longest language tag (RFC 5646 §4.4.1 advises 35 characters at least; more is not useful).
const MAX_TAG_CHARS: usize = 35;
/// Longest label, in characters.
pub const MAX_LABEL_CHARS: usize = 64;
/// Latest time a cue may end (100 hours, in ms): larger times are typos or hostile.
const MAX_TIME_MS: u64 = 100 * 3600 * 1000;

/// Why a caption file or language is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CaptionError {
    #[error("{0:?} is not a language tag (expected BCP 47, e.g. en, pt-BR, zh-Hant)")]
    Language(String),
    #[error("the label must have 1 to {MAX_LABEL_CHARS} characters without control characters")]
    Label,
    #[error("the caption file is empty")]
    Empty,
    #[error("the caption file is larger than {MAX_CAPTION_BYTES} bytes")]
    TooLarge,
    #[error("the caption file is not UTF-8 text")]
    NotText,
    #[error("the caption file is neither WebVTT (starting with WEBVTT) nor SubRip (SRT)")]
    UnknownFormat,
    #[error("line {line}: {reason}")]
    Syntax { line: usize, reason: String },
    #[error("the caption file has no cues")]
    NoCues,
    #[error("the caption file has more than {MAX_CUES} cues")]
    TooManyCues,
}

/// A checked language tag in canonical case (`en`, `pt-BR`, `zh-Hant-TW`, `sr-Latn`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Language(String);

impl Language {
    /// Checks `tag` against the shape of a BCP 47 language tag: a 2–3 letter primary language
    /// (or 4–8 letters, registered ones), then subtags of 1–8 letters or digits, `-`
    /// separated (`_` is accepted for `-`). Case is canonicalized: language lowercase, script
    /// title case, region uppercase. Grandfathered and private-use-only tags are refused.
    pub fn parse(tag: &str) -> Result<Language, CaptionError> {
        let refuse = || CaptionError::Language(tag.chars().take(MAX_TAG_CHARS + 5).collect());
        if tag.is_empty() || tag.len() > MAX_TAG_CHARS {
            return Err(refuse());
        }
        let mut out = String::with_capacity(tag.len());
        for (i, subtag) in tag.split(['-', '_']).enumerate() {
            let valid = (1..=8).contains(&subtag.len()) && subtag.bytes().all(|b| b.is_ascii_alphanumeric());
            if !valid {
                return Err(refuse());
            }
            if i == 0 {
                if !(2..=8).contains(&subtag.len())
                    || subtag.len() == 4
                    || !subtag.bytes().all(|b| b.is_ascii_alphabetic())
                {
                    return Err(refuse());
                }
                out.push_str(&subtag.to_ascii_lowercase());
                continue;
            }
            out.push('-');
            let alphabetic = subtag.bytes().all(|b| b.is_ascii_alphabetic());
            match subtag.len() {
                // Script: Latn, Hant.
                4 if alphabetic => {
                    let (first, rest) = subtag.split_at(1);
                    out.push_str(&first.to_ascii_uppercase());
                    out.push_str(&rest.to_ascii_lowercase());
                }
                // Region: BR, 419.
                2 if alphabetic => out.push_str(&subtag.to_ascii_uppercase()),
                _ => out.push_str(&subtag.to_ascii_lowercase()),
            }
        }
        Ok(Language(out))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A name for the language when the uploader gave none: the language's own name for
    /// common ones, else the tag.
    pub fn default_label(&self) -> String {
        let primary = self.0.split('-').next().unwrap_or_default();
        let name = match primary {
            "ar" => "العربية",
            "de" => "Deutsch",
            "en" => "English",
            "es" => "Español",
            "fr" => "Français",
            "hi" => "हिन्दी",
            "it" => "Italiano",
            "ja" => "日本語",
            "ko" => "한국어",
            "nl" => "Nederlands",
            "pl" => "Polski",
            "pt" => "Português",
            "ru" => "Русский",
            "sv" => "Svenska",
            "tr" => "Türkçe",
            "uk" => "Українська",
            "zh" => "中文",
            _ => return self.0.clone(),
        };
        if primary == self.0 {
            name.to_owned()
        } else {
            format!("{name} ({})", self.0)
        }
    }
}

impl std::fmt::Display for Language {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A label a user gave (trimmed), or why it is refused.
pub fn checked_label(label: &str) -> Result<String, CaptionError> {
    let label = label.trim();
    let chars = label.chars().count();
    if (1..=MAX_LABEL_CHARS).contains(&chars) && !label.chars().any(char::is_control) {
        Ok(label.to_owned())
    } else {
        Err(CaptionError::Label)
    }
}

/// Storage key of a video's caption file in `lang`.
pub fn caption_key(id: VideoId, lang: &Language) -> String {
    format!("{id}/captions/{lang}.vtt")
}

/// One cue: times in ms, the settings after the timing (WebVTT only), the text lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cue {
    pub id: Option<String>,
    pub start_ms: u64,
    pub end_ms: u64,
    pub settings: String,
    pub text: String,
}

/// A caption file checked and normalized.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Captions {
    pub cues: Vec<Cue>,
    /// Whether it came as SubRip.
    pub converted_from_srt: bool,
}

impl Captions {
    /// Parses an uploaded WebVTT or SubRip file.
    pub fn parse(bytes: &[u8]) -> Result<Captions, CaptionError> {
        if bytes.len() > MAX_CAPTION_BYTES {
            return Err(CaptionError::TooLarge);
        }
        let text = std::str::from_utf8(bytes).map_err(|_| CaptionError::NotText)?;
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        if text.trim().is_empty() {
            return Err(CaptionError::Empty);
        }
        if text.contains('\0') {
            return Err(CaptionError::NotText);
        }
        let lines: Vec<&str> = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)).collect();
        let first = lines.first().copied().unwrap_or_default();
        let webvtt = first == "WEBVTT" || first.starts_with("WEBVTT ") || first.starts_with("WEBVTT\t");
        let mut cues = if webvtt {
            parse_blocks(&lines, 1, Format::WebVtt)?
        } else if looks_like_srt(&lines) {
            parse_blocks(&lines, 0, Format::Srt)?
        } else {
            return Err(CaptionError::UnknownFormat);
        };
        if cues.is_empty() {
            return Err(CaptionError::NoCues);
        }
        // Players (dash.js) expect cues in start order.
        cues.sort_by_key(|c| (c.start_ms, c.end_ms));
        Ok(Captions { cues, converted_from_srt: !webvtt })
    }

    /// The normalized WebVTT text. `timestamp_map`: the media time (90 kHz) of cue time 0, for
    /// HLS (`X-TIMESTAMP-MAP`; other readers ignore the header line).
    pub fn to_webvtt(&self, timestamp_map: Option<u64>) -> String {
        let mut out = String::from("WEBVTT\n");
        if let Some(mpegts) = timestamp_map {
            let _ = writeln!(out, "X-TIMESTAMP-MAP=MPEGTS:{mpegts},LOCAL:00:00:00.000");
        }
        for cue in &self.cues {
            out.push('\n');
            if let Some(id) = &cue.id {
                let _ = writeln!(out, "{id}");
            }
            let _ = write!(out, "{} --> {}", vtt_time(cue.start_ms), vtt_time(cue.end_ms));
            if !cue.settings.is_empty() {
                let _ = write!(out, " {}", cue.settings);
            }
            let _ = writeln!(out, "\n{}", cue.text);
        }
        out
    }

    /// When the last cue ends.
    pub fn end_ms(&self) -> u64 {
        self.cues.iter().map(|c| c.end_ms).max().unwrap_or(0)
    }
}

/// Puts an `X-TIMESTAMP-MAP` line into a stored (normalized) WebVTT file's header.
pub fn with_timestamp_map(stored: &str, mpegts: u64) -> String {
    let body = stored.strip_prefix("WEBVTT\n").unwrap_or(stored);
    format!("WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:{mpegts},LOCAL:00:00:00.000\n{body}")
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    WebVtt,
    Srt,
}

fn looks_like_srt(lines: &[&str]) -> bool {
    // The first non-blank lines: a number, then a timing with commas.
    let mut rest = lines.iter().skip_while(|l| l.trim().is_empty());
    let (Some(index), Some(timing)) = (rest.next(), rest.next()) else { return false };
    index.trim().bytes().all(|b| b.is_ascii_digit()) && timing.contains("-->")
}

/// Cues of the blocks (separated by blank lines) from line `from` on.
fn parse_blocks(lines: &[&str], from: usize, format: Format) -> Result<Vec<Cue>, CaptionError> {
    let mut cues = Vec::new();
    let mut i = from;
    if format == Format::WebVtt {
        // The rest of the header block.
        while i < lines.len() && !lines[i].trim().is_empty() {
            if lines[i].contains("-->") {
                return Err(CaptionError::Syntax { line: i + 1, reason: "a cue inside the WEBVTT header".into() });
            }
            i += 1;
        }
    }
    while i < lines.len() {
        if lines[i].trim().is_empty() {
            i += 1;
            continue;
        }
        let start = i;
        while i < lines.len() && !lines[i].trim().is_empty() {
            i += 1;
        }
        let block = &lines[start..i];
        if let Some(cue) = parse_block(block, start + 1, format)? {
            if cues.len() == MAX_CUES {
                return Err(CaptionError::TooManyCues);
            }
            cues.push(cue);
        }
    }
    Ok(cues)
}

/// One block: a cue, or `None` for WebVTT's `NOTE`, `STYLE` and `REGION` blocks.
fn parse_block(block: &[&str], line: usize, format: Format) -> Result<Option<Cue>, CaptionError> {
    let syntax = |offset: usize, reason: &str| CaptionError::Syntax { line: line + offset, reason: reason.into() };
    let head = block[0];
    if format == Format::WebVtt
        && (head == "NOTE"
            || head.starts_with("NOTE ")
            || head.starts_with("NOTE\t")
            || head == "STYLE"
            || head == "REGION")
    {
        return Ok(None);
    }
    let (id, timing_at) = if head.contains("-->") { (None, 0) } else { (Some(head.trim()), 1) };
    let Some(timing) = block.get(timing_at) else { return Err(syntax(0, "a cue without a timing line")) };
    if format == Format::Srt && id.is_some_and(|id| !id.bytes().all(|b| b.is_ascii_digit())) {
        return Err(syntax(0, "expected a cue number"));
    }
    let (start_text, rest) = timing.split_once("-->").ok_or_else(|| syntax(timing_at, "expected \"start --> end\""))?;
    let rest = rest.trim_start();
    let (end_text, settings) = match rest.find([' ', '\t']) {
        Some(at) => (&rest[..at], rest[at..].trim()),
        None => (rest, ""),
    };
    let start_ms = parse_time(start_text.trim(), format).ok_or_else(|| syntax(timing_at, "bad start time"))?;
    let end_ms = parse_time(end_text.trim(), format).ok_or_else(|| syntax(timing_at, "bad end time"))?;
    if end_ms <= start_ms {
        return Err(syntax(timing_at, "the cue ends before it starts"));
    }
    if end_ms > MAX_TIME_MS {
        return Err(syntax(timing_at, "the cue ends after 100 hours"));
    }
    let text_lines = &block[timing_at + 1..];
    if let Some(at) = text_lines.iter().position(|l| l.contains("-->")) {
        return Err(syntax(timing_at + 1 + at, "\"-->\" in a cue's text (a missing blank line?)"));
    }
    // SubRip ids are only numbers; WebVTT ids are kept (they must not hold "-->", checked above).
    let id = match format {
        Format::WebVtt => id.map(str::to_owned),
        Format::Srt => None,
    };
    // Cue settings are only WebVTT's (`align:start line:0`); SubRip's coordinates are dropped.
    let settings = match format {
        Format::WebVtt => settings.split_whitespace().collect::<Vec<_>>().join(" "),
        Format::Srt => String::new(),
    };
    let text = text_lines.iter().map(|l| l.trim_end()).collect::<Vec<_>>().join("\n");
    Ok(Some(Cue { id, start_ms, end_ms, settings, text }))
}

/// `[hh:]mm:ss.ttt` (WebVTT) or `hh:mm:ss,ttt` (SubRip; a `.` is tolerated) in ms.
fn parse_time(text: &str, format: Format) -> Option<u64> {
    let (clock, fraction) = match format {
        Format::WebVtt => text.rsplit_once('.')?,
        Format::Srt => text.rsplit_once([',', '.'])?,
    };
    let digits = |s: &str, min: usize, max: usize| {
        (s.len() >= min && s.len() <= max && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse::<u64>().ok())?
    };
    let ms = match fraction.len() {
        3 => digits(fraction, 3, 3)?,
        // SubRip writers sometimes give fewer digits.
        1 | 2 if format == Format::Srt => digits(fraction, 1, 2)? * if fraction.len() == 1 { 100 } else { 10 },
        _ => return None,
    };
    let parts: Vec<&str> = clock.split(':').collect();
    let (hours, minutes, seconds) = match parts[..] {
        [m, s] if format == Format::WebVtt => (0, digits(m, 2, 2)?, digits(s, 2, 2)?),
        [h, m, s] => (digits(h, 1, 3)?, digits(m, 1, 2)?, digits(s, 1, 2)?),
        _ => return None,
    };
    if minutes > 59 || seconds > 59 {
        return None;
    }
    Some(((hours * 60 + minutes) * 60 + seconds) * 1000 + ms)
}

/// `hh:mm:ss.ttt`.
pub fn vtt_time(ms: u64) -> String {
    format!("{:02}:{:02}:{:02}.{:03}", ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_tags_are_checked_and_canonicalized() {
        for (tag, canonical) in [
            ("en", "en"),
            ("EN", "en"),
            ("pt-br", "pt-BR"),
            ("pt_BR", "pt-BR"),
            ("zh-hant-tw", "zh-Hant-TW"),
            ("es-419", "es-419"),
            ("sr-Latn", "sr-Latn"),
            ("yue", "yue"),
            ("de-CH-1996", "de-CH-1996"),
        ] {
            assert_eq!(Language::parse(tag).unwrap().as_str(), canonical, "{tag}");
        }
        for bad in [
            "",
            "e",
            "english!",
            "../etc",
            "en/..",
            "en-",
            "-en",
            "en--us",
            "x-private",
            "1en",
            "en us",
            "abcd",
            "ä",
            &"a".repeat(40),
        ] {
            assert!(Language::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(Language::parse("fr").unwrap().default_label(), "Français");
        assert_eq!(Language::parse("pt-BR").unwrap().default_label(), "Português (pt-BR)");
        assert_eq!(Language::parse("tlh").unwrap().default_label(), "tlh");
        assert!(checked_label("  Deutsch (SDH) ").is_ok());
        assert!(
            checked_label("").is_err() && checked_label("a\u{7}b").is_err() && checked_label(&"x".repeat(65)).is_err()
        );
    }

    #[test]
    fn webvtt_is_normalized_and_sorted() {
        let file = "\u{feff}WEBVTT - a title\r\nKind: captions\r\n\r\nNOTE made by hand\r\n\r\nSTYLE\r\n::cue { color: red }\r\n\r\nsecond\r\n00:00:05.000 --> 00:00:07.500 align:start   line:0\r\nLater <b>bold</b>\r\n\r\n00:01.000 --> 00:03.000\r\nHello\r\nworld\r\n";
        let captions = Captions::parse(file.as_bytes()).unwrap();
        assert_eq!(captions.cues.len(), 2);
        assert!(!captions.converted_from_srt);
        assert_eq!(captions.end_ms(), 7_500);
        assert_eq!(
            captions.to_webvtt(None),
            "WEBVTT\n\n00:00:01.000 --> 00:00:03.000\nHello\nworld\n\nsecond\n00:00:05.000 --> 00:00:07.500 align:start line:0\nLater <b>bold</b>\n"
        );
        let mapped = captions.to_webvtt(Some(900_000));
        assert!(
            mapped.starts_with("WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:900000,LOCAL:00:00:00.000\n\n00:00:01.000"),
            "{mapped}"
        );
        assert_eq!(with_timestamp_map(&captions.to_webvtt(None), 900_000), mapped);
        // The normalized form parses back to itself.
        assert_eq!(Captions::parse(captions.to_webvtt(None).as_bytes()).unwrap().cues, captions.cues);
    }

    #[test]
    fn srt_is_converted() {
        let srt = "1\n00:00:01,000 --> 00:00:02,500 X1:10 X2:20\n<i>Bonjour</i>\n\n2\n01:00:00,5 --> 01:00:01,250\nla suite\n";
        let captions = Captions::parse(srt.as_bytes()).unwrap();
        assert!(captions.converted_from_srt);
        assert_eq!(
            captions.to_webvtt(None),
            "WEBVTT\n\n00:00:01.000 --> 00:00:02.500\n<i>Bonjour</i>\n\n01:00:00.500 --> 01:00:01.250\nla suite\n"
        );
    }

    #[test]
    fn hostile_files_are_refused_with_reasons() {
        let refuse = |bytes: &[u8]| Captions::parse(bytes).unwrap_err();
        assert_eq!(refuse(b""), CaptionError::Empty);
        assert_eq!(refuse(b"  \n\n"), CaptionError::Empty);
        assert_eq!(refuse(&[0xff, 0xfe, 0x00]), CaptionError::NotText);
        assert_eq!(refuse(b"WEBVTT\n\n00:01.000 --> 00:02.000\na\0b"), CaptionError::NotText);
        assert_eq!(refuse(b"<tt xmlns=\"http://www.w3.org/ns/ttml\"></tt>"), CaptionError::UnknownFormat);
        assert_eq!(refuse(b"\x89PNG\r\n\x1a\n"), CaptionError::NotText);
        assert_eq!(refuse(b"WEBVTT\n\nNOTE only a note\n"), CaptionError::NoCues);
        assert_eq!(refuse(&vec![b'a'; MAX_CAPTION_BYTES + 1]), CaptionError::TooLarge);
        let syntax = |text: &str| match refuse(text.as_bytes()) {
            CaptionError::Syntax { line, reason } => (line, reason),
            other => panic!("{text:?}: {other:?}"),
        };
        assert_eq!(syntax("WEBVTT\n\n00:02.000 --> 00:01.000\nbackwards").0, 3);
        assert_eq!(syntax("WEBVTT\n\n00:00:01.000 --> 00:99:00.000\nminutes").1, "bad end time");
        assert_eq!(syntax("WEBVTT\n\n00:01.000 -> 00:02.000\nno arrow").1, "expected \"start --> end\"");
        assert_eq!(syntax("WEBVTT\n\n00:01.000 --> 00:02.000\na\n00:03.000 --> 00:04.000\nb").0, 5);
        assert_eq!(syntax("WEBVTT\n\n00:01 --> 00:02\nno ms").1, "bad start time");
        assert_eq!(syntax("WEBVTT\n\n999:00:00.000 --> 999:00:01.000\nfar").1, "the cue ends after 100 hours");
        assert_eq!(
            syntax("1\n00:00:01,000 --> 00:00:02,000\na\n\nx\n00:00:03,000 --> 00:00:04,000\nb").1,
            "expected a cue number"
        );
        let mut many = String::from("WEBVTT\n");
        for i in 0..=MAX_CUES as u64 {
            let _ = write!(many, "\n{} --> {}\nx\n", vtt_time(i * 10), vtt_time(i * 10 + 5));
        }
        assert!(many.len() < MAX_CAPTION_BYTES);
        assert_eq!(refuse(many.as_bytes()), CaptionError::TooManyCues);
    }
}
