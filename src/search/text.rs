//! Text search over the catalog (title, description, category, and the
//! classifier's label names), in the metadata database: SQLite FTS5 on
//! the embedded default, PostgreSQL full-text search (`tsvector`, GIN,
//! `simple` configuration) at scale. Both indexes are kept in step with the
//! `products` rows by triggers (migrations `20261201000100_*`), so this
//! module only reads; it owns those tables and how a query becomes a match
//! expression. No inverted index of our own.
//!
//! A query is split into words (runs of letters and digits), lower-cased,
//! with Cyrillic ё read as е; every word must match, as a prefix (so
//! "чайн" finds "чайник" while the shopper types, and "sneaker" finds
//! "sneakers": prefix matching stands in for stemming, which no one
//! configuration does for Russian, Kyrgyz and English alike). Case and diacritics are folded by the
//! engine on both sides: FTS5's `unicode61 remove_diacritics 2`,
//! PostgreSQL's `unaccent` plus `simple`'s lower-casing.

use sqlx::Row;

use super::{SearchError, SearchResult, Signals};
use crate::{
    db::{Backend, Db},
    index::Filter,
};

/// Longest query accepted, in characters; longer is a 422.
pub const MAX_QUERY_CHARS: usize = 256;
/// Words of a query that count; the rest are ignored (a query is a few
/// words; a pasted paragraph must not become a 200-term conjunction).
pub const MAX_TERMS: usize = 12;

/// The words of a query, folded as the index folds them. Refuses a query
/// with no word at all, or one past [`MAX_QUERY_CHARS`].
pub fn terms(q: &str) -> Result<Vec<String>, SearchError> {
    if q.chars().count() > MAX_QUERY_CHARS {
        return Err(SearchError::InvalidQuery(format!(
            "q is longer than {MAX_QUERY_CHARS} characters"
        )));
    }
    let words: Vec<String> = q
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(fold)
        .take(MAX_TERMS)
        .collect();
    if words.is_empty() {
        return Err(SearchError::InvalidQuery(
            "q must contain at least one word (letters or digits)".into(),
        ));
    }
    Ok(words)
}

/// Lower-cases and reads ё as е, which FTS5's diacritics folding leaves
/// alone (the SQLite triggers write ё as е; PostgreSQL's `unaccent` does it
/// itself). The rest of the folding is the engine's, on both sides.
pub fn fold(word: &str) -> String {
    word.to_lowercase().replace('ё', "е")
}

/// Which products a ranking holds, best first: those whose title holds
/// every word, then those whose names (title, category, label names) hold
/// every word, then the rest of the matches (some word only in the
/// description). Names first: that is what a shopper looks for, and a
/// common word in thousands of descriptions need not be ranked to show the
/// first pages (see [`search`]). The title tier comes first because a word
/// that is also a label name ("table", in "dining table") is in the labels
/// of a tenth of the catalog: ranking all of those for the first page cost
/// 3-5 times what the title matches alone cost (BENCHMARKS.md §7). With the
/// title weighted 10 against 4 and 0.5, bm25 ranks those first anyway.
/// The title tier is matched and ranked on the titles alone (a table and a
/// tsvector of their own: see [`fts5_table`]), so its scores are the title's
/// relevance; a page orders by tier first either way.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Tier {
    Title,
    Names,
    Rest,
}

/// The tiers, in the order their products are shown.
const TIERS: [Tier; 3] = [Tier::Title, Tier::Names, Tier::Rest];

/// An FTS5 match expression: every word, each as a prefix. The words hold
/// only letters and digits, so quoting each makes it a plain string to FTS5
/// whatever it says (`AND`, `NEAR`, a column name).
fn fts5_expression(terms: &[String], tier: Tier) -> String {
    let all = terms
        .iter()
        .map(|t| format!("\"{t}\"*"))
        .collect::<Vec<_>>()
        .join(" AND ");
    let title = format!("{{title}} : ({all})");
    let names = format!("{{title category labels}} : ({all})");
    match tier {
        // On `product_titles` (see [`fts5_table`]): titles only.
        Tier::Title => all,
        Tier::Names => format!("{names} NOT {title}"),
        Tier::Rest => format!("({all}) NOT {names}"),
    }
}

