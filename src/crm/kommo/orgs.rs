//! Kommo organisations: which one a delivery's URL secret belongs to.
//!
//! The default organisation's secret is `KOMMO_WEBHOOK_SECRET`; more live
//! in `crm_organisations`. Kommo does not sign its webhooks, so the secret
//! in the URL is the only proof of origin: it is compared in constant time
//! against every candidate (digests, so lengths do not show either), and
//! every candidate is compared, so the time taken does not say which one
//! matched or how far a guess got. The database keeps only each secret's
//! SHA-256, so a copy of it does not hand out the webhook URLs.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::delivery::Account;
use crate::{
    config::Secret,
    db::{Db, now_ms},
};

/// The name of the organisation of `KOMMO_WEBHOOK_SECRET`.
pub const DEFAULT_ORG: &str = "default";

/// An organisation, as the admin API shows it (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Organisation {
    pub name: String,
    /// When set, deliveries must name this `account[subdomain]`.
    pub subdomain: Option<String>,
    /// When set, deliveries must name this `account[id]`.
    pub account_id: Option<String>,
}

impl Organisation {
    /// Whether a delivery's account may belong to this organisation: each
    /// pinned part must be present and equal.
    pub fn admits(&self, account: &Account) -> bool {
        let ok = |pin: &Option<String>, got: &Option<String>| {
            pin.as_ref().is_none_or(|p| got.as_ref() == Some(p))
        };
        ok(&self.subdomain, &account.subdomain) && ok(&self.account_id, &account.id)
    }
}

/// A new organisation, as the admin API takes it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewOrganisation {
    pub name: String,
    pub webhook_secret: Secret,
    pub subdomain: Option<String>,
    pub account_id: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Organisations {
    db: Db,
    default_secret: Option<Secret>,
}

#[derive(sqlx::FromRow)]
struct Row {
    name: String,
    secret_sha256: String,
    subdomain: Option<String>,
    account_id: Option<String>,
}

fn digest(s: &str) -> [u8; 32] {
    Sha256::digest(s.as_bytes()).into()
}

impl Organisations {
    pub fn new(db: Db, default_secret: Option<Secret>) -> Self {
        Self {
            db,
            default_secret: default_secret.filter(|s| !s.is_empty()),
        }
    }

    pub fn has_default(&self) -> bool {
        self.default_secret.is_some()
    }

    /// The organisation whose secret `given` is, if any.
    pub async fn resolve(&self, given: &str) -> Result<Option<Organisation>, sqlx::Error> {
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT name, secret_sha256, subdomain, account_id FROM crm_organisations",
        )
        .fetch_all(self.db.reader())
        .await?;
        let given = digest(given);
        let mut found: Option<Organisation> = None;
        if let Some(s) = &self.default_secret
            && bool::from(digest(s.expose()).ct_eq(&given))
        {
            found = Some(Organisation {
                name: DEFAULT_ORG.into(),
                subdomain: None,
                account_id: None,
            });
        }
        for r in rows {
            let stored = hex::decode(&r.secret_sha256).unwrap_or_default();
            let hit = stored.len() == 32 && bool::from(stored.as_slice().ct_eq(&given));
            if hit && found.is_none() {
                found = Some(Organisation {
                    name: r.name,
                    subdomain: r.subdomain,
                    account_id: r.account_id,
                });
            }
        }
        Ok(found)
    }

    pub async fn list(&self) -> Result<Vec<Organisation>, sqlx::Error> {
        sqlx::query_as("SELECT name, subdomain, account_id FROM crm_organisations ORDER BY name")
            .fetch_all(self.db.reader())
            .await
    }

    /// Adds one; `false` when the name or the secret is taken.
    pub async fn add(&self, o: &NewOrganisation) -> Result<bool, sqlx::Error> {
        let r = sqlx::query(
            "INSERT INTO crm_organisations (name, secret_sha256, subdomain, account_id, created_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        )
        .bind(&o.name)
        .bind(hex::encode(digest(o.webhook_secret.expose())))
        .bind(&o.subdomain)
        .bind(&o.account_id)
        .bind(now_ms())
        .execute(self.db.writer())
        .await?;
        Ok(r.rows_affected() == 1)
    }

    pub async fn remove(&self, name: &str) -> Result<bool, sqlx::Error> {
        let r = sqlx::query("DELETE FROM crm_organisations WHERE name = $1")
            .bind(name)
            .execute(self.db.writer())
            .await?;
        Ok(r.rows_affected() == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinned_parts_must_match() {
        let free = Organisation {
            name: "a".into(),
            subdomain: None,
            account_id: None,
        };
        let pinned = Organisation {
            subdomain: Some("acme".into()),
            ..free.clone()
        };
        let acme = Account {
            subdomain: Some("acme".into()),
            id: Some("1".into()),
        };
        let other = Account {
            subdomain: Some("other".into()),
            id: None,
        };
        assert!(free.admits(&other) && free.admits(&Account::default()));
        assert!(pinned.admits(&acme));
        assert!(!pinned.admits(&other) && !pinned.admits(&Account::default()));
    }
}
