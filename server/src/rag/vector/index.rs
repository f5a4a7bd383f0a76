//! One knowledge base's embeddings in memory, laid out to be scored fast and exactly.

use uuid::Uuid;

use super::rank;

/// (completed documents, their chunks, the latest change among them): changes whenever a
/// document is completed, re-processed, deleted or renamed, by this process or any other.
pub type KbVersion = (i64, i64, Option<String>);

/// Rows stored side by side in [`KbIndex::blocks`].
const LANES: usize = 8;

/// One knowledge base in memory: its chunks' embeddings as read from the database and what is
/// needed to score and find them again. The embeddings are stored `LANES` rows side by side
/// (`blocks[b * dim + j][lane]` is value `j` of row `b * LANES + lane`, missing rows are zeros),
/// so the dot products of `LANES` rows advance together, one vector instruction per value,
/// while each row's sum still adds its products in order (the same scores, to the bit, as
/// [`cosine`](crate::rag::embed::cosine)): a single sum is bound by the latency of its additions, and scoring was 65 % of
/// a query's time over 10 000 chunks.
pub struct KbIndex {
    pub version: KbVersion,
    pub dim: usize,
    pub rows: Vec<IndexRow>,
    blocks: Vec<[f32; LANES]>,
}

pub struct IndexRow {
    pub chunk_id: Uuid,
    pub document_id: Uuid,
    pub chunk_index: i32,
    /// The embedding's L2 norm, computed exactly as [`cosine`](crate::rag::embed::cosine) does; 0 for an embedding of
    /// another dimension (which [`cosine`](crate::rag::embed::cosine) scores 0).
    norm: f32,
}

impl KbIndex {
    /// What the entry costs in memory (approximately: the allocations and the map's share).
    pub fn bytes(&self) -> usize {
        size_of::<KbIndex>()
            + 64
            + self.rows.capacity() * size_of::<IndexRow>()
            + self.blocks.capacity() * size_of::<[f32; LANES]>()
    }

    pub fn build(version: KbVersion, dim: usize, rows: Vec<(Uuid, Uuid, i32, Vec<u8>)>) -> KbIndex {
        let mut index = KbIndex {
            version,
            dim,
            rows: Vec::with_capacity(rows.len()),
            blocks: vec![[0.0; LANES]; rows.len().div_ceil(LANES) * dim],
        };
        for (r, (chunk_id, document_id, chunk_index, bytes)) in rows.into_iter().enumerate() {
            let norm = if bytes.len() == dim * 4 {
                let (block, lane) = (r / LANES, r % LANES);
                let mut squares = -0.0f32; // what `Sum for f32` starts from
                for (j, b) in bytes.chunks_exact(4).enumerate() {
                    let x = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                    index.blocks[block * dim + j][lane] = x;
                    squares += x * x;
                }
                squares.sqrt()
            } else {
                0.0 // left as zeros
            };
            index.rows.push(IndexRow {
                chunk_id,
                document_id,
                chunk_index,
                norm,
            });
        }
        index
    }

    /// `query · row` for every row, each summed in order from -0.0 as `Sum for f32` does.
    fn dots(&self, query: &[f32]) -> Vec<f32> {
        let dim = self.dim;
        if dim == 0 || query.len() != dim {
            return vec![0.0; self.rows.len()];
        }
        let mut out = Vec::with_capacity(self.blocks.len() / dim * LANES);
        for block in self.blocks.chunks_exact(dim) {
            let mut acc = [-0.0f32; LANES];
            for (q, values) in query.iter().zip(block) {
                for (a, v) in acc.iter_mut().zip(values) {
                    *a += q * v;
                }
            }
            out.extend_from_slice(&acc);
        }
        out.truncate(self.rows.len());
        out
    }

