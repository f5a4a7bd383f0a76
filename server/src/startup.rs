//! Building and running the application from one [`Config`].

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use tokio::net::TcpListener;

use crate::api::build_router;
use crate::cache::{Cache, InMemoryCache, RedisCache};
use crate::config::{Config, env};
use crate::db::{self, Db};
use crate::jwt::JwtKeys;
use crate::metrics::Metrics;
use crate::rag::Rag;
use crate::rag::chroma::ChromaStore;
use crate::rag::providers;
use crate::rag::vector::{DbVectorStore, VectorStore};
use crate::rag::worker;
use crate::ratelimit::{InMemoryLimiter, RateLimiter, RedisLimiter};
use crate::state::{AppState, Inner};
use crate::storage::Storage;

pub struct Application {
    listener: TcpListener,
    router: Router,
    state: AppState,
}

/// Opens the database pool and applies migrations when `RUN_MIGRATIONS` is on. When the start
/// needs the database (migrations, or the signing key kept there), an unreachable one is waited
/// for (`DATABASE_WAIT_SECONDS`) instead of exiting: on a fresh install the API would otherwise
/// crash-loop with growing back-off until PostgreSQL is up.
pub async fn open_database(config: &Config) -> anyhow::Result<Db> {
    let db = Db::connect_lazy(config)?;
    if config.run_migrations || config.secret_key.is_none() {
        db.wait_until_reachable(config.database_wait).await?;
    }
    if config.run_migrations {
        db.migrate().await?;
    }
    Ok(db)
}

/// The key tokens are signed with: `SECRET_KEY`, or the one generated once and kept in the
/// database (so the server and the CLI agree across restarts and replicas).
pub async fn signing_keys(config: &Config, db: &Db) -> anyhow::Result<JwtKeys> {
    config.check_secret_key()?;
    let secret = match &config.secret_key {
        Some(key) => {
            if let Some(warning) = config.weak_secret_warning() {
                tracing::warn!("{warning}");
            }
            key.expose().to_string()
        }
        None => {
            let candidate = crate::keys::generate_secret_key();
            let stored = db::settings::get_or_insert(
                db,
                db::settings::GENERATED_SECRET_KEY,
                &candidate,
            )
            .await
            .with_context(|| {
                format!(
                    "{} is unset, so the signing key is kept in the database, which is not usable \
                         (run `oyl-server migrate` first, or set {})",
                    env::SECRET_KEY,
                    env::SECRET_KEY
                )
            })?;
            tracing::warn!(
                "{} is not set: using a random key generated once and stored in the database; \
                 set {} (e.g. `openssl rand -hex 32`) in production",
                env::SECRET_KEY,
                env::SECRET_KEY
            );
            stored
        }
    };
    Ok(JwtKeys::new(config.algorithm, secret.into_bytes()))
}

/// Everything but the listener: configuration checks, database (migrated when configured),
/// signing key, upload directory, providers. Shared by `serve` and `worker`.
pub async fn build_state(config: Config) -> anyhow::Result<AppState> {
    config.check_secret_key()?;
    providers::install_crypto_provider();
    let db = open_database(&config).await?;
    let jwt = signing_keys(&config, &db).await?;
    let storage = Storage::new(&config.upload_dir);
    storage.check_writable().await.with_context(|| {
        format!(
            "the upload directory {} ({}) is not writable",
            config.upload_dir.display(),
            env::UPLOAD_DIR
        )
    })?;
    let metrics = Arc::new(Metrics::new(&config.app_version));
    let cache: Arc<dyn Cache> = match &config.redis_url {
        Some(url) => Arc::new(
            RedisCache::new(
                url.expose(),
                config.database_timeout,
                &config.cache_namespace,
            )
            .map_err(anyhow::Error::msg)?,
        ),
        None => Arc::new(InMemoryCache::default()),
    };
    let rag = Rag {
        config: Arc::new(config.clone()),
        db: db.clone(),
        storage: storage.clone(),
        metrics: metrics.clone(),
        cache: cache.clone(),
        embedder: providers::embedder(&config).map_err(anyhow::Error::msg)?,
        llm: providers::llm(&config).map_err(anyhow::Error::msg)?,
        vectors: vector_store(&config, &db)?,
        queue: Arc::new(tokio::sync::Notify::new()),
    };
    Ok(AppState::new(Inner {
        limiter: rate_limiter(&config)?,
        config,
        db,
        jwt,
        metrics,
        storage,
        cache,
        rag,
    }))
}

