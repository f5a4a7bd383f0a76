use clap::{Parser, Subcommand};
use oyl_operator::context::Context;
use oyl_operator::controller;
use oyl_operator::{http, leader, metrics::Metrics, render, telemetry};
use std::net::SocketAddr;
use std::sync::Arc;

/// Kubernetes operator for the Oyl multi-tenant RAG platform.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the controller (the default).
    Run(RunArgs),
    /// Print the OylPlatform CustomResourceDefinition as YAML.
    Crd,
    /// Request a backup of a platform now (sets the `oyl.dev/backup-now` annotation; the
    /// operator runs a one-off Job from the backup CronJob's template).
    Backup {
        /// The OylPlatform.
        name: String,
        /// Its namespace (default: the kubeconfig's).
        #[arg(short, long)]
        namespace: Option<String>,
    },
    /// Print, as one YAML stream, the objects the operator would apply for an OylPlatform.
    Render {
        /// The OylPlatform manifest ('-' for stdin).
        #[arg(short = 'f', long = "filename")]
        file: String,
        /// Namespace to assume when the manifest has none.
        #[arg(short, long)]
        namespace: Option<String>,
    },
}

#[derive(clap::Args)]
struct RunArgs {
    /// Watch only this namespace (default: all namespaces).
    #[arg(long, env = "WATCH_NAMESPACE")]
    namespace: Option<String>,
    /// Address of the /metrics, /healthz and /readyz endpoints.
    #[arg(long, env = "METRICS_ADDR", default_value = "0.0.0.0:8080")]
    metrics_addr: SocketAddr,
    /// Run only while holding the Lease `--lease-name` in POD_NAMESPACE, so several replicas
    /// can run with one active.
    #[arg(long, env = "LEADER_ELECT")]
    leader_elect: bool,
    /// The leader-election Lease: one per installation, so two installations in one namespace
    /// (say, one per watched namespace) do not take turns with each other's leadership.
    #[arg(long, env = "LEASE_NAME", default_value = "oyl-operator")]
    lease_name: String,
    /// Log as plain text instead of JSON lines.
    #[arg(long, env = "LOG_TEXT")]
    log_text: bool,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli
        .command
        .unwrap_or(Command::Run(RunArgs::default_from_env()))
    {
        Command::Crd => emit(&render::crd_yaml()),
        Command::Render { file, namespace } => read(&file)
            .and_then(|yaml| render::render(&yaml, namespace.as_deref()))
            .and_then(|out| emit(&out)),
        Command::Run(args) => run(args).await.map_err(|e| e.to_string()),
        Command::Backup { name, namespace } => request_backup(&name, namespace.as_deref())
            .await
            .map_err(|e| e.to_string()),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("oyl-operator: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

impl RunArgs {
    /// `oyl-operator` with no subcommand behaves as `oyl-operator run` with its defaults.
    fn default_from_env() -> Self {
        #[derive(Parser)]
        struct Only {
            #[command(flatten)]
            args: RunArgs,
        }
        Only::parse_from(["oyl-operator"]).args
    }
}

/// Writes to stdout; a closed pipe (`| head`) is not an error worth a panic.
fn emit(s: &str) -> Result<(), String> {
    use std::io::Write;
    match std::io::stdout().lock().write_all(s.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(format!("writing stdout: {e}")),
        _ => Ok(()),
    }
}

fn read(file: &str) -> Result<String, String> {
    if file == "-" {
        std::io::read_to_string(std::io::stdin()).map_err(|e| format!("reading stdin: {e}"))
    } else {
        std::fs::read_to_string(file).map_err(|e| format!("reading {file}: {e}"))
    }
}

async fn request_backup(
    name: &str,
    namespace: Option<&str>,
) -> controller::anyhow_like::Result<()> {
    use kube::api::{Api, Patch, PatchParams};
    use oyl_operator::desired::backup::{BACKUP_NOW, on_demand_job};
    let client = kube::Client::try_default().await?;
    let api: Api<oyl_operator::crd::OylPlatform> = match namespace {
        Some(ns) => Api::namespaced(client, ns),
        None => Api::default_namespaced(client),
    };
    let request = k8s_openapi::jiff::Timestamp::now().to_string();
    let patch = serde_json::json!({"metadata": {"annotations": {BACKUP_NOW: request}}});
    let p = api
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    let job = on_demand_job(&p, &request);
    println!(
        "backup requested: Job {} will run",
        job.metadata.name.unwrap_or_default()
    );
    Ok(())
}

async fn run(args: RunArgs) -> controller::anyhow_like::Result<()> {
    telemetry::init(!args.log_text);
    let client = kube::Client::try_default().await?;
    let (children, writers) = oyl_operator::kinds::stores();
    let ctx = Arc::new(Context::new(client, Metrics::new(), children));
    let listener = tokio::net::TcpListener::bind(args.metrics_addr).await?;
    tracing::info!(addr = %args.metrics_addr, "serving /metrics, /healthz, /readyz");
    let server = axum::serve(listener, http::router(ctx.clone()));
    let elected = async {
        if args.leader_elect {
            let namespace = std::env::var("POD_NAMESPACE").unwrap_or_else(|_| "default".into());
            let identity = std::env::var("POD_NAME").unwrap_or_else(|_| {
                format!(
                    "oyl-operator-{}",
                    oyl_operator::desired::secrets::random_hex(4).unwrap_or_default()
                )
            });
            let election = leader::LeaderElection::new(
                ctx.client.clone(),
                &namespace,
                &args.lease_name,
                &identity,
            );
            // A follower is healthy and ready to take over; readiness must not depend on leading.
            ctx.ready.store(true, std::sync::atomic::Ordering::SeqCst);
            election.acquire().await?;
            tokio::select! {
                r = controller::run(ctx.clone(), args.namespace, writers) => r,
                () = election.hold() => Err("leadership lost; exiting so a new leader takes over".into()),
            }
        } else {
            controller::run(ctx.clone(), args.namespace, writers).await
        }
    };
    tokio::select! {
        r = elected => r,
        r = server => r.map_err(Into::into),
    }
}
