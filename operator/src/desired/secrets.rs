//! The generated credentials Secret: database passwords and the API's JWT signing key.
//!
//! Values are generated once with the operating system's CSPRNG and then read back from the
//! existing Secret on every reconcile, so they are never re-randomised. They live only in the
//! Secret: never in the OylPlatform, never in a log, and `render` redacts them.

use super::common::{Component, SecretFile, data_meta};
use super::{postgres, redis};
use crate::crd::OylPlatform;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use std::collections::BTreeMap;

pub use super::common::{
    DATABASE_URL, POSTGRES_ADMIN_PASSWORD, POSTGRES_PASSWORD, REDIS_PASSWORD, REDIS_URL,
    SECRET_KEY, credentials_name,
};

/// Value `render` prints instead of a generated secret.
pub const REDACTED: &str = "<generated-by-operator>";

/// The platform's generated secrets.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub postgres_password: String,
    /// The bootstrap superuser's, which only PostgreSQL's container reads (at `initdb`).
    pub postgres_admin_password: String,
    pub redis_password: String,
    pub secret_key: String,
}

// Never print secrets, not even in a debug log.
impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credentials(..)")
    }
}

impl Credentials {
    /// Reuses every value the existing Secret holds and generates only the missing ones.
    pub fn reuse_or_generate(existing: Option<&Secret>) -> Result<Self, getrandom::Error> {
        let data = existing.and_then(|s| s.data.as_ref());
        let get = |key: &str| -> Result<String, getrandom::Error> {
            match data
                .and_then(|d| d.get(key))
                .and_then(|v| String::from_utf8(v.0.clone()).ok())
                .filter(|v| !v.is_empty())
            {
                Some(v) => Ok(v),
                None => random_hex(32),
            }
        };
        Ok(Self {
            postgres_password: get(POSTGRES_PASSWORD)?,
            postgres_admin_password: get(POSTGRES_ADMIN_PASSWORD)?,
            redis_password: get(REDIS_PASSWORD)?,
            secret_key: get(SECRET_KEY)?,
        })
    }

    /// Placeholders for `render`, which must not print (or invent) real secrets.
    pub fn redacted() -> Self {
        Self {
            postgres_password: REDACTED.to_string(),
            postgres_admin_password: REDACTED.to_string(),
            redis_password: REDACTED.to_string(),
            secret_key: REDACTED.to_string(),
        }
    }
}

/// `bytes` random bytes from the OS CSPRNG, hex encoded (URL-safe, so usable in a DSN).
pub fn random_hex(bytes: usize) -> Result<String, getrandom::Error> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf)?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

/// The credentials Secret. Passwords are kept even while a component is external, so switching
/// back to managed finds the data volume's password unchanged.
pub fn secret(p: &OylPlatform, c: &Credentials) -> Secret {
    let mut data = BTreeMap::from([
        (POSTGRES_PASSWORD, c.postgres_password.clone()),
        (POSTGRES_ADMIN_PASSWORD, c.postgres_admin_password.clone()),
        (REDIS_PASSWORD, c.redis_password.clone()),
        (SECRET_KEY, c.secret_key.clone()),
    ]);
    if p.spec.postgres.managed().is_some() {
        data.insert(DATABASE_URL, postgres::url(p, &c.postgres_password));
    }
    if p.spec.redis.managed().is_some() {
        data.insert(REDIS_URL, redis::url(p, &c.redis_password));
    }
    Secret {
        metadata: data_meta(p, Component::Credentials, credentials_name(p)),
        type_: Some("Opaque".to_string()),
        data: Some(
            data.into_iter()
                .map(|(k, v)| (k.to_string(), ByteString(v.into_bytes())))
                .collect(),
        ),
        ..Secret::default()
    }
}

/// The file holding a connection URL: from the user's Secret when the service is external, else
/// from the generated credentials under `key`.
pub fn url_file(
    file: &str,
    external: Option<&crate::crd::ExternalUrlSpec>,
    p: &OylPlatform,
    key: &str,
) -> SecretFile {
    match external {
        Some(ext) => SecretFile::new(file, &ext.url_secret_ref.name, &ext.url_secret_ref.key),
        None => SecretFile::new(file, &credentials_name(p), key),
    }
}

#[cfg(test)]
mod tests {
    use crate::test_support::*;

