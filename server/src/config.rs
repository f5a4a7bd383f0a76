//! Configuration: one typed struct, read from the environment (and `.env` when present).
//!
//! Every variable is declared once, in the `config!` table below (grouped by concern: app, http,
//! auth, database, stores, providers, rag, worker, limits), from which the names (`env`), the
//! struct and its parsing derive. The names are the contract with the operator (which renders the
//! API Deployment) and with the users of the original FastAPI service.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::jwt::Algorithm;

/// Liveness and readiness probe paths (the operator's probes use these).
pub const LIVENESS_PATH: &str = "/livez";
pub const READINESS_PATH: &str = "/readyz";

/// The default SQLite database when `DATABASE_URL` is unset: a file next to the working directory.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://.oyl/oyl.db";
pub const DEFAULT_UPLOAD_DIR: &str = ".oyl/uploads";
pub const DEFAULT_PORT: u16 = 8000;
pub const DEFAULT_HOST: &str = "0.0.0.0";
pub const MIN_SECRET_KEY_BYTES: usize = 32;
pub const DEFAULT_VECTOR_CACHE_MAX_BYTES: usize = 256 * 1024 * 1024;

/// Values that appear in example configuration files; never acceptable outside debug mode.
const EXAMPLE_SECRET_KEYS: &[&str] = &[
    "change-me-in-production",
    "changeme",
    "change-me",
    "your-secret-key",
    "your-secret-key-here",
    "secret",
    "supersecret",
];

