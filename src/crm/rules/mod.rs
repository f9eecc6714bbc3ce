//! Automation rules on Kommo events: rules as data ([`model`], stored by
//! [`store`]), conditions through JSONLogic ([`conditions`]), message
//! templates ([`template`]), actions ([`actions`]), the inbox handler that
//! runs them once per (event, rule, action) ([`engine`]) and the admin API
//! (`admin`).

pub mod actions;
pub(crate) mod admin;
pub mod conditions;
pub mod engine;
pub mod model;
pub mod store;
pub mod template;

pub use engine::RuleEngine;
pub use model::{ActionSpec, Condition, Op, RuleSpec, Test};
pub use store::{Rule, RuleStore, RunOutcome};
