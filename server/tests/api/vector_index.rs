//! The embedded vector store's in-memory index: the same results as reading the database, bounded
//! by bytes (least recently used first), following changes made by another process and deletes.
//! The stores are built here on the test database (SQLite or PostgreSQL) whatever store the
//! application itself uses; the knowledge bases and documents come from the API.

use oyl_server::db::{self, Db};
use oyl_server::models::DocumentStatus;
use oyl_server::rag::embed::HashingEmbedder;
use oyl_server::rag::vector::{DbVectorStore, ScoredChunk, VectorStore};
use oyl_server::tenancy::TenantScope;
use uuid::Uuid;

use crate::helpers::{TenantCtx, TestApp, raw_db, spawn_app};

const MIB: usize = 1024 * 1024;

fn embed(texts: &[&str]) -> Vec<Vec<f32>> {
    let texts: Vec<String> = texts.iter().map(|t| t.to_string()).collect();
    HashingEmbedder::new(HashingEmbedder::DEFAULT_DIM).embed_sync(&texts)
}

/// A knowledge base of a new assistant: (tenant, knowledge base, assistant).
async fn knowledge_base(app: &TestApp, t: &TenantCtx) -> (Uuid, Uuid, String) {
    let (_, _, asst) = app.create_tree(t).await;
    let kb = app
        .get(&t.caller, &format!("/api/v1/assistants/{asst}"))
        .await
        .body["knowledge_base_id"]
        .as_str()
        .unwrap()
        .to_string();
    (
        Uuid::parse_str(&t.id).unwrap(),
        Uuid::parse_str(&kb).unwrap(),
        asst,
    )
}

#[allow(clippy::too_many_arguments)]
/// Uploads a document and processes it with `store`, one chunk per text, as the pipeline does
/// (claim, replace the chunks, record `completed` unless `complete` is false).
async fn add_document(
    app: &TestApp,
    db: &Db,
    store: &DbVectorStore,
    t: &TenantCtx,
    (tenant, kb, asst): &(Uuid, Uuid, String),
    name: &str,
    texts: &[&str],
    complete: bool,
) -> Uuid {
    let id = app
        .upload(&t.caller, asst, name, b"placeholder".to_vec())
        .await
        .id();
    let id = Uuid::parse_str(&id).unwrap();
    process(db, store, *tenant, *kb, id, texts, complete).await;
    id
}

async fn process(
    db: &Db,
    store: &DbVectorStore,
    tenant: Uuid,
    kb: Uuid,
    document: Uuid,
    texts: &[&str],
    complete: bool,
) -> Uuid {
    let scope = TenantScope::trusted(tenant);
    let claim = Uuid::new_v4();
    let lease = chrono::Utc::now() + chrono::Duration::minutes(5);
    db::documents::claim(db, &scope, document, true, claim, lease)
        .await
        .unwrap()
        .expect("claimable");
    let chunks: Vec<(String, Vec<f32>)> = texts
        .iter()
        .map(|t| t.to_string())
        .zip(embed(texts))
        .collect();
    store
        .replace_document(&scope, kb, document, "", &chunks)
        .await
        .unwrap();
    if complete {
        assert!(
            db::documents::finish(
                db,
                document,
                claim,
                DocumentStatus::Completed,
                None,
                chunks.len() as i64
            )
            .await
            .unwrap()
        );
    }
    claim
}

/// Comparable form of results: scores bit for bit.
fn plain(results: &[ScoredChunk]) -> Vec<(Uuid, String, i32, String, u32)> {
    results
        .iter()
        .map(|c| {
            (
                c.document_id,
                c.file_name.clone(),
                c.chunk_index,
                c.content.clone(),
                c.score.to_bits(),
            )
        })
        .collect()
}

async fn search(
    store: &DbVectorStore,
    (tenant, kb, _): &(Uuid, Uuid, String),
    query: &str,
    k: usize,
) -> Vec<ScoredChunk> {
    store
        .search(&TenantScope::trusted(*tenant), *kb, &embed(&[query])[0], k)
        .await
        .unwrap()
}

/// The index answers exactly as the scan of the database (the store without index) does.
async fn assert_same_as_scan(
    store: &DbVectorStore,
    scan: &DbVectorStore,
    kb: &(Uuid, Uuid, String),
    query: &str,
    k: usize,
) -> Vec<ScoredChunk> {
    let got = search(store, kb, query, k).await;
    assert_eq!(
        plain(&got),
        plain(&search(scan, kb, query, k).await),
        "{query:?}, k = {k}"
    );
    got
}

