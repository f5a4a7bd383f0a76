//! The background worker: takes pending documents from the queue (the documents table), oldest
//! first, and processes them. Runs inside `oyl-server serve` (unless `WORKER_ENABLED=false`) and
//! alone as `oyl-server worker`, so it can be scaled separately. Several workers can run at once:
//! claims are atomic, and an expired lease (a worker that died) puts the document back.

use std::time::Duration;

use tokio::sync::watch;

use super::Rag;
use crate::db;
use crate::models::DocumentStatus;
use crate::rag::pipeline::{lease_until, process_claimed};

/// Runs until `stop` turns true; the document being processed is finished first.
pub async fn run(rag: Rag, mut stop: watch::Receiver<bool>) {
    tracing::info!(
        poll_secs = rag.config.worker_poll.as_secs_f64(),
        lease_secs = rag.config.worker_lease.as_secs(),
        "worker started"
    );
    loop {
        if *stop.borrow() {
            break;
        }
        match db::documents::reclaim_expired(&rag.db, rag.config.worker_max_attempts).await {
            Ok((0, 0)) => {}
            Ok((requeued, failed)) => tracing::warn!(
                requeued,
                failed,
                "reclaimed documents of a worker that stopped"
            ),
            Err(e) => tracing::debug!(error = %e, "could not check for expired claims"),
        }
        let claim_id = uuid::Uuid::new_v4();
        match db::documents::claim_next(&rag.db, claim_id, lease_until(&rag)).await {
            Ok(Some(document)) => {
                process_claimed(&rag, &document, claim_id).await;
                continue;
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "could not read the document queue"),
        }
        tokio::select! {
            () = rag.queue.notified() => {}
            () = tokio::time::sleep(rag.config.worker_poll) => {}
            _ = stop.changed() => {}
        }
    }
    tracing::info!("worker stopped");
}

/// Waits (up to `timeout`) until a document is no longer `processing`, for callers that found it
/// claimed by someone else.
pub async fn wait_until_settled(
    rag: &Rag,
    scope: &crate::tenancy::TenantScope,
    id: uuid::Uuid,
    timeout: Duration,
) -> Option<crate::models::Document> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let doc = db::documents::get(&rag.db, scope, id)
            .await
            .ok()
            .flatten()?;
        if doc.processed_status != DocumentStatus::Processing
            || tokio::time::Instant::now() >= deadline
        {
            return Some(doc);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
