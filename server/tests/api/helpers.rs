//! Spawning the application on 127.0.0.1:0 with a fresh database per test: a SQLite file in a
//! temporary directory by default, or a new PostgreSQL database when `TEST_DATABASE_URL` is set.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use sqlx::Connection;
use tempfile::TempDir;
use uuid::Uuid;

use oyl_server::Application;
use oyl_server::config::Config;
use oyl_server::jwt::{Role, claims_for};
use oyl_server::state::AppState;

/// A secret for test servers (long enough to be accepted outside debug mode).
pub const TEST_SECRET: &str = "test-secret-0123456789abcdef0123456789abcdef";

pub fn postgres_url() -> Option<String> {
    std::env::var("TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
}

pub fn redis_url() -> Option<String> {
    std::env::var("TEST_REDIS_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
}

pub fn chroma_url() -> Option<String> {
    std::env::var("TEST_CHROMA_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
}

/// Ids of the records ChromaDB holds for a knowledge base (optionally one document), read
/// straight from Chroma's API; `None` when the database or collection does not exist.
pub async fn chroma_record_ids(
    tenant: &str,
    kb: &str,
    document: Option<&str>,
) -> Option<Vec<String>> {
    let base = chroma_url().expect("TEST_CHROMA_URL");
    let simple = |id: &str| Uuid::parse_str(id).unwrap().simple().to_string();
    let db_base = format!(
        "{base}/api/v2/tenants/default_tenant/databases/oyl_{}",
        simple(tenant)
    );
    let client = test_client();
    let collection = client
        .get(format!("{db_base}/collections/kb_{}", simple(kb)))
        .send()
        .await
        .unwrap();
    if collection.status() == 404 {
        return None;
    }
    let collection: Value = collection.json().await.unwrap();
    let body = match document {
        Some(doc) => json!({"where": {"document_id": doc}, "include": []}),
        None => json!({"include": []}),
    };
    let got: Value = client
        .post(format!(
            "{db_base}/collections/{}/get",
            collection["id"].as_str().unwrap()
        ))
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    Some(
        got["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect(),
    )
}

/// Replaces the database name of a PostgreSQL URL.
pub fn with_database(url: &str, name: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a URL with a scheme");
    let (authority, tail) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let query = tail.find('?').map(|i| &tail[i..]).unwrap_or("");
    format!("{scheme}://{authority}/{name}{query}")
}

/// A fresh PostgreSQL database, dropped when the test ends.
pub struct PgDatabase {
    pub admin_url: String,
    pub name: String,
    pub url: String,
}

impl PgDatabase {
    pub async fn create(admin_url: &str) -> PgDatabase {
        let name = format!("oyl_test_{}", Uuid::new_v4().simple());
        let mut conn = sqlx::PgConnection::connect(admin_url)
            .await
            .expect("connect to TEST_DATABASE_URL");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&mut conn)
            .await
            .expect("create the test database");
        conn.close().await.ok();
        PgDatabase {
            admin_url: admin_url.to_string(),
            url: with_database(admin_url, &name),
            name,
        }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        // Drop runs inside the test's runtime: do the async work on a thread of its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok(mut conn) = sqlx::PgConnection::connect(&admin_url).await {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                    )))
                    .execute(&mut conn)
                    .await;
                }
            });
        })
        .join();
    }
}

/// Where a test's data lives.
pub struct TestDatabase {
    pub url: String,
    /// The SQLite file (SQLite only).
    pub sqlite_file: Option<PathBuf>,
    pub pg: Option<PgDatabase>,
}

impl TestDatabase {
    pub async fn new(dir: &TempDir) -> TestDatabase {
        match postgres_url() {
            Some(admin) => {
                let pg = PgDatabase::create(&admin).await;
                TestDatabase {
                    url: pg.url.clone(),
                    sqlite_file: None,
                    pg: Some(pg),
                }
            }
            None => {
                let file = dir.path().join("db").join("oyl.db");
                TestDatabase {
                    url: format!("sqlite://{}", file.display()),
                    sqlite_file: Some(file),
                    pg: None,
                }
            }
        }
    }

    pub fn is_postgres(&self) -> bool {
        self.pg.is_some()
    }
}