    #[test]
    fn external_postgres_deploys_nothing_and_wires_the_users_secret() {
        let c = children(&platform(
            "  postgres: {external: {urlSecretRef: {name: pg-conn, key: dsn}}}",
        ));
        assert!(
            c.iter().all(|c| !c.name().ends_with("-postgres")),
            "no PostgreSQL objects"
        );
        let api = deployment_pod(&c, "acme-api");
        assert_eq!(
            file_source(&api, "DATABASE_URL"),
            ("pg-conn".into(), "dsn".into())
        );
        // The generated credentials still provide the rest.
        assert_eq!(
            file_source(&api, "REDIS_URL"),
            ("acme-credentials".into(), "REDIS_URL".into())
        );
        assert!(!secret(&c).data.as_ref().unwrap().contains_key(DATABASE_URL));
        // The backup job dumps the external database through the same Secret.
        let cron = cronjob(&c);
        let job_pod = cron
            .spec
            .job_template
            .spec
            .as_ref()
            .unwrap()
            .template
            .spec
            .as_ref()
            .unwrap();
        assert_eq!(
            container_file_source(job_pod, &job_pod.containers[0], "DATABASE_URL"),
            ("pg-conn".into(), "dsn".into())
        );
    }
    #[test]
    fn managed_postgres_and_redis_urls_come_from_the_generated_secret() {
        let c = children(&platform(""));
        let pod = deployment_pod(&c, "acme-api");
        for name in ["DATABASE_URL", "REDIS_URL", "SECRET_KEY"] {
            assert_eq!(
                file_source(&pod, name),
                ("acme-credentials".into(), name.into())
            );
        }
        // No credential in the environment: only the files' paths.
        let api = api_container(&c);
        for e in api.env.iter().flatten() {
            assert!(
                e.value_from.is_none(),
                "{} comes from a Secret through the environment",
                e.name
            );
        }
        // Readable by the pod's group (the server's user), nobody else.
        let volume = pod
            .volumes
            .iter()
            .flatten()
            .find(|v| v.projected.is_some())
            .unwrap();
        assert_eq!(volume.projected.as_ref().unwrap().default_mode, Some(0o440));
        assert_eq!(
            pod.security_context.as_ref().unwrap().fs_group,
            Some(api::UID)
        );
        let data = secret(&c).data.clone().unwrap();
        let text = |k: &str| String::from_utf8(data[k].0.clone()).unwrap();
        assert_eq!(
            text("DATABASE_URL"),
            "postgres://oyl:pgpass@acme-postgres.team-a.svc:5432/oyl"
        );
        assert_eq!(
            text("REDIS_URL"),
            "redis://:redispass@acme-redis.team-a.svc:6379/0"
        );
        assert_eq!(
            env_source(&api, "CHROMA_HOST").0.as_deref(),
            Some("acme-chroma.team-a.svc")
        );
        assert_eq!(env_source(&api, "CHROMA_PORT").0.as_deref(), Some("8000"));
        // No secret value is ever placed in a plain env value.
        for e in api.env.as_ref().unwrap() {
            let v = e.value.clone().unwrap_or_default();
            assert!(
                !v.contains("pgpass") && !v.contains("redispass") && !v.contains("kkkk"),
                "{} leaks a secret",
                e.name
            );
        }
    }
    #[test]
    fn external_redis_and_chroma() {
        let c = children(&platform(
            "  redis: {external: {urlSecretRef: {name: r}}}\n  chroma: {external: {host: chroma.vec.svc, port: 9000}}",
        ));
        assert!(
            c.iter()
                .all(|c| !c.name().ends_with("-redis") && !c.name().ends_with("-chroma"))
        );
        let api = api_container(&c);
        assert_eq!(
            file_source(&deployment_pod(&c, "acme-api"), "REDIS_URL"),
            ("r".into(), "url".into())
        );
        assert_eq!(
            env_source(&api, "CHROMA_HOST").0.as_deref(),
            Some("chroma.vec.svc")
        );
        assert_eq!(env_source(&api, "CHROMA_PORT").0.as_deref(), Some("9000"));
    }
    #[test]
    fn credentials_are_generated_once_and_then_reused() {
        let fresh = Credentials::reuse_or_generate(None).unwrap();
        let other = Credentials::reuse_or_generate(None).unwrap();
        assert_eq!(fresh.secret_key.len(), 64);
        assert!(fresh.secret_key.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(fresh.secret_key, other.secret_key);
        assert_ne!(fresh.postgres_password, fresh.redis_password);
        assert_ne!(fresh.postgres_password, fresh.postgres_admin_password);
        let p = platform("");
        let stored = secrets::secret(&p, &fresh);
        assert_eq!(
            Credentials::reuse_or_generate(Some(&stored)).unwrap(),
            fresh
        );
        assert_eq!(
            format!("{fresh:?}"),
            "Credentials(..)",
            "Debug never prints secrets"
        );
    }
}