    /// The positions of the `k` best rows for `query`, best first, with their scores: the same
    /// scores (bit for bit) and order as the scan without the index.
    pub fn top_k(&self, query: &[f32], k: usize) -> Vec<(f32, usize)> {
        if k == 0 {
            return Vec::new();
        }
        let query_norm = query.iter().map(|x| x * x).sum::<f32>().sqrt();
        let mut scored: Vec<(f32, usize)> = self
            .dots(query)
            .into_iter()
            .zip(&self.rows)
            .enumerate()
            .map(|(i, (dot, row))| {
                let score = if query_norm == 0.0 || row.norm == 0.0 {
                    0.0
                } else {
                    dot / (query_norm * row.norm)
                };
                (score, i)
            })
            .collect();
        let key = |&(score, i): &(f32, usize)| {
            let row = &self.rows[i];
            (score, row.chunk_index, row.document_id)
        };
        let order = |a: &(f32, usize), b: &(f32, usize)| rank(key(a), key(b));
        if scored.len() > k {
            scored.select_nth_unstable_by(k - 1, order);
            scored.truncate(k);
        }
        scored.sort_by(order);
        scored
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::rag::embed::cosine;
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

    #[test]
    fn top_k_scores_exactly_as_cosine_does() {
        let rows = vec![
            (0, vec![0.1f32, 0.7, -0.3]),
            (1, vec![3.0, 1.0, 2.0]),
            (2, vec![0.0, 0.0, 0.0]),
            (3, vec![1.0, 2.0]), // another dimension: scored 0, as cosine does
            (4, vec![-0.2, 0.33, 0.9]),
            (5, vec![0.1, 0.7, -0.3]), // a tie with chunk 0: the lower chunk index first
        ];
        let idx = index(3, &rows);
        let query = [0.25f32, 0.5, -0.125];
        let got = idx.top_k(&query, 10);
        let mut want: Vec<(f32, i32)> = rows
            .iter()
            .map(|(ci, v)| (cosine(&query, v), *ci))
            .collect();
        want.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        let got_pairs: Vec<(u32, i32)> = got
            .iter()
            .map(|(s, i)| (s.to_bits(), idx.rows[*i].chunk_index))
            .collect();
        let want_pairs: Vec<(u32, i32)> = want.iter().map(|(s, c)| (s.to_bits(), *c)).collect();
        assert_eq!(got_pairs, want_pairs);
        assert_eq!(idx.top_k(&query, 2).len(), 2);
        assert_eq!(idx.top_k(&query, 2), got[..2].to_vec());
        assert!(idx.top_k(&query, 0).is_empty());
        // A zero query scores everything 0 (then by chunk index), like cosine.
        let zero: Vec<i32> = idx
            .top_k(&[0.0, 0.0, 0.0], 3)
            .iter()
            .map(|(s, i)| {
                assert_eq!(*s, 0.0);
                idx.rows[*i].chunk_index
            })
            .collect();
        assert_eq!(zero, vec![0, 1, 2]);
    }

    #[test]
    fn scores_of_many_rows_are_bit_for_bit_those_of_cosine() {
        // Values of mixed sign and magnitude in a realistic dimension, so that any change in the
        // order of the additions shows in the last bits.
        let dim = 97;
        let value = |r: usize, j: usize| {
            let x = ((r * 7919 + j * 104_729) % 1000) as f32 / 997.0 - 0.5;
            x * if j.is_multiple_of(5) { 1000.0 } else { 0.001 }
        };
        let rows: Vec<(i32, Vec<f32>)> = (0..29)
            .map(|r| (r as i32, (0..dim).map(|j| value(r, j)).collect()))
            .collect();
        let query: Vec<f32> = (0..dim).map(|j| value(1000, j)).collect();
        let idx = index(dim, &rows);
        let got = idx.top_k(&query, rows.len());
        assert_eq!(got.len(), rows.len());
        for (score, i) in got {
            assert_eq!(
                score.to_bits(),
                cosine(&query, &rows[i].1).to_bits(),
                "row {i}"
            );
        }
    }
}
