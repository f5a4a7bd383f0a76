//! Configuration: one typed struct, read from the environment (and `.env` when present).
//!
//! The environment variable names below are the contract with the operator (which renders the API
//! Deployment) and with the users of the original FastAPI service. They are defined here and
//! nowhere else.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::jwt::Algorithm;

/// Environment variable names. Keep this list in sync with `server/README.md` and the operator.
pub mod env {
    pub const APP_NAME: &str = "APP_NAME";
    pub const APP_VERSION: &str = "APP_VERSION";
    pub const DEBUG: &str = "DEBUG";
    pub const HOST: &str = "HOST";
    pub const PORT: &str = "PORT";
    pub const DATABASE_URL: &str = "DATABASE_URL";
    pub const DATABASE_POOL_SIZE: &str = "DATABASE_POOL_SIZE";
    pub const DATABASE_TIMEOUT_SECONDS: &str = "DATABASE_TIMEOUT_SECONDS";
    pub const RUN_MIGRATIONS: &str = "RUN_MIGRATIONS";
    pub const REDIS_URL: &str = "REDIS_URL";
    pub const CHROMA_HOST: &str = "CHROMA_HOST";
    pub const CHROMA_PORT: &str = "CHROMA_PORT";
    pub const SECRET_KEY: &str = "SECRET_KEY";
    pub const ALGORITHM: &str = "ALGORITHM";
    pub const ACCESS_TOKEN_EXPIRE_MINUTES: &str = "ACCESS_TOKEN_EXPIRE_MINUTES";
    pub const OLLAMA_BASE_URL: &str = "OLLAMA_BASE_URL";
    pub const OLLAMA_MODEL: &str = "OLLAMA_MODEL";
    pub const OLLAMA_REASONING_MODEL: &str = "OLLAMA_REASONING_MODEL";
    pub const OLLAMA_EMBEDDING_MODEL: &str = "OLLAMA_EMBEDDING_MODEL";
    pub const CHUNK_SIZE: &str = "CHUNK_SIZE";
    pub const CHUNK_OVERLAP: &str = "CHUNK_OVERLAP";
    pub const MAX_RETRIEVED_CHUNKS: &str = "MAX_RETRIEVED_CHUNKS";
    pub const VECTOR_CACHE_MAX_BYTES: &str = "VECTOR_CACHE_MAX_BYTES";
    pub const RATE_LIMIT_REQUESTS_PER_MINUTE: &str = "RATE_LIMIT_REQUESTS_PER_MINUTE";
    pub const RATE_LIMIT_BURST: &str = "RATE_LIMIT_BURST";
    pub const RATE_LIMIT_READS_PER_MINUTE: &str = "RATE_LIMIT_READS_PER_MINUTE";
    pub const RATE_LIMIT_READ_BURST: &str = "RATE_LIMIT_READ_BURST";
    pub const MAX_UPLOAD_BYTES: &str = "MAX_UPLOAD_BYTES";
    pub const MAX_BODY_BYTES: &str = "MAX_BODY_BYTES";
    pub const REQUEST_TIMEOUT_SECONDS: &str = "REQUEST_TIMEOUT_SECONDS";
    pub const SHUTDOWN_TIMEOUT_SECONDS: &str = "SHUTDOWN_TIMEOUT_SECONDS";
    pub const CORS_ORIGINS: &str = "CORS_ORIGINS";
    pub const UPLOAD_DIR: &str = "UPLOAD_DIR";
    pub const LOG_FORMAT: &str = "LOG_FORMAT";
    pub const LOG_LEVEL: &str = "LOG_LEVEL";
    pub const EMBEDDING_PROVIDER: &str = "EMBEDDING_PROVIDER";
    pub const LLM_PROVIDER: &str = "LLM_PROVIDER";
    pub const OPENAI_BASE_URL: &str = "OPENAI_BASE_URL";
    pub const OPENAI_API_KEY: &str = "OPENAI_API_KEY";
    pub const OPENAI_MODEL: &str = "OPENAI_MODEL";
    pub const OPENAI_REASONING_MODEL: &str = "OPENAI_REASONING_MODEL";
    pub const OPENAI_EMBEDDING_MODEL: &str = "OPENAI_EMBEDDING_MODEL";
    pub const LLM_TIMEOUT_SECONDS: &str = "LLM_TIMEOUT_SECONDS";
    pub const EMBEDDING_TIMEOUT_SECONDS: &str = "EMBEDDING_TIMEOUT_SECONDS";
    pub const WORKER_ENABLED: &str = "WORKER_ENABLED";
    pub const WORKER_POLL_SECONDS: &str = "WORKER_POLL_SECONDS";
    pub const WORKER_LEASE_SECONDS: &str = "WORKER_LEASE_SECONDS";
    pub const WORKER_MAX_ATTEMPTS: &str = "WORKER_MAX_ATTEMPTS";

