//! Embeddings behind one trait. The built-in [`HashingEmbedder`] needs no network and no model:
//! feature hashing of words and character trigrams into a fixed-size, L2-normalised vector, so
//! texts sharing words and word pieces land close together (lexical, not semantic, similarity).

use std::collections::HashMap;

use super::{BoxFut, ProviderError};

pub trait Embedder: Send + Sync {
    /// A stable name (provider and model), for logs and metrics.
    fn name(&self) -> String;
    /// One vector per text, in order.
    fn embed<'a>(&'a self, texts: &'a [String])
    -> BoxFut<'a, Result<Vec<Vec<f32>>, ProviderError>>;
}

pub struct HashingEmbedder {
    dim: usize,
}

impl HashingEmbedder {
    pub const DEFAULT_DIM: usize = 384;

    pub fn new(dim: usize) -> Self {
        HashingEmbedder { dim }
    }

    fn embed_one(&self, text: &str) -> Vec<f32> {
        let mut counts: HashMap<u64, f32> = HashMap::new();
        for word in words(text) {
            if STOP_WORDS.contains(&word.as_str()) {
                continue;
            }
            *counts.entry(fnv1a(word.as_bytes(), 0)).or_default() += 1.0;
            let padded: Vec<char> = format!("<{word}>").chars().collect();
            for gram in padded.windows(3) {
                let gram: String = gram.iter().collect();
                *counts.entry(fnv1a(gram.as_bytes(), 1)).or_default() += 0.5;
            }
        }
        let mut vector = vec![0f32; self.dim];
        for (hash, count) in counts {
            let index = (hash % self.dim as u64) as usize;
            let sign = if hash >> 63 == 0 { 1.0 } else { -1.0 };
            // Sublinear term frequency.
            vector[index] += sign * (1.0 + count.ln());
        }
        normalise(&mut vector);
        vector
    }
}

impl HashingEmbedder {
    pub fn embed_sync(&self, texts: &[String]) -> Vec<Vec<f32>> {
        texts.iter().map(|t| self.embed_one(t)).collect()
    }
}

impl Embedder for HashingEmbedder {
    fn name(&self) -> String {
        format!("hashing-v1/{}", self.dim)
    }
    fn embed<'a>(
        &'a self,
        texts: &'a [String],
    ) -> BoxFut<'a, Result<Vec<Vec<f32>>, ProviderError>> {
        Box::pin(async move {
            // CPU work: keep it off the async threads for large documents.
            let dim = self.dim;
            let texts = texts.to_vec();
            tokio::task::spawn_blocking(move || HashingEmbedder::new(dim).embed_sync(&texts))
                .await
                .map_err(|e| ProviderError::Unavailable(format!("embedding task failed: {e}")))
        })
    }
}

/// Lower-cased alphanumeric words (Unicode-aware).
pub fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
}

pub const STOP_WORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "by", "do", "does", "for", "from", "how", "i", "in",
    "is", "it", "its", "of", "on", "or", "that", "the", "this", "to", "was", "what", "when",
    "where", "which", "who", "why", "with", "you", "your",
];

fn fnv1a(bytes: &[u8], seed: u64) -> u64 {
    let mut hash = 0xcbf29ce484222325u64 ^ seed.wrapping_mul(0x9e3779b97f4a7c15);
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x100000001b3);
    }
    hash
}

pub fn normalise(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}

pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() {
        return 0.0;
    }
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot / (na * nb)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn similar_texts_are_closer_than_unrelated_ones() {
        let e = HashingEmbedder::new(HashingEmbedder::DEFAULT_DIM);
        let v = e.embed_sync(&[
            "The invoice is due within 30 days of delivery.".into(),
            "When is the invoice due?".into(),
            "Penguins live in the southern hemisphere.".into(),
        ]);
        assert_eq!(v[0].len(), 384);
        let related = cosine(&v[0], &v[1]);
        let unrelated = cosine(&v[2], &v[1]);
        assert!(related > unrelated + 0.2, "{related} vs {unrelated}");
        assert!((cosine(&v[0], &v[0]) - 1.0).abs() < 1e-5);
        // Deterministic across calls (and processes: no random seed).
        assert_eq!(
            e.embed_sync(&["same".into()]),
            e.embed_sync(&["same".into()])
        );
    }
}
