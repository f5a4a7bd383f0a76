//! Uploaded files on disk, under `UPLOAD_DIR`.
//!
//! Files are stored under generated names only: `<tenant id>/<knowledge base id>/<document id>`.
//! The client's file name never reaches the file system, so path traversal is impossible, and a
//! cascading delete removes a whole knowledge base (or tenant) directory at once.

use std::io;
use std::path::{Path, PathBuf};

use uuid::Uuid;

#[derive(Clone, Debug)]
pub struct Storage {
    root: PathBuf,
}

impl Storage {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Storage { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn key(tenant_id: Uuid, knowledge_base_id: Uuid, document_id: Uuid) -> String {
        format!("{tenant_id}/{knowledge_base_id}/{document_id}")
    }

    /// The path of a stored key. Keys are only ever built by [`Storage::key`] from UUIDs; anything
    /// else is refused.
    pub fn path(&self, key: &str) -> io::Result<PathBuf> {
        let parts: Vec<&str> = key.split('/').collect();
        if parts.len() != 3 || parts.iter().any(|p| Uuid::parse_str(p).is_err()) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "invalid storage key",
            ));
        }
        Ok(self.root.join(parts[0]).join(parts[1]).join(parts[2]))
    }

    pub fn knowledge_base_dir(&self, tenant_id: Uuid, knowledge_base_id: Uuid) -> PathBuf {
        self.root
            .join(tenant_id.to_string())
            .join(knowledge_base_id.to_string())
    }

    /// A temporary file in the knowledge base's directory (same file system, so the final rename
    /// is atomic).
    pub async fn temp_path(&self, tenant_id: Uuid, knowledge_base_id: Uuid) -> io::Result<PathBuf> {
        let dir = self.knowledge_base_dir(tenant_id, knowledge_base_id);
        tokio::fs::create_dir_all(&dir).await?;
        Ok(dir.join(format!(".upload-{}", Uuid::new_v4())))
    }

    pub async fn read(&self, key: &str) -> io::Result<Vec<u8>> {
        tokio::fs::read(self.path(key)?).await
    }

    pub async fn remove(&self, key: &str) {
        if let Ok(path) = self.path(key) {
            remove_logged(&path, false).await;
        }
    }

    pub async fn remove_knowledge_base(&self, tenant_id: Uuid, knowledge_base_id: Uuid) {
        remove_logged(&self.knowledge_base_dir(tenant_id, knowledge_base_id), true).await;
    }

    pub async fn remove_tenant(&self, tenant_id: Uuid) {
        remove_logged(&self.root.join(tenant_id.to_string()), true).await;
    }

    /// Creates the root directory and checks that it is writable (at start-up, so a read-only
    /// mount is reported at once rather than at the first upload).
    pub async fn check_writable(&self) -> io::Result<()> {
        tokio::fs::create_dir_all(&self.root).await?;
        let probe = self.root.join(format!(".write-check-{}", Uuid::new_v4()));
        tokio::fs::write(&probe, b"ok").await?;
        tokio::fs::remove_file(&probe).await
    }
}

async fn remove_logged(path: &Path, dir: bool) {
    let result = if dir {
        tokio::fs::remove_dir_all(path).await
    } else {
        tokio::fs::remove_file(path).await
    };
    match result {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "could not remove stored upload");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_uuid_only() {
        let s = Storage::new("/data");
        let (t, k, d) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        assert_eq!(
            s.path(&Storage::key(t, k, d)).unwrap(),
            PathBuf::from(format!("/data/{t}/{k}/{d}"))
        );
        for bad in [
            "../../etc/passwd",
            "a/b/c",
            &format!("{t}/{k}/../x"),
            &format!("{t}/{k}"),
        ] {
            assert!(s.path(bad).is_err(), "{bad}");
        }
    }
}
