//! The command line: `serve` (default), `worker`, `migrate`, `smoke`, `token`, `seed`.

use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use uuid::Uuid;

use crate::config::Config;
use crate::db::{self, Db, Page};
use crate::jwt::{Role, claims_for};
use crate::startup::{Application, open_database, run_worker, shutdown_signal, signing_keys};
use crate::telemetry;
use crate::tenancy::TenantScope;

#[derive(Debug, Parser)]
#[command(
    name = "oyl-server",
    version,
    about = "The Oyl multi-tenant RAG platform API server"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the API (the default).
    Serve(ServeArgs),
    /// Process the document queue; serves only /livez, /readyz, /health and /metrics on HOST:PORT.
    /// Run several to scale processing out.
    Worker,
    /// Apply pending database migrations and exit (what the operator's migration Job runs).
    Migrate {
        /// Keep retrying while the database is unreachable, up to this many seconds.
        #[arg(long, default_value_t = 60)]
        wait_seconds: u64,
    },
    /// Check a platform before the API takes traffic (what the operator runs after a restore):
    /// start the API on a loopback port, wait for `/readyz` to report every dependency `ok`, and
    /// check that the vector store holds the newest completed document's chunks and a query
    /// finds it. Prints what held; exits non-zero naming what did not.
    Smoke {
        /// How long the dependencies may take to come back, in seconds.
        #[arg(long, default_value_t = 300)]
        wait_seconds: u64,
        /// Also write the outcome (what held, or what did not) to this file: the operator passes
        /// the container's termination message file and shows it in the status.
        #[arg(long, value_name = "FILE")]
        report: Option<std::path::PathBuf>,
    },
    /// Print a JWT signed with the configured key.
    Token(TokenArgs),
    /// Create a demo tenant with a workspace, teammate and assistant; print their ids, an API key
    /// and a token as KEY=value lines.
    Seed {
        #[arg(long, default_value = "Demo Tenant")]
        name: String,
    },
}

#[derive(Debug, Args, Default)]
pub struct ServeArgs {
    /// Address to bind (overrides HOST; default 0.0.0.0).
    #[arg(long)]
    pub host: Option<String>,
    /// Port to bind (overrides PORT; default 8000).
    #[arg(long)]
    pub port: Option<u16>,
}

#[derive(Debug, Args)]
pub struct TokenArgs {
    #[command(flatten)]
    pub subject: TokenSubject,
    /// Lifetime in minutes (default ACCESS_TOKEN_EXPIRE_MINUTES).
    #[arg(long)]
    pub expires_minutes: Option<i64>,
}

#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct TokenSubject {
    /// An admin token (creates and lists tenants, acts in any tenant).
    #[arg(long)]
    pub admin: bool,
    /// A token for this tenant only.
    #[arg(long, value_name = "TENANT_ID")]
    pub tenant: Option<Uuid>,
}

