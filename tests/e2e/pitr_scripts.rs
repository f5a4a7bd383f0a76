//! The point-in-time recovery scripts (`operator/scripts/wal-archive.sh`, `base-backup.sh`,
//! `restore-pitr.sh`) against a real PostgreSQL of its own: a server archiving its WAL through
//! the script, a base backup, rows written before and after a noted time, a restore to that
//! time (exactly the first rows), to `latest` (every acknowledged row), and the refusals outside
//! the recoverable window, which leave the data directory as it was. The same files run in the
//! PostgreSQL pod and the restore Job; `real_node_data` runs them there.

use oyl_e2e::{free_port, repo_root, unix_now, utc};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The newest PostgreSQL server binaries installed (`tests/services/postgres.sh` installs them).
fn pg_bin() -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL installed under /usr/lib/postgresql (tests/services/postgres.sh)")
        .filter_map(|e| Some(e.ok()?.path().join("bin")))
        .filter(|b| b.join("postgres").exists())
        .collect();
    dirs.sort_by_key(|d| {
        d.parent()
            .and_then(|v| v.file_name()?.to_str()?.parse::<u32>().ok())
    });
    dirs.pop()
        .expect("a PostgreSQL server under /usr/lib/postgresql")
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout == b"0\n")
}

/// A scratch cluster: its own directory (owned by `postgres` when we are root, since PostgreSQL
/// refuses to run as root), port and socket.
struct Cluster {
    dir: PathBuf,
    port: u16,
    bin: PathBuf,
}

impl Cluster {
    fn new() -> Self {
        let mut b = [0u8; 4];
        getrandom::fill(&mut b).unwrap();
        let dir = std::env::temp_dir().join(format!(
            "oyl-pitr-{}",
            b.iter().map(|x| format!("{x:02x}")).collect::<String>()
        ));
        std::fs::create_dir_all(dir.join("backups")).unwrap();
        give_to_postgres(&dir);
        Self {
            dir,
            port: free_port(),
            bin: pg_bin(),
        }
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data/pgdata")
    }

    fn backups(&self) -> PathBuf {
        self.dir.join("backups")
    }

    /// `program args` as the cluster's owner, with PostgreSQL's binaries first on PATH and libpq
    /// pointed at the cluster's socket.
    fn run(&self, program: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
        let path = format!(
            "{}:{}",
            self.bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut cmd = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--", "env"]);
            c
        } else {
            Command::new("env")
        };
        cmd.arg(format!("PATH={path}"))
            .arg(format!("PGHOST={}", self.dir.display()))
            .arg(format!("PGPORT={}", self.port))
            .arg("PGUSER=postgres")
            .arg("PGDATABASE=postgres");
        for (k, v) in env {
            cmd.arg(format!("{k}={v}"));
        }
        cmd.arg(program).args(args).current_dir(&self.dir);
        cmd.output().unwrap()
    }

