//! The state the catalog's routes share: what its webhook receiver and its
//! product lookup need, and nothing else.

use std::sync::Arc;

use tokio::sync::Notify;

use super::ProductStore;
use crate::{config::Secret, inbox::Inbox};

/// What the catalog's routes need.
#[derive(Clone)]
pub struct CatalogState {
    pub secrets: Arc<Vec<Secret>>,
    pub max_body_bytes: usize,
    /// How far into the future an event's timestamp may be (422 beyond).
    pub max_clock_skew: std::time::Duration,
    pub inbox: Inbox,
    pub products: ProductStore,
    pub duplicates: super::duplicates::DuplicateStore,
    pub wake: Arc<Notify>,
}
