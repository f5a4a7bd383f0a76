//! The CEL rules the CRD carries (`x-kubernetes-validations`), as data: the attributes in
//! `crd/mod.rs` declare them from here, and the `validate` module checks each one in Rust as well.

/// A CEL rule as the CRD declares it (`x-kubernetes-validations`).
pub struct Cel {
    pub rule: &'static str,
    pub message: &'static str,
    /// The field the API server names, relative to where the rule sits.
    pub field_path: Option<&'static str>,
}

impl Cel {
    /// The rule for `#[x_kube(validation = …)]` and `#[kube(validation = …)]`.
    pub fn rule(&self) -> kube::core::Rule {
        let rule = kube::core::Rule::new(self.rule).message(self.message);
        match self.field_path {
            Some(path) => rule.field_path(path),
            None => rule,
        }
    }
}

/// Longest platform name: child names (`<name>-postgres`, `<name>-restore-<hash>`, …) must stay
/// within Kubernetes' limits.
pub const MAX_NAME_LENGTH: usize = 40;

pub const NAME_LENGTH: Cel = Cel {
    rule: "size(self.metadata.name) <= 40",
    message: "metadata.name must be at most 40 characters, so child names stay within Kubernetes limits",
    field_path: None,
};

pub const MIN_NOT_ABOVE_MAX: Cel = Cel {
    rule: "self.minReplicas <= self.maxReplicas",
    message: "minReplicas must be less than or equal to maxReplicas",
    field_path: Some(".minReplicas"),
};

pub const MANAGED_OR_EXTERNAL: Cel = Cel {
    rule: "!(has(self.managed) && has(self.external))",
    message: "managed and external are mutually exclusive: set one of them",
    field_path: Some(".external"),
};

pub const NO_RESERVED_LABELS: Cel = Cel {
    rule: "self.all(k, !k.startsWith('app.kubernetes.io/'))",
    message: "labels under app.kubernetes.io/ are set by the operator",
    field_path: None,
};

pub const WAL_ARCHIVING_NEEDS_MANAGED_POSTGRES: Cel = Cel {
    rule: "!has(self.backup) || !has(self.backup.walArchiving) || !has(self.postgres) || !has(self.postgres.external)",
    message: "WAL archiving runs beside the managed PostgreSQL: it cannot be used with postgres.external",
    field_path: Some(".backup.walArchiving"),
};

pub const TARGET_TIME_NEEDS_MANAGED_POSTGRES: Cel = Cel {
    rule: "!has(self.restore) || !has(self.restore.targetTime) || !has(self.postgres) || !has(self.postgres.external)",
    message: "a point-in-time restore replaces the managed PostgreSQL's data: it cannot be used with postgres.external",
    field_path: Some(".restore.targetTime"),
};

pub const S3_RESTORE_NEEDS_THE_BUCKET: Cel = Cel {
    rule: "!has(self.restore) || !has(self.restore.source) || self.restore.source != 'S3' || (has(self.backup) && has(self.backup.s3) && !has(self.restore.claimName))",
    message: "a restore from S3 reads the backups in the bucket of backup.s3: it needs backup.s3 and cannot be used with claimName",
    field_path: Some(".restore.source"),
};
