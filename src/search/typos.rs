//! Typo tolerance for the text search: what a query finds when no product
//! matches every one of its words. Owns the trigram tables of migration
//! `20261202000300_product_typos` (SQLite: an FTS5 `trigram` table; PostgreSQL:
//! a `pg_trgm` GIN index) and the final edit-distance check.
//!
//! Two steps, so that neither engine scans the catalog:
//!
//! 1. **Candidates** from the engine's trigram index: the products whose
//!    names (title, category, label names) share the most three-letter
//!    pieces with the query's words, at most [`CANDIDATES`] of them, under
//!    the same filters as the exact search.
//! 2. **The check**, the same on both engines: every word of the query must
//!    be within a small Damerau-Levenshtein distance (`strsim`) of a word of
//!    the product's names, or of its beginning (a word is typed as a
//!    prefix, as in the exact search). One edit is allowed in words of 4–7
//!    letters, two from 8; shorter words must be exact. Ranked by how close
//!    the words are, ties by product id, so pages are stable.
//!
//! The candidate step is the engines' own trigram machinery; only the check
//! is ours, a few lines over `strsim`'s distance.

use sqlx::Row;

use super::{SearchResult, Signals, text};
use crate::{
    db::{Backend, Db},
    index::Filter,
};

/// How many candidates the trigram index hands to the check. The fuzzy
/// ranking is cut from them, so it holds at most this many results.
pub const CANDIDATES: usize = 200;

/// The lowest `word_similarity` PostgreSQL's candidates need (pg_trgm's
/// default of 0.6 misses one wrong letter in a six-letter word).
const PG_WORD_SIMILARITY: f64 = 0.3;

/// The edits a query word of `len` letters may be away from a product's.
pub fn allowed_edits(len: usize) -> usize {
    match len {
        0..=3 => 0,
        4..=7 => 1,
        _ => 2,
    }
}

/// The three-letter pieces of a folded word, as FTS5's trigram tokenizer
/// and pg_trgm cut them (ours only for the SQLite match expression).
fn trigrams(word: &str) -> Vec<String> {
    let chars: Vec<char> = word.chars().collect();
    chars
        .windows(3)
        .map(|w| w.iter().collect::<String>())
        .collect()
}

/// Trigrams a query is matched by on SQLite: the rarest of its words'.
const SQLITE_TRIGRAMS: usize = 8;

/// The distinct trigrams of the query's words.
fn query_trigrams(terms: &[String]) -> Vec<String> {
    let mut grams: Vec<String> = terms.iter().flat_map(|t| trigrams(t)).collect();
    grams.sort();
    grams.dedup();
    grams
}

/// An FTS5 match expression over the trigram table: any of `grams` (bm25
/// ranks products that share more of them, and rarer ones, first). `None`
/// when there is none. The words hold only letters and digits, so each
/// quoted trigram is a plain string to FTS5.
fn fts5_expression(grams: &[String]) -> Option<String> {
    (!grams.is_empty()).then(|| {
        grams
            .iter()
            .map(|g| format!("\"{g}\""))
            .collect::<Vec<_>>()
            .join(" OR ")
    })
}

/// The [`SQLITE_TRIGRAMS`] rarest of `grams` that some product holds, by
/// the trigram index's own counts (`product_trigrams_vocab`).
async fn rarest(db: &Db, grams: Vec<String>) -> Result<Vec<String>, sqlx::Error> {
    if grams.len() <= SQLITE_TRIGRAMS {
        return Ok(grams);
    }
    let marks: Vec<String> = (1..=grams.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        "SELECT term, doc FROM product_trigrams_vocab WHERE term IN ({}) \
         ORDER BY doc, term LIMIT {SQLITE_TRIGRAMS}",
        marks.join(", ")
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for g in &grams {
        q = q.bind(g.clone());
    }
    q.fetch_all(db.reader())
        .await?
        .iter()
        .map(|r| r.try_get::<String, _>("term"))
        .collect()
}

/// How far `term` is from `word`: the edits to `word` itself, or to its
/// beginning of about the term's length (the shopper may still be typing).
fn distance(term: &str, word: &str) -> usize {
    let full = strsim::damerau_levenshtein(term, word);
    let n = term.chars().count();
    let prefixes = [n.saturating_sub(1), n, n + 1]
        .into_iter()
        .filter(|&k| k > 0 && k < word.chars().count())
        .map(|k| {
            let prefix: String = word.chars().take(k).collect();
            strsim::damerau_levenshtein(term, &prefix)
        });
    prefixes.fold(full, usize::min)
}

/// The closeness of a product's words to the query's: `None` when some
/// term is further than it may be from every word, else the sum over terms
/// of `1 - edits / letters` (higher is closer).
pub fn closeness(terms: &[String], words: &[String]) -> Option<f64> {
    let mut total = 0.0;
    for t in terms {
        let len = t.chars().count();
        let best = words.iter().map(|w| distance(t, w)).min()?;
        if best > allowed_edits(len) {
            return None;
        }
        total += 1.0 - best as f64 / len as f64;
    }
    Some(total)
}

fn words_of<'a>(fields: impl Iterator<Item = &'a str>) -> Vec<String> {
    fields
        .flat_map(|f| f.split(|c: char| !c.is_alphanumeric()))
        .filter(|w| !w.is_empty())
        .map(text::fold)
        .collect()
}