const FACTS: &[&str] = &[
    "The invoice is due within 30 days of delivery.",
    "Penguins live in the southern hemisphere.",
    "The vault combination is kept by the night manager.",
    "Invoices above 10 000 euros need a second signature.",
    "Délais de paiement: trente jours fin de mois.",
];

#[tokio::test]
async fn the_index_answers_exactly_as_the_database_scan() {
    let app = spawn_app().await;
    let db = raw_db(&app);
    let store = DbVectorStore::new(db.clone(), 64 * MIB);
    let scan = DbVectorStore::new(db.clone(), 0);
    let t = app.create_tenant("t").await;
    let kb = knowledge_base(&app, &t).await;
    add_document(&app, &db, &store, &t, &kb, "a.txt", FACTS, true).await;
    // The same chunks in another document: ties, broken the same way on both paths.
    add_document(&app, &db, &store, &t, &kb, "b.txt", &FACTS[..3], true).await;
    add_document(
        &app,
        &db,
        &store,
        &t,
        &kb,
        "c.txt",
        &["Unrelated: the cafeteria opens at eight.", ""],
        true,
    )
    .await;
    // Chunks of a document that is not completed are never returned.
    add_document(
        &app,
        &db,
        &store,
        &t,
        &kb,
        "pending.txt",
        &["The invoice is due NOW, pending."],
        false,
    )
    .await;
    for round in 0..2 {
        for query in [
            "When is the invoice due?",
            "penguins",
            "vault combination",
            "paiement",
            "nothing in common xyzzy",
            "",
        ] {
            for k in [0, 1, 3, 5, 100] {
                let got = assert_same_as_scan(&store, &scan, &kb, query, k).await;
                assert!(got.iter().all(|c| c.file_name != "pending.txt"));
                if k == 100 {
                    assert_eq!(got.len(), FACTS.len() + 3 + 2, "round {round}");
                }
            }
        }
        assert_eq!(store.cached_knowledge_bases(), vec![(kb.0, kb.1)]);
    }
    let top = search(&store, &kb, "When is the invoice due?", 2).await;
    assert_eq!(top[0].content, FACTS[0]);
    assert_eq!(top[1].content, FACTS[0]);
    assert_ne!(top[0].document_id, top[1].document_id);
    assert_eq!(scan.cached_bytes(), 0);
}

#[tokio::test]
async fn the_index_follows_changes_made_by_another_process() {
    let app = spawn_app().await;
    let db = raw_db(&app);
    let store = DbVectorStore::new(db.clone(), 64 * MIB);
    let scan = DbVectorStore::new(db.clone(), 0);
    // Another process: its own pool and store.
    let other_db = raw_db(&app);
    let other = DbVectorStore::new(other_db.clone(), 64 * MIB);
    let t = app.create_tenant("t").await;
    let kb = knowledge_base(&app, &t).await;
    let vault = add_document(
        &app,
        &db,
        &other,
        &t,
        &kb,
        "vault.txt",
        &[
            "The vault combination is 7-3-9.",
            "The vault is in the basement.",
        ],
        true,
    )
    .await;
    add_document(&app, &db, &other, &t, &kb, "facts.txt", FACTS, true).await;
    let q = "What is the vault combination?";
    let got = assert_same_as_scan(&store, &scan, &kb, q, 3).await;
    assert!(got[0].content.contains("7-3-9"));

    // Re-processed elsewhere with new text: the old chunks are gone from the results.
    process(
        &other_db,
        &other,
        kb.0,
        kb.1,
        vault,
        &["The vault combination is 4-4-2 since Monday."],
        true,
    )
    .await;
    let got = assert_same_as_scan(&store, &scan, &kb, q, 10).await;
    assert!(got.iter().any(|c| c.content.contains("4-4-2")), "{got:?}");
    assert!(got.iter().all(|c| !c.content.contains("7-3-9")));
    assert!(got.iter().all(|c| !c.content.contains("basement")));

    // Being processed again elsewhere: not completed, so not searched; then completed.
    let claim = process(
        &other_db,
        &other,
        kb.0,
        kb.1,
        vault,
        &["The vault combination is 5-5-5."],
        false,
    )
    .await;
    let got = assert_same_as_scan(&store, &scan, &kb, q, 10).await;
    assert!(got.iter().all(|c| c.document_id != vault), "{got:?}");
    assert!(
        db::documents::finish(&other_db, vault, claim, DocumentStatus::Completed, None, 1)
            .await
            .unwrap()
    );
    let got = assert_same_as_scan(&store, &scan, &kb, q, 10).await;
    assert!(got.iter().any(|c| c.content.contains("5-5-5")), "{got:?}");

    // Deleted elsewhere (the chunks cascade): gone from the results.
    db::documents::delete(&other_db, &TenantScope::trusted(kb.0), vault)
        .await
        .unwrap()
        .unwrap();
    let got = assert_same_as_scan(&store, &scan, &kb, q, 10).await;
    assert_eq!(got.len(), FACTS.len());
    assert!(got.iter().all(|c| c.document_id != vault));
    // Still held (re-read), never dropped by the other process's deletes.
    assert_eq!(store.cached_knowledge_bases(), vec![(kb.0, kb.1)]);
}

