//! One knowledge base's embeddings in memory, laid out to be scored fast and exactly.

use uuid::Uuid;

/// (completed documents, their chunks, the latest change among them): changes whenever a
/// document is completed, re-processed, deleted or renamed, by this process or any other.
pub type KbVersion = (i64, i64, Option<String>);

/// Rows stored side by side in [`KbIndex::blocks`].
const LANES: usize = 16;

/// One knowledge base in memory, to find the candidates of a search fast: its chunks'
/// embeddings quantized to one byte per value (a quarter of the `f32`s: 100 000 chunks of 384
/// values take 37 MiB), `LANES` rows side by side (`blocks[b * dim + j][lane]` is value `j` of
/// row `b * LANES + lane`, missing rows are zeros) so that the estimates of `LANES` rows advance
/// together, one vector instruction per value. Values of the query that are zero are skipped
/// (the built-in hashing embedder leaves many), so a search reads only the other columns. The
/// estimates only choose candidates: the search scores the
/// candidates exactly from their stored embeddings, with [`cosine`](crate::rag::embed::cosine)
/// as the scan does.
pub struct KbIndex {
    pub version: KbVersion,
    pub dim: usize,
    pub rows: Vec<IndexRow>,
    blocks: Vec<[i8; LANES]>,
}

pub struct IndexRow {
    pub chunk_id: Uuid,
    pub document_id: Uuid,
    pub chunk_index: i32,
    /// The quantization step over the embedding's L2 norm: the quantized dot product times this
    /// estimates the cosine (times the query's norm); 0 for a zero embedding or one of another
    /// dimension (which [`cosine`](crate::rag::embed::cosine) scores 0).
    weight: f32,
}

impl KbIndex {
    /// What the entry costs in memory (approximately: the allocations and the map's share).
    pub fn bytes(&self) -> usize {
        size_of::<KbIndex>()
            + 64
            + self.rows.capacity() * size_of::<IndexRow>()
            + self.blocks.capacity() * size_of::<[i8; LANES]>()
    }

    pub fn build(version: KbVersion, dim: usize, rows: Vec<(Uuid, Uuid, i32, Vec<u8>)>) -> KbIndex {
        let mut index = KbIndex {
            version,
            dim,
            rows: Vec::with_capacity(rows.len()),
            blocks: vec![[0; LANES]; rows.len().div_ceil(LANES) * dim],
        };
        let mut values = Vec::with_capacity(dim);
        for (r, (chunk_id, document_id, chunk_index, bytes)) in rows.into_iter().enumerate() {
            values.clear();
            values.extend(
                bytes
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            );
            let largest = values.iter().fold(0f32, |m, x| m.max(x.abs()));
            let norm = values.iter().map(|x| x * x).sum::<f32>().sqrt();
            let weight = if bytes.len() == dim * 4 && largest > 0.0 && norm.is_finite() {
                let step = largest / 127.0;
                let (block, lane) = (r / LANES, r % LANES);
                for (j, x) in values.iter().enumerate() {
                    index.blocks[block * dim + j][lane] = (x / step).round() as i8;
                }
                step / norm
            } else {
                0.0 // left as zeros
            };
            index.rows.push(IndexRow {
                chunk_id,
                document_id,
                chunk_index,
                weight,
            });
        }
        index
    }

    /// The estimated `query · row / |row|` of every row.
    fn estimates(&self, query: &[f32]) -> Vec<f32> {
        let dim = self.dim;
        if dim == 0 || query.len() != dim {
            return vec![0.0; self.rows.len()];
        }
        let columns: Vec<(usize, f32)> = query
            .iter()
            .enumerate()
            .filter(|(_, q)| **q != 0.0)
            .map(|(j, q)| (j, *q))
            .collect();
        let mut out = Vec::with_capacity(self.blocks.len() / dim * LANES);
        for block in self.blocks.chunks_exact(dim) {
            let mut acc = [0f32; LANES];
            for &(j, q) in &columns {
                for (a, v) in acc.iter_mut().zip(&block[j]) {
                    *a += q * f32::from(*v);
                }
            }
            out.extend_from_slice(&acc);
        }
        out.truncate(self.rows.len());
        for (e, row) in out.iter_mut().zip(&self.rows) {
            *e *= row.weight;
        }
        out
    }

