//! A local S3-compatible server (moto, from PyPI) for the backup scripts' tests.

use crate::{free_port, wait_for};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

/// A local S3-compatible server (moto) with the bucket `oyl-backups`, stopped when dropped.
pub struct Moto {
    _server: KillOnDrop,
    pub endpoint: String,
    /// PATH with the venv's `aws` first, for the scripts.
    pub path: String,
    venv: PathBuf,
}

pub const S3_CREDS: [(&str, &str); 3] = [
    ("AWS_ACCESS_KEY_ID", "test"),
    ("AWS_SECRET_ACCESS_KEY", "test"),
    ("AWS_DEFAULT_REGION", "us-east-1"),
];

impl Moto {
    pub async fn start() -> Self {
        let venv = s3_venv();
        let port = free_port();
        let child = Command::new(venv.join("bin/moto_server"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_for(Duration::from_secs(30), "moto_server", || async {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .ok()
                .map(|_| ())
        })
        .await;
        let path = format!(
            "{}:{}",
            venv.join("bin").display(),
            std::env::var("PATH").unwrap()
        );
        let moto = Moto {
            _server: KillOnDrop(child),
            endpoint: format!("http://127.0.0.1:{port}"),
            path,
            venv,
        };
        assert!(moto.aws(&["s3", "mb", "s3://oyl-backups"]).status.success());
        moto
    }

    pub fn aws(&self, args: &[&str]) -> Output {
        Command::new(self.venv.join("bin/aws"))
            .arg("--endpoint-url")
            .arg(&self.endpoint)
            .args(args)
            .envs(S3_CREDS)
            .output()
            .unwrap()
    }

    /// What the S3 scripts get as the operator runs them (keys here in the environment).
    pub fn script_env(&self) -> Vec<(&str, &str)> {
        let mut env = S3_CREDS.to_vec();
        env.extend([
            ("S3_BUCKET", "oyl-backups"),
            ("S3_PREFIX", "team-a/acme"),
            ("S3_ENDPOINT_URL", self.endpoint.as_str()),
            ("PATH", self.path.as_str()),
        ]);
        env
    }
}

/// What the operator hands the S3 fetch as `CHROMA_CHOICE`: the text of restore-chroma.sh.
pub const CHROMA_CHOICE: &str = oyl_operator::desired::restore::CHROMA_SCRIPT;

/// A ChromaDB archive in `dir` as backup-chroma.sh leaves it, `chroma-<stamp>.tar.gz` (a real
/// gzipped tar holding one file, `run`, whose text is `run`) with its checksum; its name.
pub fn chroma_archive(dir: &Path, stamp: &str, run: &str) -> String {
    let name = format!("chroma-{stamp}.tar.gz");
    let content = dir.join(format!(".{name}.content"));
    std::fs::create_dir_all(&content).unwrap();
    std::fs::write(content.join("run"), run).unwrap();
    let out = Command::new("sh")
        .arg("-c")
        .arg("tar -C \"$1\" -czf \"$2\" . && sha256sum \"$2\" > \"$2.sha256\"")
        .args(["sh", content.to_str().unwrap(), &name])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    std::fs::remove_dir_all(&content).unwrap();
    name
}

/// The ChromaDB archives and checksums in `dir`, sorted.
pub fn chroma_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with("chroma-"))
        .collect();
    names.sort();
    names
}

/// An archive and its checksum, as `chroma_files` lists them.
pub fn with_checksum(archive: &str) -> Vec<String> {
    vec![archive.to_string(), format!("{archive}.sha256")]
}

/// A child process, killed (and reaped) when dropped.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `moto_server` and the `aws` CLI from PyPI (installed by tests/setup.sh into this venv).
fn s3_venv() -> PathBuf {
    let dir = std::env::var("OYL_S3_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            std::env::var("OYL_CACHE")
                .map(PathBuf::from)
                .unwrap_or_else(|_| {
                    PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/oyl")
                })
                .join("s3-venv")
        });
    assert!(
        dir.join("bin/aws").exists(),
        "{}: pip install moto[server] awscli (tests/setup.sh does)",
        dir.display()
    );
    dir
}