#[tokio::test]
async fn the_index_is_bounded_by_bytes_and_evicts_the_least_recently_used() {
    let app = spawn_app().await;
    let db = raw_db(&app);
    let scan = DbVectorStore::new(db.clone(), 0);
    let t = app.create_tenant("t").await;
    let mut kbs = Vec::new();
    for n in 0..3 {
        let kb = knowledge_base(&app, &t).await;
        add_document(&app, &db, &scan, &t, &kb, &format!("{n}.txt"), FACTS, true).await;
        kbs.push(kb);
    }
    let key = |kb: &(Uuid, Uuid, String)| (kb.0, kb.1);
    // What one knowledge base costs (all three have as many chunks): a byte per value at least.
    let probe = DbVectorStore::new(db.clone(), 64 * MIB);
    search(&probe, &kbs[0], "invoice", 5).await;
    let one = probe.cached_bytes();
    assert!(one > FACTS.len() * HashingEmbedder::DEFAULT_DIM, "{one}");

    // Room for two.
    let store = DbVectorStore::new(db.clone(), 2 * one + one / 2);
    let q = "When is the invoice due?";
    assert_same_as_scan(&store, &scan, &kbs[0], q, 3).await;
    assert_same_as_scan(&store, &scan, &kbs[1], q, 3).await;
    assert_same_as_scan(&store, &scan, &kbs[0], q, 3).await; // 0 used more recently than 1
    assert_same_as_scan(&store, &scan, &kbs[2], q, 3).await;
    assert_eq!(
        store.cached_knowledge_bases(),
        vec![key(&kbs[0]), key(&kbs[2])]
    );
    assert_eq!(store.cached_bytes(), 2 * one);
    // The evicted one is read again, correctly, and evicts the next least recently used.
    assert_same_as_scan(&store, &scan, &kbs[1], q, 5).await;
    assert_eq!(
        store.cached_knowledge_bases(),
        vec![key(&kbs[2]), key(&kbs[1])]
    );
    assert!(store.cached_bytes() <= 2 * one + one / 2);

    // A limit below one knowledge base: nothing is kept, answers stay right.
    let tiny = DbVectorStore::new(db.clone(), one - 1);
    assert_same_as_scan(&tiny, &scan, &kbs[0], q, 5).await;
    assert!(tiny.cached_knowledge_bases().is_empty());
    assert_eq!(tiny.cached_bytes(), 0);
}

#[tokio::test]
async fn deletes_drop_what_the_index_holds() {
    let app = spawn_app().await;
    let db = raw_db(&app);
    let store = DbVectorStore::new(db.clone(), 64 * MIB);
    let (t1, t2) = (app.create_tenant("t1").await, app.create_tenant("t2").await);
    let mut kbs = Vec::new();
    for t in [&t1, &t1, &t2] {
        let kb = knowledge_base(&app, t).await;
        add_document(&app, &db, &store, t, &kb, "a.txt", FACTS, true).await;
        search(&store, &kb, "invoice", 3).await;
        kbs.push(kb);
    }
    let key = |kb: &(Uuid, Uuid, String)| (kb.0, kb.1);
    assert_eq!(store.cached_knowledge_bases().len(), 3);
    let scope = |kb: &(Uuid, Uuid, String)| TenantScope::trusted(kb.0);
    store
        .delete_knowledge_base(&scope(&kbs[0]), kbs[0].1)
        .await
        .unwrap();
    assert_eq!(
        store.cached_knowledge_bases(),
        vec![key(&kbs[1]), key(&kbs[2])]
    );
    store.delete_tenant(&scope(&kbs[1])).await.unwrap();
    assert_eq!(store.cached_knowledge_bases(), vec![key(&kbs[2])]);
    store
        .delete_document(&scope(&kbs[2]), kbs[2].1, Uuid::nil())
        .await
        .unwrap();
    assert!(store.cached_knowledge_bases().is_empty());
    assert_eq!(store.cached_bytes(), 0);
}
