//! The WhatsApp Cloud API provider: the handshake and signed receiver
//! ([`webhook`]), splitting deliveries ([`payload`]), the Graph API client
//! ([`GraphApi`]), the interactive limits ([`limits`]), the numbers
//! ([`numbers`]), how replies become message bodies ([`render`]) and the
//! inbox handler ([`handler`]).

/// The inbox's `provider` for WhatsApp events.
pub const PROVIDER: &str = "whatsapp";

pub mod api;
pub mod handler;
pub mod limits;
pub mod numbers;
pub mod payload;
pub(crate) mod provider;
pub mod render;
pub(crate) mod state;
pub(crate) mod webhook;

pub use api::{GraphApi, GraphError};
pub use payload::{Part, PayloadError, split};
pub(crate) use provider::Whatsapp;
