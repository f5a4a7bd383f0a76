//! Ollama and OpenAI-compatible providers against a local stub that records what it receives.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::{Value, json};

use oyl_server::rag::embed::HashingEmbedder;

use crate::helpers::{TenantCtx, TestApp, spawn_app_with};

#[derive(Clone, Copy, PartialEq)]
enum Behaviour {
    Normal,
    Failing,
    Slow,
}

/// Requests the stub received: (path, Authorization header, JSON body).
type Seen = Arc<Mutex<Vec<(String, Option<String>, Value)>>>;

#[derive(Clone)]
struct Stub {
    seen: Seen,
    behaviour: Behaviour,
}

async fn record(
    stub: &Stub,
    path: &str,
    headers: &HeaderMap,
    body: &Value,
) -> Result<(), StatusCode> {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    stub.seen
        .lock()
        .unwrap()
        .push((path.to_string(), auth, body.clone()));
    match stub.behaviour {
        Behaviour::Normal => Ok(()),
        Behaviour::Failing => Err(StatusCode::INTERNAL_SERVER_ERROR),
        Behaviour::Slow => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            Ok(())
        }
    }
}

fn vectors(inputs: &Value) -> Vec<Vec<f32>> {
    let texts: Vec<String> = inputs
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    HashingEmbedder::new(64).embed_sync(&texts)
}

/// Starts the stub; embeddings always work (only generation misbehaves), so documents index.
async fn start_stub(behaviour: Behaviour) -> (String, Seen) {
    let stub = Stub {
        seen: Arc::default(),
        behaviour,
    };
    let seen = stub.seen.clone();
    let app = axum::Router::new()
        .route(
            "/api/embed",
            post(|State(s): State<Stub>, headers: HeaderMap, Json(body): Json<Value>| async move {
                record(&Stub { behaviour: Behaviour::Normal, ..s }, "/api/embed", &headers, &body).await?;
                Ok::<_, StatusCode>(Json(json!({ "model": body["model"], "embeddings": vectors(&body["input"]) })))
            }),
        )
        .route(
            "/v1/embeddings",
            post(|State(s): State<Stub>, headers: HeaderMap, Json(body): Json<Value>| async move {
                record(&Stub { behaviour: Behaviour::Normal, ..s }, "/v1/embeddings", &headers, &body).await?;
                // Deliberately out of order: the client must sort by index.
                let mut data: Vec<Value> = vectors(&body["input"])
                    .into_iter()
                    .enumerate()
                    .map(|(i, v)| json!({ "object": "embedding", "index": i, "embedding": v }))
                    .collect();
                data.reverse();
                Ok::<_, StatusCode>(Json(json!({ "object": "list", "data": data })))
            }),
        )
        .route(
            "/api/generate",
            post(|State(s): State<Stub>, headers: HeaderMap, Json(body): Json<Value>| async move {
                record(&s, "/api/generate", &headers, &body).await?;
                Ok::<_, StatusCode>(Json(json!({ "model": body["model"], "response": "  Arr, the capital be Marxville.  ", "done": true })))
            }),
        )
        .route(
            "/v1/chat/completions",
            post(|State(s): State<Stub>, headers: HeaderMap, Json(body): Json<Value>| async move {
                record(&s, "/v1/chat/completions", &headers, &body).await?;
                Ok::<_, StatusCode>(Json(json!({
                    "choices": [{ "index": 0, "message": { "role": "assistant", "content": "Marxville, says the chat model." } }]
                })))
            }),
        )
        .with_state(stub);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (address, seen)
}

/// tenant → teammate → assistant with an instruction and one processed document.
async fn prepared(app: &TestApp) -> (TenantCtx, String, String) {
    let t = app.create_tenant("t").await;
    let (_, tm, asst) = app.create_tree(&t).await;
    let instruction = json!({"system_prompt": "Answer like a pirate."});
    assert_eq!(
        app.post(
            &t.caller,
            &format!("/api/v1/assistants/{asst}/instruction"),
            instruction
        )
        .await
        .status,
        201
    );
    let doc = b"Geography notes. The capital of Freedonia is Marxville. Rivers are long.".to_vec();
    assert_eq!(
        app.upload(&t.caller, &asst, "geo.txt", doc).await.status,
        201
    );
    let batch = app.process_batch(&t.caller, &asst).await;
    assert_eq!(batch.body["processed"], 1, "{}", batch.text);
    (t, tm, asst)
}

