//! HTTP providers: embeddings and text generation from Ollama or any OpenAI-compatible endpoint
//! (OpenAI, vLLM, llama.cpp server, Ollama's own `/v1`). Selected by `EMBEDDING_PROVIDER` and
//! `LLM_PROVIDER`; none is needed for the defaults.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

use super::embed::{Embedder, HashingEmbedder};
use crate::config::{Config, EmbeddingProvider, LlmProvider, Secret};
use crate::provider::{BoxFut, ProviderError};

/// Texts per embedding request.
const EMBED_BATCH: usize = 64;

/// reqwest is built without a default TLS crypto provider: use ring, as sqlx does. Idempotent.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// An HTTP client with rustls (ring) and the given timeout.
pub fn http_client(timeout: Duration) -> Result<reqwest::Client, String> {
    install_crypto_provider();
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .build()
        .map_err(|e| format!("HTTP client: {e}"))
}

fn request_error(what: &str, e: reqwest::Error) -> ProviderError {
    if e.is_timeout() {
        ProviderError::Timeout(format!("{what}: {e}"))
    } else {
        ProviderError::Unavailable(format!("{what}: {e}"))
    }
}

/// POSTs JSON and decodes a JSON answer; any non-2xx status is `Unavailable` with its body.
async fn post_json<T: for<'de> Deserialize<'de>>(
    client: &reqwest::Client,
    url: &str,
    bearer: Option<&Secret>,
    body: &Value,
    what: &str,
) -> Result<T, ProviderError> {
    let mut request = client.post(url).json(body);
    if let Some(key) = bearer {
        request = request.bearer_auth(key.expose());
    }
    let response = request.send().await.map_err(|e| request_error(what, e))?;
    let status = response.status();
    if !status.is_success() {
        let text = response.text().await.unwrap_or_default();
        let snippet: String = text.chars().take(300).collect();
        return Err(ProviderError::Unavailable(format!(
            "{what}: HTTP {status}: {snippet}"
        )));
    }
    response
        .json::<T>()
        .await
        .map_err(|e| request_error(what, e))
}

fn join(base: &str, path: &str) -> String {
    format!("{}{}", base.trim_end_matches('/'), path)
}

pub struct OllamaEmbedder {
    client: reqwest::Client,
    base_url: String,
    model: String,
}

#[derive(Deserialize)]
struct OllamaEmbedResponse {
    embeddings: Vec<Vec<f32>>,
}

impl Embedder for OllamaEmbedder {
    fn name(&self) -> String {
        format!("ollama/{}", self.model)
    }
    fn embed<'a>(
        &'a self,
        texts: &'a [String],
    ) -> BoxFut<'a, Result<Vec<Vec<f32>>, ProviderError>> {
        Box::pin(async move {
            let mut out = Vec::with_capacity(texts.len());
            for batch in texts.chunks(EMBED_BATCH) {
                let body = json!({ "model": self.model, "input": batch });
                let response: OllamaEmbedResponse = post_json(
                    &self.client,
                    &join(&self.base_url, "/api/embed"),
                    None,
                    &body,
                    "ollama embeddings",
                )
                .await?;
                if response.embeddings.len() != batch.len() {
                    return Err(ProviderError::Unavailable(format!(
                        "ollama embeddings: {} vectors for {} texts",
                        response.embeddings.len(),
                        batch.len()
                    )));
                }
                out.extend(response.embeddings);
            }
            Ok(out)
        })
    }
}

pub struct OpenAiEmbedder {
    client: reqwest::Client,
    base_url: String,
    api_key: Option<Secret>,
    model: String,
}

#[derive(Deserialize)]
struct OpenAiEmbedding {
    embedding: Vec<f32>,
    index: usize,
}

#[derive(Deserialize)]
struct OpenAiEmbedResponse {
    data: Vec<OpenAiEmbedding>,
}

impl Embedder for OpenAiEmbedder {
    fn name(&self) -> String {
        format!("openai/{}", self.model)
    }
    fn embed<'a>(
        &'a self,
        texts: &'a [String],
    ) -> BoxFut<'a, Result<Vec<Vec<f32>>, ProviderError>> {
        Box::pin(async move {
            let mut out = Vec::with_capacity(texts.len());
            for batch in texts.chunks(EMBED_BATCH) {
                let body = json!({ "model": self.model, "input": batch });
                let mut response: OpenAiEmbedResponse = post_json(
                    &self.client,
                    &join(&self.base_url, "/v1/embeddings"),
                    self.api_key.as_ref(),
                    &body,
                    "openai embeddings",
                )
                .await?;
                response.data.sort_by_key(|d| d.index);
                if response.data.len() != batch.len()
                    || response.data.iter().enumerate().any(|(i, d)| d.index != i)
                {
                    return Err(ProviderError::Unavailable(
                        "openai embeddings: vectors do not match the inputs".into(),
                    ));
                }
                out.extend(response.data.into_iter().map(|d| d.embedding));
            }
            Ok(out)
        })
    }
}

