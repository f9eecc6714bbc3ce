//! Near-duplicates: products whose images look the same (the same product
//! uploaded twice, by two sellers or twice by one). At ingest, after a new
//! image is embedded and upserted, [`CatalogSync`](super::CatalogSync)
//! compares its vector with its nearest indexed neighbours and stores every
//! pair at or above `duplicates.threshold`, and every product with the very
//! same image (same sha256) whatever the score, in the transaction that
//! marks the product indexed. The `product_duplicates`
//! table holds one row per pair, the smaller id first; a product's pairs are
//! replaced when its image changes and removed when it is deleted.
//!
//! Clusters, for the admin list, are the connected components of the pairs
//! (a duplicate of a duplicate is in the same cluster), computed when asked.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;

use crate::db::{Db, now_ms};

/// One product's near-duplicate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Duplicate {
    pub product_id: String,
    /// Cosine similarity of the two images (1 for identical ones).
    pub score: f64,
    /// Both images have the same sha256.
    pub identical: bool,
    /// When the pair was found, RFC 3339.
    pub found_at: Option<String>,
}

/// A group of products that are near-duplicates of one another, directly
/// or through others.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cluster {
    /// Sorted.
    pub product_ids: Vec<String>,
    pub pairs: usize,
    /// The highest score of its pairs.
    pub best_score: f64,
}

/// A pair found for the product being ingested.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    pub other: String,
    pub score: f64,
    pub identical: bool,
}

#[derive(Debug, Clone)]
pub struct DuplicateStore {
    db: Db,
}

/// Pairs per insert statement: 5 parameters each, well under SQLite's
/// and PostgreSQL's limits on parameters per statement.
const INSERT_ROWS: usize = 100;

fn ordered<'a>(a: &'a str, b: &'a str) -> (&'a str, &'a str) {
    if a <= b { (a, b) } else { (b, a) }
}

/// The pairs of `product_id`'s new image: its nearest neighbours (`near`:
/// product id and cosine similarity, from the vector index) at or above
/// `threshold`, and every product in `same`, the indexed products with the
/// very same image, whatever their score.
pub fn found(
    product_id: &str,
    near: &[(String, f32)],
    same: &[String],
    threshold: f32,
) -> Vec<Found> {
    let mut found: Vec<Found> = near
        .iter()
        .filter(|(other, score)| other != product_id && *score >= threshold)
        .map(|(other, score)| Found {
            identical: same.contains(other),
            other: other.clone(),
            score: f64::from(*score),
        })
        .collect();
    for other in same.iter().filter(|o| o.as_str() != product_id) {
        if !found.iter().any(|f| &f.other == other) {
            found.push(Found {
                other: other.clone(),
                score: 1.0,
                identical: true,
            });
        }
    }
    found
}

