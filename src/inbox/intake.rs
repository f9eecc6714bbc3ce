//! Group commit for webhook intake.
//!
//! Every webhook must be on disk before its 200 goes out. Done one event per
//! transaction, each delivery pays a whole commit (an `fsync` on SQLite, a
//! WAL flush and a round trip on PostgreSQL) and, on SQLite, fights the
//! workers for the single write lock. Here concurrent requests hand their
//! events to one task, which writes everything that queued up meanwhile as
//! **one multi-row `INSERT`** (one statement, so one commit and one `fsync`
//! for the whole group) and only then answers each request. Under load the
//! groups grow by themselves: while one group commits, the next one queues.
//! With a single request in flight the group is that one event, so an idle
//! server adds no delay.
//!
//! The durability promise is unchanged: a request gets its answer only after
//! the statement holding its row has committed, so an acknowledged event
//! survives `kill -9` (and, with `synchronous=FULL`/`fsync`, power loss).
//!
//! If a group fails as a whole (say one row breaks a constraint that should
//! not exist), its events are written again one by one, so one bad event
//! fails only its own request.

use std::sync::Arc;

use tokio::sync::{Mutex, mpsc, oneshot};
use tokio_util::task::TaskTracker;

use super::event::{EventStatus, InboxError, Inserted, NewEvent};
use crate::db::{Backend, Db, now_ms};

/// Most events in one statement. Eleven bind parameters per row keeps a full
/// group (2,816 parameters) far below SQLite's limit of 32,766 and
/// PostgreSQL's 65,535, and bounds how long one statement holds the writer.
pub const MAX_GROUP: usize = 256;

/// Requests waiting for the writer. Past this, senders wait (backpressure
/// reaches the HTTP handlers instead of memory growing without bound).
const QUEUE: usize = 4 * MAX_GROUP;

struct Pending {
    event: NewEvent,
    reply: oneshot::Sender<Result<Inserted, InboxError>>,
}

/// The sending side, held by [`super::Inbox`]. When the last clone is
/// dropped, the writer task finishes what it holds and ends.
#[derive(Debug, Clone)]
pub struct GroupCommit {
    tx: mpsc::Sender<Pending>,
}

impl GroupCommit {
    /// Starts the writer tasks on the current tokio runtime, tracked by
    /// `tasks` so that shutdown can wait until they have written what they
    /// hold.
    ///
    /// SQLite gets one: it has a single write connection, so a second group
    /// could only wait for it. PostgreSQL gets several, so that one group is
    /// gathered and sent while another waits for its commit (PostgreSQL
    /// flushes concurrent commits together by itself).
    pub fn start(db: Db, max_retries: i64, tasks: &TaskTracker) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        let writers = match db.backend() {
            Backend::Sqlite => 1,
            Backend::Postgres => 4,
        };
        let rx = Arc::new(Mutex::new(rx));
        for _ in 0..writers {
            tasks.spawn(writer(db.clone(), max_retries, rx.clone()));
        }
        Self { tx }
    }

    /// Queues one event and waits until it is committed (or found to be a
    /// duplicate of a stored one).
    pub async fn insert(&self, event: NewEvent) -> Result<Inserted, InboxError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Pending { event, reply })
            .await
            .map_err(|_| InboxError::Closed)?;
        answer.await.map_err(|_| InboxError::Closed)?
    }
}

async fn writer(db: Db, max_retries: i64, rx: Arc<Mutex<mpsc::Receiver<Pending>>>) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    // `recv_many` waits for the first request, then takes every one already
    // queued (up to MAX_GROUP) without waiting for more: no timer, no delay.
    // The lock is held only while gathering, never while writing.
    while rx.lock().await.recv_many(&mut group, MAX_GROUP).await > 0 {
        metrics::histogram!("visual_search_inbox_group_size").record(group.len() as f64);
        let events: Vec<&NewEvent> = group.iter().map(|p| &p.event).collect();
        match insert_group(&db, max_retries, &events).await {
            Ok(results) => {
                for (p, r) in group.drain(..).zip(results) {
                    // The requester may have gone (client hung up); the event
                    // is stored all the same, as it would be without grouping.
                    let _ = p.reply.send(Ok(r));
                }
            }
            Err(e) if group.len() == 1 => {
                let _ = group.pop().map(|p| p.reply.send(Err(e)));
            }
            Err(e) => {
                tracing::warn!(error = %e, size = group.len(), "group insert failed; inserting one by one");
                for p in group.drain(..) {
                    let r = insert_group(&db, max_retries, &[&p.event])
                        .await
                        .map(|mut v| v.remove(0));
                    let _ = p.reply.send(r);
                }
            }
        }
    }
}

