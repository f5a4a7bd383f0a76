//! The real binary: configuration refusal, SIGTERM with a request in flight, and the CLI.

use std::collections::HashMap;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

use crate::helpers::{Caller, TEST_SECRET, TestDatabase, spawn_app_on};

const BIN: &str = env!("CARGO_BIN_EXE_oyl-server");

/// The binary with a clean environment (no inherited SECRET_KEY, no .env from the work tree).
fn command(dir: &std::path::Path, env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (k, v) in env.iter().filter(|(_, v)| !v.is_empty()) {
        cmd.env(k, v);
    }
    cmd
}

async fn run(dir: &std::path::Path, env: &[(&str, &str)], args: &[&str]) -> (i32, String, String) {
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        command(dir, env).args(args).output(),
    )
    .await
    .expect("the command finishes")
    .expect("the binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn refuses_to_start_with_an_example_or_short_secret_key() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDatabase::new(&dir).await;
    for key in [
        "change-me-in-production-use-a-long-random-string",
        "too-short",
    ] {
        let env = [
            ("SECRET_KEY", key),
            ("DATABASE_URL", db.url.as_str()),
            ("PORT", "0"),
            ("HOST", "127.0.0.1"),
        ];
        let (code, _, stderr) = run(dir.path(), &env, &["serve"]).await;
        assert_ne!(code, 0, "{key}");
        assert!(stderr.contains("openssl rand -hex 32"), "{stderr}");
        assert!(
            !stderr.contains(key),
            "the key itself is not printed: {stderr}"
        );
    }
    let (code, _, stderr) = run(dir.path(), &[("PORT", "eighty")], &["serve"]).await;
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("PORT"), "{stderr}");
}

#[tokio::test]
async fn sigterm_lets_the_request_in_flight_finish() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDatabase::new(&dir).await;
    let uploads = dir.path().join("uploads").display().to_string();
    let env = [
        ("SECRET_KEY", TEST_SECRET),
        ("DATABASE_URL", db.url.as_str()),
        ("HOST", "127.0.0.1"),
        ("PORT", "0"),
        ("UPLOAD_DIR", uploads.as_str()),
        ("LOG_FORMAT", "json"),
        ("LOG_LEVEL", "info,oyl_server=debug"),
    ];
    let mut child = command(dir.path(), &env).arg("serve").spawn().unwrap();
    let pid = child.id().unwrap();
    let mut logs = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut next_log = async |wanted: &str| -> serde_json::Value {
        loop {
            let line = tokio::time::timeout(Duration::from_secs(30), logs.next_line())
                .await
                .unwrap_or_else(|_| panic!("no `{wanted}` log line"))
                .unwrap()
                .unwrap_or_else(|| panic!("stderr closed before `{wanted}`"));
            let entry: serde_json::Value =
                serde_json::from_str(&line).unwrap_or_else(|_| panic!("a JSON log line: {line}"));
            if entry["message"] == wanted {
                return entry;
            }
        }
    };
    let serving = next_log("serving").await;
    assert_eq!(serving["level"], "INFO");
    let address = serving["address"].as_str().unwrap().to_string();

    // Start a request and leave it half-sent.
    let body = r#"{"api_key": "oyl_not-a-real-key"}"#;
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    let head = format!(
        "POST /api/v1/auth/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body.as_bytes()[..10]).await.unwrap();
    stream.flush().await.unwrap();
    // The server has the request (its handler is waiting for the rest of the body): only now is
    // it "in flight". Before that, shutdown may rightly close the connection as idle.
    let started = next_log("request started").await;
    assert_eq!(started["span"]["route"], "/api/v1/auth/token", "{started}");

    let kill = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    next_log("shutdown requested: finishing in-flight requests").await;

    // New connections are no longer accepted once shutdown started.
    let refused = eventually_refused(&address).await;
    assert!(refused, "the listener kept accepting after SIGTERM");

    // The request in flight still completes.
    stream.write_all(&body.as_bytes()[10..]).await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut response))
        .await
        .expect("response")
        .unwrap();
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 401"), "{response}");
    assert!(
        response.contains(r#"{"detail":"Invalid API key"}"#),
        "{response}"
    );
    assert!(
        response.to_ascii_lowercase().contains("x-request-id:"),
        "{response}"
    );

    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("the process exits")
        .unwrap();
    assert!(status.success(), "exit status {status:?}");
    next_log("stopped").await;
}