fn vector_store(config: &Config, db: &Db) -> anyhow::Result<Arc<dyn VectorStore>> {
    Ok(match config.chroma_url() {
        Some(url) => Arc::new(
            ChromaStore::new(
                &url,
                config
                    .database_timeout
                    .max(std::time::Duration::from_secs(10)),
            )
            .map_err(anyhow::Error::msg)?,
        ),
        None => Arc::new(DbVectorStore::new(
            db.clone(),
            config.vector_cache_max_bytes,
        )),
    })
}

fn rate_limiter(config: &Config) -> anyhow::Result<Arc<dyn RateLimiter>> {
    Ok(match &config.redis_url {
        Some(url) => Arc::new(
            RedisLimiter::new(url.expose(), config.database_timeout).map_err(anyhow::Error::msg)?,
        ),
        None => Arc::new(InMemoryLimiter::default()),
    })
}

impl Application {
    /// Validates the configuration, opens (and migrates) the database, prepares the upload
    /// directory and binds the listener. Errors here stop the process with a clear message.
    pub async fn build(config: Config) -> anyhow::Result<Application> {
        let bind = config.bind_address();
        let state = build_state(config).await?;
        let listener = TcpListener::bind(&bind)
            .await
            .with_context(|| format!("cannot listen on {bind}"))?;
        let router = build_router(state.clone());
        Ok(Application {
            listener,
            router,
            state,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` resolves, then stops accepting connections and lets in-flight
    /// requests finish, for at most `SHUTDOWN_TIMEOUT_SECONDS`.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Application {
            listener,
            router,
            state,
        } = self;
        let grace = state.config.shutdown_timeout;
        let (tx, mut stop) = tokio::sync::watch::channel(false);
        let mut stop_deadline = tx.subscribe();
        tokio::spawn(async move {
            shutdown.await;
            let _ = tx.send(true);
        });
        tracing::info!(
            address = %listener.local_addr()?,
            version = %state.config.app_version,
            database = state.db.backend().as_str(),
            "serving"
        );
        let worker = state.config.worker_enabled.then(|| {
            let (stop_worker, stopped) = tokio::sync::watch::channel(false);
            (
                stop_worker,
                tokio::spawn(worker::run(state.rag.clone(), stopped)),
            )
        });
        let server = axum::serve(listener, router).with_graceful_shutdown(async move {
            let _ = stop.wait_for(|s| *s).await;
            tracing::info!("shutdown requested: finishing in-flight requests");
        });
        let deadline = async move {
            let _ = stop_deadline.wait_for(|s| *s).await;
            tokio::time::sleep(grace).await;
        };
        tokio::select! {
            result = server => result.context("server error")?,
            () = deadline => tracing::warn!(grace_secs = grace.as_secs(), "shutdown grace period over: dropping unfinished requests"),
        }
        if let Some((stop_worker, handle)) = worker {
            let _ = stop_worker.send(true);
            // The document being processed gets the rest of the grace period; an unfinished one
            // returns to the queue when its lease expires.
            if tokio::time::timeout(grace, handle).await.is_err() {
                tracing::warn!("worker did not stop in time");
            }
        }
        state.db.close().await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// `oyl-server worker`: processes the document queue until SIGTERM. It serves only the
/// operational endpoints (`/livez`, `/readyz`, `/health`, `/metrics`) on `HOST:PORT`, for probes
/// and scraping.
pub async fn run_worker(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let bind = config.bind_address();
    let state = build_state(config).await?;
    let listener = TcpListener::bind(&bind)
        .await
        .with_context(|| format!("cannot listen on {bind}"))?;
    tracing::info!(address = %listener.local_addr()?, "worker serving operational endpoints");
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut http_stopped = stop.subscribe();
    tokio::spawn(async move {
        shutdown.await;
        tracing::info!("shutdown requested: finishing the current document");
        let _ = stop.send(true);
    });
    let ops = axum::serve(listener, crate::api::ops_router(state.clone())).with_graceful_shutdown(
        async move {
            let _ = http_stopped.wait_for(|s| *s).await;
        },
    );
    let http = tokio::spawn(async move { ops.await });
    worker::run(state.rag.clone(), stopped).await;
    let _ = http.await;
    state.db.close().await;
    Ok(())
}

/// Resolves on SIGTERM (Kubernetes) or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