/// Text generation.
pub trait Llm: Send + Sync {
    fn provider(&self) -> &'static str;
    /// The model for a mode (`reasoning` or `fast`) when the assistant names none.
    fn default_model(&self, reasoning: bool) -> String;
    fn generate<'a>(
        &'a self,
        model: &'a str,
        system: &'a str,
        prompt: &'a str,
    ) -> BoxFut<'a, Result<String, ProviderError>>;
}

pub struct OllamaLlm {
    client: reqwest::Client,
    base_url: String,
    model: String,
    reasoning_model: String,
}

#[derive(Deserialize)]
struct OllamaGenerateResponse {
    response: String,
}

impl Llm for OllamaLlm {
    fn provider(&self) -> &'static str {
        "ollama"
    }
    fn default_model(&self, reasoning: bool) -> String {
        if reasoning {
            self.reasoning_model.clone()
        } else {
            self.model.clone()
        }
    }
    fn generate<'a>(
        &'a self,
        model: &'a str,
        system: &'a str,
        prompt: &'a str,
    ) -> BoxFut<'a, Result<String, ProviderError>> {
        Box::pin(async move {
            let body =
                json!({ "model": model, "system": system, "prompt": prompt, "stream": false });
            let response: OllamaGenerateResponse = post_json(
                &self.client,
                &join(&self.base_url, "/api/generate"),
                None,
                &body,
                "ollama generate",
            )
            .await?;
            Ok(response.response)
        })
    }
}

pub struct OpenAiLlm {
    client: reqwest::Client,
    base_url: String,
    api_key: Option<Secret>,
    model: String,
    reasoning_model: String,
}

impl Llm for OpenAiLlm {
    fn provider(&self) -> &'static str {
        "openai"
    }
    fn default_model(&self, reasoning: bool) -> String {
        if reasoning {
            self.reasoning_model.clone()
        } else {
            self.model.clone()
        }
    }
    fn generate<'a>(
        &'a self,
        model: &'a str,
        system: &'a str,
        prompt: &'a str,
    ) -> BoxFut<'a, Result<String, ProviderError>> {
        Box::pin(async move {
            let body = json!({
                "model": model,
                "messages": [
                    { "role": "system", "content": system },
                    { "role": "user", "content": prompt },
                ],
            });
            let response: Value = post_json(
                &self.client,
                &join(&self.base_url, "/v1/chat/completions"),
                self.api_key.as_ref(),
                &body,
                "openai chat",
            )
            .await?;
            response["choices"][0]["message"]["content"]
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| {
                    ProviderError::Unavailable("openai chat: no choices[0].message.content".into())
                })
        })
    }
}

/// The embedder the configuration asks for.
pub fn embedder(config: &Config) -> Result<Arc<dyn Embedder>, String> {
    Ok(match config.embedding_provider {
        EmbeddingProvider::Hashing => Arc::new(HashingEmbedder::new(HashingEmbedder::DEFAULT_DIM)),
        EmbeddingProvider::Ollama => Arc::new(OllamaEmbedder {
            client: http_client(config.embedding_timeout)?,
            base_url: config.ollama_base_url.clone().unwrap_or_default(),
            model: config.ollama_embedding_model.clone(),
        }),
        EmbeddingProvider::OpenAi => Arc::new(OpenAiEmbedder {
            client: http_client(config.embedding_timeout)?,
            base_url: config.openai_base_url.clone(),
            api_key: config.openai_api_key.clone(),
            model: config.openai_embedding_model.clone(),
        }),
    })
}

/// The LLM the configuration asks for; `None` means extractive answers.
pub fn llm(config: &Config) -> Result<Option<Arc<dyn Llm>>, String> {
    Ok(match config.llm_provider {
        LlmProvider::None => None,
        LlmProvider::Ollama => Some(Arc::new(OllamaLlm {
            client: http_client(config.llm_timeout)?,
            base_url: config.ollama_base_url.clone().unwrap_or_default(),
            model: config.ollama_model.clone(),
            reasoning_model: config.ollama_reasoning_model.clone(),
        })),
        LlmProvider::OpenAi => Some(Arc::new(OpenAiLlm {
            client: http_client(config.llm_timeout)?,
            base_url: config.openai_base_url.clone(),
            api_key: config.openai_api_key.clone(),
            model: config.openai_model.clone(),
            reasoning_model: config.openai_reasoning_model.clone(),
        })),
    })
}
