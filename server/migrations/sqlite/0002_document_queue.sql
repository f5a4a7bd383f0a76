-- The processing queue lives in the documents table: text extracted at upload, and a claim with a
-- lease so a crashed worker's documents go back to the queue (and are never processed twice at
-- once). Keep in step with ../postgres/0002_document_queue.sql.
ALTER TABLE documents ADD COLUMN content TEXT;
ALTER TABLE documents ADD COLUMN claim_id BLOB;
ALTER TABLE documents ADD COLUMN lease_expires_at TEXT;
ALTER TABLE documents ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
CREATE INDEX documents_queue_idx ON documents (processed_status, created_at, id);