    /// Every variable the server reads, for documentation and tests.
    pub const ALL: &[&str] = &[
        APP_NAME,
        APP_VERSION,
        DEBUG,
        HOST,
        PORT,
        DATABASE_URL,
        DATABASE_POOL_SIZE,
        DATABASE_TIMEOUT_SECONDS,
        RUN_MIGRATIONS,
        REDIS_URL,
        CHROMA_HOST,
        CHROMA_PORT,
        SECRET_KEY,
        ALGORITHM,
        ACCESS_TOKEN_EXPIRE_MINUTES,
        OLLAMA_BASE_URL,
        OLLAMA_MODEL,
        OLLAMA_REASONING_MODEL,
        OLLAMA_EMBEDDING_MODEL,
        CHUNK_SIZE,
        CHUNK_OVERLAP,
        MAX_RETRIEVED_CHUNKS,
        VECTOR_CACHE_MAX_BYTES,
        RATE_LIMIT_REQUESTS_PER_MINUTE,
        RATE_LIMIT_BURST,
        RATE_LIMIT_READS_PER_MINUTE,
        RATE_LIMIT_READ_BURST,
        MAX_UPLOAD_BYTES,
        MAX_BODY_BYTES,
        REQUEST_TIMEOUT_SECONDS,
        SHUTDOWN_TIMEOUT_SECONDS,
        CORS_ORIGINS,
        UPLOAD_DIR,
        LOG_FORMAT,
        LOG_LEVEL,
        EMBEDDING_PROVIDER,
        LLM_PROVIDER,
        OPENAI_BASE_URL,
        OPENAI_API_KEY,
        OPENAI_MODEL,
        OPENAI_REASONING_MODEL,
        OPENAI_EMBEDDING_MODEL,
        LLM_TIMEOUT_SECONDS,
        EMBEDDING_TIMEOUT_SECONDS,
        WORKER_ENABLED,
        WORKER_POLL_SECONDS,
        WORKER_LEASE_SECONDS,
        WORKER_MAX_ATTEMPTS,
    ];
}

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

