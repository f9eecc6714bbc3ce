//! The Qdrant backend (gRPC, `qdrant-client`), for catalogs that outgrow one
//! machine and for running many stateless Vitrine instances.
//!
//! - One collection per model version, `{alias}_{model}_{version12}`, created
//!   from the model manifest (dimension, cosine) with the operator's shard
//!   count and replication factor, and payload indexes on `category`
//!   (keyword) and `price` (float) so filtered search stays fast.
//! - Each instance reads and writes the collection of *its own* model
//!   version, so vectors of two models never mix. The alias (`vitrine` by
//!   default) names the live version; `vitrine reindex` fills a new version's
//!   collection and then switches the alias atomically.
//! - Point ids are UUIDv5 of the product id: deterministic, so an upsert of
//!   the same product from any instance replaces the same point.
//! - Writes wait for the operation to be applied (`wait=true`) so a
//!   completed event means a searchable vector.

use qdrant_client::{
    Qdrant,
    qdrant::{
        Condition, CountPointsBuilder, CreateCollectionBuilder, CreateFieldIndexCollectionBuilder,
        DeletePointsBuilder, Distance, FieldType, GetPointsBuilder, PointId, PointStruct,
        PointsIdsList, QueryPointsBuilder, Range, SetPayloadPointsBuilder, UpsertPointsBuilder,
        VectorParamsBuilder, vector_output,
    },
};

use super::{Filter, Hit, IndexError, IndexInfo, Payload, Point, VectorIndex};
use crate::config::QdrantSettings;

/// UUIDv5 namespace for product ids (a fixed, random UUID).
const NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x6a0f_41c2_9d5e_4b8a_a1f3_27c9_0e5d_7b14);

pub fn point_id(product_id: &str) -> String {
    uuid::Uuid::new_v5(&NAMESPACE, product_id.as_bytes()).to_string()
}

pub struct QdrantIndex {
    client: Qdrant,
    /// REST endpoint, for the one call the gRPC client cannot make
    /// atomically (see [`QdrantIndex::switch_alias`]).
    rest_url: String,
    api_key: Option<String>,
    http: reqwest::Client,
    collection: String,
    alias: String,
    dim: usize,
    model_version: String,
}

fn backend(e: impl std::fmt::Display) -> IndexError {
    IndexError::Backend(format!("qdrant: {e}"))
}

/// Qdrant serves REST one port below gRPC by default (6333 / 6334).
fn derive_rest_url(grpc: &str) -> Result<String, IndexError> {
    let mut u = url::Url::parse(grpc).map_err(|e| backend(format!("QDRANT_URL `{grpc}`: {e}")))?;
    let port = u.port_or_known_default().unwrap_or(6334);
    let _ = u.set_port(Some(port.saturating_sub(1)));
    Ok(u.to_string().trim_end_matches('/').to_string())
}

/// The collection that holds vectors of one model version.
pub fn collection_name(alias: &str, model_name: &str, version: &str) -> String {
    let model: String = model_name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("{alias}_{model}_{}", &version[..12.min(version.len())])
}

impl QdrantIndex {
    /// Connects and makes sure this model version's collection exists with
    /// its payload indexes. Creates the alias if there is none yet.
    pub async fn open(
        cfg: &QdrantSettings,
        model_name: &str,
        dim: usize,
        model_version: &str,
    ) -> Result<Self, IndexError> {
        // The REST client below needs rustls' process-wide provider (ring).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = Qdrant::from_url(&cfg.url).skip_compatibility_check();
        let api_key = cfg.api_key.as_ref().map(|k| k.expose().to_string());
        if let Some(key) = &api_key {
            builder = builder.api_key(key.clone());
        }
        let client = builder.build().map_err(backend)?;
        let collection = collection_name(&cfg.alias, model_name, model_version);
        let rest_url = match &cfg.rest_url {
            Some(u) => u.clone(),
            None => derive_rest_url(&cfg.url)?,
        };
        let index = Self {
            client,
            rest_url,
            api_key,
            http: reqwest::Client::new(),
            collection,
            alias: cfg.alias.clone(),
            dim,
            model_version: model_version.to_string(),
        };
        index.ensure_collection(cfg).await?;
        if index.alias_target().await?.is_none() {
            index.switch_alias().await?;
        }
        Ok(index)
    }

    pub fn collection(&self) -> &str {
        &self.collection
    }

