//! A decoded Kommo delivery as a typed tree: the account, and each entity
//! change (`{entity}[{action}][{index}][…fields]`) with its entity, action,
//! index and fields. One delivery may carry several changes; each becomes
//! one inbox event ([`Change::subtype`], [`Change::entity_type`],
//! [`Change::entity_id`]).
//!
//! Names follow Kommo's (and `dotzero/amocrm-php`'s `Listener`): the
//! entities `leads`, `contacts` (a company arrives under `contacts` with
//! `type=company`), `companies`, `tasks`, `notes`, `talks`, `unsorted`
//! (incoming leads), `catalogs` and `message`; the actions `add`, `update`,
//! `delete`, `restore`, `status`, `responsible`, `note`. Names Kommo may add
//! later are kept as [`Entity::Other`] / [`Action::Other`] rather than
//! refused, and every field, known or not, stays in [`Change::fields`].

use super::form::Node;

/// The top-level keys that are not entity changes.
const ACCOUNT: &str = "account";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entity {
    Leads,
    Contacts,
    Companies,
    Tasks,
    Notes,
    Talks,
    Unsorted,
    Catalogs,
    Messages,
    Other(String),
}

impl Entity {
    pub fn parse(s: &str) -> Self {
        match s {
            "leads" => Entity::Leads,
            "contacts" => Entity::Contacts,
            "companies" => Entity::Companies,
            "tasks" => Entity::Tasks,
            "notes" => Entity::Notes,
            "talks" => Entity::Talks,
            "unsorted" => Entity::Unsorted,
            "catalogs" | "catalog" | "lists" => Entity::Catalogs,
            "message" | "messages" => Entity::Messages,
            other => Entity::Other(other.to_string()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Add,
    Update,
    Delete,
    Restore,
    Status,
    Responsible,
    Note,
    Other(String),
}

impl Action {
    pub fn parse(s: &str) -> Self {
        match s {
            "add" => Action::Add,
            "update" => Action::Update,
            "delete" => Action::Delete,
            "restore" => Action::Restore,
            "status" => Action::Status,
            "responsible" => Action::Responsible,
            "note" => Action::Note,
            other => Action::Other(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Action::Add => "add",
            Action::Update => "update",
            Action::Delete => "delete",
            Action::Restore => "restore",
            Action::Status => "status",
            Action::Responsible => "responsible",
            Action::Note => "note",
            Action::Other(s) => s,
        }
    }
}

/// `account[subdomain]` and `account[id]`: which Kommo account sent it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Account {
    pub subdomain: Option<String>,
    pub id: Option<String>,
}

/// One entity change of a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The key it came under (`leads`, `contacts`, …), as sent.
    pub entity_key: String,
    pub entity: Entity,
    pub action: Action,
    /// Its index in the delivery's list (`0`, `1`, …), as sent.
    pub index: String,
    /// Every field of the change, unknown ones included.
    pub fields: Node,
}

impl Change {
    /// The singular entity type stored with the event: `lead`, `contact`,
    /// `company` (also under `contacts` with `type=company`), `task`,
    /// `note`, `talk`, `unsorted`, `catalog_element`, `message`.
    pub fn entity_type(&self) -> String {
        match &self.entity {
            Entity::Leads => "lead".into(),
            Entity::Contacts => match self.fields.str_at(&["type"]) {
                Some("company") => "company".into(),
                _ => "contact".into(),
            },
            Entity::Companies => "company".into(),
            Entity::Tasks => "task".into(),
            Entity::Notes => "note".into(),
            Entity::Talks => "talk".into(),
            Entity::Unsorted => "unsorted".into(),
            Entity::Catalogs => "catalog_element".into(),
            Entity::Messages => "message".into(),
            Entity::Other(s) => s.trim_end_matches('s').to_string(),
        }
    }

    /// The event subtype: `{entity_type}_{what happened}`, e.g.
    /// `lead_status_changed`, `contact_created`, `company_restored`; an
    /// incoming message is `message_received`, an outgoing one
    /// `message_sent`.
    pub fn subtype(&self) -> String {
        let entity = self.entity_type();
        if self.entity == Entity::Messages && self.action == Action::Add {
            return match self.fields.str_at(&["type"]) {
                Some("outgoing") => "message_sent".into(),
                _ => "message_received".into(),
            };
        }
        let what = match &self.action {
            Action::Add => "created",
            Action::Update => "updated",
            Action::Delete => "deleted",
            Action::Restore => "restored",
            Action::Status => "status_changed",
            Action::Responsible => "responsible_changed",
            Action::Note => "note_added",
            Action::Other(s) => s.as_str(),
        };
        format!("{entity}_{what}")
    }

    /// The changed entity's id: `id`, or `uid` for incoming leads, or the
    /// element a note was added to (`note[element_id]`).
    pub fn entity_id(&self) -> Option<String> {
        let f = &self.fields;
        f.str_at(&["id"])
            .or_else(|| f.str_at(&["uid"]))
            .or_else(|| f.str_at(&["note", "element_id"]))
            .or_else(|| f.str_at(&["element_id"]))
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    }
}

/// A whole delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub account: Account,
    pub changes: Vec<Change>,
    /// Top-level keys that are neither `account` nor an `{entity}[{action}][{index}]`
    /// list, kept as sent.
    pub extra: Vec<(String, Node)>,
}

impl Delivery {
    pub fn from_tree(root: &Node) -> Self {
        let mut account = Account::default();
        let mut changes = Vec::new();
        let mut extra = Vec::new();
        for (key, node) in root.as_map().into_iter().flatten() {
            if key == ACCOUNT {
                account.subdomain = node.str_at(&["subdomain"]).map(str::to_string);
                account.id = node.str_at(&["id"]).map(str::to_string);
                if node
                    .as_map()
                    .is_none_or(|m| m.keys().any(|k| k != "subdomain" && k != "id"))
                {
                    extra.push((key.clone(), node.clone()));
                }
                continue;
            }
            // `{entity}[{action}][{index}][…]`: a map of maps of maps.
            let mut taken = false;
            if let Some(actions) = node.as_map() {
                let shaped = actions.values().all(|list| {
                    list.as_map()
                        .is_some_and(|items| items.values().all(|i| i.as_map().is_some()))
                });
                if shaped && !actions.is_empty() {
                    taken = true;
                    for (action, list) in actions {
                        for (index, fields) in list.items() {
                            changes.push(Change {
                                entity_key: key.clone(),
                                entity: Entity::parse(key),
                                action: Action::parse(action),
                                index: index.to_string(),
                                fields: fields.clone(),
                            });
                        }
                    }
                }
            }
            if !taken {
                extra.push((key.clone(), node.clone()));
            }
        }
        Self {
            account,
            changes,
            extra,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::super::form::{self, Node};
    use super::*;

    fn fixtures() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/webhooks/kommo")
    }

    /// Every raw `.form` body decodes to exactly the pairs its `.meta.json`
    /// lists, and each pair is found at its nested place in the tree.
    #[test]
    fn every_form_fixture_gives_its_meta_fields() {
        let mut seen = 0;
        for entry in std::fs::read_dir(fixtures()).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().and_then(|e| e.to_str()) != Some("form") {
                continue;
            }
            seen += 1;
            let body = std::fs::read(&path).unwrap();
            let meta_path = path.with_extension("meta.json");
            let meta: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&meta_path).unwrap()).unwrap();
            assert_eq!(
                meta["headers_as_captured_by_zapier"]["Content-Length"],
                body.len().to_string(),
                "{path:?}"
            );
            let expected: Vec<(String, String)> =
                serde_json::from_value(meta["decoded_pairs_in_order"].clone()).unwrap();
            assert_eq!(form::pairs(&body), expected, "{path:?}");
            let tree = form::decode(&body).unwrap();
            for (key, value) in &expected {
                let segs: Vec<&str> = key.split(['[', ']']).filter(|s| !s.is_empty()).collect();
                assert_eq!(
                    tree.str_at(&segs),
                    Some(value.as_str()),
                    "{key} in {path:?}"
                );
            }
            let d = Delivery::from_tree(&tree);
            assert_eq!(d.changes.len(), 1, "{path:?}");
            assert_eq!(d.account.subdomain.as_deref(), Some("test000002"));
            assert!(d.extra.is_empty(), "{path:?}: {:?}", d.extra);
            // The change's entity and action are the ones of the file's name
            // (`amocrm-legacy-{action}-{entity}.form`).
            let stem = path.file_stem().unwrap().to_str().unwrap();
            let mut parts = stem.trim_start_matches("amocrm-legacy-").split('-');
            let (action, entity) = (parts.next().unwrap(), parts.next().unwrap());
            let c = &d.changes[0];
            assert_eq!(c.action.as_str(), action);
            assert_eq!(c.entity_type(), entity);
            assert_eq!(
                c.entity_id().as_deref(),
                tree.str_at(&[&c.entity_key, action, "0", "id"])
            );
        }
        assert_eq!(seen, 6);
    }

    fn json_fixture(name: &str) -> Delivery {
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(fixtures().join(name)).unwrap()).unwrap();
        // Drawn as JSON: encode to wire form and decode it back, as a
        // delivery would arrive.
        let body = form::encode(&Node::from_json(&v));
        Delivery::from_tree(&form::decode(body.as_bytes()).unwrap())
    }

    #[test]
    fn subtypes_entity_types_and_ids() {
        let cases = [
            (
                "dotzero-parsed-add_company.json",
                "company_created",
                "company",
                "22000020",
            ),
            (
                "dotzero-parsed-add_lead.json",
                "lead_created",
                "lead",
                "8000832",
            ),
            (
                "dotzero-parsed-delete_lead.json",
                "lead_deleted",
                "lead",
                "8000832",
            ),
            (
                "dotzero-parsed-note_lead.json",
                "lead_note_added",
                "lead",
                "8001508",
            ),
            (
                "dotzero-parsed-status_lead.json",
                "lead_status_changed",
                "lead",
                "8001508",
            ),
            (
                "dotzero-parsed-update_contact.json",
                "contact_updated",
                "contact",
                "21999540",
            ),
            (
                "kommo-doc-contacts-delete-company.json",
                "company_deleted",
                "company",
                "17612521",
            ),
            (
                "kommo-doc-leads-status.json",
                "lead_status_changed",
                "lead",
                "15318175",
            ),
            (
                "kommo-doc-message-add.json",
                "message_received",
                "message",
                "660b5b93-4ead-ac38-3797c062146c",
            ),
        ];
        for (file, subtype, entity, id) in cases {
            let d = json_fixture(file);
            assert_eq!(d.changes.len(), 1, "{file}");
            let c = &d.changes[0];
            assert_eq!(
                (
                    c.subtype().as_str(),
                    c.entity_type().as_str(),
                    c.entity_id().as_deref()
                ),
                (subtype, entity, Some(id)),
                "{file}"
            );
        }
        let status = json_fixture("kommo-doc-leads-status.json");
        let f = &status.changes[0].fields;
        assert_eq!(
            f.str_at(&["custom_fields", "3", "values", "0", "enum"]),
            Some("908107")
        );
    }

    #[test]
    fn several_changes_and_unknown_keys() {
        let body = b"leads[status][0][id]=1&leads[status][1][id]=2&leads[add][0][id]=3\
&contacts[update][0][id]=4&contacts[update][0][type]=company&tasks[delete][0][id]=5\
&talks[add][0][id]=6&unsorted[add][0][uid]=u7&catalogs[update][0][id]=8\
&account[subdomain]=acme&account[id]=99&account[_links][self]=x&flag=1";
        let d = Delivery::from_tree(&form::decode(body).unwrap());
        let got: Vec<(String, Option<String>)> = d
            .changes
            .iter()
            .map(|c| (c.subtype(), c.entity_id()))
            .collect();
        let want = [
            ("catalog_element_updated", "8"),
            ("company_updated", "4"),
            ("lead_created", "3"),
            ("lead_status_changed", "1"),
            ("lead_status_changed", "2"),
            ("talk_created", "6"),
            ("task_deleted", "5"),
            ("unsorted_created", "u7"),
        ];
        assert_eq!(
            got,
            want.map(|(s, i)| (s.to_string(), Some(i.to_string())))
                .to_vec()
        );
        assert_eq!(d.account.subdomain.as_deref(), Some("acme"));
        assert_eq!(d.account.id.as_deref(), Some("99"));
        let extra: Vec<&str> = d.extra.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(extra, ["account", "flag"]);
    }
}