fn calls(seen: &Seen, path: &str) -> Vec<(Option<String>, Value)> {
    seen.lock()
        .unwrap()
        .iter()
        .filter(|(p, _, _)| p == path)
        .map(|(_, a, b)| (a.clone(), b.clone()))
        .collect()
}

#[tokio::test]
async fn ollama_embeds_and_answers_with_the_assistant_instruction() {
    let (stub, seen) = start_stub(Behaviour::Normal).await;
    let app = spawn_app_with(&[
        ("EMBEDDING_PROVIDER", "ollama"),
        ("OLLAMA_BASE_URL", &stub),
        ("OLLAMA_EMBEDDING_MODEL", "emb-model"),
        ("OLLAMA_MODEL", "fast-model"),
        ("OLLAMA_REASONING_MODEL", "deep-model"),
    ])
    .await;
    assert_eq!(
        app.config.llm_provider,
        oyl_server::config::LlmProvider::Ollama,
        "OLLAMA_BASE_URL turns the LLM on"
    );
    let (t, tm, asst) = prepared(&app).await;

    let embeds = calls(&seen, "/api/embed");
    assert_eq!(embeds.len(), 1);
    assert_eq!(embeds[0].1["model"], "emb-model");
    assert!(
        embeds[0].1["input"][0]
            .as_str()
            .unwrap()
            .contains("Marxville")
    );

    let resp = app
        .post(
            &t.caller,
            &format!("/api/v1/teammates/{tm}/query"),
            json!({"query": "What is the capital of Freedonia?"}),
        )
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text);
    assert_eq!(resp.body["answer"], "Arr, the capital be Marxville.");
    assert_eq!(resp.body["model"], "fast-model");
    assert_eq!(resp.body["sources"][0]["file_name"], "geo.txt");
    let generate = calls(&seen, "/api/generate");
    assert_eq!(generate.len(), 1);
    let body = &generate[0].1;
    assert_eq!(
        (
            body["model"].as_str(),
            body["system"].as_str(),
            body["stream"].as_bool()
        ),
        (
            Some("fast-model"),
            Some("Answer like a pirate."),
            Some(false)
        )
    );
    let prompt = body["prompt"].as_str().unwrap();
    assert!(
        prompt.contains("The capital of Freedonia is Marxville")
            && prompt.contains("Question: What is the capital of Freedonia?"),
        "{prompt}"
    );
    assert_eq!(
        calls(&seen, "/api/embed").last().unwrap().1["input"],
        json!(["What is the capital of Freedonia?"])
    );

    let deep = app
        .post(
            &t.caller,
            &format!("/api/v1/teammates/{tm}/query"),
            json!({"query": "Capital of Freedonia?", "mode": "reasoning"}),
        )
        .await;
    assert_eq!(deep.body["model"], "deep-model");
    app.patch(
        &t.caller,
        &format!("/api/v1/assistants/{asst}"),
        json!({"model": "assistant-model"}),
    )
    .await;
    let own = app
        .post(
            &t.caller,
            &format!("/api/v1/teammates/{tm}/query"),
            json!({"query": "Capital of Freedonia?", "mode": "reasoning"}),
        )
        .await;
    assert_eq!(
        own.body["model"], "assistant-model",
        "the assistant's model wins"
    );
    assert_eq!(
        calls(&seen, "/api/generate").last().unwrap().1["model"],
        "assistant-model"
    );
    let metrics = app
        .get(&crate::helpers::Caller::anonymous(), "/metrics")
        .await
        .text;
    assert!(
        metrics.contains("llm_request_seconds_count{outcome=\"ok\"} 3"),
        "{metrics}"
    );
}