    /// The positions of the (at most) `m` rows most similar to `query` by the estimates, in no
    /// particular order: the candidates the search scores exactly.
    pub fn candidates(&self, query: &[f32], m: usize) -> Vec<usize> {
        if m == 0 {
            return Vec::new();
        }
        let mut scored: Vec<(f32, usize)> = self
            .estimates(query)
            .into_iter()
            .enumerate()
            .map(|(i, e)| (e, i))
            .collect();
        if scored.len() > m {
            scored.select_nth_unstable_by(m - 1, |a, b| b.0.total_cmp(&a.0));
            scored.truncate(m);
        }
        scored.into_iter().map(|(_, i)| i).collect()
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::rag::embed::{HashingEmbedder, cosine};
    use crate::rag::vector::to_bytes;

    pub(in crate::rag::vector) fn index(dim: usize, rows: &[(i32, Vec<f32>)]) -> KbIndex {
        let doc = Uuid::from_u128(7);
        KbIndex::build(
            (rows.len() as i64, 0, None),
            dim,
            rows.iter()
                .enumerate()
                .map(|(i, (chunk_index, v))| {
                    (Uuid::from_u128(i as u128), doc, *chunk_index, to_bytes(v))
                })
                .collect(),
        )
    }

    /// The positions of the exact top `k` by cosine (as the scan ranks them).
    fn exact_top(rows: &[(i32, Vec<f32>)], query: &[f32], k: usize) -> Vec<usize> {
        let mut all: Vec<(f32, usize)> = rows
            .iter()
            .enumerate()
            .map(|(i, (_, v))| (cosine(query, v), i))
            .collect();
        all.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        all.into_iter().take(k).map(|(_, i)| i).collect()
    }

    /// Fraction of the exact top `k` among `m` candidates, over `queries`.
    fn recall(rows: &[(i32, Vec<f32>)], queries: &[Vec<f32>], k: usize, m: usize) -> f64 {
        let idx = index(rows[0].1.len(), rows);
        let mut found = 0;
        for q in queries {
            let candidates = idx.candidates(q, m);
            found += exact_top(rows, q, k)
                .iter()
                .filter(|i| candidates.contains(i))
                .count();
        }
        found as f64 / (queries.len() * k) as f64
    }

    /// Deterministic values in [-1, 1).
    fn noise(seed: u64) -> impl FnMut() -> f32 {
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        }
    }

    #[test]
    fn candidates_hold_the_exact_top_k_of_dense_embeddings() {
        // Dense vectors with a shared direction (as real embeddings have), and queries near rows.
        let dim = 96;
        let mut next = noise(1);
        let common: Vec<f32> = (0..dim).map(|_| next()).collect();
        let rows: Vec<(i32, Vec<f32>)> = (0..3000)
            .map(|r| (r, common.iter().map(|c| 0.5 * c + next()).collect()))
            .collect();
        let queries: Vec<Vec<f32>> = (0..40)
            .map(|q| rows[q * 71].1.iter().map(|x| x + 0.8 * next()).collect())
            .collect();
        let r = recall(&rows, &queries, 5, 64);
        eprintln!("dense: recall@5 with 64 candidates {r}");
        assert!(r >= 0.98, "recall@5 with 64 candidates: {r}");
    }

    #[test]
    fn candidates_hold_the_exact_top_k_of_the_built_in_embedder() {
        let e = HashingEmbedder::new(HashingEmbedder::DEFAULT_DIM);
        let words = [
            "tenant", "invoice", "refund", "policy", "shipping", "customer", "warranty", "account",
            "password", "reset", "billing", "plan", "upgrade", "support", "hours", "holiday",
            "returns", "damaged", "order", "tracking", "delivery", "address", "payment", "card",
        ];
        let mut next = noise(2);
        let mut pick = |n: usize| -> String {
            (0..n)
                .map(|_| words[((next() + 1.0) * 12.0) as usize % words.len()])
                .collect::<Vec<_>>()
                .join(" ")
        };
        let rows: Vec<(i32, Vec<f32>)> = (0..3000)
            .map(|r| (r, e.embed_sync(&[pick(60)]).remove(0)))
            .collect();
        let queries: Vec<Vec<f32>> = (0..40)
            .map(|_| e.embed_sync(&[pick(6)]).remove(0))
            .collect();
        let r = recall(&rows, &queries, 5, 64);
        eprintln!("hashing embedder: recall@5 with 64 candidates {r}");
        assert!(r >= 0.98, "recall@5 with 64 candidates: {r}");
    }

    #[test]
    fn zero_and_foreign_embeddings_and_small_bases() {
        let rows = vec![
            (0, vec![0.1f32, 0.7, -0.3]),
            (1, vec![3.0, 1.0, 2.0]),
            (2, vec![0.0, 0.0, 0.0]),
            (3, vec![1.0, 2.0]), // another dimension: never estimated above 0
            (4, vec![-0.2, 0.33, 0.9]),
        ];
        let idx = index(3, &rows);
        let query = [0.25f32, 0.5, -0.125];
        // A base no larger than the candidate count: every row is a candidate.
        let mut all = idx.candidates(&query, 10);
        all.sort();
        assert_eq!(all, [0, 1, 2, 3, 4]);
        assert!(idx.candidates(&query, 0).is_empty());
        // The best estimate is the best exact score here.
        assert_eq!(idx.candidates(&query, 1), exact_top(&rows, &query, 1));
        let estimates = idx.estimates(&query);
        assert_eq!(estimates[2], 0.0);
        assert_eq!(estimates[3], 0.0);
        // A query of another dimension estimates everything 0.
        assert!(idx.estimates(&[1.0, 2.0]).iter().all(|e| *e == 0.0));
    }

    #[test]
    fn the_index_takes_a_quarter_of_the_embeddings() {
        let dim = 384;
        let rows: Vec<(i32, Vec<f32>)> = (0..1000).map(|r| (r, vec![0.5; dim])).collect();
        let idx = index(dim, &rows);
        let embeddings = 1000 * dim * 4;
        assert!(idx.bytes() < embeddings / 3, "{} bytes", idx.bytes());
    }
}