/// Builds `INSERT … VALUES (…), (…), … ON CONFLICT DO NOTHING RETURNING id`
/// for `rows` rows. `created_at` and `updated_at` share one parameter. The
/// status goes into the text rather than into a bind: it is one constant
/// word from [`EventStatus`], the same for every row, not request data.
fn insert_sql(rows: usize) -> String {
    let mut sql = String::from(
        "INSERT INTO webhook_events (id, provider, external_id, event_type, event_subtype, \
         entity_type, entity_id, org, status, max_retries, payload, created_at, updated_at) VALUES ",
    );
    for r in 0..rows {
        let p = |i: usize| r * 11 + i;
        if r > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&format!(
            "(${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, '{}', ${}, ${}, ${}, ${})",
            p(1),
            p(2),
            p(3),
            p(4),
            p(5),
            p(6),
            p(7),
            p(8),
            EventStatus::Pending.as_str(),
            p(9),
            p(10),
            p(11),
            p(11)
        ));
    }
    sql.push_str(" ON CONFLICT (provider, external_id) DO NOTHING RETURNING id");
    sql
}

/// Inserts the events in one statement and says, per event in order, which
/// task id it has and whether it was a duplicate. The unique constraint
/// decides duplicates, also between two copies inside one group: the first
/// copy's row is inserted, the second conflicts with it and is skipped.
async fn insert_group(
    db: &Db,
    max_retries: i64,
    events: &[&NewEvent],
) -> Result<Vec<Inserted>, InboxError> {
    let now = now_ms();
    let ids: Vec<String> = events
        .iter()
        .map(|_| uuid::Uuid::now_v7().to_string())
        .collect();
    // The SQL text depends only on the number of rows and is built from
    // numbers and `EventStatus::Pending`, never from request data: safe to
    // assert.
    let sql = insert_sql(events.len());
    let mut q = sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql));
    for (id, e) in ids.iter().zip(events) {
        // Borrowed, not cloned: payloads can be large, and this is the
        // intake's hot path.
        q = q
            .bind(id.as_str())
            .bind(e.provider.as_str())
            .bind(e.external_id.as_str())
            .bind(e.event_type.as_str())
            .bind(e.event_subtype.as_deref())
            .bind(e.entity_type.as_deref())
            .bind(e.entity_id.as_deref())
            .bind(e.org.as_deref())
            .bind(max_retries)
            .bind(e.payload.as_str())
            .bind(now);
    }
    let stored: std::collections::HashSet<String> =
        q.fetch_all(db.writer()).await?.into_iter().collect();

    let mut out = Vec::with_capacity(events.len());
    for (id, e) in ids.into_iter().zip(events) {
        if stored.contains(&id) {
            out.push(Inserted {
                task_id: id,
                duplicate: false,
            });
            continue;
        }
        // A duplicate delivery: answer with the task id the first copy got.
        // Rare, so one lookup each is fine. The row it conflicted with is
        // committed by now, so a reader connection sees it.
        let task_id: String = sqlx::query_scalar(
            "SELECT id FROM webhook_events WHERE provider = $1 AND external_id = $2",
        )
        .bind(&e.provider)
        .bind(&e.external_id)
        .fetch_one(db.reader())
        .await?;
        out.push(Inserted {
            task_id,
            duplicate: true,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_parameters_per_row_in_order() {
        let sql = insert_sql(2);
        assert!(sql.contains("($1, $2, $3, $4, $5, $6, $7, $8, 'pending', $9, $10, $11, $11)"));
        assert!(
            sql.contains("($12, $13, $14, $15, $16, $17, $18, $19, 'pending', $20, $21, $22, $22)")
        );
        assert!(!sql.contains("$23"));
    }
}
