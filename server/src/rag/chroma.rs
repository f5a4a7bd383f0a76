//! ChromaDB over its HTTP API v2 (`CHROMA_HOST`/`CHROMA_PORT`).
//!
//! Layout: Chroma's `default_tenant`; one database per Oyl tenant (`oyl_<tenant id>`), so a
//! tenant's vectors are deleted with its database; one collection per knowledge base
//! (`kb_<knowledge base id>`, cosine space). Chunk ids are `<document id>:<chunk index>` and a
//! document's chunks are replaced as a whole, so re-processing never duplicates them.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::{Value, json};
use uuid::Uuid;

use super::vector::{ScoredChunk, VectorStore};
use crate::provider::{BoxFut, ProviderError};
use crate::tenancy::TenantScope;

const CHROMA_TENANT: &str = "default_tenant";
/// Records per upsert (Chroma's own limit is larger: `max_batch_size` 5461).
const BATCH: usize = 1000;

pub struct ChromaStore {
    client: reqwest::Client,
    base: String,
    /// (tenant, knowledge base) → collection id.
    collections: Mutex<HashMap<(Uuid, Uuid), String>>,
}

fn database(scope: &TenantScope) -> String {
    format!("oyl_{}", scope.tenant_id().simple())
}

fn collection_name(knowledge_base_id: Uuid) -> String {
    format!("kb_{}", knowledge_base_id.simple())
}

/// True when a record's metadata names the scoped tenant.
fn owned_by(metadata: &Value, scope: &TenantScope) -> bool {
    metadata["tenant_id"].as_str() == Some(&scope.tenant_id().to_string())
}

/// A record's chunk index, from its metadata.
fn chunk_index(metadata: &Value) -> Option<i32> {
    metadata["chunk_index"]
        .as_i64()
        .and_then(|i| i32::try_from(i).ok())
}

fn http_error(e: reqwest::Error) -> ProviderError {
    if e.is_timeout() {
        ProviderError::Timeout(format!("chroma: {e}"))
    } else {
        ProviderError::Unavailable(format!("chroma: {e}"))
    }
}

enum Reply {
    Ok(Value),
    NotFound,
    Conflict,
}

impl ChromaStore {
    pub fn new(url: &str, timeout: Duration) -> Result<ChromaStore, String> {
        Ok(ChromaStore {
            client: super::providers::http_client(timeout)?,
            base: format!(
                "{}/api/v2/tenants/{CHROMA_TENANT}",
                url.trim_end_matches('/')
            ),
            collections: Mutex::default(),
        })
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Reply, ProviderError> {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.map_err(http_error)?;
        let status = response.status();
        let text = response.text().await.map_err(http_error)?;
        match status.as_u16() {
            200..=299 => Ok(Reply::Ok(
                serde_json::from_str(&text).unwrap_or(Value::Null),
            )),
            404 => Ok(Reply::NotFound),
            409 => Ok(Reply::Conflict),
            _ if text.contains("already exists") => Ok(Reply::Conflict),
            _ => Err(ProviderError::Unavailable(format!(
                "chroma: HTTP {status}: {}",
                text.chars().take(300).collect::<String>()
            ))),
        }
    }

    /// The collection's id, creating the database and collection when needed.
    async fn collection(
        &self,
        scope: &TenantScope,
        knowledge_base_id: Uuid,
        create: bool,
    ) -> Result<Option<String>, ProviderError> {
        let key = (scope.tenant_id(), knowledge_base_id);
        if let Some(id) = self
            .collections
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            return Ok(Some(id.clone()));
        }
        let db = database(scope);
        let name = collection_name(knowledge_base_id);
        let found = if create {
            match self
                .call(
                    reqwest::Method::POST,
                    "/databases",
                    Some(json!({ "name": db })),
                )
                .await?
            {
                Reply::Ok(_) | Reply::Conflict => {}
                Reply::NotFound => {
                    return Err(ProviderError::Unavailable("chroma: tenant missing".into()));
                }
            }
            let body = json!({ "name": name, "metadata": { "hnsw:space": "cosine" }, "get_or_create": true });
            self.call(
                reqwest::Method::POST,
                &format!("/databases/{db}/collections"),
                Some(body),
            )
            .await?
        } else {
            self.call(
                reqwest::Method::GET,
                &format!("/databases/{db}/collections/{name}"),
                None,
            )
            .await?
        };
        let id = match found {
            Reply::Ok(collection) => collection["id"].as_str().map(str::to_string),
            Reply::NotFound | Reply::Conflict => None,
        };
        if let Some(id) = &id {
            self.collections
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(key, id.clone());
        }
        Ok(id)
    }