    fn ok(&self, program: &str, args: &[&str], env: &[(&str, &str)]) -> String {
        let out = self.run(program, args, env);
        assert!(
            out.status.success(),
            "{program} {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn sql(&self, sql: &str) -> String {
        self.ok("psql", &["-XtAq", "-v", "ON_ERROR_STOP=1", "-c", sql], &[])
    }

    /// Polls until `condition` (SQL, e.g. on `clock_timestamp()`) holds on the server.
    fn wait_until(&self, condition: &str) {
        while self.sql(&format!("select {condition}")) != "t" {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// A time noted now: as PostgreSQL reads it (UTC, microseconds) and in whole seconds.
    fn note_time(&self) -> (String, i64) {
        let noted = self.sql(
            "select to_char(clock_timestamp() at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00'",
        );
        let epoch = self
            .sql(&format!(
                "select floor(extract(epoch from '{noted}'::timestamptz))::bigint"
            ))
            .parse()
            .unwrap();
        (noted, epoch)
    }

    fn script(name: &str) -> String {
        repo_root()
            .join("operator/scripts")
            .join(name)
            .display()
            .to_string()
    }

    fn init(&self) {
        let data = self.data().display().to_string();
        self.ok("initdb", &["-D", &data, "-U", "postgres", "--no-sync"], &[]);
    }

    /// Starts the server, archiving through wal-archive.sh when `archiving`.
    fn start(&self, archiving: bool) {
        let mut opts = format!(
            "-c port={} -c listen_addresses= -c unix_socket_directories={} -c fsync=off",
            self.port,
            self.dir.display()
        );
        if archiving {
            opts.push_str(&format!(
                " -c archive_mode=on -c 'archive_command=/bin/sh {} %p %f'",
                Self::script("wal-archive.sh")
            ));
        }
        let data = self.data().display().to_string();
        let log = self.dir.join("server.log").display().to_string();
        let wal = format!("{}/wal", self.backups().display());
        self.ok(
            "pg_ctl",
            &["-D", &data, "-l", &log, "-w", "-o", &opts, "start"],
            &[("WAL_DIR", &wal)],
        );
    }

    fn stop(&self) {
        let data = self.data().display().to_string();
        self.ok("pg_ctl", &["-D", &data, "-m", "fast", "-w", "stop"], &[]);
    }

    /// Forces the current WAL segment out and waits until the archiver has it: the writes so
    /// far are then recoverable.
    fn archive_now(&self) {
        let segment = self.sql("select pg_walfile_name(pg_current_wal_insert_lsn())");
        self.sql("select pg_switch_wal()");
        let archived = self.backups().join("wal").join(format!("{segment}.gz"));
        for _ in 0..600 {
            if archived.exists() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!(
            "{} was not archived: {}",
            archived.display(),
            self.sql("select * from pg_stat_archiver")
        );
    }

    fn restore(&self, target: Option<(i64, &str)>) -> Output {
        let data = self.data().display().to_string();
        let backups = self.backups().display().to_string();
        let epoch = target.map(|(e, _)| e.to_string());
        let mut env = vec![("PGDATA", data.as_str()), ("BACKUP_DIR", backups.as_str())];
        if let (Some(epoch), Some((_, time))) = (epoch.as_deref(), target) {
            env.push(("TARGET_EPOCH", epoch));
            env.push(("TARGET_TIME", time));
        }
        self.run("sh", &[&Self::script("restore-pitr.sh")], &env)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.data().display().to_string();
        let _ = self.run(
            "pg_ctl",
            &["-D", &data, "-m", "immediate", "-w", "stop"],
            &[],
        );
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// As root, `path` (recursively) to the `postgres` user, who runs the cluster and the scripts.
fn give_to_postgres(path: &Path) {
    if is_root() {
        let out = Command::new("chown")
            .args(["-R", "postgres:"])
            .arg(path)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn base_backups(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join("base"))
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| !n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// The end of base backup `name` (seconds since the epoch), from its `info`.
fn base_end(c: &Cluster, name: &str) -> i64 {
    let info = std::fs::read_to_string(c.backups().join("base").join(name).join("info")).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("end_epoch="))
        .unwrap()
        .parse()
        .unwrap()
}

/// The rows of `t`, in order.
fn rows(c: &Cluster) -> String {
    c.sql("select coalesce(string_agg(x::text, ',' order by x), '') from t")
}

#[test]
#[ignore = "needs PostgreSQL's server binaries: tests/run.sh installs them"]
fn a_restore_replays_the_wal_to_the_target_time_and_refuses_outside_the_window() {
    let c = Cluster::new();
    c.init();
    c.start(true);
    c.sql("create table t(x int primary key)");
    let backups = c.backups().display().to_string();
    let out = c.ok(
        "sh",
        &[&Cluster::script("base-backup.sh")],
        &[("BACKUP_DIR", &backups)],
    );
    assert!(out.contains("base backup written"), "{out}");
    let base = base_backups(&c.backups());
    assert_eq!(base.len(), 1, "{base:?}");
    let end = base_end(&c, &base[0]);
    // The base backup's end is the first recoverable point: write after it.
    c.wait_until(&format!("extract(epoch from clock_timestamp()) > {end}"));
    c.sql("insert into t select generate_series(1, 3)");
    // The noted time: after the first rows' commit, before the next ones'.
    let (noted, noted_epoch) = c.note_time();
    c.sql("insert into t select generate_series(4, 6)");
    c.sql("delete from t where x = 2");
    c.archive_now();
    // A whole second after every archived commit.
    let after_all: i64 = c
        .sql("select ceil(extract(epoch from clock_timestamp()))::bigint")
        .parse()
        .unwrap();
    c.stop();

    // Outside the window: refused, the data directory as it was.
    let before = c.restore(Some((1_000, "1970-01-01 00:16:40+00")));
    assert!(!before.status.success());
    assert!(
        text(&before).contains("before the first recoverable point"),
        "{}",
        text(&before)
    );
    let future_epoch = noted_epoch + 86_400;
    let future = c.restore(Some((future_epoch, "2099-01-01 00:00:00+00")));
    assert!(!future.status.success());
    assert!(text(&future).contains("in the future"), "{}", text(&future));
    c.start(false);
    assert_eq!(rows(&c), "1,3,4,5,6", "a refused restore changes nothing");
    c.stop();

    // After the archive's end (nothing archived since): replayed, refused, put back. The
    // script refuses a target in the future first: wait until it is not.
    while unix_now() < after_all {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let after = c.restore(Some((after_all, &format!("{}+00", c_time(after_all)))));
    assert!(!after.status.success());
    assert!(
        text(&after).contains("after the last recoverable point"),
        "{}",
        text(&after)
    );
    c.start(false);
    assert_eq!(
        rows(&c),
        "1,3,4,5,6",
        "a failed replay puts the data directory back"
    );
    c.stop();

    // To the noted time: exactly the first rows.
    let restored = c.restore(Some((noted_epoch, &noted)));
    assert!(restored.status.success(), "{}", text(&restored));
    assert!(c.data().join("../pgdata.before-restore").is_dir());
    c.start(false);
    assert_eq!(rows(&c), "1,2,3");
    c.stop();

    // Latest: every acknowledged write, from the same base backup and archive.
    let latest = c.restore(None);
    assert!(latest.status.success(), "{}", text(&latest));
    c.start(false);
    assert_eq!(rows(&c), "1,3,4,5,6");
}

/// `epoch` as PostgreSQL reads a time, in UTC, without the zone.
fn c_time(epoch: i64) -> String {
    utc(epoch, "%Y-%m-%d %H:%M:%S")
}

#[test]
#[ignore = "needs PostgreSQL's server binaries: tests/run.sh installs them"]
fn base_backups_are_kept_by_count_with_the_wal_they_need() {
    let c = Cluster::new();
    c.init();
    c.start(true);
    c.sql("create table t(x int primary key)");
    let backups = c.backups().display().to_string();
    let mut first_wal = Vec::new();
    for i in 0..3 {
        c.sql(&format!("insert into t values ({i})"));
        c.ok(
            "sh",
            &[&Cluster::script("base-backup.sh")],
            &[("BACKUP_DIR", &backups), ("BASE_BACKUP_RETENTION", "2")],
        );
        let names = base_backups(&c.backups());
        let newest = names.last().unwrap();
        let info =
            std::fs::read_to_string(c.backups().join("base").join(newest).join("info")).unwrap();
        first_wal.push(
            info.lines()
                .find_map(|l| l.strip_prefix("wal_start="))
                .unwrap()
                .to_string(),
        );
        // Base backups are named by the second they start in: the next one in a later second.
        while c.sql(&format!(
            "select to_char(clock_timestamp() at time zone 'UTC', 'YYYYMMDD\"T\"HH24MISS\"Z\"') > '{newest}'"
        )) != "t"
        {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
    assert_eq!(
        base_backups(&c.backups()).len(),
        2,
        "the newest two are kept"
    );
    let wal: Vec<String> = std::fs::read_dir(c.backups().join("wal"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| !n.starts_with('.'))
        .collect();
    let segment = |n: &str| n[8..24].to_string();
    // Nothing the oldest kept backup needs is gone; everything only the pruned one needed is.
    assert!(
        wal.iter().any(|n| n.starts_with(&first_wal[1])),
        "{wal:?} lacks {}",
        first_wal[1]
    );
    assert!(
        wal.iter().all(|n| segment(n) >= segment(&first_wal[1])),
        "{wal:?}: WAL before {} is kept",
        first_wal[1]
    );
    // And what is kept restores every row.
    c.stop();
    let restored = c.restore(None);
    assert!(restored.status.success(), "{}", text(&restored));
    c.start(false);
    assert_eq!(rows(&c), "0,1,2");
}

#[test]
#[ignore = "needs PostgreSQL's server binaries: tests/run.sh installs them"]
fn base_backups_older_than_the_retention_days_go_but_the_newest_of_them() {
    let c = Cluster::new();
    c.init();
    c.start(true);
    let base = c.backups().join("base");
    std::fs::create_dir_all(&base).unwrap();
    // Three older base backups (only their names and info matter to the pruning).
    let now = unix_now();
    let old: Vec<String> = [10, 5, 4]
        .iter()
        .map(|days| {
            let epoch = now - days * 86_400;
            let name = utc(epoch, "%Y%m%dT%H%M%SZ");
            std::fs::create_dir(base.join(&name)).unwrap();
            std::fs::write(
                base.join(&name).join("info"),
                format!(
                    "start_epoch={epoch}\nend_epoch={}\nwal_start=000000010000000000000001\n",
                    epoch + 1
                ),
            )
            .unwrap();
            name
        })
        .collect();
    give_to_postgres(&base);
    let backups = c.backups().display().to_string();
    c.ok(
        "sh",
        &[&Cluster::script("base-backup.sh")],
        &[
            ("BACKUP_DIR", &backups),
            ("BASE_BACKUP_RETENTION", "10"),
            ("BACKUP_RETENTION_DAYS", "3"),
        ],
    );
    let left = base_backups(&c.backups());
    assert_eq!(left.len(), 2, "{left:?}");
    assert_eq!(
        left[0], old[2],
        "the newest backup older than 3 days stays: a restore to the window's start needs it"
    );
    assert!(left[1] > old[2], "and the new one: {left:?}");
    // Days that are not a positive number are refused.
    let out = c.run(
        "sh",
        &[&Cluster::script("base-backup.sh")],
        &[("BACKUP_DIR", &backups), ("BACKUP_RETENTION_DAYS", "x")],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert_eq!(base_backups(&c.backups()), left);
}

/// `wal-check.sh`, as the wal-check CronJob runs it (a role that is not a superuser, over the
/// network URL's shape): no window before a base backup; then the oldest base backup's end to
/// the newest archived segment; an archive that cannot be written (the volume unwritable)
/// reported as a failure naming the segment, exit 1, the window kept; fixed, healthy again.
#[test]
#[ignore = "needs PostgreSQL's server binaries: tests/run.sh installs them"]
fn the_wal_check_reports_the_recoverable_window_and_a_failing_archive() {
    let c = Cluster::new();
    c.init();
    c.start(true);
    c.sql("create role checker login password 'p@ss'");
    c.sql("create table t(x int)");
    let backups = c.backups().display().to_string();
    let report = c.dir.join("report");
    let url = format!(
        "postgresql://checker:p%40ss@/postgres?host={}&port={}",
        c.dir.display(),
        c.port
    );
    let check = || {
        let _ = std::fs::remove_file(&report);
        let out = c.run(
            "sh",
            &[&Cluster::script("wal-check.sh")],
            &[
                ("DATABASE_URL", &url),
                ("BACKUP_DIR", &backups),
                ("REPORT_FILE", &report.display().to_string()),
            ],
        );
        let written = std::fs::read_to_string(&report).unwrap_or_default();
        let json: serde_json::Value = serde_json::from_str(written.trim())
            .unwrap_or_else(|e| panic!("report {written:?}: {e}; {}", text(&out)));
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            written.trim(),
            "the same line printed and written"
        );
        (out, json)
    };

    c.sql("insert into t values (1)");
    c.archive_now();
    let (out, r) = check();
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        r["first"].is_null() && r["last"].is_null() && r["failure"].is_null(),
        "no base backup, no window: {r}"
    );

    c.ok(
        "sh",
        &[&Cluster::script("base-backup.sh")],
        &[("BACKUP_DIR", &backups)],
    );
    let end = base_end(&c, &base_backups(&c.backups())[0]);
    // A whole second past the base backup's end (rounded up), so the next archive is after it.
    c.wait_until(&format!(
        "floor(extract(epoch from clock_timestamp())) > {end}"
    ));
    c.sql("insert into t values (2)");
    c.archive_now();
    let (out, r) = check();
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(r["first"], end, "the oldest base backup's end: {r}");
    let last = r["last"].as_i64().unwrap_or_else(|| panic!("{r}"));
    assert!(
        last > end && last <= unix_now(),
        "the newest archived segment, after the base backup: {r}"
    );
    assert!(r["failure"].is_null(), "{r}");

    // The archive volume turns unwritable: PostgreSQL keeps the segment and reports the failure.
    let wal = c.backups().join("wal");
    let mode = |m: u32| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&wal, std::fs::Permissions::from_mode(m)).unwrap();
    };
    mode(0o555);
    let stuck = c.sql("select pg_walfile_name(pg_current_wal_insert_lsn())");
    c.sql("insert into t values (3)");
    c.sql("select pg_switch_wal()");
    for _ in 0..600 {
        if c.sql("select failed_count from pg_stat_archiver") != "0" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let (out, r) = check();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let failure = r["failure"].as_str().unwrap_or_else(|| panic!("{r}"));
    assert!(
        failure.contains(&stuck) && failure.contains("failed"),
        "the failure names the segment: {r}"
    );
    assert_eq!(r["first"], end, "the window is still reported: {r}");
    assert!(text(&out).contains(&stuck), "and logged: {}", text(&out));

    // Writable again: the next segment wakes the archiver, which archives the stuck one first.
    mode(0o755);
    c.sql("insert into t values (4)");
    c.archive_now();
    assert!(wal.join(format!("{stuck}.gz")).exists(), "{stuck} archived");
    let (out, r) = check();
    assert!(out.status.success(), "{}", text(&out));
    assert!(r["failure"].is_null(), "healthy again: {r}");
    assert!(r["last"].as_i64().unwrap() >= last, "{r}");
}

/// `verify-backup.sh` (the scheduled restore verification) on a dump `backup.sh` wrote: the
/// newest dump restored into a throwaway server of its own, every table's rows as the dump
/// recorded them, the schema version; the live server untouched and the scratch space left
/// empty. Refused, with the reason in the report and exit 1: a corrupt dump, a dump that is no
/// archive (with a matching checksum), and a database with no migrations.
#[test]
#[ignore = "needs PostgreSQL's server binaries: tests/run.sh installs them"]
fn the_newest_dump_is_restored_into_a_throwaway_server_and_checked() {
    let c = Cluster::new();
    c.init();
    c.start(false);
    c.sql(
        "create table _sqlx_migrations(version bigint primary key, description text);
         insert into _sqlx_migrations values (1, 'initial'), (2, 'document queue');
         create table tenants(id int primary key, name text);
         insert into tenants select g, 'tenant ' || g from generate_series(1, 3) g;
         create table workspaces(id int primary key, tenant_id int not null references tenants(id),
           note text);
         insert into workspaces values (1, 1, e'two\\nlines'), (2, 1, 'tab\there'), (3, 2, null),
           (4, 3, '\\.'), (5, 3, 'x');
         create table empty_t(x int)",
    );
    let backups = c.backups().display().to_string();
    let scratch = c.dir.join("scratch");
    std::fs::create_dir_all(&scratch).unwrap();
    give_to_postgres(&scratch);
    let url = |db: &str| {
        format!(
            "postgresql://postgres@/{db}?host={}&port={}",
            c.dir.display(),
            c.port
        )
    };
    let backup = |db: &str, dir: &str| {
        c.ok(
            "sh",
            &[&Cluster::script("backup.sh")],
            &[("DATABASE_URL", &url(db)), ("BACKUP_DIR", dir)],
        )
    };
    let report = c.dir.join("report");
    let verify = |dir: &str| {
        let _ = std::fs::remove_file(&report);
        let out = c.run(
            "sh",
            &[&Cluster::script("verify-backup.sh")],
            &[
                ("BACKUP_DIR", dir),
                ("SCRATCH", &scratch.display().to_string()),
                ("REPORT_FILE", &report.display().to_string()),
            ],
        );
        let written = std::fs::read_to_string(&report).unwrap_or_default();
        let json: serde_json::Value = serde_json::from_str(written.trim())
            .unwrap_or_else(|e| panic!("report {written:?}: {e}; {}", text(&out)));
        (out, json)
    };

    backup("postgres", &backups);
    let dump = std::fs::read_dir(c.backups())
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .find(|n| n.ends_with(".dump"))
        .unwrap();
    let (out, r) = verify(&backups);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(r["dump"], dump.as_str(), "{r}");
    assert_eq!(r["schemaVersion"], 2, "{r}");
    assert_eq!(
        r["tables"], 4,
        "_sqlx_migrations, tenants, workspaces, empty_t: {r}"
    );
    assert_eq!(r["rows"], 2 + 3 + 5, "{r}");
    assert!(r["failure"].is_null(), "{r}");
    assert_eq!(
        c.sql("select count(*) from workspaces"),
        "5",
        "the live server untouched"
    );
    assert_eq!(
        std::fs::read_dir(&scratch).unwrap().count(),
        0,
        "the throwaway server is gone"
    );

    // A newer dump that is no archive, its checksum matching: refused at the first read.
    let bogus = "postgres-29991231T000000Z.dump";
    std::fs::write(c.backups().join(bogus), b"not a dump").unwrap();
    c.ok(
        "sh",
        &[
            "-c",
            &format!("cd {backups} && sha256sum {bogus} > {bogus}.sha256"),
        ],
        &[],
    );
    let (out, r) = verify(&backups);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!(r["dump"], bogus, "the newest dump is the one verified: {r}");
    assert!(
        r["failure"]
            .as_str()
            .is_some_and(|f| f.contains("not a readable pg_dump archive")),
        "{r}"
    );
    // Corrupt (the checksum no longer matches).
    std::fs::write(c.backups().join(bogus), b"not a dump either").unwrap();
    let (out, r) = verify(&backups);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        r["failure"]
            .as_str()
            .is_some_and(|f| f.contains("does not match its checksum")),
        "{r}"
    );

    // A database without sqlx's migrations restores, but is not an Oyl database.
    c.sql("create database other");
    c.ok(
        "psql",
        &[
            "-XtAq",
            "-d",
            "other",
            "-c",
            "create table t(x int); insert into t values (1)",
        ],
        &[],
    );
    let other = c.dir.join("other-backups");
    std::fs::create_dir_all(&other).unwrap();
    give_to_postgres(&other);
    backup("other", &other.display().to_string());
    let (out, r) = verify(&other.display().to_string());
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        r["failure"]
            .as_str()
            .is_some_and(|f| f.contains("no _sqlx_migrations")),
        "{r}"
    );
    assert_eq!(r["tables"], 1, "its one table checked first: {r}");
}

/// A point-in-time restore straight from the bucket: the backup volume (two base backups and
/// the WAL) uploaded by `backup-s3.sh` to a local S3 (moto) and then lost; `restore-s3-fetch.sh`
/// with `PITR=1` fetches the base backup before the target and the WAL from it on (not the
/// WAL only the older backup needs) and `restore-pitr.sh` replays them: exactly the rows from
/// before the noted time. With `CHROMA_CHOICE` it also fetches the ChromaDB archive taken at or
/// before the target (not a later one), which `restore-chroma.sh` then restores from there. A
/// target before every base backup fetches no base backup (and no archive), and the restore
/// refuses it.
#[tokio::test]
#[ignore = "needs PostgreSQL's server binaries, moto and awscli: tests/run.sh installs them"]
async fn a_point_in_time_restore_from_the_bucket_alone() {
    use oyl_e2e::s3::{CHROMA_CHOICE, Moto, chroma_archive, chroma_files, with_checksum};
    let c = Cluster::new();
    c.init();
    c.start(true);
    c.sql("create table t(x int primary key)");
    let backups = c.backups().display().to_string();
    let base_backup = || {
        c.ok(
            "sh",
            &[&Cluster::script("base-backup.sh")],
            &[("BACKUP_DIR", &backups)],
        )
    };
    base_backup();
    c.sql("insert into t values (100)");
    c.archive_now();
    base_backup();
    let base = base_backups(&c.backups());
    assert_eq!(base.len(), 2, "{base:?}");
    let end = base_end(&c, &base[1]);
    c.wait_until(&format!("extract(epoch from clock_timestamp()) > {end}"));
    c.sql("insert into t select generate_series(1, 3)");
    let (noted, noted_epoch) = c.note_time();
    c.sql("insert into t select generate_series(4, 6)");
    c.archive_now();
    c.stop();

    // ChromaDB archives on the volume: one at the target (the newest at or before it), one a
    // day before, one a second after, and one before every base backup.
    let stamp = |epoch: i64| utc(epoch, "%Y%m%dT%H%M%SZ");
    let at_target = chroma_archive(&c.backups(), &stamp(noted_epoch), "at the target");
    chroma_archive(&c.backups(), &stamp(noted_epoch - 86_400), "a day before");
    chroma_archive(&c.backups(), &stamp(noted_epoch + 1), "after the target");
    chroma_archive(&c.backups(), &stamp(0), "before every base backup");

    let moto = Moto::start().await;
    let env = moto.script_env();
    let run = |script: &str, extra: &[(&str, &str)]| {
        let out = Command::new("sh")
            .arg(Cluster::script(script))
            .envs(env.iter().copied())
            .env("BACKUP_DIR", &backups)
            .envs(extra.iter().copied())
            .output()
            .unwrap();
        assert!(out.status.success(), "{script}: {}", text(&out));
        text(&out)
    };
    run("backup-s3.sh", &[]);
    // The WAL the older base backup alone needs: in the bucket, not fetched.
    let info =
        std::fs::read_to_string(c.backups().join("base").join(&base[1]).join("info")).unwrap();
    let first = info
        .lines()
        .find_map(|l| l.strip_prefix("wal_start="))
        .unwrap();
    let older_wal: Vec<String> = std::fs::read_dir(c.backups().join("wal"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.len() > 24 && n.as_bytes()[24] == b'.' && n[8..24] < first[8..24])
        .collect();
    assert!(
        !older_wal.is_empty(),
        "the older base backup has WAL of its own"
    );
    // The bucket's own retention of base backups (one kept here) drops the older base backup
    // and the WAL only it needed, and keeps what a restore from the newer one needs.
    let listing = || {
        let out = moto.aws(&["s3", "ls", "--recursive", "s3://oyl-backups/team-a/acme/"]);
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    assert!(listing().contains(&format!("base/{}/info", base[0])));
    let pruned = run("backup-s3.sh", &[("BASE_BACKUP_RETENTION", "1")]);
    assert!(pruned.contains(&format!("base/{}/", base[0])), "{pruned}");
    let kept = listing();
    assert!(!kept.contains(&format!("base/{}/", base[0])), "{kept}");
    assert!(
        kept.contains(&format!("base/{}/base.tar.gz", base[1])),
        "{kept}"
    );
    for w in &older_wal {
        assert!(
            !kept.contains(w.as_str()),
            "{w} still in the bucket:\n{kept}"
        );
    }
    assert!(kept.contains(&format!("wal/{first}.gz")), "{kept}");

    // The volume is lost.
    let lose = || {
        std::fs::remove_dir_all(c.backups()).unwrap();
        std::fs::create_dir_all(c.backups()).unwrap();
        give_to_postgres(&c.backups());
    };
    lose();
    let epoch = noted_epoch.to_string();
    // As the operator runs it with a managed ChromaDB.
    let fetched = run(
        "restore-s3-fetch.sh",
        &[
            ("PITR", "1"),
            ("TARGET_SET", "1"),
            ("TARGET_EPOCH", &epoch),
            ("CHROMA_CHOICE", CHROMA_CHOICE),
        ],
    );
    assert!(
        fetched.contains(&format!("fetched base backup {}", base[1])),
        "{fetched}"
    );
    assert_eq!(chroma_files(&c.backups()), with_checksum(&at_target));
    // restore-chroma.sh over the fetched copy restores that archive.
    let chroma_data = c.dir.join("chroma-data");
    std::fs::create_dir_all(&chroma_data).unwrap();
    std::fs::write(chroma_data.join("run"), "before the restore").unwrap();
    let out = Command::new("sh")
        .arg(Cluster::script("restore-chroma.sh"))
        .env("BACKUP_DIR", c.backups())
        .env("CHROMA_DATA", &chroma_data)
        .env("TARGET_SET", "1")
        .env("TARGET_EPOCH", &epoch)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        std::fs::read_to_string(chroma_data.join("run")).unwrap(),
        "at the target"
    );
    give_to_postgres(&c.backups());
    assert!(
        c.backups()
            .join("base")
            .join(&base[1])
            .join("base.tar.gz")
            .exists()
    );
    assert!(
        !c.backups()
            .join("base")
            .join(&base[0])
            .join("base.tar.gz")
            .exists()
    );
    for w in &older_wal {
        assert!(!c.backups().join("wal").join(w).exists(), "{w} fetched");
    }
    let restored = c.restore(Some((noted_epoch, &noted)));
    assert!(restored.status.success(), "{}", text(&restored));
    c.start(false);
    assert_eq!(rows(&c), "1,2,3,100", "exactly the rows before the target");
    c.stop();

    // Before every base backup: nothing to replay from, refused by the restore.
    lose();
    let fetched = run(
        "restore-s3-fetch.sh",
        &[
            ("PITR", "1"),
            ("TARGET_SET", "1"),
            ("TARGET_EPOCH", "1000"),
            ("CHROMA_CHOICE", CHROMA_CHOICE),
        ],
    );
    assert!(fetched.contains("no base backup"), "{fetched}");
    assert!(
        chroma_files(&c.backups()).is_empty(),
        "an archive fetched with no base backup"
    );
    give_to_postgres(&c.backups());
    let refused = c.restore(Some((1_000, "1970-01-01 00:16:40+00")));
    assert!(!refused.status.success());
    assert!(
        text(&refused).contains("before the first recoverable point"),
        "{}",
        text(&refused)
    );
}