async fn eventually_refused(address: &str) -> bool {
    crate::helpers::eventually(Duration::from_secs(5), || async {
        tokio::net::TcpStream::connect(address).await.is_err()
    })
    .await
}

fn parse_kv(stdout: &str) -> HashMap<String, String> {
    stdout
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test]
async fn cli_migrate_seed_and_token_agree_with_the_server_on_a_generated_key() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDatabase::new(&dir).await;
    // No SECRET_KEY at all: the key is generated once and kept in the database.
    let env = [
        ("DATABASE_URL", db.url.as_str()),
        ("RUN_MIGRATIONS", "false"),
    ];

    let (code, _, stderr) = run(dir.path(), &env, &["token", "--admin"]).await;
    assert_ne!(
        code, 0,
        "without migrations there is nowhere to keep the key"
    );
    assert!(stderr.contains("oyl-server migrate"), "{stderr}");

    let (code, stdout, stderr) = run(dir.path(), &env, &["migrate"]).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("database is up to date (2 migration(s) applied now)"),
        "{stdout}"
    );
    let (code, stdout, _) = run(dir.path(), &env, &["migrate"]).await;
    assert_eq!(code, 0);
    assert!(
        stdout.contains("(0 migration(s) applied now)"),
        "idempotent: {stdout}"
    );

    let (code, stdout, stderr) = run(dir.path(), &env, &["seed"]).await;
    assert_eq!(code, 0, "{stderr}");
    let seed = parse_kv(&stdout);
    for key in [
        "TENANT_ID",
        "API_KEY",
        "WORKSPACE_ID",
        "TEAMMATE_ID",
        "ASSISTANT_ID",
        "TOKEN",
    ] {
        assert!(seed.contains_key(key), "{key} missing from {stdout}");
    }
    let (code, stdout, _) = run(dir.path(), &env, &["seed"]).await;
    assert_eq!(code, 0);
    let again = parse_kv(&stdout);
    assert_eq!(
        (&again["TENANT_ID"], &again["ASSISTANT_ID"]),
        (&seed["TENANT_ID"], &seed["ASSISTANT_ID"]),
        "seed is idempotent"
    );
    assert_ne!(again["API_KEY"], seed["API_KEY"], "a fresh key each time");

    let (code, admin_token, stderr) = run(dir.path(), &env, &["token", "--admin"]).await;
    assert_eq!(code, 0, "{stderr}");
    let admin_token = admin_token.trim().to_string();
    let (code, tenant_token, _) = run(
        dir.path(),
        &env,
        &[
            "token",
            "--tenant",
            &seed["TENANT_ID"],
            "--expires-minutes",
            "5",
        ],
    )
    .await;
    assert_eq!(code, 0);
    let (code, _, stderr) = run(
        dir.path(),
        &env,
        &["token", "--tenant", &uuid::Uuid::new_v4().to_string()],
    )
    .await;
    assert_ne!(code, 0);
    assert!(stderr.contains("no tenant"), "{stderr}");

    // A server on the same database, also without SECRET_KEY, accepts all of them.
    let app = spawn_app_on(dir, db, &[("SECRET_KEY", "")]).await;
    assert!(app.config.secret_key.is_none());
    let admin = Caller {
        token: Some(admin_token),
        tenant: None,
    };
    let list = app.get(&admin, "/api/v1/tenants").await;
    assert_eq!(
        (list.status, list.body["items"][0]["name"].as_str()),
        (200, Some("Demo Tenant")),
        "{}",
        list.text
    );
    let tenant = Caller {
        token: Some(tenant_token.trim().to_string()),
        tenant: Some(seed["TENANT_ID"].clone()),
    };
    assert_eq!(
        app.get(
            &tenant,
            &format!("/api/v1/assistants/{}", seed["ASSISTANT_ID"])
        )
        .await
        .status,
        200
    );
    let seeded = Caller {
        token: Some(seed["TOKEN"].clone()),
        tenant: Some(seed["TENANT_ID"].clone()),
    };
    assert_eq!(
        app.get(
            &seeded,
            &format!("/api/v1/teammates/{}", seed["TEAMMATE_ID"])
        )
        .await
        .status,
        200
    );
    for key in [&seed["API_KEY"], &again["API_KEY"]] {
        let resp = app
            .post(
                &Caller::anonymous(),
                "/api/v1/auth/token",
                serde_json::json!({"api_key": key}),
            )
            .await;
        assert_eq!(resp.status, 200, "{}", resp.text);
    }
}