pub struct TestApp {
    pub address: String,
    pub port: u16,
    pub client: reqwest::Client,
    pub state: AppState,
    pub config: Config,
    pub dir: TempDir,
    pub db: TestDatabase,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

/// The environment a test server gets; `overrides` replace or add variables.
pub fn test_env(
    dir: &TempDir,
    db: &TestDatabase,
    overrides: &[(&str, &str)],
) -> HashMap<String, String> {
    let mut env: HashMap<String, String> = [
        ("HOST", "127.0.0.1"),
        ("PORT", "0"),
        ("SECRET_KEY", TEST_SECRET),
        ("DATABASE_POOL_SIZE", "5"),
        ("DATABASE_TIMEOUT_SECONDS", "2"),
        ("CHUNK_SIZE", "200"),
        ("CHUNK_OVERLAP", "40"),
        // Deterministic by default: documents are processed by process-batch; the worker has
        // tests of its own.
        ("WORKER_ENABLED", "false"),
        // Limits are exercised everywhere, but only rate-limit tests hit them.
        ("RATE_LIMIT_REQUESTS_PER_MINUTE", "6000000"),
        ("RATE_LIMIT_BURST", "100000"),
        ("RATE_LIMIT_READS_PER_MINUTE", "6000000"),
        ("RATE_LIMIT_READ_BURST", "100000"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    env.insert("DATABASE_URL".into(), db.url.clone());
    if let Some(redis) = redis_url() {
        env.insert("REDIS_URL".into(), redis);
    }
    if let Some(chroma) = chroma_url() {
        env.insert("CHROMA_HOST".into(), chroma);
    }
    env.insert(
        "UPLOAD_DIR".into(),
        dir.path().join("uploads").display().to_string(),
    );
    for (k, v) in overrides {
        env.insert(k.to_string(), v.to_string());
    }
    env.retain(|_, v| !v.is_empty());
    env
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

pub async fn spawn_app_with(overrides: &[(&str, &str)]) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = TestDatabase::new(&dir).await;
    spawn_app_on(dir, db, overrides).await
}

pub async fn spawn_app_on(dir: TempDir, db: TestDatabase, overrides: &[(&str, &str)]) -> TestApp {
    init_logs();
    let config =
        Config::from_map(&test_env(&dir, &db, overrides)).expect("valid test configuration");
    let app = Application::build(config.clone())
        .await
        .expect("the application builds");
    let port = app.local_addr().port();
    let state = app.state().clone();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async move {
        let _ = rx.await;
    }));
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        port,
        client: test_client(),
        state,
        config,
        dir,
        db,
        shutdown: Some(tx),
        server: Some(server),
    }
}

pub fn test_client() -> reqwest::Client {
    oyl_server::rag::providers::install_crypto_provider();
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// A second server on the same database, uploads and Redis (another replica).
pub async fn second_instance(app: &TestApp, overrides: &[(&str, &str)]) -> SecondInstance {
    let mut env = test_env(&app.dir, &app.db, overrides);
    env.insert(
        "DATABASE_URL".into(),
        app.config.database_url.expose().to_string(),
    );
    let config = Config::from_map(&env).unwrap();
    let server = Application::build(config).await.unwrap();
    let address = format!("http://127.0.0.1:{}", server.local_addr().port());
    let handle = tokio::spawn(server.run_until(std::future::pending()));
    SecondInstance { address, handle }
}

pub struct SecondInstance {
    pub address: String,
    handle: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Drop for SecondInstance {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

/// Logs go nowhere unless `TEST_LOG` is set (then to stderr, shown for failing tests).
fn init_logs() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            let _ = oyl_server::telemetry::init(
                oyl_server::config::LogFormat::Pretty,
                "info,oyl_server=debug",
            );
        }
    });
}

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub body: Value,
    pub text: String,
    pub headers: reqwest::header::HeaderMap,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn id(&self) -> String {
        self.body["id"]
            .as_str()
            .unwrap_or_else(|| panic!("no id in {}", self.text))
            .to_string()
    }

    /// The `loc` of each 422 error, as compact JSON strings.
    pub fn locs(&self) -> Vec<String> {
        self.body["detail"]
            .as_array()
            .unwrap_or_else(|| panic!("not a validation error: {} {}", self.status, self.text))
            .iter()
            .map(|e| e["loc"].to_string())
            .collect()
    }
}

/// Who is calling: a token and the `X-Tenant-ID` header to send (either may be absent).
#[derive(Clone, Debug)]
pub struct Caller {
    pub token: Option<String>,
    pub tenant: Option<String>,
}

impl Caller {
    pub fn anonymous() -> Caller {
        Caller {
            token: None,
            tenant: None,
        }
    }
    pub fn with_tenant_header(&self, tenant: &str) -> Caller {
        Caller {
            token: self.token.clone(),
            tenant: Some(tenant.to_string()),
        }
    }
}

