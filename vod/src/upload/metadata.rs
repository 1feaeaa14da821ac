//! What an uploader may say about its file in `Upload-Metadata`: `title`, `description`,
//! `tags` (comma- or space-separated), `visibility` and `filename`, checked with the catalog's
//! rules. The file name is kept for display only, reduced to its last path component without
//! control characters: no part of it ever reaches a storage key or a path.

use crate::catalog::{check_description, checked_title, normalized_tags, CatalogError, Visibility};

/// Longest kept file name, in characters.
pub const MAX_FILENAME_CHARS: usize = 255;

/// The checked metadata of a new upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadMetadata {
    pub title: String,
    pub description: String,
    pub tags: Vec<String>,
    pub visibility: Visibility,
    /// Display name only.
    pub filename: String,
}

impl UploadMetadata {
    /// From tus pairs: unknown keys are ignored (clients add their own, e.g. `filetype`).
    /// Without a title, the file name (without its extension) is the title, else "Upload".
    pub fn from_pairs(
        pairs: &[(String, Option<Vec<u8>>)],
        default_visibility: Visibility,
    ) -> Result<UploadMetadata, CatalogError> {
        let text = |key: &str| -> Result<Option<String>, CatalogError> {
            match pairs.iter().find(|(k, _)| k == key).and_then(|(_, v)| v.as_ref()) {
                None => Ok(None),
                Some(bytes) => String::from_utf8(bytes.clone())
                    .map(Some)
                    .map_err(|_| CatalogError::Invalid(format!("metadata {key:?} is not UTF-8"))),
            }
        };
        let filename = text("filename")?.map(|name| display_filename(&name)).unwrap_or_default();
        let title = match text("title")?.filter(|t| !t.trim().is_empty()) {
            Some(title) => checked_title(&title)?.to_owned(),
            None => {
                let stem = filename.rsplit_once('.').map_or(filename.as_str(), |(stem, _)| stem);
                checked_title(stem).map(str::to_owned).unwrap_or_else(|_| "Upload".to_owned())
            }
        };
        let description = text("description")?.unwrap_or_default();
        check_description(&description)?;
        let tags: Vec<String> = text("tags")?
            .unwrap_or_default()
            .split([',', ' '])
            .filter(|tag| !tag.is_empty())
            .map(str::to_owned)
            .collect();
        let tags = normalized_tags(&tags)?;
        let visibility = match text("visibility")? {
            Some(visibility) => visibility.trim().parse()?,
            None => default_visibility,
        };
        Ok(UploadMetadata { title, description, tags, visibility, filename })
    }
}

/// The last component of `name` (after any `/` or `\`), without control characters, trimmed
/// and cut to [`MAX_FILENAME_CHARS`]; `..` and `.` become empty.
pub fn display_filename(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let clean: String = last.chars().filter(|c| !c.is_control()).take(MAX_FILENAME_CHARS).collect();
    let clean = clean.trim();
    if clean == "." || clean == ".." {
        String::new()
    } else {
        clean.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, Option<Vec<u8>>)> {
        list.iter().map(|(k, v)| (k.to_string(), Some(v.as_bytes().to_vec()))).collect()
    }

    #[test]
    fn metadata_is_checked_with_the_catalog_rules() {
        let meta = UploadMetadata::from_pairs(
            &pairs(&[
                ("title", " Holiday "),
                ("description", "at sea"),
                ("tags", "Sea, boats travel"),
                ("visibility", "unlisted"),
                ("filename", "C:\\Users\\me\\clip.mp4"),
                ("filetype", "video/mp4"),
            ]),
            Visibility::Public,
        )
        .unwrap();
        assert_eq!(meta.title, "Holiday");
        assert_eq!(meta.tags, ["sea", "boats", "travel"]);
        assert_eq!(meta.visibility, Visibility::Unlisted);
        assert_eq!(meta.filename, "clip.mp4");
        let defaulted =
            UploadMetadata::from_pairs(&pairs(&[("filename", "beach day.mov")]), Visibility::Private).unwrap();
        assert_eq!((defaulted.title.as_str(), defaulted.visibility), ("beach day", Visibility::Private));
        assert_eq!(UploadMetadata::from_pairs(&[], Visibility::Public).unwrap().title, "Upload");
        for bad in [("visibility", "secret"), ("tags", "semi;colon"), ("title", &"x".repeat(201))] {
            assert!(UploadMetadata::from_pairs(&pairs(&[bad]), Visibility::Public).is_err(), "{bad:?}");
        }
        let not_utf8 = vec![("title".to_owned(), Some(vec![0xff, 0xfe]))];
        assert!(UploadMetadata::from_pairs(&not_utf8, Visibility::Public).is_err());
    }

    #[test]
    fn file_names_lose_every_path() {
        assert_eq!(display_filename("../../../etc/passwd"), "passwd");
        assert_eq!(display_filename("..\\..\\boot.ini"), "boot.ini");
        assert_eq!(display_filename("/abs/x\u{0}y\n.mp4"), "xy.mp4");
        assert_eq!(display_filename(".."), "");
        assert_eq!(display_filename("a/.."), "");
        assert_eq!(display_filename("dir/"), "");
        assert_eq!(display_filename(&"é".repeat(300)).chars().count(), MAX_FILENAME_CHARS);
    }
}