    async fn ensure_collection(&self, cfg: &QdrantSettings) -> Result<(), IndexError> {
        if self
            .client
            .collection_exists(&self.collection)
            .await
            .map_err(backend)?
        {
            let info = self
                .client
                .collection_info(&self.collection)
                .await
                .map_err(backend)?;
            let size = info
                .result
                .and_then(|r| r.config)
                .and_then(|c| c.params)
                .and_then(|p| p.vectors_config)
                .and_then(|v| match v.config {
                    Some(qdrant_client::qdrant::vectors_config::Config::Params(p)) => Some(p.size),
                    _ => None,
                });
            if size.is_some_and(|s| s as usize != self.dim) {
                return Err(IndexError::ModelMismatch {
                    path: self.collection.clone(),
                    found: format!("vectors of dimension {}", size.unwrap_or(0)),
                    expected: format!("{} (dimension {})", self.model_version, self.dim),
                });
            }
            return Ok(());
        }
        self.client
            .create_collection(
                CreateCollectionBuilder::new(&self.collection)
                    .vectors_config(VectorParamsBuilder::new(self.dim as u64, Distance::Cosine))
                    .shard_number(cfg.shards.max(1))
                    .replication_factor(cfg.replication.max(1)),
            )
            .await
            .map_err(backend)?;
        for (field, kind) in [
            ("category", FieldType::Keyword),
            ("currency", FieldType::Keyword),
            ("price", FieldType::Float),
            ("product_id", FieldType::Keyword),
        ] {
            self.client
                .create_field_index(
                    CreateFieldIndexCollectionBuilder::new(&self.collection, field, kind)
                        .wait(true),
                )
                .await
                .map_err(backend)?;
        }
        tracing::info!(collection = %self.collection, "created Qdrant collection");
        Ok(())
    }

    /// Which collection the alias points at, if the alias exists.
    pub async fn alias_target(&self) -> Result<Option<String>, IndexError> {
        let aliases = self.client.list_aliases().await.map_err(backend)?;
        Ok(aliases
            .aliases
            .into_iter()
            .find(|a| a.alias_name == self.alias)
            .map(|a| a.collection_name))
    }

    /// Points the alias at this collection, in one atomic alias operation
    /// (delete + create in a single request). The Rust client sends one
    /// alias action per request, which would leave a moment with no alias,
    /// so this goes through Qdrant's REST endpoint, which takes a list.
    pub async fn switch_alias(&self) -> Result<(), IndexError> {
        let mut actions = Vec::new();
        if self.alias_target().await?.is_some() {
            actions.push(serde_json::json!({"delete_alias": {"alias_name": self.alias}}));
        }
        actions.push(serde_json::json!({"create_alias": {
            "collection_name": self.collection, "alias_name": self.alias}}));
        let mut req = self
            .http
            .post(format!(
                "{}/collections/aliases",
                self.rest_url.trim_end_matches('/')
            ))
            .json(&serde_json::json!({ "actions": actions }));
        if let Some(key) = &self.api_key {
            req = req.header("api-key", key);
        }
        let resp = req.send().await.map_err(backend)?;
        if !resp.status().is_success() {
            let status = resp.status();
            let body = resp.text().await.unwrap_or_default();
            return Err(backend(format!("alias switch answered {status}: {body}")));
        }
        tracing::info!(alias = %self.alias, collection = %self.collection, "alias switched");
        Ok(())
    }

    fn payload_json(p: &Payload) -> qdrant_client::Payload {
        let v = serde_json::to_value(p).expect("payload serialises");
        qdrant_client::Payload::try_from(v).expect("a struct serialises to an object")
    }

    fn payload_from(
        map: std::collections::HashMap<String, qdrant_client::qdrant::Value>,
    ) -> Payload {
        let obj: serde_json::Map<String, serde_json::Value> =
            map.into_iter().map(|(k, v)| (k, v.into_json())).collect();
        serde_json::from_value(serde_json::Value::Object(obj)).unwrap_or_default()
    }

    fn filter(f: &Filter) -> Option<qdrant_client::qdrant::Filter> {
        let mut must = Vec::new();
        // A list of keywords matches any of them (Qdrant's `match: {any}`),
        // which is what `Filter::matches` does on the embedded index.
        for (field, values) in [("category", &f.category), ("currency", &f.currency)] {
            if !values.is_empty() {
                must.push(Condition::matches(field, values.clone()));
            }
        }
        if f.min_price.is_some() || f.max_price.is_some() {
            must.push(Condition::range(
                "price",
                Range {
                    gte: f.min_price,
                    lte: f.max_price,
                    ..Default::default()
                },
            ));
        }
        let must_not: Vec<Condition> = f
            .exclude_id
            .iter()
            .map(|id| Condition::has_id([PointId::from(point_id(id))]))
            .collect();
        if must.is_empty() && must_not.is_empty() {
            return None;
        }
        Some(qdrant_client::qdrant::Filter {
            must,
            must_not,
            ..Default::default()
        })
    }
}