#[tokio::test]
async fn openai_compatible_endpoints_with_an_api_key() {
    let (stub, seen) = start_stub(Behaviour::Normal).await;
    let app = spawn_app_with(&[
        ("EMBEDDING_PROVIDER", "openai"),
        ("LLM_PROVIDER", "openai"),
        ("OPENAI_BASE_URL", &stub),
        ("OPENAI_API_KEY", "sk-test-123"),
        ("OPENAI_MODEL", "chat-small"),
        ("OPENAI_EMBEDDING_MODEL", "embed-small"),
    ])
    .await;
    let (t, tm, _) = prepared(&app).await;
    let resp = app
        .post(
            &t.caller,
            &format!("/api/v1/teammates/{tm}/query"),
            json!({"query": "What is the capital of Freedonia?"}),
        )
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text);
    assert_eq!(
        (resp.body["answer"].as_str(), resp.body["model"].as_str()),
        (Some("Marxville, says the chat model."), Some("chat-small"))
    );
    assert_eq!(
        resp.body["sources"][0]["file_name"], "geo.txt",
        "vectors were matched to inputs by index"
    );
    let chat = calls(&seen, "/v1/chat/completions");
    assert_eq!(chat[0].0.as_deref(), Some("Bearer sk-test-123"));
    let messages = &chat[0].1["messages"];
    assert_eq!(
        (
            messages[0]["role"].as_str(),
            messages[0]["content"].as_str()
        ),
        (Some("system"), Some("Answer like a pirate."))
    );
    assert_eq!(messages[1]["role"], "user");
    assert!(
        messages[1]["content"]
            .as_str()
            .unwrap()
            .contains("Marxville")
    );
    let embeds = calls(&seen, "/v1/embeddings");
    assert!(
        embeds
            .iter()
            .all(|(auth, body)| auth.as_deref() == Some("Bearer sk-test-123")
                && body["model"] == "embed-small")
    );
}

#[tokio::test]
async fn llm_errors_and_timeouts_are_503_and_504() {
    let (stub, _) = start_stub(Behaviour::Failing).await;
    let app = spawn_app_with(&[("LLM_PROVIDER", "ollama"), ("OLLAMA_BASE_URL", &stub)]).await;
    let (t, tm, _) = prepared(&app).await;
    let resp = app
        .post(
            &t.caller,
            &format!("/api/v1/teammates/{tm}/query"),
            json!({"query": "capital of Freedonia"}),
        )
        .await;
    assert_eq!(
        (resp.status, resp.body["detail"].as_str()),
        (503, Some("The LLM provider is unavailable")),
        "{}",
        resp.text
    );

    let (stub, _) = start_stub(Behaviour::Slow).await;
    let app = spawn_app_with(&[
        ("LLM_PROVIDER", "ollama"),
        ("OLLAMA_BASE_URL", &stub),
        ("LLM_TIMEOUT_SECONDS", "1"),
    ])
    .await;
    let (t, tm, _) = prepared(&app).await;
    let started = std::time::Instant::now();
    let resp = app
        .post(
            &t.caller,
            &format!("/api/v1/teammates/{tm}/query"),
            json!({"query": "capital of Freedonia"}),
        )
        .await;
    assert_eq!(
        (resp.status, resp.body["detail"].as_str()),
        (504, Some("The LLM provider timed out")),
        "{}",
        resp.text
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn an_unreachable_embedding_provider_fails_the_document_with_a_reason() {
    // Nothing listens on port 1.
    let app = spawn_app_with(&[
        ("EMBEDDING_PROVIDER", "ollama"),
        ("OLLAMA_BASE_URL", "http://127.0.0.1:1"),
        ("LLM_PROVIDER", "none"),
    ])
    .await;
    let t = app.create_tenant("t").await;
    let (_, tm, asst) = app.create_tree(&t).await;
    assert_eq!(
        app.upload(&t.caller, &asst, "a.txt", b"some text".to_vec())
            .await
            .status,
        201
    );
    let batch = app.process_batch(&t.caller, &asst).await;
    assert_eq!(batch.body["failed"], 1, "{}", batch.text);
    assert!(
        batch.body["details"][0]["error"]
            .as_str()
            .unwrap()
            .starts_with("embedding failed"),
        "{}",
        batch.text
    );
    let query = app
        .post(
            &t.caller,
            &format!("/api/v1/teammates/{tm}/query"),
            json!({"query": "text"}),
        )
        .await;
    assert_eq!(
        (query.status, query.body["detail"].as_str()),
        (503, Some("The embeddings provider is unavailable"))
    );
}
