//! Kommo (amoCRM): its webhook body ([`form`]: the pure decoder the fuzz
//! target drives; [`delivery`]: the typed tree of entity changes), the
//! stored event ([`event`]), organisations and their URL secrets
//! ([`orgs`]), the receiver (`receiver`) and the API v4 client ([`api`]).

pub mod api;
pub mod delivery;
pub mod event;
pub mod form;
pub mod orgs;
pub(crate) mod receiver;

pub use delivery::{Account, Action, Change, Delivery, Entity};
pub use event::{KommoEvent, PROVIDER};
pub use form::{FormError, Node};
pub use orgs::{DEFAULT_ORG, NewOrganisation, Organisation, Organisations};