/// Entry point of the binary; returns the process exit code.
pub fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("oyl-server: configuration error: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    if let Err(e) = telemetry::init(config.log_format, &config.log_level) {
        eprintln!("oyl-server: {e:#}");
        return std::process::ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("oyl-server: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli, config)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "fatal");
            eprintln!("oyl-server: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

pub async fn run(cli: Cli, mut config: Config) -> anyhow::Result<()> {
    match cli.command.unwrap_or(Command::Serve(ServeArgs::default())) {
        Command::Serve(args) => {
            if let Some(host) = args.host {
                config.host = host;
            }
            if let Some(port) = args.port {
                config.port = port;
            }
            let app = Application::build(config).await?;
            app.run_until(shutdown_signal()).await
        }
        Command::Worker => run_worker(config, shutdown_signal()).await,
        Command::Migrate { wait_seconds } => {
            migrate(&config, Duration::from_secs(wait_seconds)).await
        }
        Command::Smoke {
            wait_seconds,
            report,
        } => {
            let outcome = crate::smoke::run(config, Duration::from_secs(wait_seconds)).await;
            if let Some(file) = report {
                let line = match &outcome {
                    Ok(passed) => passed.clone(),
                    Err(e) => format!("smoke test failed: {e:#}"),
                };
                if let Err(e) = std::fs::write(&file, line) {
                    tracing::warn!(file = %file.display(), error = %e, "cannot write the report");
                }
            }
            println!("{}", outcome?);
            Ok(())
        }
        Command::Token(args) => {
            let db = open_database(&config).await?;
            let keys = signing_keys(&config, &db).await?;
            let minutes = args
                .expires_minutes
                .unwrap_or(config.access_token_expire_minutes);
            if minutes <= 0 {
                bail!("--expires-minutes must be positive");
            }
            let now = chrono::Utc::now().timestamp();
            let claims = match args.subject.tenant {
                Some(tenant_id) => {
                    if !db::tenants::exists(&db, tenant_id).await? {
                        bail!("no tenant with id {tenant_id}");
                    }
                    claims_for("cli", Role::Tenant, Some(tenant_id), now, minutes)
                }
                None => claims_for("cli-admin", Role::Admin, None, now, minutes),
            };
            println!("{}", keys.encode(&claims));
            db.close().await;
            Ok(())
        }
        Command::Seed { name } => seed(&config, &name).await,
    }
}

async fn migrate(config: &Config, wait: Duration) -> anyhow::Result<()> {
    let db = Db::connect_lazy(config)?;
    db.wait_until_reachable(wait).await?;
    let pending = db.pending_migrations().await?;
    db.migrate().await?;
    let remaining = db.pending_migrations().await?;
    if !remaining.is_empty() {
        bail!("migrations still pending after migrate: {remaining:?}");
    }
    println!(
        "database is up to date ({} migration(s) applied now)",
        pending.len()
    );
    db.close().await;
    Ok(())
}

async fn seed(config: &Config, name: &str) -> anyhow::Result<()> {
    let db = open_database(config).await?;
    let keys = signing_keys(config, &db).await?;
    let existing = db::tenants::list(
        &db,
        &Page {
            limit: 1,
            offset: 0,
            name: Some(name.to_string()),
        },
    )
    .await?
    .0;
    let (tenant, api_key) = match existing.into_iter().next() {
        Some(tenant) => {
            let key = db::tenants::add_api_key(&db, &TenantScope::trusted(tenant.id)).await?;
            (tenant, key)
        }
        None => match db::tenants::create(&db, name).await {
            Ok(created) => created,
            Err(db::tenants::WriteError::DuplicateName) => {
                bail!("tenant {name} was created concurrently; run seed again")
            }
            Err(db::tenants::WriteError::Db(e)) => return Err(e.into()),
        },
    };
    let scope = TenantScope::trusted(tenant.id);
    let workspace = match db::workspaces::list(
        &db,
        &scope,
        &Page {
            name: Some("Demo Workspace".into()),
            ..Page::default()
        },
    )
    .await?
    .0
    .pop()
    {
        Some(w) => w,
        None => db::workspaces::create(&db, &scope, "Demo Workspace")
            .await?
            .context("tenant vanished")?,
    };
    let teammate = match db::teammates::list(
        &db,
        &scope,
        workspace.id,
        &Page {
            name: Some("Demo Teammate".into()),
            ..Page::default()
        },
    )
    .await?
    .0
    .pop()
    {
        Some(t) => t,
        None => db::teammates::create(&db, &scope, workspace.id, "Demo Teammate", None)
            .await?
            .context("workspace vanished")?,
    };
    let assistant = match db::assistants::list(
        &db,
        &scope,
        teammate.id,
        &Page {
            name: Some("Demo Assistant".into()),
            ..Page::default()
        },
    )
    .await?
    .0
    .pop()
    {
        Some(a) => a,
        None => db::assistants::create(&db, &scope, teammate.id, "Demo Assistant", None)
            .await?
            .context("teammate vanished")?,
    };
    let token = keys.encode(&claims_for(
        "seed",
        Role::Tenant,
        Some(tenant.id),
        chrono::Utc::now().timestamp(),
        config.access_token_expire_minutes,
    ));
    println!("TENANT_ID={}", tenant.id);
    println!("API_KEY={api_key}");
    println!("WORKSPACE_ID={}", workspace.id);
    println!("TEAMMATE_ID={}", teammate.id);
    println!("ASSISTANT_ID={}", assistant.id);
    println!("TOKEN={token}");
    db.close().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_line_is_well_formed() {
        Cli::command().debug_assert();
        let parse = |args: &[&str]| {
            Cli::try_parse_from(std::iter::once("oyl-server").chain(args.iter().copied()))
        };
        assert!(
            parse(&[]).unwrap().command.is_none(),
            "serve is the default"
        );
        assert!(
            parse(&["token"]).is_err(),
            "token needs --admin or --tenant"
        );
        assert!(parse(&["token", "--admin", "--tenant", &Uuid::nil().to_string()]).is_err());
        assert!(parse(&["token", "--tenant", "not-a-uuid"]).is_err());
        match parse(&["serve", "--host", "127.0.0.1", "--port", "9000"])
            .unwrap()
            .command
        {
            Some(Command::Serve(a)) => {
                assert_eq!((a.host.as_deref(), a.port), (Some("127.0.0.1"), Some(9000)));
            }
            other => panic!("{other:?}"),
        }
    }
}
