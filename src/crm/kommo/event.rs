//! One stored Kommo event: one entity change of a delivery, as the inbox
//! keeps it (the `payload` JSON) and as the rule engine reads it back.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{
    delivery::{Change, Delivery},
    form,
};
use crate::inbox::NewEvent;

/// The inbox `provider` of Kommo events, and their handler's key.
pub const PROVIDER: &str = "kommo";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KommoEvent {
    /// The organisation the URL secret belongs to.
    pub org: String,
    pub account_subdomain: Option<String>,
    pub account_id: Option<String>,
    /// The key the change came under (`leads`, `contacts`, …) and its
    /// action (`status`, `add`, …), as sent.
    pub entity: String,
    pub action: String,
    pub index: String,
    pub subtype: String,
    pub entity_type: String,
    pub entity_id: Option<String>,
    /// Every field of the change as sent (all values text), unknown ones
    /// included.
    pub fields: Value,
    /// The delivery's other top-level keys, kept as sent.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub extra: serde_json::Map<String, Value>,
}

impl KommoEvent {
    /// One event per change of the delivery.
    pub fn from_delivery(org: &str, d: &Delivery) -> Vec<KommoEvent> {
        let extra: serde_json::Map<String, Value> = d
            .extra
            .iter()
            .map(|(k, n)| (k.clone(), n.to_json()))
            .collect();
        d.changes
            .iter()
            .map(|c| Self::from_change(org, d, c, &extra))
            .collect()
    }

    fn from_change(
        org: &str,
        d: &Delivery,
        c: &Change,
        extra: &serde_json::Map<String, Value>,
    ) -> Self {
        Self {
            org: org.to_string(),
            account_subdomain: d.account.subdomain.clone(),
            account_id: d.account.id.clone(),
            entity: c.entity_key.clone(),
            action: c.action.as_str().to_string(),
            index: c.index.clone(),
            subtype: c.subtype(),
            entity_type: c.entity_type(),
            entity_id: c.entity_id(),
            fields: c.fields.to_json(),
            extra: extra.clone(),
        }
    }

    /// The dedup key: Kommo sends no delivery id, so it is the change
    /// itself (organisation, entity, action and every field, which include
    /// `last_modified`). A redelivery of the same change is the same event;
    /// a later change of the same entity differs in its fields.
    pub fn external_id(&self) -> String {
        let mut h = Sha256::new();
        for part in [&self.org, &self.entity, &self.action] {
            h.update(part.as_bytes());
            h.update([0]);
        }
        h.update(form::encode(&form::Node::from_json(&self.fields)).as_bytes());
        let digest = hex::encode(&h.finalize()[..12]);
        format!(
            "{}:{}:{}",
            self.subtype,
            self.entity_id.as_deref().unwrap_or("-"),
            digest
        )
    }

    pub fn to_new_event(&self) -> NewEvent {
        NewEvent {
            provider: PROVIDER.into(),
            external_id: self.external_id(),
            event_type: format!("{}.{}", self.entity, self.action),
            event_subtype: Some(self.subtype.clone()),
            entity_type: Some(self.entity_type.clone()),
            entity_id: self.entity_id.clone(),
            org: Some(self.org.clone()),
            payload: serde_json::to_string(self).expect("JSON values serialise"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(body: &[u8]) -> Vec<KommoEvent> {
        KommoEvent::from_delivery("acme", &Delivery::from_tree(&form::decode(body).unwrap()))
    }

    #[test]
    fn one_event_per_change_with_stable_dedup_keys() {
        let body = b"leads[status][0][id]=1&leads[status][0][status_id]=5&leads[status][1][id]=2\
&account[subdomain]=acme&x[y]=z";
        let evs = events(body);
        assert_eq!(evs.len(), 2);
        let n = evs[0].to_new_event();
        assert_eq!(n.event_type, "leads.status");
        assert_eq!(n.event_subtype.as_deref(), Some("lead_status_changed"));
        assert_eq!(n.entity_type.as_deref(), Some("lead"));
        assert_eq!(n.entity_id.as_deref(), Some("1"));
        assert_eq!(n.org.as_deref(), Some("acme"));
        let back: KommoEvent = serde_json::from_str(&n.payload).unwrap();
        assert_eq!(back, evs[0]);
        assert_eq!(back.extra["x"]["y"], "z");
        // The same body gives the same keys; a changed field another.
        assert_eq!(events(body)[0].external_id(), evs[0].external_id());
        assert_ne!(evs[0].external_id(), evs[1].external_id());
        let moved = events(b"leads[status][0][id]=1&leads[status][0][status_id]=6");
        assert_ne!(moved[0].external_id(), evs[0].external_id());
    }
}