/// Counts documents by status and checks the vector rows of each completed document.
async fn queue_snapshot(db: &oyl_server::db::Db) -> (i64, i64, i64, i64) {
    let rows: Vec<(String, i64)> = oyl_server::with_pool!(db, pool => {
        sqlx::query_as("SELECT processed_status, COUNT(*) FROM documents GROUP BY processed_status").fetch_all(pool).await
    })
    .unwrap();
    let get = |s: &str| {
        rows.iter()
            .find(|(k, _)| k == s)
            .map(|(_, n)| *n)
            .unwrap_or(0)
    };
    (
        get("pending"),
        get("processing"),
        get("completed"),
        get("failed"),
    )
}

#[tokio::test]
async fn a_worker_killed_mid_batch_loses_and_duplicates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDatabase::new(&dir).await;
    let db_url = db.url.clone();
    let uploads = dir.path().join("uploads").display().to_string();
    // The API (no worker of its own) takes the uploads.
    let app = spawn_app_on(dir, db, &[("WORKER_ENABLED", "false")]).await;
    let t = app.create_tenant("crash").await;
    let (_, _, asst) = app.create_tree(&t).await;
    const DOCS: usize = 12;
    for i in 0..DOCS {
        let text = format!("Document {i} sentence about topic {i}. ").repeat(600);
        assert_eq!(
            app.upload(&t.caller, &asst, &format!("d{i}.txt"), text.into_bytes())
                .await
                .status,
            201
        );
    }
    let inspect = crate::helpers::raw_db(&app);
    let work_dir = app.dir.path().to_path_buf();
    let chroma = crate::helpers::chroma_url().unwrap_or_default();
    let env = [
        ("SECRET_KEY", TEST_SECRET),
        ("DATABASE_URL", db_url.as_str()),
        ("UPLOAD_DIR", uploads.as_str()),
        ("CHUNK_SIZE", "200"),
        ("CHUNK_OVERLAP", "40"),
        ("WORKER_LEASE_SECONDS", "1"),
        ("WORKER_POLL_SECONDS", "0.1"),
        ("LOG_FORMAT", "json"),
        ("HOST", "127.0.0.1"),
        ("PORT", "0"),
        // The same vector store as the API: ChromaDB when the suite runs against one.
        ("CHROMA_HOST", chroma.as_str()),
    ];

    // Kill workers with SIGKILL while a document is being processed, until that happened with
    // documents still queued behind it.
    let mut crashed_mid_batch = false;
    for _attempt in 0..10 {
        let mut worker = command(&work_dir, &env).arg("worker").spawn().unwrap();
        let caught = crate::helpers::eventually(Duration::from_secs(30), || async {
            let (pending, processing, _, _) = queue_snapshot(&inspect).await;
            processing > 0 && pending > 0
        })
        .await;
        worker.start_kill().unwrap();
        worker.wait().await.unwrap();
        let (pending, processing, _, _) = queue_snapshot(&inspect).await;
        if caught && processing > 0 && pending > 0 {
            crashed_mid_batch = true;
            break;
        }
        if pending == 0 && processing == 0 {
            break;
        }
    }
    assert!(
        crashed_mid_batch,
        "never managed to kill a worker in the middle of the batch"
    );

    // A new worker finishes everything: the dead worker's document returns after its lease.
    let mut worker = command(&work_dir, &env).arg("worker").spawn().unwrap();
    let settled = crate::helpers::eventually(Duration::from_secs(60), || async {
        let (pending, processing, _, _) = queue_snapshot(&inspect).await;
        pending == 0 && processing == 0
    })
    .await;
    assert!(
        settled,
        "queue never drained: {:?}",
        queue_snapshot(&inspect).await
    );
    assert_eq!(queue_snapshot(&inspect).await, (0, 0, DOCS as i64, 0));

    // Every document's vectors exist exactly once.
    if crate::helpers::chroma_url().is_some() {
        let docs: Vec<(uuid::Uuid, uuid::Uuid, i64)> = oyl_server::with_pool!(inspect, pool => {
            sqlx::query_as("SELECT id, knowledge_base_id, chunk_count FROM documents").fetch_all(pool).await
        })
        .unwrap();
        assert_eq!(docs.len(), DOCS);
        for (id, kb, expected) in docs {
            let ids =
                crate::helpers::chroma_record_ids(&t.id, &kb.to_string(), Some(&id.to_string()))
                    .await
                    .unwrap();
            let unique: std::collections::HashSet<&String> = ids.iter().collect();
            assert!(expected > 1);
            assert_eq!(
                (ids.len(), unique.len()),
                (expected as usize, expected as usize),
                "{id}"
            );
        }
    } else {
        let per_doc: Vec<(i64, i64, i64)> = oyl_server::with_pool!(inspect, pool => {
            sqlx::query_as(
                "SELECT d.chunk_count, (SELECT COUNT(*) FROM chunks c WHERE c.document_id = d.id), \
                 (SELECT COUNT(DISTINCT c.chunk_index) FROM chunks c WHERE c.document_id = d.id) FROM documents d",
            )
            .fetch_all(pool)
            .await
        })
        .unwrap();
        assert_eq!(per_doc.len(), DOCS);
        for (expected, rows, distinct) in &per_doc {
            assert!(*expected > 1);
            assert_eq!((rows, distinct), (expected, expected), "{per_doc:?}");
        }
    }
    let max_attempts: i32 = oyl_server::with_pool!(inspect, pool => {
        sqlx::query_scalar("SELECT MAX(attempts) FROM documents").fetch_one(pool).await
    })
    .unwrap();
    assert!(
        max_attempts >= 2,
        "the interrupted document was processed again"
    );

    // It serves its operational endpoints for probes and scraping.
    let mut logs = BufReader::new(worker.stderr.take().unwrap()).lines();
    let address = loop {
        let line = logs
            .next_line()
            .await
            .unwrap()
            .expect("the worker logs its address");
        let entry: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        if entry["message"] == "worker serving operational endpoints" {
            break entry["address"].as_str().unwrap().to_string();
        }
    };
    let client = crate::helpers::test_client();
    let metrics = client
        .get(format!("http://{address}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("document_queue_depth 0"), "{metrics}");
    let ready = client
        .get(format!("http://{address}/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(
        client
            .get(format!("http://{address}/api/v1/tenants"))
            .send()
            .await
            .unwrap()
            .status(),
        404,
        "no API on a worker"
    );

    // The worker stops cleanly on SIGTERM.
    let pid = worker.id().unwrap();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap()
            .success()
    );
    let status = tokio::time::timeout(Duration::from_secs(10), worker.wait())
        .await
        .expect("worker exits")
        .unwrap();
    assert!(status.success(), "{status:?}");
}