fn time_text(ms: i64) -> Option<String> {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

impl DuplicateStore {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// [`DuplicateStore::replace_on`] in a transaction of its own, for the
    /// tests (at ingest the pairs go in the transaction that marks the
    /// product indexed).
    #[cfg(test)]
    async fn replace(&self, product_id: &str, found: &[Found]) -> Result<usize, sqlx::Error> {
        let _turn = self.db.background_turn().await;
        let mut tx = self.db.writer().begin().await?;
        let new = Self::replace_on(&mut tx, product_id, found).await?;
        tx.commit().await?;
        Ok(new)
    }

    /// Replaces the pairs of `product_id` with `found`, inside the caller's
    /// transaction. Returns how many of them were not known before.
    ///
    /// The pairs go in as multi-row
    /// inserts: a photo shared by many products has as many pairs, and one
    /// statement per pair made the check cost 12 % of ingest in
    /// `scripts/bench_duplicates.py` (BENCHMARKS.md §6).
    pub async fn replace_on(
        tx: &mut sqlx::AnyConnection,
        product_id: &str,
        found: &[Found],
    ) -> Result<usize, sqlx::Error> {
        // One row per other product, the smaller id first.
        let mut rows: BTreeMap<(String, String), &Found> = BTreeMap::new();
        for f in found.iter().filter(|f| f.other != product_id) {
            let (a, b) = ordered(product_id, &f.other);
            rows.insert((a.to_string(), b.to_string()), f);
        }
        let before: Vec<(String, String)> = sqlx::query_as(
            "SELECT a_id, b_id FROM product_duplicates WHERE a_id = $1 OR b_id = $1",
        )
        .bind(product_id)
        .fetch_all(&mut *tx)
        .await?;
        if rows.is_empty() && before.is_empty() {
            return Ok(0);
        }
        let before: BTreeSet<(String, String)> = before.into_iter().collect();
        sqlx::query("DELETE FROM product_duplicates WHERE a_id = $1 OR b_id = $1")
            .bind(product_id)
            .execute(&mut *tx)
            .await?;
        let now = now_ms();
        let new = rows.keys().filter(|k| !before.contains(*k)).count();
        let rows: Vec<_> = rows.into_iter().collect();
        for chunk in rows.chunks(INSERT_ROWS) {
            let values: Vec<String> = (0..chunk.len())
                .map(|i| {
                    let n = i * 5;
                    format!(
                        "(${}, ${}, ${}, ${}, ${})",
                        n + 1,
                        n + 2,
                        n + 3,
                        n + 4,
                        n + 5
                    )
                })
                .collect();
            let sql = format!(
                "INSERT INTO product_duplicates (a_id, b_id, score, identical, found_at) \
                 VALUES {} ON CONFLICT (a_id, b_id) DO UPDATE SET \
                 score = excluded.score, identical = excluded.identical",
                values.join(", ")
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for ((a, b), f) in chunk {
                query = query
                    .bind(a.as_str())
                    .bind(b.as_str())
                    .bind(f.score)
                    .bind(i64::from(f.identical))
                    .bind(now);
            }
            query.execute(&mut *tx).await?;
        }
        Ok(new)
    }

    /// Whether `product_id` has any stored pair.
    pub async fn has_pairs(&self, product_id: &str) -> Result<bool, sqlx::Error> {
        let had: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM product_duplicates WHERE a_id = $1 OR b_id = $1 LIMIT 1",
        )
        .bind(product_id)
        .fetch_optional(self.db.reader())
        .await?;
        Ok(had.is_some())
    }

    /// Forgets every pair of `product_id` (it was deleted).
    pub async fn remove(&self, product_id: &str) -> Result<(), sqlx::Error> {
        let _turn = self.db.background_turn().await;
        sqlx::query("DELETE FROM product_duplicates WHERE a_id = $1 OR b_id = $1")
            .bind(product_id)
            .execute(self.db.writer())
            .await?;
        Ok(())
    }

    /// The near-duplicates of `product_id`, best first.
    pub async fn of(&self, product_id: &str) -> Result<Vec<Duplicate>, sqlx::Error> {
        let rows: Vec<(String, f64, i64, i64)> = sqlx::query_as(
            "SELECT CASE WHEN a_id = $1 THEN b_id ELSE a_id END, score, identical, found_at \
             FROM product_duplicates WHERE a_id = $1 OR b_id = $1",
        )
        .bind(product_id)
        .fetch_all(self.db.reader())
        .await?;
        let mut out: Vec<Duplicate> = rows
            .into_iter()
            .map(|(product_id, score, identical, found_at)| Duplicate {
                product_id,
                score,
                identical: identical != 0,
                found_at: time_text(found_at),
            })
            .collect();
        out.sort_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then_with(|| a.product_id.cmp(&b.product_id))
        });
        Ok(out)
    }

    /// The clusters, largest first (then by their first id), one page of
    /// them, and how many there are in all.
    pub async fn clusters(
        &self,
        offset: usize,
        limit: usize,
    ) -> Result<(Vec<Cluster>, usize), sqlx::Error> {
        let rows: Vec<(String, String, f64)> =
            sqlx::query_as("SELECT a_id, b_id, score FROM product_duplicates")
                .fetch_all(self.db.reader())
                .await?;
        let mut all = components(&rows);
        all.sort_by(|a, b| {
            b.product_ids
                .len()
                .cmp(&a.product_ids.len())
                .then_with(|| a.product_ids.cmp(&b.product_ids))
        });
        let total = all.len();
        Ok((all.into_iter().skip(offset).take(limit).collect(), total))
    }
}