/// A tenant created through the API, with a token of its own.
#[derive(Clone, Debug)]
pub struct TenantCtx {
    pub id: String,
    pub api_key: String,
    pub caller: Caller,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub fn token(&self, role: Role, tenant: Option<&str>, minutes: i64) -> String {
        let tenant = tenant.map(|t| Uuid::parse_str(t).unwrap());
        let claims = claims_for(
            "test",
            role,
            tenant,
            chrono::Utc::now().timestamp(),
            minutes,
        );
        self.state.jwt.encode(&claims)
    }

    pub fn admin(&self) -> Caller {
        Caller {
            token: Some(self.token(Role::Admin, None, 60)),
            tenant: None,
        }
    }

    /// An admin acting inside `tenant`.
    pub fn admin_in(&self, tenant: &str) -> Caller {
        self.admin().with_tenant_header(tenant)
    }

    pub async fn send(
        &self,
        caller: &Caller,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Resp {
        let mut req = self.client.request(method, self.url(path));
        if let Some(token) = &caller.token {
            req = req.bearer_auth(token);
        }
        if let Some(tenant) = &caller.tenant {
            req = req.header("X-Tenant-ID", tenant);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        into_resp(req.send().await.expect("request sent")).await
    }

    pub async fn get(&self, caller: &Caller, path: &str) -> Resp {
        self.send(caller, Method::GET, path, None).await
    }
    pub async fn post(&self, caller: &Caller, path: &str, body: Value) -> Resp {
        self.send(caller, Method::POST, path, Some(body)).await
    }
    pub async fn patch(&self, caller: &Caller, path: &str, body: Value) -> Resp {
        self.send(caller, Method::PATCH, path, Some(body)).await
    }
    pub async fn put(&self, caller: &Caller, path: &str, body: Value) -> Resp {
        self.send(caller, Method::PUT, path, Some(body)).await
    }
    pub async fn delete(&self, caller: &Caller, path: &str) -> Resp {
        self.send(caller, Method::DELETE, path, None).await
    }

    /// POST with a raw body (malformed JSON tests).
    pub async fn post_raw(&self, caller: &Caller, path: &str, body: &'static str) -> Resp {
        let mut req = self
            .client
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body);
        if let Some(token) = &caller.token {
            req = req.bearer_auth(token);
        }
        if let Some(tenant) = &caller.tenant {
            req = req.header("X-Tenant-ID", tenant);
        }
        into_resp(req.send().await.unwrap()).await
    }

    pub async fn upload(
        &self,
        caller: &Caller,
        assistant_id: &str,
        file_name: &str,
        bytes: Vec<u8>,
    ) -> Resp {
        let part = reqwest::multipart::Part::bytes(bytes).file_name(file_name.to_string());
        let form = reqwest::multipart::Form::new().part("file", part);
        let mut req = self
            .client
            .post(self.url(&format!(
                "/api/v1/assistants/{assistant_id}/knowledge/upload"
            )))
            .multipart(form);
        if let Some(token) = &caller.token {
            req = req.bearer_auth(token);
        }
        if let Some(tenant) = &caller.tenant {
            req = req.header("X-Tenant-ID", tenant);
        }
        into_resp(req.send().await.unwrap()).await
    }

    /// `POST /api/v1/assistants/{id}/knowledge/process-batch` with `{}`: processes the
    /// assistant's pending documents now.
    pub async fn process_batch(&self, caller: &Caller, assistant_id: &str) -> Resp {
        self.post(
            caller,
            &format!("/api/v1/assistants/{assistant_id}/knowledge/process-batch"),
            json!({}),
        )
        .await
    }

    /// Creates a tenant (as admin) and returns it with a tenant-scoped token.
    pub async fn create_tenant(&self, name: &str) -> TenantCtx {
        let resp = self
            .post(&self.admin(), "/api/v1/tenants", json!({ "name": name }))
            .await;
        assert_eq!(resp.status, 201, "{}", resp.text);
        let id = resp.id();
        let token = self.token(Role::Tenant, Some(&id), 60);
        TenantCtx {
            api_key: resp.body["api_key"].as_str().unwrap().to_string(),
            caller: Caller {
                token: Some(token),
                tenant: Some(id.clone()),
            },
            id,
        }
    }

    /// tenant → workspace → teammate → assistant; returns (workspace, teammate, assistant) ids.
    pub async fn create_tree(&self, t: &TenantCtx) -> (String, String, String) {
        let ws = self
            .post(
                &t.caller,
                &format!("/api/v1/tenants/{}/workspaces", t.id),
                json!({"name": "ws"}),
            )
            .await;
        assert_eq!(ws.status, 201, "{}", ws.text);
        let tm = self
            .post(
                &t.caller,
                &format!("/api/v1/workspaces/{}/teammates", ws.id()),
                json!({"name": "tm"}),
            )
            .await;
        assert_eq!(tm.status, 201, "{}", tm.text);
        let asst = self
            .post(
                &t.caller,
                &format!("/api/v1/teammates/{}/assistants", tm.id()),
                json!({"name": "asst"}),
            )
            .await;
        assert_eq!(asst.status, 201, "{}", asst.text);
        (ws.id(), tm.id(), asst.id())
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

pub async fn into_resp(resp: reqwest::Response) -> Resp {
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Resp {
        status,
        body,
        text,
        headers,
    }
}

/// Builds small but valid PDF and DOCX files for the extraction tests.
pub mod files {
    use lopdf::content::{Content, Operation};
    use lopdf::{Document, Object, Stream, dictionary};
    use std::io::Write;

    /// A one-page PDF with each line of `lines` in Helvetica.
    pub fn pdf(lines: &[&str]) -> Vec<u8> {
        let mut doc = Document::with_version("1.5");
        let pages_id = doc.new_object_id();
        let font_id = doc.add_object(dictionary! {
            "Type" => "Font", "Subtype" => "Type1", "BaseFont" => "Helvetica", "Encoding" => "WinAnsiEncoding",
        });
        let resources_id =
            doc.add_object(dictionary! { "Font" => dictionary! { "F1" => font_id } });
        let mut operations = vec![
            Operation::new("BT", vec![]),
            Operation::new("Tf", vec!["F1".into(), 12.into()]),
        ];
        operations.push(Operation::new("Td", vec![72.into(), 720.into()]));
        for line in lines {
            operations.push(Operation::new("Tj", vec![Object::string_literal(*line)]));
            operations.push(Operation::new("Td", vec![0.into(), (-16).into()]));
        }
        operations.push(Operation::new("ET", vec![]));
        let content = Content { operations };
        let content_id = doc.add_object(Stream::new(dictionary! {}, content.encode().unwrap()));
        let page_id = doc.add_object(
            dictionary! { "Type" => "Page", "Parent" => pages_id, "Contents" => content_id },
        );
        let pages = dictionary! {
            "Type" => "Pages", "Kids" => vec![page_id.into()], "Count" => 1, "Resources" => resources_id,
            "MediaBox" => vec![0.into(), 0.into(), 595.into(), 842.into()],
        };
        doc.objects.insert(pages_id, Object::Dictionary(pages));
        let catalog_id = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
        doc.trailer.set("Root", catalog_id);
        let mut out = Vec::new();
        doc.save_to(&mut out).unwrap();
        out
    }

    /// A zip that is not a Word document (no `word/document.xml`).
    pub fn docx_without_document() -> Vec<u8> {
        let mut buffer = std::io::Cursor::new(Vec::new());
        let mut zip = zip::ZipWriter::new(&mut buffer);
        zip.start_file("hello.txt", zip::write::SimpleFileOptions::default())
            .unwrap();
        zip.write_all(b"hello").unwrap();
        zip.finish().unwrap();
        buffer.into_inner()
    }

    /// A minimal WordprocessingML document with one paragraph per entry.
    pub fn docx(paragraphs: &[&str]) -> Vec<u8> {
        let body: String = paragraphs
            .iter()
            .map(|p| format!("<w:p><w:r><w:t>{p}</w:t></w:r></w:p>"))
            .collect();
        let document = format!(
            r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>{body}</w:body></w:document>"#
        );
        let mut buffer = std::io::Cursor::new(Vec::new());
        let mut zip = zip::ZipWriter::new(&mut buffer);
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        let parts = [
            ("[Content_Types].xml", r#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>"#.to_string()),
            ("_rels/.rels", r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>"#.to_string()),
            ("word/document.xml", document),
        ];
        for (name, content) in parts {
            zip.start_file(name, options).unwrap();
            zip.write_all(content.as_bytes()).unwrap();
        }
        zip.finish().unwrap();
        buffer.into_inner()
    }
}

impl TestApp {
    /// Waits until no document of the assistant is pending or processing (the worker's work).
    pub async fn wait_until_processed(&self, caller: &Caller, assistant_id: &str) -> Value {
        let path = format!("/api/v1/assistants/{assistant_id}/knowledge/status");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let status = self.get(caller, &path).await.body;
            if status["pending"] == 0 && status["processing"] == 0 {
                return status;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "documents still queued: {status}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Polls `check` until it returns true or `timeout` passes (waiting for a condition, not a fixed time).
pub async fn eventually<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A separate pool on the test's database, to inspect it directly.
pub fn raw_db(app: &TestApp) -> oyl_server::db::Db {
    oyl_server::db::Db::connect_lazy(&app.config).expect("pool")
}