#[derive(Clone, Debug)]
pub struct Config {
    pub app_name: String,
    pub app_version: String,
    pub debug: bool,
    pub host: String,
    pub port: u16,
    pub database_url: Secret,
    pub database_pool_size: u32,
    pub database_timeout: Duration,
    pub run_migrations: bool,
    pub redis_url: Option<Secret>,
    pub chroma_host: Option<String>,
    pub chroma_port: u16,
    /// `None` means: generate a key once and keep it in the database.
    pub secret_key: Option<Secret>,
    pub algorithm: Algorithm,
    pub access_token_expire_minutes: i64,
    pub ollama_base_url: Option<String>,
    pub ollama_model: String,
    pub ollama_reasoning_model: String,
    pub ollama_embedding_model: String,
    pub chunk_size: usize,
    pub chunk_overlap: usize,
    pub max_retrieved_chunks: usize,
    /// Memory for the embedded vector store's in-memory index (least recently used knowledge
    /// bases evicted first); 0: no index, every search reads the database.
    pub vector_cache_max_bytes: usize,
    /// Per-tenant budget for work: every request that is not a read (uploads, queries,
    /// creates, updates, deletes). 0 per minute: no limit.
    pub rate_limit_requests_per_minute: u32,
    pub rate_limit_burst: u32,
    /// Per-tenant budget for cheap reads (GET, HEAD), such as status polling; kept apart so
    /// that polling never uses up the budget for work. 0 per minute: no limit.
    pub rate_limit_reads_per_minute: u32,
    pub rate_limit_read_burst: u32,
    pub max_upload_bytes: u64,
    pub max_body_bytes: usize,
    pub request_timeout: Duration,
    pub shutdown_timeout: Duration,
    pub cors_origins: CorsOrigins,
    pub upload_dir: PathBuf,
    pub log_format: LogFormat,
    pub log_level: String,
    pub embedding_provider: EmbeddingProvider,
    pub llm_provider: LlmProvider,
    pub openai_base_url: String,
    pub openai_api_key: Option<Secret>,
    pub openai_model: String,
    pub openai_reasoning_model: String,
    pub openai_embedding_model: String,
    pub llm_timeout: Duration,
    pub embedding_timeout: Duration,
    /// Run the document worker inside `serve`.
    pub worker_enabled: bool,
    pub worker_poll: Duration,
    /// How long a claim on a document lasts without renewal (a dead worker's documents return
    /// to the queue after this).
    pub worker_lease: Duration,
    pub worker_max_attempts: i32,
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
        // Empty values count as unset, as with most twelve-factor loaders.
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let algorithm = match get(env::ALGORITHM) {
            None => Algorithm::HS256,
            Some(v) => v
                .parse()
                .map_err(|e: String| ConfigError(format!("{}: {e}", env::ALGORITHM)))?,
        };
        let config = Config {
            app_name: get(env::APP_NAME).unwrap_or_else(|| "Oyl RAG Platform".into()),
            app_version: get(env::APP_VERSION).unwrap_or_else(|| env!("CARGO_PKG_VERSION").into()),
            debug: parse_bool(env::DEBUG, get(env::DEBUG), false)?,
            host: get(env::HOST).unwrap_or_else(|| DEFAULT_HOST.into()),
            port: parse_num(env::PORT, get(env::PORT), DEFAULT_PORT)?,
            database_url: Secret::new(
                get(env::DATABASE_URL).unwrap_or_else(|| DEFAULT_DATABASE_URL.into()),
            ),
            database_pool_size: parse_num(
                env::DATABASE_POOL_SIZE,
                get(env::DATABASE_POOL_SIZE),
                10,
            )?,
            database_timeout: Duration::from_secs(parse_num(
                env::DATABASE_TIMEOUT_SECONDS,
                get(env::DATABASE_TIMEOUT_SECONDS),
                5,
            )?),
            run_migrations: parse_bool(env::RUN_MIGRATIONS, get(env::RUN_MIGRATIONS), true)?,
            redis_url: get(env::REDIS_URL).map(Secret::new),
            chroma_host: get(env::CHROMA_HOST),
            chroma_port: parse_num(env::CHROMA_PORT, get(env::CHROMA_PORT), 8000)?,
            secret_key: get(env::SECRET_KEY).map(Secret::new),
            algorithm,
            access_token_expire_minutes: parse_num(
                env::ACCESS_TOKEN_EXPIRE_MINUTES,
                get(env::ACCESS_TOKEN_EXPIRE_MINUTES),
                60,
            )?,
            ollama_base_url: get(env::OLLAMA_BASE_URL),
            ollama_model: get(env::OLLAMA_MODEL).unwrap_or_else(|| "llama3.2".into()),
            ollama_reasoning_model: get(env::OLLAMA_REASONING_MODEL)
                .unwrap_or_else(|| "deepseek-r1".into()),
            ollama_embedding_model: get(env::OLLAMA_EMBEDDING_MODEL)
                .unwrap_or_else(|| "nomic-embed-text".into()),
            chunk_size: parse_num(env::CHUNK_SIZE, get(env::CHUNK_SIZE), 1000)?,
            chunk_overlap: parse_num(env::CHUNK_OVERLAP, get(env::CHUNK_OVERLAP), 200)?,
            max_retrieved_chunks: parse_num(
                env::MAX_RETRIEVED_CHUNKS,
                get(env::MAX_RETRIEVED_CHUNKS),
                5,
            )?,
            vector_cache_max_bytes: parse_num(
                env::VECTOR_CACHE_MAX_BYTES,
                get(env::VECTOR_CACHE_MAX_BYTES),
                DEFAULT_VECTOR_CACHE_MAX_BYTES,
            )?,
            rate_limit_requests_per_minute: parse_num(
                env::RATE_LIMIT_REQUESTS_PER_MINUTE,
                get(env::RATE_LIMIT_REQUESTS_PER_MINUTE),
                120,
            )?,
            rate_limit_burst: parse_num(env::RATE_LIMIT_BURST, get(env::RATE_LIMIT_BURST), 30)?,
            rate_limit_reads_per_minute: parse_num(
                env::RATE_LIMIT_READS_PER_MINUTE,
                get(env::RATE_LIMIT_READS_PER_MINUTE),
                600,
            )?,
            rate_limit_read_burst: parse_num(
                env::RATE_LIMIT_READ_BURST,
                get(env::RATE_LIMIT_READ_BURST),
                120,
            )?,
            max_upload_bytes: parse_num(
                env::MAX_UPLOAD_BYTES,
                get(env::MAX_UPLOAD_BYTES),
                50 * 1024 * 1024,
            )?,
            max_body_bytes: parse_num(env::MAX_BODY_BYTES, get(env::MAX_BODY_BYTES), 1024 * 1024)?,
            request_timeout: Duration::from_secs(parse_num(
                env::REQUEST_TIMEOUT_SECONDS,
                get(env::REQUEST_TIMEOUT_SECONDS),
                60,
            )?),
            shutdown_timeout: Duration::from_secs(parse_num(
                env::SHUTDOWN_TIMEOUT_SECONDS,
                get(env::SHUTDOWN_TIMEOUT_SECONDS),
                25,
            )?),
            cors_origins: parse_cors(get(env::CORS_ORIGINS)),
            upload_dir: PathBuf::from(
                get(env::UPLOAD_DIR).unwrap_or_else(|| DEFAULT_UPLOAD_DIR.into()),
            ),
            log_format: match get(env::LOG_FORMAT)
                .as_deref()
                .map(str::to_ascii_lowercase)
                .as_deref()
            {
                None | Some("json") => LogFormat::Json,
                Some("pretty") | Some("text") => LogFormat::Pretty,
                Some(other) => {
                    return Err(ConfigError(format!(
                        "{}: expected `json` or `pretty`, got `{other}`",
                        env::LOG_FORMAT
                    )));
                }
            },
            log_level: get(env::LOG_LEVEL).unwrap_or_else(|| "info".into()),
            embedding_provider: match get(env::EMBEDDING_PROVIDER)
                .map(|v| v.to_ascii_lowercase())
                .as_deref()
            {
                None | Some("hashing") | Some("builtin") => EmbeddingProvider::Hashing,
                Some("ollama") => EmbeddingProvider::Ollama,
                Some("openai") => EmbeddingProvider::OpenAi,
                Some(other) => {
                    return Err(ConfigError(format!(
                        "{}: expected hashing, ollama or openai, got `{other}`",
                        env::EMBEDDING_PROVIDER
                    )));
                }
            },
            llm_provider: match get(env::LLM_PROVIDER)
                .map(|v| v.to_ascii_lowercase())
                .as_deref()
            {
                None | Some("auto") if get(env::OLLAMA_BASE_URL).is_some() => LlmProvider::Ollama,
                None | Some("auto") | Some("none") | Some("extractive") => LlmProvider::None,
                Some("ollama") => LlmProvider::Ollama,
                Some("openai") => LlmProvider::OpenAi,
                Some(other) => {
                    return Err(ConfigError(format!(
                        "{}: expected auto, none, ollama or openai, got `{other}`",
                        env::LLM_PROVIDER
                    )));
                }
            },
            openai_base_url: get(env::OPENAI_BASE_URL)
                .unwrap_or_else(|| "https://api.openai.com".into()),
            openai_api_key: get(env::OPENAI_API_KEY).map(Secret::new),
            openai_model: get(env::OPENAI_MODEL).unwrap_or_else(|| "gpt-4o-mini".into()),
            openai_reasoning_model: get(env::OPENAI_REASONING_MODEL)
                .unwrap_or_else(|| "o3-mini".into()),
            openai_embedding_model: get(env::OPENAI_EMBEDDING_MODEL)
                .unwrap_or_else(|| "text-embedding-3-small".into()),
            llm_timeout: Duration::from_secs(parse_num(
                env::LLM_TIMEOUT_SECONDS,
                get(env::LLM_TIMEOUT_SECONDS),
                60,
            )?),
            embedding_timeout: Duration::from_secs(parse_num(
                env::EMBEDDING_TIMEOUT_SECONDS,
                get(env::EMBEDDING_TIMEOUT_SECONDS),
                60,
            )?),
            worker_enabled: parse_bool(env::WORKER_ENABLED, get(env::WORKER_ENABLED), true)?,
            worker_poll: Duration::from_millis(parse_num(
                env::WORKER_POLL_SECONDS,
                get(env::WORKER_POLL_SECONDS).map(|v| seconds_to_millis(&v)),
                2000,
            )?),
            worker_lease: Duration::from_secs(parse_num(
                env::WORKER_LEASE_SECONDS,
                get(env::WORKER_LEASE_SECONDS),
                300,
            )?),
            worker_max_attempts: parse_num(
                env::WORKER_MAX_ATTEMPTS,
                get(env::WORKER_MAX_ATTEMPTS),
                3,
            )?,
        };
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

fn parse_cors(value: Option<String>) -> CorsOrigins {
    match value {
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
    }
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
}
