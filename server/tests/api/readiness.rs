//! `/readyz` follows the database: pending migrations and an unreachable database are 503 with
//! the dependency named; it recovers on its own.

use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use crate::helpers::{Caller, TestApp, TestDatabase, eventually, spawn_app_on};

async fn readyz(app: &TestApp) -> (u16, serde_json::Value) {
    let resp = app.get(&Caller::anonymous(), "/readyz").await;
    (resp.status, resp.body)
}

#[tokio::test]
async fn readyz_is_503_while_migrations_are_pending() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDatabase::new(&dir).await;
    let app = spawn_app_on(dir, db, &[("RUN_MIGRATIONS", "false")]).await;
    let (status, body) = readyz(&app).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "unavailable");
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("database: migrations pending"),
        "{detail}"
    );
    assert_eq!(
        app.get(&Caller::anonymous(), "/livez").await.status,
        200,
        "alive while not ready"
    );

    // What the operator's migration Job does.
    oyl_server::db::Db::connect_lazy(&app.config)
        .unwrap()
        .migrate()
        .await
        .unwrap();
    let (status, body) = readyz(&app).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ok")));
}

/// A TCP relay we can cut and restore, standing between the server and PostgreSQL.
struct Relay {
    port: u16,
    target: String,
    tasks: Option<JoinSet<()>>,
}

impl Relay {
    async fn start(port: u16, target: &str) -> Relay {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("bind the relay");
        let port = listener.local_addr().unwrap().port();
        let mut tasks = JoinSet::new();
        let target_addr = target.to_string();
        tasks.spawn(async move {
            let mut connections = JoinSet::new();
            while let Ok((mut inbound, _)) = listener.accept().await {
                let target = target_addr.clone();
                connections.spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Relay {
            port,
            target: target.to_string(),
            tasks: Some(tasks),
        }
    }

    /// Closes the listener and every relayed connection (the JoinSets abort their tasks).
    fn cut(&mut self) {
        self.tasks.take();
    }

    async fn restore(&mut self) {
        *self = Relay::start(self.port, &self.target.clone()).await;
    }
}

/// `postgres://user:pw@host:port/db?x` → (`host:port`, URL with `authority` replaced).
fn split_host(url: &str, new_host_port: Option<&str>) -> (String, String) {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (authority, tail) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let (creds, host) = match authority.rsplit_once('@') {
        Some((c, h)) => (format!("{c}@"), h.to_string()),
        None => (String::new(), authority.to_string()),
    };
    let host = if host.contains(':') {
        host
    } else {
        format!("{host}:5432")
    };
    let new = format!("{scheme}://{creds}{}{tail}", new_host_port.unwrap_or(&host));
    (host, new)
}

#[tokio::test]
async fn readyz_follows_the_database_going_away_and_coming_back() {
    let app;
    let mut relay = None;
    let dir = tempfile::tempdir().unwrap();
    let mut db = TestDatabase::new(&dir).await;
    if db.is_postgres() {
        let (target, _) = split_host(&db.url, None);
        let r = Relay::start(0, &target).await;
        db.url = split_host(&db.url, Some(&format!("127.0.0.1:{}", r.port))).1;
        relay = Some(r);
    }
    app = spawn_app_on(dir, db, &[]).await;
    assert_eq!(readyz(&app).await.0, 200);
    let t = app.create_tenant("before").await;

    // The database goes away.
    let moved = app.dir.path().join("moved.db");
    match (&mut relay, &app.db.sqlite_file) {
        (Some(relay), _) => relay.cut(),
        (None, Some(file)) => std::fs::rename(file, &moved).unwrap(),
        (None, None) => unreachable!(),
    }
    let down = eventually(Duration::from_secs(20), || async {
        readyz(&app).await.0 == 503
    })
    .await;
    assert!(down, "readyz never reported the database missing");
    let (_, body) = readyz(&app).await;
    assert!(
        body["detail"].as_str().unwrap().starts_with("database: "),
        "{body}"
    );
    assert_ne!(body["checks"]["database"], "ok");
    assert_eq!(
        app.get(&Caller::anonymous(), "/livez").await.status,
        200,
        "liveness does not depend on the database"
    );
    if relay.is_some() {
        // Requests needing the database fail as a dependency problem, not as a bug.
        let resp = app.get(&app.admin(), "/api/v1/tenants").await;
        assert_eq!(
            (resp.status, resp.body["detail"].as_str()),
            (503, Some("Database unavailable")),
            "{}",
            resp.text
        );
    }

    // It comes back.
    match (&mut relay, &app.db.sqlite_file) {
        (Some(relay), _) => relay.restore().await,
        (None, Some(file)) => std::fs::rename(&moved, file).unwrap(),
        (None, None) => unreachable!(),
    }
    let up = eventually(Duration::from_secs(20), || async {
        readyz(&app).await.0 == 200
    })
    .await;
    assert!(up, "readyz never recovered");
    let resp = app
        .get(&t.caller, &format!("/api/v1/tenants/{}", t.id))
        .await;
    assert_eq!(
        (resp.status, resp.body["name"].as_str()),
        (200, Some("before")),
        "data intact"
    );
}

#[tokio::test]
async fn an_in_memory_sqlite_database_works_for_zero_setup_runs() {
    if crate::helpers::postgres_url().is_some() {
        return; // SQLite-specific; the PostgreSQL run covers the rest.
    }
    let app = crate::helpers::spawn_app_with(&[("DATABASE_URL", "sqlite::memory:")]).await;
    let t = app.create_tenant("memory").await;
    assert_eq!(
        app.get(&t.caller, &format!("/api/v1/tenants/{}", t.id))
            .await
            .status,
        200
    );
    assert_eq!(readyz(&app).await.0, 200);
    // Several pooled connections see the same in-memory data.
    let mut seen = 0;
    for _ in 0..10 {
        if app.get(&app.admin(), "/api/v1/tenants").await.body["total"] == 1 {
            seen += 1;
        }
    }
    assert_eq!(seen, 10);
}
