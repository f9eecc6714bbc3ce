//! What applying one BakaiMarket event did to its product.
//!
//! The inbox stores the [`Display`](std::fmt::Display) text as the event's
//! `outcome`, which the admin API shows and the README and tests quote, so
//! each text here is part of the interface: change one only on purpose.

use chrono::{DateTime, Utc};

use crate::inbox::{Outcome, OutcomeKind};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncOutcome {
    /// The event is older than the last one applied to its product, so it
    /// changes nothing (a late update must not resurrect a deleted product).
    Stale {
        product_id: String,
        event_at: DateTime<Utc>,
        last_changed: DateTime<Utc>,
    },
    /// `deleted`: out of the index (`removed`: whether it was in it), a
    /// tombstone row kept.
    Deleted { removed: bool },
    /// `updated` without an image: only the metadata changed.
    MetadataOnly,
    /// The image's bytes and the model are unchanged: metadata updated, no
    /// new embedding.
    ImageUnchanged,
    /// The image was embedded and the vector upserted.
    Indexed,
}

impl SyncOutcome {
    pub fn kind(&self) -> OutcomeKind {
        match self {
            SyncOutcome::Stale { .. } => OutcomeKind::Skipped,
            _ => OutcomeKind::Applied,
        }
    }
}

impl std::fmt::Display for SyncOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SyncOutcome::Stale {
                product_id,
                event_at,
                last_changed,
            } => write!(
                f,
                "skipped: stale event (timestamp {} is older than {}, when product {product_id} was last changed)",
                event_at.to_rfc3339(),
                last_changed.to_rfc3339()
            ),
            SyncOutcome::Deleted { removed: true } => {
                f.write_str("deleted: removed from the index")
            }
            SyncOutcome::Deleted { removed: false } => f.write_str("deleted: was not in the index"),
            SyncOutcome::MetadataOnly => f.write_str("metadata updated (event carries no image)"),
            SyncOutcome::ImageUnchanged => {
                f.write_str("metadata updated; image unchanged (same sha256), not re-embedded")
            }
            SyncOutcome::Indexed => f.write_str("indexed: image embedded and upserted"),
        }
    }
}

impl From<SyncOutcome> for Outcome {
    fn from(o: SyncOutcome) -> Self {
        Outcome {
            kind: o.kind(),
            detail: o.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The dashboard counts embeddings by this outcome's text
    /// (`inbox::stats`); only `Indexed` embeds.
    #[test]
    fn only_the_indexed_outcome_reads_as_an_embedding() {
        let prefix = crate::inbox::stats::EMBEDDED_OUTCOME_PREFIX;
        assert!(SyncOutcome::Indexed.to_string().starts_with(prefix));
        for o in [
            SyncOutcome::Deleted { removed: true },
            SyncOutcome::Deleted { removed: false },
            SyncOutcome::MetadataOnly,
            SyncOutcome::ImageUnchanged,
        ] {
            assert!(!o.to_string().starts_with(prefix), "{o}");
        }
    }

    /// The exact texts stored before the outcome was typed.
    #[test]
    fn outcome_texts_are_unchanged() {
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().to_utc();
        let cases = [
            (
                SyncOutcome::Stale {
                    product_id: "p1".into(),
                    event_at: at("2026-11-22T09:00:00Z"),
                    last_changed: at("2026-11-22T10:00:00.250Z"),
                },
                "skipped: stale event (timestamp 2026-11-22T09:00:00+00:00 is older than \
                 2026-11-22T10:00:00.250+00:00, when product p1 was last changed)",
                OutcomeKind::Skipped,
            ),
            (
                SyncOutcome::Deleted { removed: true },
                "deleted: removed from the index",
                OutcomeKind::Applied,
            ),
            (
                SyncOutcome::Deleted { removed: false },
                "deleted: was not in the index",
                OutcomeKind::Applied,
            ),
            (
                SyncOutcome::MetadataOnly,
                "metadata updated (event carries no image)",
                OutcomeKind::Applied,
            ),
            (
                SyncOutcome::ImageUnchanged,
                "metadata updated; image unchanged (same sha256), not re-embedded",
                OutcomeKind::Applied,
            ),
            (
                SyncOutcome::Indexed,
                "indexed: image embedded and upserted",
                OutcomeKind::Applied,
            ),
        ];
        for (outcome, text, kind) in cases {
            assert_eq!(outcome.to_string(), text);
            assert_eq!(
                Outcome::from(outcome),
                Outcome {
                    kind,
                    detail: text.into()
                }
            );
        }
    }
}
