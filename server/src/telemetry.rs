//! Logs: JSON lines (default) or human-readable, filtered by `LOG_LEVEL`
//! (e.g. `info` or `info,oyl_server=debug,sqlx=warn`).

use std::io::IsTerminal;
use std::str::FromStr;

use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::{LogFormat, env};

/// Installs the global subscriber. Call once, from the binary.
pub fn init(format: LogFormat, level: &str) -> anyhow::Result<()> {
    let mut spec = level.to_string();
    // sqlx logs every statement at debug and slow ones at warn; keep the default quiet.
    if !spec.contains("sqlx") {
        spec.push_str(",sqlx=warn");
    }
    let filter = Targets::from_str(&spec)
        .map_err(|e| anyhow::anyhow!("{}: cannot parse `{level}`: {e}", env::LOG_LEVEL))?;
    let registry = tracing_subscriber::registry().with(filter);
    match format {
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false)
                    .with_writer(std::io::stderr),
            )
            .try_init()?,
        LogFormat::Pretty => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(std::io::stderr().is_terminal())
                    .with_writer(std::io::stderr),
            )
            .try_init()?,
    }
    Ok(())
}
