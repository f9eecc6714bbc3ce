//! The CRM provider: Kommo (amoCRM) webhooks and the automation rules that
//! run on them. A secondary module: it calls the core (inbox, db, config,
//! the HTTP extractors) and the core calls it only through
//! [`crate::provider::Provider`].
//!
//! - [`kommo`]: the form decoder, the typed delivery, the stored event,
//!   organisations, the receiver (`POST /api/v1/webhooks/kommo/{secret}`),
//!   the API v4 client;
//! - [`rules`]: rules as data, conditions (JSONLogic), actions, runs and
//!   their metrics, the admin API.

pub mod kommo;
pub(crate) mod provider;
pub mod rules;

pub(crate) use provider::Crm;