/// A string that never shows up in `Debug` output or logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Pretty,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EmbeddingProvider {
    /// Built in, no network, no model (the default).
    Hashing,
    /// Ollama `POST {OLLAMA_BASE_URL}/api/embed` with `OLLAMA_EMBEDDING_MODEL`.
    Ollama,
    /// OpenAI-compatible `POST {OPENAI_BASE_URL}/v1/embeddings` with `OPENAI_EMBEDDING_MODEL`.
    OpenAi,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LlmProvider {
    /// Extractive answers from the retrieved chunks (no LLM).
    None,
    /// Ollama `POST {OLLAMA_BASE_URL}/api/generate`.
    Ollama,
    /// OpenAI-compatible `POST {OPENAI_BASE_URL}/v1/chat/completions`.
    OpenAi,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CorsOrigins {
    /// No CORS headers at all (same-origin only); the default.
    None,
    /// `Access-Control-Allow-Origin: *` (without credentials).
    Any,
    /// An explicit allow-list.
    List(Vec<String>),
}

/// Declares the configuration once: for every variable its field, type, name and parser (with
/// its default), grouped by concern. From this table come the name constants (`env::PORT`), the
/// list of all names (`env::ALL`, `env::GROUPS`), the `Config` struct and its parsing.
macro_rules! config {
    ($(
        $(#[$group_doc:meta])*
        $group:ident {
            $( $(#[$doc:meta])* $field:ident: $ty:ty = $name:ident, $parse:expr; )*
        }
    )*) => {
        /// Environment variable names: the contract with the operator (which renders the API
        /// Deployment) and with the users of the original FastAPI service. `server/README.md`
        /// documents every one (a test holds them together).
        pub mod env {
            $($( pub const $name: &str = stringify!($name); )*)*

            /// Every variable the server reads, for documentation and tests.
            pub const ALL: &[&str] = &[$($($name,)*)*];

            /// The variables by concern.
            pub const GROUPS: &[(&str, &[&str])] = &[$((stringify!($group), &[$($name),*])),*];
        }

        #[derive(Clone, Debug)]
        pub struct Config {
            $($( $(#[$doc])* pub $field: $ty, )*)*
        }

        impl Config {
            /// Every field from its variable (or its default); no consistency checks.
            fn read(vars: &Vars<'_>) -> Result<Config, ConfigError> {
                Ok(Config {
                    $($( $field: ($parse)(env::$name, vars)?, )*)*
                })
            }
        }
    };
}

config! {
    /// The application itself and its logs.
    app {
        app_name: String = APP_NAME, text("Oyl RAG Platform");
        app_version: String = APP_VERSION, text(env!("CARGO_PKG_VERSION"));
        debug: bool = DEBUG, flag(false);
        log_format: LogFormat = LOG_FORMAT, parse_log_format;
        log_level: String = LOG_LEVEL, text("info");
    }
    /// The HTTP server.
    http {
        host: String = HOST, text(DEFAULT_HOST);
        port: u16 = PORT, number(DEFAULT_PORT);
        cors_origins: CorsOrigins = CORS_ORIGINS, parse_cors;
        request_timeout: Duration = REQUEST_TIMEOUT_SECONDS, seconds(60);
        shutdown_timeout: Duration = SHUTDOWN_TIMEOUT_SECONDS, seconds(25);
    }
    /// Tokens.
    auth {
        /// `None` means: generate a key once and keep it in the database.
        secret_key: Option<Secret> = SECRET_KEY, optional_secret;
        algorithm: Algorithm = ALGORITHM, parse_algorithm;
        access_token_expire_minutes: i64 = ACCESS_TOKEN_EXPIRE_MINUTES, number(60);
    }
    /// The application database.
    database {
        database_url: Secret = DATABASE_URL, database_url;
        database_pool_size: u32 = DATABASE_POOL_SIZE, number(10);
        database_timeout: Duration = DATABASE_TIMEOUT_SECONDS, seconds(5);
        /// How long `serve` and `worker` wait at start for an unreachable database (on a fresh
        /// install PostgreSQL may still be initialising) before giving up; under the API pod's
        /// startup probe budget (5 min).
        database_wait: Duration = DATABASE_WAIT_SECONDS, seconds(240);
        run_migrations: bool = RUN_MIGRATIONS, flag(true);
    }
    /// The other stores: Redis, ChromaDB, uploaded files, the in-memory vector index.
    stores {
        redis_url: Option<Secret> = REDIS_URL, optional_secret;
        /// Prefixes every key the server caches in Redis. The operator sets it to the restore
        /// that produced the database, so that nothing cached before a restore is read after it.
        cache_namespace: String = CACHE_NAMESPACE, text("");
        chroma_host: Option<String> = CHROMA_HOST, optional;
        chroma_port: u16 = CHROMA_PORT, number(8000);
        upload_dir: PathBuf = UPLOAD_DIR, upload_dir;
        /// Memory for the embedded vector store's in-memory index (least recently used knowledge
        /// bases evicted first); 0: no index, every search reads the database.
        vector_cache_max_bytes: usize = VECTOR_CACHE_MAX_BYTES,
            number(DEFAULT_VECTOR_CACHE_MAX_BYTES);
    }
    /// Embeddings and LLMs.
    providers {
        embedding_provider: EmbeddingProvider = EMBEDDING_PROVIDER, parse_embedding_provider;
        llm_provider: LlmProvider = LLM_PROVIDER, parse_llm_provider;
        ollama_base_url: Option<String> = OLLAMA_BASE_URL, optional;
        ollama_model: String = OLLAMA_MODEL, text("llama3.2");
        ollama_reasoning_model: String = OLLAMA_REASONING_MODEL, text("deepseek-r1");
        ollama_embedding_model: String = OLLAMA_EMBEDDING_MODEL, text("nomic-embed-text");
        openai_base_url: String = OPENAI_BASE_URL, text("https://api.openai.com");
        openai_api_key: Option<Secret> = OPENAI_API_KEY, optional_secret;
        openai_model: String = OPENAI_MODEL, text("gpt-4o-mini");
        openai_reasoning_model: String = OPENAI_REASONING_MODEL, text("o3-mini");
        openai_embedding_model: String = OPENAI_EMBEDDING_MODEL, text("text-embedding-3-small");
        llm_timeout: Duration = LLM_TIMEOUT_SECONDS, seconds(60);
        embedding_timeout: Duration = EMBEDDING_TIMEOUT_SECONDS, seconds(60);
    }
    /// Chunking and retrieval.
    rag {
        chunk_size: usize = CHUNK_SIZE, number(1000);
        chunk_overlap: usize = CHUNK_OVERLAP, number(200);
        max_retrieved_chunks: usize = MAX_RETRIEVED_CHUNKS, number(5);
    }
    /// The document worker.
    worker {
        /// Run the document worker inside `serve`.
        worker_enabled: bool = WORKER_ENABLED, flag(true);
        worker_poll: Duration = WORKER_POLL_SECONDS, fractional_seconds(2000);
        /// How long a claim on a document lasts without renewal (a dead worker's documents return
        /// to the queue after this).
        worker_lease: Duration = WORKER_LEASE_SECONDS, seconds(300);
        worker_max_attempts: i32 = WORKER_MAX_ATTEMPTS, number(3);
    }
    /// Per-tenant rate limits and request sizes.
    limits {
        /// Per-tenant budget for work: every request that is not a read (uploads, queries,
        /// creates, updates, deletes). 0 per minute: no limit.
        rate_limit_requests_per_minute: u32 = RATE_LIMIT_REQUESTS_PER_MINUTE, number(120);
        rate_limit_burst: u32 = RATE_LIMIT_BURST, number(30);
        /// Per-tenant budget for cheap reads (GET, HEAD), such as status polling; kept apart so
        /// that polling never uses up the budget for work. 0 per minute: no limit.
        rate_limit_reads_per_minute: u32 = RATE_LIMIT_READS_PER_MINUTE, number(600);
        rate_limit_read_burst: u32 = RATE_LIMIT_READ_BURST, number(120);
        max_upload_bytes: u64 = MAX_UPLOAD_BYTES, number(50 * 1024 * 1024);
        max_body_bytes: usize = MAX_BODY_BYTES, number(1024 * 1024);
    }
}

/// The variables as the parsers see them: empty values count as unset, as with most
/// twelve-factor loaders.
struct Vars<'a>(&'a dyn Fn(&str) -> Option<String>);

impl Vars<'_> {
    fn get(&self, name: &str) -> Option<String> {
        (self.0)(name).filter(|v| !v.trim().is_empty())
    }
}

/// A parser: the value of the variable `name` (or its default).
type Parsed<T> = Result<T, ConfigError>;

fn text(default: &'static str) -> impl Fn(&'static str, &Vars<'_>) -> Parsed<String> {
    move |name, vars| Ok(vars.get(name).unwrap_or_else(|| default.into()))
}

fn optional(name: &'static str, vars: &Vars<'_>) -> Parsed<Option<String>> {
    Ok(vars.get(name))
}

/// The variables that hold credentials: each may instead name a file with `<NAME>_FILE` (a
/// mounted Secret, as the operator renders it), so the value is in no environment.
pub const SECRET_FILE_VARS: [&str; 4] = [
    env::DATABASE_URL,
    env::REDIS_URL,
    env::SECRET_KEY,
    env::OPENAI_API_KEY,
];

/// The values of `SECRET_FILE_VARS` given as `<NAME>_FILE`: each file's content without its
/// trailing line break. Both forms at once, an unreadable or empty file, are errors naming the
/// variable and path (never the content).
fn secret_files(
    lookup: &impl Fn(&str) -> Option<String>,
) -> Result<HashMap<&'static str, String>, ConfigError> {
    let mut out = HashMap::new();
    for name in SECRET_FILE_VARS {
        let file_var = format!("{name}_FILE");
        let Some(path) = lookup(&file_var).filter(|p| !p.is_empty()) else {
            continue;
        };
        if lookup(name).is_some_and(|v| !v.is_empty()) {
            return Err(ConfigError(format!(
                "{name} and {file_var} are both set: set one of them"
            )));
        }
        let value = std::fs::read_to_string(&path)
            .map_err(|e| ConfigError(format!("{file_var}: cannot read {path}: {e}")))?;
        let value = value.trim_end_matches(['\n', '\r']).to_string();
        if value.is_empty() {
            return Err(ConfigError(format!("{file_var}: {path} is empty")));
        }
        out.insert(name, value);
    }
    Ok(out)
}

fn optional_secret(name: &'static str, vars: &Vars<'_>) -> Parsed<Option<Secret>> {
    Ok(vars.get(name).map(Secret::new))
}

fn flag(default: bool) -> impl Fn(&'static str, &Vars<'_>) -> Parsed<bool> {
    move |name, vars| parse_bool(name, vars.get(name), default)
}

fn number<T: std::str::FromStr + Copy>(
    default: T,
) -> impl Fn(&'static str, &Vars<'_>) -> Parsed<T> {
    move |name, vars| parse_num(name, vars.get(name), default)
}

fn seconds(default: u64) -> impl Fn(&'static str, &Vars<'_>) -> Parsed<Duration> {
    move |name, vars| parse_num(name, vars.get(name), default).map(Duration::from_secs)
}

/// Seconds that may have a fraction (`0.5`), kept as milliseconds.
fn fractional_seconds(default_millis: u64) -> impl Fn(&'static str, &Vars<'_>) -> Parsed<Duration> {
    move |name, vars| {
        let millis = vars.get(name).map(|v| seconds_to_millis(&v));
        parse_num(name, millis, default_millis).map(Duration::from_millis)
    }
}

fn database_url(name: &'static str, vars: &Vars<'_>) -> Parsed<Secret> {
    text(DEFAULT_DATABASE_URL)(name, vars).map(Secret::new)
}

fn upload_dir(name: &'static str, vars: &Vars<'_>) -> Parsed<PathBuf> {
    text(DEFAULT_UPLOAD_DIR)(name, vars).map(PathBuf::from)
}

fn parse_algorithm(name: &'static str, vars: &Vars<'_>) -> Parsed<Algorithm> {
    match vars.get(name) {
        None => Ok(Algorithm::HS256),
        Some(v) => v
            .parse()
            .map_err(|e: String| ConfigError(format!("{name}: {e}"))),
    }
}

fn parse_log_format(name: &'static str, vars: &Vars<'_>) -> Parsed<LogFormat> {
    match vars.get(name).map(|v| v.to_ascii_lowercase()).as_deref() {
        None | Some("json") => Ok(LogFormat::Json),
        Some("pretty") | Some("text") => Ok(LogFormat::Pretty),
        Some(other) => Err(ConfigError(format!(
            "{name}: expected `json` or `pretty`, got `{other}`"
        ))),
    }
}

fn parse_embedding_provider(name: &'static str, vars: &Vars<'_>) -> Parsed<EmbeddingProvider> {
    match vars.get(name).map(|v| v.to_ascii_lowercase()).as_deref() {
        None | Some("hashing") | Some("builtin") => Ok(EmbeddingProvider::Hashing),
        Some("ollama") => Ok(EmbeddingProvider::Ollama),
        Some("openai") => Ok(EmbeddingProvider::OpenAi),
        Some(other) => Err(ConfigError(format!(
            "{name}: expected hashing, ollama or openai, got `{other}`"
        ))),
    }
}

/// `auto` (the default) is Ollama when `OLLAMA_BASE_URL` is set, no LLM otherwise.
fn parse_llm_provider(name: &'static str, vars: &Vars<'_>) -> Parsed<LlmProvider> {
    match vars.get(name).map(|v| v.to_ascii_lowercase()).as_deref() {
        None | Some("auto") if vars.get(env::OLLAMA_BASE_URL).is_some() => Ok(LlmProvider::Ollama),
        None | Some("auto") | Some("none") | Some("extractive") => Ok(LlmProvider::None),
        Some("ollama") => Ok(LlmProvider::Ollama),
        Some("openai") => Ok(LlmProvider::OpenAi),
        Some(other) => Err(ConfigError(format!(
            "{name}: expected auto, none, ollama or openai, got `{other}`"
        ))),
    }
}

#[derive(Debug, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Reads `.env` (if present; real environment variables win) and then the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        // A missing .env is normal; a malformed one is reported.
        match dotenvy::dotenv() {
            Ok(_) => {}
            Err(e) if e.not_found() => {}
            Err(e) => return Err(ConfigError(format!("cannot read .env: {e}"))),
        }
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Builds the configuration from a map (tests, tools).
    pub fn from_map(map: &HashMap<String, String>) -> Result<Self, ConfigError> {
        Self::from_lookup(|name| map.get(name).cloned())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let files = secret_files(&lookup)?;
        let lookup = |name: &str| files.get(name).cloned().or_else(|| lookup(name));
        let config = Config::read(&Vars(&lookup))?;
        config.check_consistency()?;
        Ok(config)
    }

    fn check_consistency(&self) -> Result<(), ConfigError> {
        if self.database_pool_size == 0 {
            return Err(ConfigError(format!(
                "{} must be at least 1",
                env::DATABASE_POOL_SIZE
            )));
        }
        if self.chunk_size == 0 || self.chunk_overlap >= self.chunk_size {
            return Err(ConfigError(format!(
                "{} must be positive and larger than {}",
                env::CHUNK_SIZE,
                env::CHUNK_OVERLAP
            )));
        }
        if self.max_retrieved_chunks == 0 {
            return Err(ConfigError(format!(
                "{} must be at least 1",
                env::MAX_RETRIEVED_CHUNKS
            )));
        }
        if self.access_token_expire_minutes <= 0 {
            return Err(ConfigError(format!(
                "{} must be positive",
                env::ACCESS_TOKEN_EXPIRE_MINUTES
            )));
        }
        if self.worker_lease < Duration::from_secs(1)
            || self.worker_poll.is_zero()
            || self.worker_max_attempts < 1
        {
            return Err(ConfigError(format!(
                "{} must be at least 1, {} positive and {} at least 1",
                env::WORKER_LEASE_SECONDS,
                env::WORKER_POLL_SECONDS,
                env::WORKER_MAX_ATTEMPTS
            )));
        }
        let needs_ollama = self.embedding_provider == EmbeddingProvider::Ollama
            || self.llm_provider == LlmProvider::Ollama;
        if needs_ollama && self.ollama_base_url.is_none() {
            return Err(ConfigError(format!(
                "{} is required by the Ollama provider",
                env::OLLAMA_BASE_URL
            )));
        }
        if self.llm_timeout.is_zero() || self.embedding_timeout.is_zero() {
            return Err(ConfigError(format!(
                "{} and {} must be positive",
                env::LLM_TIMEOUT_SECONDS,
                env::EMBEDDING_TIMEOUT_SECONDS
            )));
        }
        if self.request_timeout.is_zero() {
            return Err(ConfigError(format!(
                "{} must be positive",
                env::REQUEST_TIMEOUT_SECONDS
            )));
        }
        Ok(())
    }

    /// Outside debug mode the server refuses an example or short `SECRET_KEY`.
    /// An unset key is fine: one is generated and kept in the database.
    pub fn check_secret_key(&self) -> Result<(), ConfigError> {
        let Some(key) = &self.secret_key else {
            return Ok(());
        };
        let problem = secret_key_problem(key.expose());
        match problem {
            Some(problem) if !self.debug => Err(ConfigError(format!(
                "refusing to start: {} {problem}. Generate one with `openssl rand -hex 32` \
                 (or `python3 -c 'import secrets; print(secrets.token_hex(32))'`) and set it, \
                 or unset {} to have a random key generated and stored in the database \
                 (DEBUG=true allows weak keys for local development only)",
                env::SECRET_KEY,
                env::SECRET_KEY
            ))),
            _ => Ok(()),
        }
    }

    /// A warning to log when a weak key is tolerated in debug mode.
    pub fn weak_secret_warning(&self) -> Option<String> {
        let key = self.secret_key.as_ref()?;
        secret_key_problem(key.expose())
            .map(|p| format!("{} {p} (tolerated because DEBUG=true)", env::SECRET_KEY))
    }

    pub fn is_postgres(&self) -> bool {
        let url = self.database_url.expose();
        url.starts_with("postgres://") || url.starts_with("postgresql://")
    }

    /// ChromaDB's base URL when `CHROMA_HOST` is set (a bare host, or a URL with a scheme).
    pub fn chroma_url(&self) -> Option<String> {
        let host = self.chroma_host.as_deref()?.trim_end_matches('/');
        Some(
            if host.starts_with("http://") || host.starts_with("https://") {
                host.to_string()
            } else {
                format!("http://{host}:{}", self.chroma_port)
            },
        )
    }

    pub fn bind_address(&self) -> String {
        if self.host.contains(':') && !self.host.starts_with('[') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

fn secret_key_problem(key: &str) -> Option<&'static str> {
    let lower = key.trim().to_ascii_lowercase();
    if EXAMPLE_SECRET_KEYS.iter().any(|example| lower == *example)
        || lower.starts_with("change-me")
        || lower.starts_with("changeme")
        || lower.starts_with("your-secret")
    {
        return Some("is the example value from the documentation");
    }
    if key.len() < MIN_SECRET_KEY_BYTES {
        return Some("is shorter than 32 bytes");
    }
    None
}

fn parse_bool(name: &str, value: Option<String>, default: bool) -> Result<bool, ConfigError> {
    match value.as_deref().map(|v| v.trim().to_ascii_lowercase()) {
        None => Ok(default),
        Some(v) => match v.as_str() {
            "1" | "true" | "yes" | "on" => Ok(true),
            "0" | "false" | "no" | "off" => Ok(false),
            _ => Err(ConfigError(format!(
                "{name}: expected true or false, got `{v}`"
            ))),
        },
    }
}

fn parse_num<T: std::str::FromStr>(
    name: &str,
    value: Option<String>,
    default: T,
) -> Result<T, ConfigError> {
    match value {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse()
            .map_err(|_| ConfigError(format!("{name}: expected a non-negative number, got `{v}`"))),
    }
}

/// `"2"` or `"0.5"` seconds as milliseconds (unparseable text is passed through to fail later).
fn seconds_to_millis(value: &str) -> String {
    match value.trim().parse::<f64>() {
        Ok(secs) if secs.is_finite() && secs >= 0.0 => {
            format!("{}", (secs * 1000.0).round() as u64)
        }
        _ => value.to_string(),
    }
}

fn parse_cors(name: &'static str, vars: &Vars<'_>) -> Parsed<CorsOrigins> {
    Ok(match vars.get(name) {
        None => CorsOrigins::None,
        Some(v) if v.trim() == "*" => CorsOrigins::Any,
        Some(v) => {
            let list: Vec<String> = v
                .split(',')
                .map(|s| s.trim().trim_end_matches('/').to_string())
                .filter(|s| !s.is_empty())
                .collect();
            if list.is_empty() {
                CorsOrigins::None
            } else {
                CorsOrigins::List(list)
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_map(&map)
    }

    /// `DATABASE_URL_FILE`, `REDIS_URL_FILE`, `SECRET_KEY_FILE`: a mounted Secret instead of the
    /// environment; the value's trailing newline is not part of it; both forms at once, a missing
    /// or empty file are errors that name the variable and path, never a value.
    #[test]
    fn credentials_can_come_from_files() {
        let dir = std::env::temp_dir().join(format!("oyl-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = |name: &str, content: &str| {
            let path = dir.join(name);
            std::fs::write(&path, content).unwrap();
            path.to_str().unwrap().to_string()
        };
        let db = file("db", "postgres://oyl:pw@db:5432/oyl\n");
        let redis = file("redis", "redis://:pw@redis:6379/0");
        let key = file("key", &format!("{}\n", "k".repeat(64)));
        let c = config(&[
            ("DATABASE_URL_FILE", &db),
            ("REDIS_URL_FILE", &redis),
            ("SECRET_KEY_FILE", &key),
        ])
        .unwrap();
        assert_eq!(c.database_url.expose(), "postgres://oyl:pw@db:5432/oyl");
        assert_eq!(c.redis_url.unwrap().expose(), "redis://:pw@redis:6379/0");
        assert_eq!(c.secret_key.unwrap().expose(), "k".repeat(64));

        let both = config(&[
            ("DATABASE_URL", "sqlite::memory:"),
            ("DATABASE_URL_FILE", &db),
        ])
        .unwrap_err();
        assert!(
            both.to_string()
                .contains("DATABASE_URL and DATABASE_URL_FILE"),
            "{both}"
        );
        let missing = dir.join("missing");
        let err = config(&[("SECRET_KEY_FILE", missing.to_str().unwrap())]).unwrap_err();
        assert!(
            err.to_string().contains("SECRET_KEY_FILE: cannot read"),
            "{err}"
        );
        let empty = file("empty", "\n");
        let err = config(&[("REDIS_URL_FILE", &empty)]).unwrap_err();
        assert!(err.to_string().contains("is empty"), "{err}");
        assert!(
            !format!("{err}{both}").contains("pw@"),
            "no value in an error"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn defaults_match_the_contract() {
        let c = config(&[]).unwrap();
        assert_eq!(c.app_name, "Oyl RAG Platform");
        assert_eq!(c.app_version, "0.1.0");
        assert!(!c.debug);
        assert_eq!(c.bind_address(), "0.0.0.0:8000");
        assert_eq!(c.access_token_expire_minutes, 60);
        assert_eq!(c.algorithm, Algorithm::HS256);
        assert_eq!(
            (c.chunk_size, c.chunk_overlap, c.max_retrieved_chunks),
            (1000, 200, 5)
        );
        assert_eq!(
            (c.rate_limit_requests_per_minute, c.rate_limit_burst),
            (120, 30)
        );
        assert_eq!(
            (c.rate_limit_reads_per_minute, c.rate_limit_read_burst),
            (600, 120)
        );
        assert_eq!(c.vector_cache_max_bytes, 256 * 1024 * 1024);
        assert_eq!(
            config(&[("VECTOR_CACHE_MAX_BYTES", "0")])
                .unwrap()
                .vector_cache_max_bytes,
            0
        );
        assert!(c.run_migrations);
        assert!(!c.is_postgres());
        assert_eq!(c.cors_origins, CorsOrigins::None);
        assert!(c.secret_key.is_none());
        assert!(c.check_secret_key().is_ok());
    }

    #[test]
    fn rejects_example_and_short_keys_outside_debug() {
        for key in ["change-me-in-production-please-use-something-long", "short"] {
            let err = config(&[("SECRET_KEY", key)])
                .unwrap()
                .check_secret_key()
                .unwrap_err();
            assert!(err.0.contains("openssl rand -hex 32"), "{err}");
        }
        let long = "0123456789abcdef0123456789abcdef";
        assert!(
            config(&[("SECRET_KEY", long)])
                .unwrap()
                .check_secret_key()
                .is_ok()
        );
        let debug = config(&[("SECRET_KEY", "short"), ("DEBUG", "true")]).unwrap();
        assert!(debug.check_secret_key().is_ok());
        assert!(debug.weak_secret_warning().is_some());
    }

    #[test]
    fn rejects_malformed_values() {
        assert!(config(&[("PORT", "eighty")]).is_err());
        assert!(config(&[("DEBUG", "maybe")]).is_err());
        assert!(config(&[("ALGORITHM", "RS256")]).is_err());
        assert!(config(&[("CHUNK_SIZE", "100"), ("CHUNK_OVERLAP", "100")]).is_err());
        assert!(config(&[("DATABASE_POOL_SIZE", "0")]).is_err());
        assert!(config(&[("VECTOR_CACHE_MAX_BYTES", "-1")]).is_err());
    }

    #[test]
    fn parses_cors_and_postgres() {
        let c = config(&[
            ("CORS_ORIGINS", "https://a.example, https://b.example/"),
            ("DATABASE_URL", "postgres://u:p@db/oyl"),
        ])
        .unwrap();
        assert_eq!(
            c.cors_origins,
            CorsOrigins::List(vec!["https://a.example".into(), "https://b.example".into()])
        );
        assert!(c.is_postgres());
        assert!(
            !format!("{c:?}").contains("u:p@db"),
            "the database URL must not be logged"
        );
        assert_eq!(
            config(&[("CORS_ORIGINS", "*")]).unwrap().cors_origins,
            CorsOrigins::Any
        );
    }

    /// The variable names in the first column of `server/README.md`'s configuration table.
    fn documented_names() -> Vec<String> {
        let readme = include_str!("../README.md");
        let section = readme
            .split("## Configuration")
            .nth(1)
            .and_then(|s| s.split("\n## ").next())
            .expect("README.md has a Configuration section");
        section
            .lines()
            .filter_map(|l| l.strip_prefix("| `"))
            .flat_map(|row| {
                let first_column = row.split(" | ").next().unwrap_or_default();
                first_column
                    .split('`')
                    .filter(|w| {
                        !w.is_empty() && w.chars().all(|c| c.is_ascii_uppercase() || c == '_')
                    })
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    #[test]
    fn the_readme_documents_exactly_the_declared_variables() {
        let mut documented = documented_names();
        documented.sort();
        let mut declared: Vec<String> = env::ALL.iter().map(|n| n.to_string()).collect();
        declared.sort();
        assert_eq!(documented, declared);
        let grouped: usize = env::GROUPS.iter().map(|(_, names)| names.len()).sum();
        assert_eq!(grouped, env::ALL.len());
        assert_eq!(env::PORT, "PORT");
    }
}