/// The connected components of the pairs (union-find).
fn components(pairs: &[(String, String, f64)]) -> Vec<Cluster> {
    let mut index: HashMap<&str, usize> = HashMap::new();
    let mut parent: Vec<usize> = Vec::new();
    fn find(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    fn id<'a>(index: &mut HashMap<&'a str, usize>, parent: &mut Vec<usize>, s: &'a str) -> usize {
        let n = index.len();
        let i = *index.entry(s).or_insert(n);
        if i == parent.len() {
            parent.push(i);
        }
        i
    }
    let mut edges = Vec::with_capacity(pairs.len());
    for (a, b, score) in pairs {
        let ia = id(&mut index, &mut parent, a);
        let ib = id(&mut index, &mut parent, b);
        edges.push((ia, ib, *score));
        let (ra, rb) = (find(&mut parent, ia), find(&mut parent, ib));
        if ra != rb {
            parent[ra] = rb;
        }
    }
    let mut names: Vec<&str> = vec![""; index.len()];
    for (s, i) in &index {
        names[*i] = s;
    }
    let mut groups: BTreeMap<usize, (BTreeSet<String>, usize, f64)> = BTreeMap::new();
    for (ia, ib, score) in edges {
        let root = find(&mut parent, ia);
        let g = groups
            .entry(root)
            .or_insert_with(|| (BTreeSet::new(), 0, f64::MIN));
        g.0.insert(names[ia].to_string());
        g.0.insert(names[ib].to_string());
        g.1 += 1;
        g.2 = g.2.max(score);
    }
    groups
        .into_values()
        .map(|(ids, pairs, best_score)| Cluster {
            product_ids: ids.into_iter().collect(),
            pairs,
            best_score,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(a: &str, b: &str, s: f64) -> (String, String, f64) {
        (a.into(), b.into(), s)
    }

    #[test]
    fn a_duplicate_of_a_duplicate_is_in_the_same_cluster() {
        let mut c = components(&[
            pair("a", "b", 0.9),
            pair("c", "d", 0.8),
            pair("b", "e", 0.95),
        ]);
        c.sort_by(|x, y| x.product_ids.cmp(&y.product_ids));
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].product_ids, ["a", "b", "e"]);
        assert_eq!((c[0].pairs, c[0].best_score), (2, 0.95));
        assert_eq!(c[1].product_ids, ["c", "d"]);
    }

    /// Neighbours under the threshold are not pairs, an identical image is
    /// one whatever its score (and whether or not the index returned it),
    /// and the product is never its own duplicate.
    #[test]
    fn pairs_are_the_close_neighbours_and_every_identical_image() {
        let near = [
            ("p-self".to_string(), 1.0),
            ("p-close".to_string(), 0.8),
            ("p-far".to_string(), 0.5),
            ("p-same".to_string(), 0.2),
        ];
        let same = ["p-same".to_string(), "p-unseen".to_string()];
        let mut f = found("p-self", &near, &same, 0.75);
        f.sort_by(|a, b| a.other.cmp(&b.other));
        let got: Vec<_> = f.iter().map(|f| (f.other.as_str(), f.identical)).collect();
        assert_eq!(
            got,
            [("p-close", false), ("p-same", true), ("p-unseen", true)]
        );
        assert_eq!(f[2].score, 1.0);
    }

    /// A photo shared by 250 products: every pair is stored (three insert
    /// statements), counted once as new, and replaced, not added to, when
    /// the image changes; an image with no duplicates clears them.
    #[tokio::test]
    async fn many_pairs_are_stored_replaced_and_cleared() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::db::test_sqlite(dir.path()).await;
        let store = DuplicateStore::new(db.clone());
        let found: Vec<Found> = (0..250)
            .map(|i| Found {
                other: format!("p-{i:03}"),
                score: 1.0,
                identical: true,
            })
            .collect();
        assert_eq!(store.replace("p-x", &found).await.unwrap(), 250);
        assert_eq!(store.of("p-x").await.unwrap().len(), 250);
        assert_eq!(store.of("p-007").await.unwrap()[0].product_id, "p-x");
        // The same pairs again are not new; a changed image keeps only its own.
        assert_eq!(store.replace("p-x", &found).await.unwrap(), 0);
        let fewer = &found[..3];
        assert_eq!(store.replace("p-x", fewer).await.unwrap(), 0);
        assert_eq!(store.of("p-x").await.unwrap().len(), 3);
        assert!(store.of("p-100").await.unwrap().is_empty());
        assert_eq!(store.replace("p-x", &[]).await.unwrap(), 0);
        assert!(store.of("p-x").await.unwrap().is_empty());
        assert_eq!(store.replace("p-y", &[]).await.unwrap(), 0);
    }
}
