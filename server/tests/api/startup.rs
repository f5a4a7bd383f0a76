//! Starting against a database that is not ready for this binary yet: one still coming up (a
//! fresh PostgreSQL running initdb) and one already migrated by a newer release (a rollback, or
//! an older pod added during a rollout).

use std::time::Duration;

use oyl_server::Application;
use oyl_server::config::Config;

use crate::helpers::{TestDatabase, postgres_url, raw_db, second_instance, spawn_app, test_env};

#[tokio::test]
async fn a_database_migrated_by_a_newer_release_does_not_stop_an_older_server() {
    let app = spawn_app().await;
    let t = app.create_tenant("before-rollback").await;
    // What a newer release's migration leaves behind in sqlx's bookkeeping.
    let db = raw_db(&app);
    oyl_server::with_pool!(db, pool => {
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (99990101000000, 'from a newer release', TRUE, $1, 1)",
        )
        .bind(vec![0u8])
        .execute(pool)
        .await
        .map(|_| ())
    })
    .expect("a newer release's migration recorded");
    assert_eq!(
        db.unknown_applied_migrations().await.unwrap(),
        vec![99990101000000]
    );

    // This (older) binary starts on it, migrations on, and serves the data.
    let older = second_instance(&app, &[("RUN_MIGRATIONS", "true")]).await;
    let resp = app
        .client
        .get(format!("{}/api/v1/tenants/{}", older.address, t.id))
        .bearer_auth(t.caller.token.as_ref().unwrap())
        .header("x-tenant-id", &t.id)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let ready = app
        .client
        .get(format!("{}/readyz", older.address))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200, "{}", ready.text().await.unwrap());
}

/// Forwards 127.0.0.1:`port` to `target` once started (until then the port refuses connections,
/// like a PostgreSQL that is not up yet).
async fn forward(port: u16, target: String) {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            let target = target.clone();
            tokio::spawn(async move {
                if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
}

/// On a fresh install PostgreSQL may still be initialising when the API starts: the API waits
/// for it (and then migrates) instead of exiting and crash-looping. PostgreSQL only: a SQLite
/// file cannot be unreachable.
#[tokio::test]
async fn the_server_waits_for_a_database_that_comes_up_late() {
    if postgres_url().is_none() {
        eprintln!("skipped: needs TEST_DATABASE_URL (tests/run.sh sets it)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = TestDatabase::new(&dir).await;
    let real: reqwest::Url = db.url.parse().unwrap();
    let target = format!(
        "{}:{}",
        real.host_str().unwrap(),
        real.port().unwrap_or(5432)
    );
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut late = real.clone();
    late.set_host(Some("127.0.0.1")).unwrap();
    late.set_port(Some(port)).unwrap();
    let mut env = test_env(&dir, &db, &[("DATABASE_WAIT_SECONDS", "60")]);
    env.insert("DATABASE_URL".into(), late.to_string());
    let config = Config::from_map(&env).unwrap();
    let starting = tokio::spawn(Application::build(config));

    // Two failed attempts at least (one every 2 s) while nothing listens: still waiting.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(
        !starting.is_finished(),
        "the server gave up instead of waiting"
    );

    forward(port, target).await;
    let app = tokio::time::timeout(Duration::from_secs(30), starting)
        .await
        .expect("started once the database answered")
        .unwrap()
        .expect("the application builds");
    let address = format!("http://127.0.0.1:{}", app.local_addr().port());
    let server = tokio::spawn(app.run_until(std::future::pending()));
    let ready = reqwest::get(format!("{address}/readyz")).await.unwrap();
    assert_eq!(ready.status(), 200, "{}", ready.text().await.unwrap());
    server.abort();
}

/// Without a database the wait ends with a clear error, not a hang.
#[tokio::test]
async fn the_wait_for_the_database_ends_with_the_reason() {
    if postgres_url().is_none() {
        eprintln!("skipped: needs TEST_DATABASE_URL (tests/run.sh sets it)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = TestDatabase::new(&dir).await;
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut env = test_env(&dir, &db, &[("DATABASE_WAIT_SECONDS", "3")]);
    env.insert(
        "DATABASE_URL".into(),
        format!("postgres://postgres@127.0.0.1:{port}/postgres"),
    );
    let err = match Application::build(Config::from_map(&env).unwrap()).await {
        Ok(_) => panic!("started without a database"),
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains("database unreachable for 3 s"), "{err}");
}