/// The FTS5 table a tier is matched in. The title tier has a table of its
/// own (migration 20261203000100): `{title} : …` on `product_text` walks
/// the postings of every column and scores all of them, and a word that is
/// also in many descriptions made its first page 1.5 times as slow
/// (BENCHMARKS.md §7).
fn fts5_table(tier: Tier) -> &'static str {
    match tier {
        Tier::Title => "product_titles",
        Tier::Names | Tier::Rest => "product_text",
    }
}

/// A `to_tsquery` expression: every word, each as a prefix (`:*`). Quoted
/// as tsquery lexemes; the words hold only letters and digits. The names
/// are weights A (title), B (category) and D (labels); C is the description.
fn tsquery_expression(terms: &[String], tier: Tier) -> String {
    let words = |weights: &str| {
        terms
            .iter()
            .map(|t| format!("'{t}':*{weights}"))
            .collect::<Vec<_>>()
            .join(" & ")
    };
    match tier {
        // On `title_document` (see [`tsvector_column`]): titles only.
        Tier::Title => words(""),
        Tier::Names => format!("({}) & !({})", words("ABD"), words("A")),
        Tier::Rest => format!("({}) & !({})", words(""), words("ABD")),
    }
}

/// The tsvector column of `product_search` a tier is matched in: the title
/// tier has one of its own (migration 20261203000100), as on SQLite
/// ([`fts5_table`]).
fn tsvector_column(tier: Tier) -> &'static str {
    match tier {
        Tier::Title => "title_document",
        Tier::Names | Tier::Rest => "document",
    }
}

/// The SQL of the filter conditions on `p` (products), with placeholders
/// numbered from `next`; pushes the values to bind in order.
pub(super) fn filter_sql(filter: &Filter, next: &mut usize, binds: &mut Vec<Bind>) -> String {
    let mut sql = String::new();
    let mut list = |column: &str, values: &[String], binds: &mut Vec<Bind>, sql: &mut String| {
        if values.is_empty() {
            return;
        }
        let marks: Vec<String> = values
            .iter()
            .map(|v| {
                binds.push(Bind::Text(v.clone()));
                *next += 1;
                format!("${}", *next - 1)
            })
            .collect();
        sql.push_str(&format!(" AND p.{column} IN ({})", marks.join(", ")));
    };
    list("category", &filter.category, binds, &mut sql);
    list("currency", &filter.currency, binds, &mut sql);
    for (op, bound) in [(">=", filter.min_price), ("<=", filter.max_price)] {
        if let Some(b) = bound {
            binds.push(Bind::Float(b));
            sql.push_str(&format!(" AND p.price {op} ${next}"));
            *next += 1;
        }
    }
    if let Some(id) = &filter.exclude_id {
        binds.push(Bind::Text(id.clone()));
        sql.push_str(&format!(" AND p.product_id <> ${next}"));
        *next += 1;
    }
    sql
}

pub(super) enum Bind {
    Text(String),
    Float(f64),
}

type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>;

