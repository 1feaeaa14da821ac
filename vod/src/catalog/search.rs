//! Listing and searching: turns a [`VideoQuery`] into a count statement and a page statement.
//!
//! Free text never reaches SQL as text: it is cut into words (runs of Unicode letters and
//! digits; everything else, quotes and operators included, is dropped), each word becomes a
//! prefix term, all terms are ANDed, and the resulting query string is bound as a parameter:
//! `"word"*` terms for SQLite's FTS5 `MATCH`, `word:*` terms joined by ` & ` for PostgreSQL's
//! `to_tsquery('simple', …)`. Matches are ranked best first (FTS5 `bm25` with title, tags and
//! description weighted 10, 4 and 2; PostgreSQL `ts_rank` over the A/B/C-weighted `tsvector`),
//! ties and unranked lists newest first.

use super::model::{normalized_tag, VideoQuery, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE};
use super::sql::Bindings;
use super::{CatalogError, Dialect, VIDEO_COLUMNS};

/// Words of a search beyond this many are ignored.
const MAX_SEARCH_WORDS: usize = 16;
/// Longer words are cut to this many characters (still a prefix of the original).
const MAX_WORD_CHARS: usize = 64;

/// The lowercase words of free text, at most [`MAX_SEARCH_WORDS`].
pub(crate) fn search_words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .take(MAX_SEARCH_WORDS)
        .map(|word| word.chars().take(MAX_WORD_CHARS).collect::<String>().to_lowercase())
        .collect()
}

/// An FTS5 query: every word a quoted prefix term, implicitly ANDed.
fn fts5_query(words: &[String]) -> String {
    words.iter().map(|word| format!("\"{}\"*", word.replace('"', "\"\""))).collect::<Vec<_>>().join(" ")
}

/// A `to_tsquery` query: every word a prefix term, ANDed. Words are letters and digits only,
/// so they contain no tsquery syntax.
fn tsquery(words: &[String]) -> String {
    words.iter().map(|word| format!("{word}:*")).collect::<Vec<_>>().join(" & ")
}

/// The statements of one [`Catalog::list`](super::Catalog::list) call.
pub(crate) struct ListStatements {
    /// `SELECT COUNT(*)` of every match.
    pub count_sql: String,
    pub count_args: Bindings,
    /// One page of [`VIDEO_COLUMNS`], ordered.
    pub page_sql: String,
    pub page_args: Bindings,
    pub limit: u32,
    pub offset: u32,
}

pub(crate) fn list_statements(dialect: Dialect, query: &VideoQuery) -> Result<ListStatements, CatalogError> {
    let mut args = Bindings::default();
    let mut from = "videos v".to_owned();
    let mut conditions: Vec<String> = Vec::new();
    let mut order = Vec::new();

    let words = query.q.as_deref().map(search_words).unwrap_or_default();
    if !words.is_empty() {
        match dialect {
            Dialect::Sqlite => {
                // CROSS JOIN makes SQLite's planner run the full-text match first, once, even
                // when an index on `videos` looks selective (otherwise it may probe the FTS
                // index once per video).
                from = "videos_fts CROSS JOIN videos v ON v.seq = videos_fts.rowid".to_owned();
                conditions.push(format!("videos_fts MATCH {}", args.push(fts5_query(&words))));
                order.push("bm25(videos_fts, 10.0, 2.0, 4.0)");
            }
            Dialect::Postgres => {
                from = format!("videos v, to_tsquery('simple', {}) AS search_query", args.push(tsquery(&words)));
                conditions.push("v.search @@ search_query".to_owned());
                order.push("ts_rank(v.search, search_query) DESC");
            }
        }
    }
    if !query.include_private {
        conditions.push("v.visibility = 'public'".to_owned());
    }
    if let Some(stream) = &query.stream {
        conditions.push(format!("v.stream = {}", args.push(stream.as_str())));
    }
    if let Some(status) = query.status {
        conditions.push(format!("v.status = {}", args.push(status.as_str())));
    }
    if let Some(tag) = &query.tag {
        let tag = args.push(normalized_tag(tag)?);
        conditions.push(format!("v.id IN (SELECT t.video_id FROM video_tags t WHERE t.tag = {tag})"));
    }
    if let Some(since) = query.since_ms {
        conditions.push(format!("v.created_at >= {}", args.push(since)));
    }
    if let Some(until) = query.until_ms {
        conditions.push(format!("v.created_at < {}", args.push(until)));
    }
    order.extend(["v.created_at DESC", "v.id DESC"]);

    let filter = if conditions.is_empty() { String::new() } else { format!(" WHERE {}", conditions.join(" AND ")) };
    let count_sql = format!("SELECT COUNT(*) FROM {from}{filter}");
    let count_args = args.clone();
    let limit = query.limit.unwrap_or(DEFAULT_PAGE_SIZE).min(MAX_PAGE_SIZE);
    let offset = query.offset.unwrap_or(0);
    let page_sql = format!(
        "SELECT {VIDEO_COLUMNS} FROM {from}{filter} ORDER BY {} LIMIT {} OFFSET {}",
        order.join(", "),
        args.push(i64::from(limit)),
        args.push(i64::from(offset)),
    );
    Ok(ListStatements { count_sql, count_args, page_sql, page_args: args, limit, offset })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_text_becomes_words_without_syntax() {
        assert_eq!(search_words(r#"'; DROP TABLE videos; --"#), ["drop", "table", "videos"]);
        assert_eq!(search_words(r#"" * NEAR( ) OR ( \"#), ["near", "or"]);
        assert_eq!(search_words("Grüße, МОСКВА 東京!"), ["grüße", "москва", "東京"]);
        assert!(search_words("  -- ** \"\" ").is_empty());
        assert_eq!(search_words(&"word ".repeat(1000)).len(), MAX_SEARCH_WORDS);
        assert_eq!(search_words(&"x".repeat(10_000))[0].len(), MAX_WORD_CHARS);
    }

    #[test]
    fn dialect_queries_are_prefix_terms_anded() {
        let words = search_words("Sunset beach");
        assert_eq!(fts5_query(&words), r#""sunset"* "beach"*"#);
        assert_eq!(tsquery(&words), "sunset:* & beach:*");
        assert_eq!(fts5_query(&["a\"b".to_owned()]), r#""a""b"*"#);
    }

    #[test]
    fn page_size_defaults_and_clamps() {
        let statements = list_statements(Dialect::Sqlite, &VideoQuery::default()).unwrap();
        assert_eq!(statements.limit, DEFAULT_PAGE_SIZE);
        assert!(statements.count_sql.contains("v.visibility = 'public'"));
        let query = VideoQuery { limit: Some(10_000), include_private: true, ..VideoQuery::default() };
        let statements = list_statements(Dialect::Postgres, &query).unwrap();
        assert_eq!(statements.limit, MAX_PAGE_SIZE);
        assert!(!statements.count_sql.contains("WHERE"));
        let query = VideoQuery { tag: Some("bad tag".into()), ..VideoQuery::default() };
        assert!(matches!(list_statements(Dialect::Sqlite, &query), Err(CatalogError::Invalid(_))));
    }
}