    fn forget(&self, scope: &TenantScope, knowledge_base_id: Option<Uuid>) {
        let mut cache = self.collections.lock().unwrap_or_else(|p| p.into_inner());
        cache.retain(|(tenant, kb), _| {
            *tenant != scope.tenant_id() || knowledge_base_id.is_some_and(|k| k != *kb)
        });
    }

    async fn delete_chunks_of(
        &self,
        scope: &TenantScope,
        collection: &str,
        document_id: Uuid,
    ) -> Result<(), ProviderError> {
        let body = json!({ "where": { "document_id": document_id.to_string() } });
        let path = format!(
            "/databases/{}/collections/{collection}/delete",
            database(scope)
        );
        self.call(reqwest::Method::POST, &path, Some(body))
            .await
            .map(|_| ())
    }

    /// `POST …/collections/<the knowledge base's>/<op>` (a read: `query`, `get`): `None` when the
    /// collection does not exist (nothing indexed yet) or vanished (forgotten here).
    async fn read(
        &self,
        scope: &TenantScope,
        knowledge_base_id: Uuid,
        op: &str,
        body: Value,
    ) -> Result<Option<Value>, ProviderError> {
        let Some(collection) = self.collection(scope, knowledge_base_id, false).await? else {
            return Ok(None);
        };
        let path = format!(
            "/databases/{}/collections/{collection}/{op}",
            database(scope)
        );
        match self.call(reqwest::Method::POST, &path, Some(body)).await? {
            Reply::Ok(v) => Ok(Some(v)),
            Reply::NotFound | Reply::Conflict => {
                self.forget(scope, Some(knowledge_base_id));
                Ok(None)
            }
        }
    }

    pub async fn heartbeat(&self) -> Result<(), ProviderError> {
        let url = self
            .base
            .replace(&format!("/tenants/{CHROMA_TENANT}"), "/heartbeat");
        let response = self.client.get(url).send().await.map_err(http_error)?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(ProviderError::Unavailable(format!(
                "chroma heartbeat: HTTP {}",
                response.status()
            )))
        }
    }
}