/// Products whose names are within a typo of every term, and `filter`,
/// closest first: `limit` of them from `offset`.
pub async fn search(
    db: &Db,
    terms: &[String],
    filter: &Filter,
    offset: usize,
    limit: usize,
) -> Result<Vec<SearchResult>, sqlx::Error> {
    if terms.iter().all(|t| allowed_edits(t.chars().count()) == 0) {
        return Ok(vec![]);
    }
    let rows = match candidates(db, terms, filter).await? {
        Some(rows) => rows,
        None => return Ok(vec![]),
    };
    let mut ranked = vec![];
    for r in rows {
        let title: Option<String> = r.try_get("title")?;
        let category: Option<String> = r.try_get("category")?;
        let label_names = text::label_names(r.try_get("labels")?);
        let own = words_of([&title, &category].into_iter().filter_map(|f| f.as_deref()));
        let label = words_of(label_names.iter().map(String::as_str));
        let all: Vec<String> = own.iter().chain(&label).cloned().collect();
        let Some(score) = closeness(terms, &all) else {
            continue;
        };
        let own_close = closeness(terms, &own).is_some();
        ranked.push(SearchResult {
            product_id: r.try_get("product_id")?,
            score: score as f32,
            title,
            category,
            price: r.try_get("price")?,
            currency: r.try_get("currency")?,
            signals: Signals {
                vector: None,
                text: own_close,
                label: !own_close,
                typo: true,
            },
        });
    }
    ranked.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| a.product_id.cmp(&b.product_id))
    });
    Ok(ranked.into_iter().skip(offset).take(limit).collect())
}

/// The trigram index's best [`CANDIDATES`] for `terms` under `filter`;
/// `None` when the query has nothing to look up by.
async fn candidates(
    db: &Db,
    terms: &[String],
    filter: &Filter,
) -> Result<Option<Vec<sqlx::any::AnyRow>>, sqlx::Error> {
    let mut binds = vec![];
    let mut next = 2;
    let conditions = text::filter_sql(filter, &mut next, &mut binds);
    let columns = "p.product_id, p.title, p.category, p.price, p.currency, p.labels";
    match db.backend() {
        Backend::Sqlite => {
            let grams = rarest(db, query_trigrams(terms)).await?;
            let Some(expression) = fts5_expression(&grams) else {
                return Ok(None);
            };
            let sql = format!(
                "SELECT {columns} FROM product_trigrams t \
                   JOIN products p ON p.product_id = t.product_id \
                 WHERE product_trigrams MATCH $1{conditions} \
                 ORDER BY bm25(product_trigrams), p.product_id LIMIT {CANDIDATES}"
            );
            let query = text::bind_all(
                sqlx::query(sqlx::AssertSqlSafe(sql)).bind(expression),
                binds,
            );
            Ok(Some(query.fetch_all(db.reader()).await?))
        }
        Backend::Postgres => {
            // `<%` is the indexable form of word_similarity; its threshold is
            // a setting, lowered for this transaction only.
            let sql = format!(
                "SELECT {columns} FROM product_search s \
                   JOIN products p ON p.product_id = s.product_id \
                 WHERE $1 <% s.words{conditions} \
                 ORDER BY word_similarity($1, s.words) DESC, p.product_id LIMIT {CANDIDATES}"
            );
            let mut tx = db.reader().begin().await?;
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "SET LOCAL pg_trgm.word_similarity_threshold = {PG_WORD_SIMILARITY}"
            )))
            .execute(&mut *tx)
            .await?;
            let query = text::bind_all(
                sqlx::query(sqlx::AssertSqlSafe(sql)).bind(terms.join(" ")),
                binds,
            );
            let rows = query.fetch_all(&mut *tx).await?;
            tx.commit().await?;
            Ok(Some(rows))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn one_wrong_letter_is_close_and_two_are_not_in_a_short_word() {
        let words = w(&["чайник", "заварочный"]);
        assert!(closeness(&w(&["чайнек"]), &words).is_some());
        assert!(closeness(&w(&["чийнек"]), &words).is_none());
        // Two edits are allowed from eight letters on.
        assert!(closeness(&w(&["заворачный"]), &words).is_some());
        assert!(closeness(&w(&["зоворачнай"]), &words).is_none());
    }

    #[test]
    fn transpositions_and_unfinished_words_count_as_one_edit() {
        let words = w(&["sneakers", "red"]);
        assert!(closeness(&w(&["snaekers"]), &words).is_some());
        assert!(closeness(&w(&["sneek"]), &words).is_some());
        // Short words must be exact.
        assert!(closeness(&w(&["rad"]), &words).is_none());
        assert!(closeness(&w(&["red", "snaekers"]), &words).is_some());
    }

    #[test]
    fn closer_words_score_higher() {
        let words = w(&["кроссовки"]);
        let exact = closeness(&w(&["кроссовки"]), &words).unwrap();
        let one = closeness(&w(&["кросовки"]), &words).unwrap();
        let two = closeness(&w(&["красовки"]), &words).unwrap();
        assert!(exact > one && one > two, "{exact} {one} {two}");
    }

    #[test]
    fn the_match_expression_quotes_every_trigram_once() {
        let grams = query_trigrams(&w(&["abcd", "bcd", "xy"]));
        assert_eq!(grams, ["abc", "bcd"]);
        assert_eq!(fts5_expression(&grams).unwrap(), "\"abc\" OR \"bcd\"");
        assert!(query_trigrams(&w(&["ab"])).is_empty());
        assert_eq!(fts5_expression(&[]), None);
    }
}
