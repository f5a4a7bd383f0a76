-- Oyl platform schema (PostgreSQL). Keep in step with ../sqlite/0001_initial.sql.
-- Every tenant-owned table carries tenant_id, and each child references its parent through the
-- pair (parent_id, tenant_id): a row can never hang under another tenant's parent, and deleting a
-- parent cascades down the whole tree.

CREATE TABLE server_settings (
    name        TEXT PRIMARY KEY,
    value       TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE tenants (
    id          UUID PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    CONSTRAINT tenants_name_key UNIQUE (name)
);
CREATE INDEX tenants_created_idx ON tenants (created_at, id);

CREATE TABLE api_keys (
    id            UUID PRIMARY KEY,
    tenant_id     UUID NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    key_hash      TEXT NOT NULL,
    key_prefix    TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    last_used_at  TIMESTAMPTZ,
    CONSTRAINT api_keys_hash_key UNIQUE (key_hash)
);
CREATE INDEX api_keys_tenant_idx ON api_keys (tenant_id);

CREATE TABLE workspaces (
    id          UUID PRIMARY KEY,
    tenant_id   UUID NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    CONSTRAINT workspaces_id_tenant_key UNIQUE (id, tenant_id)
);
CREATE INDEX workspaces_tenant_idx ON workspaces (tenant_id, created_at, id);

CREATE TABLE teammates (
    id                    UUID PRIMARY KEY,
    tenant_id             UUID NOT NULL,
    workspace_id          UUID NOT NULL,
    name                  TEXT NOT NULL,
    orchestration_config  JSONB,
    created_at            TIMESTAMPTZ NOT NULL,
    updated_at            TIMESTAMPTZ NOT NULL,
    CONSTRAINT teammates_id_tenant_key UNIQUE (id, tenant_id),
    CONSTRAINT teammates_workspace_fk FOREIGN KEY (workspace_id, tenant_id)
        REFERENCES workspaces (id, tenant_id) ON DELETE CASCADE
);
CREATE INDEX teammates_workspace_idx ON teammates (workspace_id, created_at, id);
CREATE INDEX teammates_tenant_idx ON teammates (tenant_id);

CREATE TABLE assistants (
    id           UUID PRIMARY KEY,
    tenant_id    UUID NOT NULL,
    teammate_id  UUID NOT NULL,
    name         TEXT NOT NULL,
    model        TEXT,
    created_at   TIMESTAMPTZ NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL,
    CONSTRAINT assistants_id_tenant_key UNIQUE (id, tenant_id),
    CONSTRAINT assistants_teammate_fk FOREIGN KEY (teammate_id, tenant_id)
        REFERENCES teammates (id, tenant_id) ON DELETE CASCADE
);
CREATE INDEX assistants_teammate_idx ON assistants (teammate_id, created_at, id);
CREATE INDEX assistants_tenant_idx ON assistants (tenant_id);

CREATE TABLE instructions (
    id             UUID PRIMARY KEY,
    tenant_id      UUID NOT NULL,
    assistant_id   UUID NOT NULL,
    system_prompt  TEXT NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL,
    CONSTRAINT instructions_assistant_key UNIQUE (assistant_id),
    CONSTRAINT instructions_assistant_fk FOREIGN KEY (assistant_id, tenant_id)
        REFERENCES assistants (id, tenant_id) ON DELETE CASCADE
);
CREATE INDEX instructions_tenant_idx ON instructions (tenant_id);

CREATE TABLE knowledge_bases (
    id            UUID PRIMARY KEY,
    tenant_id     UUID NOT NULL,
    assistant_id  UUID NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL,
    CONSTRAINT knowledge_bases_assistant_key UNIQUE (assistant_id),
    CONSTRAINT knowledge_bases_id_tenant_key UNIQUE (id, tenant_id),
    CONSTRAINT knowledge_bases_assistant_fk FOREIGN KEY (assistant_id, tenant_id)
        REFERENCES assistants (id, tenant_id) ON DELETE CASCADE
);
CREATE INDEX knowledge_bases_tenant_idx ON knowledge_bases (tenant_id);

CREATE TABLE documents (
    id                 UUID PRIMARY KEY,
    tenant_id          UUID NOT NULL,
    knowledge_base_id  UUID NOT NULL,
    file_name          TEXT NOT NULL,
    file_type          TEXT NOT NULL,
    content_type       TEXT NOT NULL,
    size_bytes         BIGINT NOT NULL,
    storage_key        TEXT NOT NULL,
    processed_status   TEXT NOT NULL DEFAULT 'pending',
    error              TEXT,
    chunk_count        BIGINT NOT NULL DEFAULT 0,
    created_at         TIMESTAMPTZ NOT NULL,
    updated_at         TIMESTAMPTZ NOT NULL,
    CONSTRAINT documents_id_tenant_key UNIQUE (id, tenant_id),
    CONSTRAINT documents_status_check
        CHECK (processed_status IN ('pending', 'processing', 'completed', 'failed')),
    CONSTRAINT documents_knowledge_base_fk FOREIGN KEY (knowledge_base_id, tenant_id)
        REFERENCES knowledge_bases (id, tenant_id) ON DELETE CASCADE
);
CREATE INDEX documents_kb_idx ON documents (knowledge_base_id, created_at, id);
CREATE INDEX documents_tenant_idx ON documents (tenant_id);
CREATE INDEX documents_status_idx ON documents (processed_status);

-- The embedded vector store (used when no ChromaDB is configured): one row per chunk, the
-- embedding as little-endian f32s. Deleting a document (or anything above it) deletes its chunks.
CREATE TABLE chunks (
    id                 UUID PRIMARY KEY,
    tenant_id          UUID NOT NULL,
    knowledge_base_id  UUID NOT NULL,
    document_id        UUID NOT NULL,
    chunk_index        INTEGER NOT NULL,
    content            TEXT NOT NULL,
    embedding          BYTEA NOT NULL,
    created_at         TIMESTAMPTZ NOT NULL,
    CONSTRAINT chunks_document_index_key UNIQUE (document_id, chunk_index),
    CONSTRAINT chunks_document_fk FOREIGN KEY (document_id, tenant_id)
        REFERENCES documents (id, tenant_id) ON DELETE CASCADE
);
CREATE INDEX chunks_kb_idx ON chunks (knowledge_base_id, tenant_id);