impl VectorStore for ChromaStore {
    fn name(&self) -> &'static str {
        "chroma"
    }

    fn replace_document<'a>(
        &'a self,
        scope: &'a TenantScope,
        knowledge_base_id: Uuid,
        document_id: Uuid,
        file_name: &'a str,
        chunks: &'a [(String, Vec<f32>)],
    ) -> BoxFut<'a, Result<(), ProviderError>> {
        Box::pin(async move {
            let collection = self
                .collection(scope, knowledge_base_id, true)
                .await?
                .ok_or_else(|| {
                    ProviderError::Unavailable("chroma: collection not created".into())
                })?;
            self.delete_chunks_of(scope, &collection, document_id)
                .await?;
            let path = format!(
                "/databases/{}/collections/{collection}/upsert",
                database(scope)
            );
            for (batch_index, batch) in chunks.chunks(BATCH).enumerate() {
                let offset = batch_index * BATCH;
                let ids: Vec<String> = (0..batch.len())
                    .map(|i| format!("{document_id}:{}", offset + i))
                    .collect();
                let metadatas: Vec<Value> = (0..batch.len())
                    .map(|i| {
                        json!({
                            "document_id": document_id.to_string(),
                            "tenant_id": scope.tenant_id().to_string(),
                            "chunk_index": offset + i,
                            "file_name": file_name,
                        })
                    })
                    .collect();
                let body = json!({
                    "ids": ids,
                    "embeddings": batch.iter().map(|(_, v)| v).collect::<Vec<_>>(),
                    "documents": batch.iter().map(|(t, _)| t).collect::<Vec<_>>(),
                    "metadatas": metadatas,
                });
                match self.call(reqwest::Method::POST, &path, Some(body)).await? {
                    Reply::Ok(_) => {}
                    Reply::NotFound | Reply::Conflict => {
                        self.forget(scope, Some(knowledge_base_id));
                        return Err(ProviderError::Unavailable(
                            "chroma: collection vanished during upsert".into(),
                        ));
                    }
                }
            }
            Ok(())
        })
    }

    fn search<'a>(
        &'a self,
        scope: &'a TenantScope,
        knowledge_base_id: Uuid,
        query: &'a [f32],
        k: usize,
    ) -> BoxFut<'a, Result<Vec<ScoredChunk>, ProviderError>> {
        Box::pin(async move {
            let body = json!({
                "query_embeddings": [query],
                "n_results": k,
                "include": ["documents", "metadatas", "distances"],
            });
            let Some(result) = self.read(scope, knowledge_base_id, "query", body).await? else {
                return Ok(Vec::new()); // nothing indexed yet
            };
            let documents = result["documents"][0]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let metadatas = result["metadatas"][0]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let distances = result["distances"][0]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let mut chunks = Vec::new();
            for ((content, metadata), distance) in documents.iter().zip(&metadatas).zip(&distances)
            {
                // Belt and braces: the database is the tenant's own, and so must every record be.
                if !owned_by(metadata, scope) {
                    continue;
                }
                let Some(document_id) = metadata["document_id"]
                    .as_str()
                    .and_then(|s| Uuid::parse_str(s).ok())
                else {
                    continue;
                };
                chunks.push(ScoredChunk {
                    document_id,
                    file_name: metadata["file_name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    chunk_index: chunk_index(metadata).unwrap_or(0),
                    content: content.as_str().unwrap_or_default().to_string(),
                    // Cosine distance → similarity.
                    score: 1.0 - distance.as_f64().unwrap_or(1.0) as f32,
                });
            }
            Ok(chunks)
        })
    }

    fn delete_document<'a>(
        &'a self,
        scope: &'a TenantScope,
        knowledge_base_id: Uuid,
        document_id: Uuid,
    ) -> BoxFut<'a, Result<(), ProviderError>> {
        Box::pin(async move {
            match self.collection(scope, knowledge_base_id, false).await? {
                Some(collection) => self.delete_chunks_of(scope, &collection, document_id).await,
                None => Ok(()),
            }
        })
    }

    fn document_chunks<'a>(
        &'a self,
        scope: &'a TenantScope,
        knowledge_base_id: Uuid,
        document_id: Uuid,
    ) -> BoxFut<'a, Result<Vec<(i32, String)>, ProviderError>> {
        Box::pin(async move {
            let body = json!({
                "where": { "document_id": document_id.to_string() },
                "include": ["documents", "metadatas"],
            });
            let Some(result) = self.read(scope, knowledge_base_id, "get", body).await? else {
                return Ok(Vec::new());
            };
            let empty = Vec::new();
            let documents = result["documents"].as_array().unwrap_or(&empty);
            let metadatas = result["metadatas"].as_array().unwrap_or(&empty);
            let mut chunks: Vec<(i32, String)> = documents
                .iter()
                .zip(metadatas)
                .filter(|(_, m)| owned_by(m, scope))
                .map(|(content, m)| {
                    let text = content.as_str().unwrap_or_default().to_string();
                    (chunk_index(m).unwrap_or(-1), text)
                })
                .collect();
            chunks.sort_by_key(|(index, _)| *index);
            Ok(chunks)
        })
    }

    fn delete_knowledge_base<'a>(
        &'a self,
        scope: &'a TenantScope,
        knowledge_base_id: Uuid,
    ) -> BoxFut<'a, Result<(), ProviderError>> {
        Box::pin(async move {
            self.forget(scope, Some(knowledge_base_id));
            let path = format!(
                "/databases/{}/collections/{}",
                database(scope),
                collection_name(knowledge_base_id)
            );
            self.call(reqwest::Method::DELETE, &path, None)
                .await
                .map(|_| ())
        })
    }

    fn delete_tenant<'a>(
        &'a self,
        scope: &'a TenantScope,
    ) -> BoxFut<'a, Result<(), ProviderError>> {
        Box::pin(async move {
            self.forget(scope, None);
            self.call(
                reqwest::Method::DELETE,
                &format!("/databases/{}", database(scope)),
                None,
            )
            .await
            .map(|_| ())
        })
    }

    fn health(&self) -> Option<BoxFut<'_, Result<(), ProviderError>>> {
        Some(Box::pin(self.heartbeat()))
    }
}