#[async_trait::async_trait]
impl VectorIndex for QdrantIndex {
    fn info(&self) -> IndexInfo {
        IndexInfo {
            backend: "qdrant",
            dim: self.dim,
            model_version: self.model_version.clone(),
        }
    }

    async fn upsert(&self, points: Vec<Point>) -> Result<(), IndexError> {
        super::check_dimensions(&points, self.dim)?;
        let structs: Vec<PointStruct> = points
            .into_iter()
            .map(|p| {
                PointStruct::new(
                    point_id(&p.payload.product_id),
                    p.vector,
                    Self::payload_json(&p.payload),
                )
            })
            .collect();
        self.client
            .upsert_points(UpsertPointsBuilder::new(&self.collection, structs).wait(true))
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn set_payload(&self, payload: Payload) -> Result<bool, IndexError> {
        let id = point_id(&payload.product_id);
        if self.get_vector(&payload.product_id).await?.is_none() {
            return Ok(false);
        }
        self.client
            .overwrite_payload(
                SetPayloadPointsBuilder::new(&self.collection, Self::payload_json(&payload))
                    .points_selector(PointsIdsList {
                        ids: vec![PointId::from(id)],
                    })
                    .wait(true),
            )
            .await
            .map_err(backend)?;
        Ok(true)
    }

    async fn delete(&self, ids: &[String]) -> Result<usize, IndexError> {
        let point_ids: Vec<PointId> = ids.iter().map(|id| PointId::from(point_id(id))).collect();
        let existing = self
            .client
            .get_points(GetPointsBuilder::new(&self.collection, point_ids.clone()))
            .await
            .map_err(backend)?
            .result
            .len();
        self.client
            .delete_points(
                DeletePointsBuilder::new(&self.collection)
                    .points(PointsIdsList { ids: point_ids })
                    .wait(true),
            )
            .await
            .map_err(backend)?;
        Ok(existing)
    }

    async fn search(
        &self,
        vector: &[f32],
        filter: &Filter,
        limit: usize,
    ) -> Result<Vec<Hit>, IndexError> {
        let mut q = QueryPointsBuilder::new(&self.collection)
            .query(vector.to_vec())
            .limit(limit as u64)
            .with_payload(true);
        if let Some(f) = Self::filter(filter) {
            q = q.filter(f);
        }
        let resp = self.client.query(q).await.map_err(backend)?;
        Ok(resp
            .result
            .into_iter()
            .map(|p| Hit {
                score: p.score,
                payload: Self::payload_from(p.payload),
            })
            .collect())
    }

    async fn get_vector(&self, id: &str) -> Result<Option<Vec<f32>>, IndexError> {
        let resp = self
            .client
            .get_points(
                GetPointsBuilder::new(&self.collection, vec![PointId::from(point_id(id))])
                    .with_vectors(true),
            )
            .await
            .map_err(backend)?;
        Ok(resp
            .result
            .into_iter()
            .next()
            .and_then(|p| p.vectors)
            .and_then(|v| v.get_vector())
            .and_then(|v| match v {
                vector_output::Vector::Dense(d) => Some(d.data),
                _ => None,
            }))
    }

    async fn count(&self) -> Result<usize, IndexError> {
        let resp = self
            .client
            .count(CountPointsBuilder::new(&self.collection).exact(true))
            .await
            .map_err(backend)?;
        Ok(resp.result.map_or(0, |r| r.count as usize))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn point_ids_are_deterministic_uuids() {
        assert_eq!(point_id("p-1"), point_id("p-1"));
        assert_ne!(point_id("p-1"), point_id("p-2"));
        assert!(uuid::Uuid::parse_str(&point_id("p-1")).is_ok());
        assert_eq!(
            derive_rest_url("http://127.0.0.1:6334").unwrap(),
            "http://127.0.0.1:6333"
        );
        assert_eq!(
            collection_name("vitrine", "efficientnet-lite0", "f1f19ffc2f31b891036676e8"),
            "vitrine_efficientnet_lite0_f1f19ffc2f31"
        );
    }
}