/// Binds the filter values [`filter_sql`] collected, in order.
pub(super) fn bind_all(mut query: AnyQuery<'_>, binds: Vec<Bind>) -> AnyQuery<'_> {
    for b in binds {
        query = match b {
            Bind::Text(s) => query.bind(s),
            Bind::Float(f) => query.bind(f),
        };
    }
    query
}

/// Relative weights of a match in the title, the description, the
/// category and the labels (FTS5's `bm25` column weights; PostgreSQL's A,
/// C, B and D).
/// Label names weigh least: the merchant's own words say more. FTS5 ranks
/// by it as its `rank` (set in migration 20261202000300); kept here as the
/// record, and checked against the database by a test.
pub const SQLITE_BM25: &str = "bm25(0.0, 10.0, 1.0, 4.0, 0.5)";

/// Products matching every term and `filter`, tier by tier ([`TIERS`]:
/// every word in the title, then in the names, then the rest), each best
/// match first, ties by product id (so pages are stable): `limit` of them
/// from `offset`. The score is the engine's relevance (FTS5's negated
/// `bm25`, PostgreSQL's `ts_rank_cd`): higher is better, comparable within
/// one search only.
///
/// A later tier is ranked only when the page reaches it. A common word
/// is in thousands of descriptions, and ranking all of them for the first
/// page took 40 ms (SQLite) to 110 ms (PostgreSQL) at 100k products
/// (BENCHMARKS.md §7).
pub async fn search(
    db: &Db,
    terms: &[String],
    filter: &Filter,
    offset: usize,
    limit: usize,
) -> Result<Vec<SearchResult>, sqlx::Error> {
    let mut page = Vec::with_capacity(limit);
    // Where the page starts within the tier at hand.
    let mut skip = offset;
    for tier in TIERS {
        let got = ranked(db, terms, filter, tier, skip, limit - page.len()).await?;
        let ended_before_the_page = got.is_empty() && skip > 0;
        page.extend(got);
        if page.len() == limit || tier == TIERS[TIERS.len() - 1] {
            break;
        }
        // This tier ends on this page, so the next starts at its top; or it
        // ended before the page, and how many it holds says where the next
        // one's part of the page starts.
        skip = if ended_before_the_page {
            skip.saturating_sub(count(db, terms, filter, tier).await?)
        } else {
            0
        };
    }
    Ok(page)
}

/// How many products one tier holds.
async fn count(
    db: &Db,
    terms: &[String],
    filter: &Filter,
    tier: Tier,
) -> Result<usize, sqlx::Error> {
    let mut binds = vec![];
    let mut next = 2;
    let conditions = filter_sql(filter, &mut next, &mut binds);
    let (expression, sql) = match db.backend() {
        Backend::Sqlite => (
            fts5_expression(terms, tier),
            format!(
                "SELECT COUNT(*) AS n FROM {table} t JOIN products p ON p.product_id = t.product_id \
                 WHERE {table} MATCH $1{conditions}",
                table = fts5_table(tier)
            ),
        ),
        Backend::Postgres => (
            tsquery_expression(terms, tier),
            format!(
                "SELECT COUNT(*) AS n FROM product_search s JOIN products p ON p.product_id = s.product_id \
                 WHERE s.{column} @@ to_tsquery('simple', unaccent($1)){conditions}",
                column = tsvector_column(tier)
            ),
        ),
    };
    let row = bind_all(
        sqlx::query(sqlx::AssertSqlSafe(sql)).bind(expression),
        binds,
    )
    .fetch_one(db.reader())
    .await?;
    Ok(usize::try_from(row.try_get::<i64, _>("n")?).unwrap_or(0))
}

/// One tier's ranking: `limit` products from `offset`.
async fn ranked(
    db: &Db,
    terms: &[String],
    filter: &Filter,
    tier: Tier,
    offset: usize,
    limit: usize,
) -> Result<Vec<SearchResult>, sqlx::Error> {
    let mut binds = vec![];
    let mut next = 2;
    let conditions = filter_sql(filter, &mut next, &mut binds);
    let (expression, sql) = match db.backend() {
        // FTS5's own `rank` (the bm25 of [`SQLITE_BM25`], configured by
        // migration 20261202000300), ties by the FTS rowid (stable per
        // product): `ORDER BY rank` is FTS5's fast path, a third of the
        // time of ordering by a `bm25(…)` expression. Without filters the
        // page is cut from the FTS table alone and only it is joined with
        // `products`.
        Backend::Sqlite if conditions.is_empty() => (
            fts5_expression(terms, tier),
            format!(
                "SELECT p.product_id, p.title, p.description, p.category, p.price, p.currency, \
                   p.labels, t.score \
                 FROM (SELECT product_id, rowid AS rid, -rank AS score FROM {table} \
                       WHERE {table} MATCH $1 \
                       ORDER BY rank, rowid LIMIT ${next} OFFSET ${}) t \
                 JOIN products p ON p.product_id = t.product_id \
                 ORDER BY t.score DESC, t.rid",
                next + 1,
                table = fts5_table(tier)
            ),
        ),
        Backend::Sqlite => (
            fts5_expression(terms, tier),
            format!(
                "SELECT p.product_id, p.title, p.description, p.category, p.price, p.currency, \
                   p.labels, -t.rank AS score \
                 FROM {table} t JOIN products p ON p.product_id = t.product_id \
                 WHERE {table} MATCH $1{conditions} \
                 ORDER BY t.rank, t.rowid LIMIT ${next} OFFSET ${}",
                next + 1,
                table = fts5_table(tier)
            ),
        ),
        Backend::Postgres => (
            tsquery_expression(terms, tier),
            format!(
                "SELECT p.product_id, p.title, p.description, p.category, p.price, p.currency, \
                   p.labels, CAST(ts_rank_cd(s.{column}, q) AS DOUBLE PRECISION) AS score \
                 FROM product_search s JOIN products p ON p.product_id = s.product_id, \
                   to_tsquery('simple', unaccent($1)) q \
                 WHERE s.{column} @@ q{conditions} \
                 ORDER BY score DESC, p.product_id LIMIT ${next} OFFSET ${}",
                next + 1,
                column = tsvector_column(tier)
            ),
        ),
    };
    let query = bind_all(
        sqlx::query(sqlx::AssertSqlSafe(sql)).bind(expression),
        binds,
    );
    let rows = query
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .bind(i64::try_from(offset).unwrap_or(i64::MAX))
        .fetch_all(db.reader())
        .await?;
    rows.iter()
        .map(|r| {
            let title: Option<String> = r.try_get("title")?;
            let description: Option<String> = r.try_get("description")?;
            let category: Option<String> = r.try_get("category")?;
            let label_names = label_names(r.try_get("labels")?);
            // The engine matched every term somewhere; which fields did?
            let label = covers(terms, label_names.iter().map(String::as_str));
            let own = [&title, &description, &category];
            let text = !label || covers(terms, own.iter().filter_map(|f| f.as_deref()));
            Ok(SearchResult {
                product_id: r.try_get("product_id")?,
                score: r.try_get::<f64, _>("score")? as f32,
                title,
                category,
                price: r.try_get("price")?,
                currency: r.try_get("currency")?,
                signals: Signals {
                    vector: None,
                    text,
                    label,
                    typo: false,
                },
            })
        })
        .collect()
}

/// The names of a product row's stored labels (the `labels` column's JSON,
/// the classifier's top-k); none when the row has none or they do not parse.
pub(super) fn label_names(stored: Option<String>) -> Vec<String> {
    stored
        .as_deref()
        .and_then(|l| serde_json::from_str::<Vec<crate::embed::Label>>(l).ok())
        .unwrap_or_default()
        .into_iter()
        .map(|l| l.name)
        .collect()
}

/// Whether every term starts a word of `fields`, folded as queries are:
/// how a result says whether its labels or its own words matched.
fn covers<'a>(terms: &[String], fields: impl Iterator<Item = &'a str>) -> bool {
    let words: Vec<String> = fields
        .flat_map(|f| f.split(|c: char| !c.is_alphanumeric()))
        .filter(|w| !w.is_empty())
        .map(fold)
        .collect();
    !words.is_empty() && terms.iter().all(|t| words.iter().any(|w| w.starts_with(t)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_become_folded_words() {
        assert_eq!(
            terms("Чайник, ЗАВАРОЧНЫЙ!").unwrap(),
            ["чайник", "заварочный"]
        );
        assert_eq!(
            terms("Ёлка red-sneakers").unwrap(),
            ["елка", "red", "sneakers"]
        );
        assert!(terms(" ,.!? ").is_err());
        assert!(terms(&"a".repeat(MAX_QUERY_CHARS + 1)).is_err());
        let many = (0..40)
            .map(|i| format!("w{i}"))
            .collect::<Vec<_>>()
            .join(" ");
        assert_eq!(terms(&many).unwrap().len(), MAX_TERMS);
    }

    #[test]
    fn match_expressions_quote_every_word_as_a_prefix() {
        let t = terms("NEAR title: AND").unwrap();
        let all = r#""near"* AND "title"* AND "and"*"#;
        assert_eq!(fts5_expression(&t, Tier::Title), all);
        assert_eq!(
            fts5_expression(&t, Tier::Names),
            format!("{{title category labels}} : ({all}) NOT {{title}} : ({all})")
        );
        assert_eq!(
            fts5_expression(&t, Tier::Rest),
            format!("({all}) NOT {{title category labels}} : ({all})")
        );
        assert_eq!(
            tsquery_expression(&t, Tier::Title),
            "'near':* & 'title':* & 'and':*"
        );
        assert_eq!(
            tsquery_expression(&t, Tier::Names),
            "('near':*ABD & 'title':*ABD & 'and':*ABD) & !('near':*A & 'title':*A & 'and':*A)"
        );
        assert_eq!(
            tsquery_expression(&t, Tier::Rest),
            "('near':* & 'title':* & 'and':*) & !('near':*ABD & 'title':*ABD & 'and':*ABD)"
        );
    }

    /// The rank FTS5 orders by is the one this module documents.
    #[tokio::test]
    async fn the_database_ranks_by_the_documented_bm25() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::db::test_sqlite(dir.path()).await;
        let row = sqlx::query("SELECT v FROM product_text_config WHERE k = 'rank'")
            .fetch_one(db.reader())
            .await
            .unwrap();
        assert_eq!(row.try_get::<String, _>("v").unwrap(), SQLITE_BM25);
    }
}
