//! Embeddings behind one trait. The built-in [`HashingEmbedder`] needs no network and no model:
//! feature hashing of words and character trigrams into a fixed-size, L2-normalised vector, so
//! texts sharing words and word pieces land close together (lexical, not semantic, similarity).

use crate::provider::{BoxFut, ProviderError};

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

/// Texts per embedding task: below this, one task does them all.
const MIN_TEXTS_PER_TASK: usize = 16;

/// Buffers reused across the texts of one batch.
#[derive(Default)]
struct Scratch {
    /// (feature hash, weight) of every word and trigram, in text order.
    features: Vec<(u64, f32)>,
    /// The current word, lower-cased, when that needs a copy.
    word: String,
}

impl HashingEmbedder {
    pub const DEFAULT_DIM: usize = 384;

    pub fn new(dim: usize) -> Self {
        HashingEmbedder { dim }
    }

    /// Feature hashing of the words (weight 1) and the character trigrams of `<word>`
    /// (weight 0.5), stop words left out; each feature's summed weight `count` adds
    /// `±(1 + ln count)` to the bucket `hash % dim` (sign: the hash's top bit); L2-normalised.
    ///
    /// Features are added to their buckets in ascending hash order. The first implementation
    /// (kept as `tests::reference_embed`) added them in the iteration order of a SipHash map,
    /// which differs from one map to the next, so its own results could differ in the last bits
    /// of a bucket holding three or more features; with that order fixed to ascending hashes it
    /// gives exactly this function's results (bit for bit, tested), and where no bucket holds
    /// more than two features any order gives the same bits.
    fn embed_one(&self, text: &str, scratch: &mut Scratch) -> Vec<f32> {
        let features = &mut scratch.features;
        features.clear();
        for raw in text.split(|c: char| !c.is_alphanumeric()) {
            if raw.is_empty() {
                continue;
            }
            let word = lowercase(raw, &mut scratch.word);
            if STOP_WORDS.contains(&word) {
                continue;
            }
            features.push((fnv1a(word.as_bytes(), 0), 1.0));
            // The trigrams of `<word>`, hashed from the characters' UTF-8 bytes as they come.
            let mut chars = std::iter::once('<')
                .chain(word.chars())
                .chain(std::iter::once('>'));
            let (Some(mut a), Some(mut b)) = (chars.next(), chars.next()) else {
                continue;
            };
            for c in chars {
                let mut hash = fnv1a_start(1);
                for ch in [a, b, c] {
                    hash = fnv1a_char(hash, ch);
                }
                features.push((hash, 0.5));
                (a, b) = (b, c);
            }
        }
        // Equal hashes next to each other, in text order (a stable sort): each feature's weights
        // are summed in the order the first implementation summed them.
        features.sort_by_key(|&(hash, _)| hash);
        let mut vector = vec![0f32; self.dim];
        let mut rest = &features[..];
        while let Some(&(hash, _)) = rest.first() {
            let run = rest.iter().take_while(|f| f.0 == hash).count();
            let count = rest[..run].iter().fold(0f32, |sum, f| sum + f.1);
            rest = &rest[run..];
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
        let mut scratch = Scratch::default();
        texts
            .iter()
            .map(|t| self.embed_one(t, &mut scratch))
            .collect()
    }
}

/// The cores to embed on (read once).
fn parallelism() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
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
            // CPU work: off the async threads, and a large batch split over the cores (each
            // text's vector depends on that text only, so the split changes nothing).
            let dim = self.dim;
            let tasks = parallelism()
                .min(texts.len().div_ceil(MIN_TEXTS_PER_TASK))
                .max(1);
            let per_task = texts.len().div_ceil(tasks).max(1);
            let handles: Vec<_> = texts
                .chunks(per_task)
                .map(|part| {
                    let part = part.to_vec();
                    tokio::task::spawn_blocking(move || HashingEmbedder::new(dim).embed_sync(&part))
                })
                .collect();
            let mut vectors = Vec::with_capacity(texts.len());
            for handle in handles {
                vectors.extend(handle.await.map_err(|e| {
                    ProviderError::Unavailable(format!("embedding task failed: {e}"))
                })?);
            }
            Ok(vectors)
        })
    }
}

/// `word` lower-cased exactly as `str::to_lowercase` does, without allocating unless needed:
/// ASCII without capitals is returned as is, other words are lower-cased into `buf`.
fn lowercase<'a>(word: &'a str, buf: &'a mut String) -> &'a str {
    if word.is_ascii() {
        if !word.bytes().any(|b| b.is_ascii_uppercase()) {
            return word;
        }
        buf.clear();
        buf.extend(word.chars().map(|c| c.to_ascii_lowercase()));
    } else if word.contains('Σ') {
        // Capital sigma depends on its neighbours (final ς or σ): the standard library's rule.
        *buf = word.to_lowercase();
    } else {
        // Otherwise `str::to_lowercase` maps each character on its own, as `char` does.
        buf.clear();
        buf.extend(word.chars().flat_map(char::to_lowercase));
    }
    buf
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

fn fnv1a_start(seed: u64) -> u64 {
    0xcbf29ce484222325u64 ^ seed.wrapping_mul(0x9e3779b97f4a7c15)
}

fn fnv1a_byte(hash: u64, byte: u8) -> u64 {
    (hash ^ u64::from(byte)).wrapping_mul(0x100000001b3)
}

/// Continues `hash` with the UTF-8 bytes of `c`.
fn fnv1a_char(hash: u64, c: char) -> u64 {
    let mut utf8 = [0u8; 4];
    c.encode_utf8(&mut utf8).bytes().fold(hash, fnv1a_byte)
}

fn fnv1a(bytes: &[u8], seed: u64) -> u64 {
    bytes
        .iter()
        .fold(fnv1a_start(seed), |hash, b| fnv1a_byte(hash, *b))
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

    use std::collections::HashMap;

    /// The first implementation's feature counts, verbatim.
    fn reference_counts(text: &str) -> HashMap<u64, f32> {
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
        counts
    }

    fn reference_vector(dim: usize, counts: impl IntoIterator<Item = (u64, f32)>) -> Vec<f32> {
        let mut vector = vec![0f32; dim];
        for (hash, count) in counts {
            let index = (hash % dim as u64) as usize;
            let sign = if hash >> 63 == 0 { 1.0 } else { -1.0 };
            vector[index] += sign * (1.0 + count.ln());
        }
        normalise(&mut vector);
        vector
    }

    /// The first implementation of `embed_one`, verbatim (buckets summed in the map's order).
    fn reference_embed(dim: usize, text: &str) -> Vec<f32> {
        reference_vector(dim, reference_counts(text))
    }

    /// The first implementation with its buckets summed in ascending hash order.
    fn reference_embed_ordered(dim: usize, text: &str) -> Vec<f32> {
        let mut counts: Vec<(u64, f32)> = reference_counts(text).into_iter().collect();
        counts.sort_by_key(|c| c.0);
        reference_vector(dim, counts)
    }

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    /// Hand-picked texts, then pseudo-random ones mixing ASCII, multi-byte letters, digits,
    /// punctuation, capitals (sigma included) and stop words.
    fn varied_texts() -> Vec<String> {
        let mut texts: Vec<String> = [
            "",
            " ",
            "!!! ... ---",
            "a the of and to",
            "Hello, World!",
            "The invoice is due within 30 days of delivery.",
            "When is the invoice due?",
            "Ünïcödé façade naïve café CAFÉ",
            "日本語のテキストと漢字",
            "ΟΔΟΣ ΣΟΦΙΑ Σ ΣΣ aΣb ΑΣ. Σa ὈΔΥΣΣΕΎΣ",
            "İstanbul DİYARBAKIR ıI",
            "ǅungla ǈ ǋ ẞ ß ﬁnance \u{212A}elvin",
            "e\u{301}te\u{301} zero\u{200d}width",
            "🦀 rust 🦀 crab🦀crab",
            "١٢٣ ٤٥ ① ² Ⅻ",
            "e-mail, co-op; x.y/z (parens) [brackets] {braces} \"quotes\" 'single'",
            "tabs\tand\nnew\r\nlines",
            "MiXeD CaSe WORDS words Words",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        texts.push("x".repeat(10_000));
        texts.push("abcé".repeat(3_000));
        texts.push("Ω".repeat(2_000));
        texts.push("echo ".repeat(5_000));
        texts.push("Repeated repeated REPEATED words, words; ".repeat(300));
        let pool: Vec<char> = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789     .,;!?-'éÉüÜßΣσςΑωЖжд日本中文😀İı"
            .chars()
            .collect();
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for n in 0..300 {
            let len = [0, 1, 2, 3, 10, 50, 200, 1000][n % 8];
            let text: String = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    pool[(state % pool.len() as u64) as usize]
                })
                .collect();
            texts.push(text);
        }
        texts
    }

    #[test]
    fn the_embedding_is_the_first_implementations_bit_for_bit() {
        for dim in [HashingEmbedder::DEFAULT_DIM, 1024, 7, 1] {
            let e = HashingEmbedder::new(dim);
            let texts = varied_texts();
            let got = e.embed_sync(&texts);
            for (text, got) in texts.iter().zip(&got) {
                let ordered = reference_embed_ordered(dim, text);
                assert_eq!(bits(got), bits(&ordered), "dim {dim}: {text:?}");
                // The first implementation itself: identical whenever its map's order cannot
                // matter (at most two features per bucket: two-term sums commute exactly).
                let mut per_bucket = vec![0u32; dim];
                for hash in reference_counts(text).keys() {
                    per_bucket[(hash % dim as u64) as usize] += 1;
                }
                let first = reference_embed(dim, text);
                if per_bucket.iter().all(|&n| n <= 2) {
                    assert_eq!(bits(got), bits(&first), "dim {dim}: {text:?}");
                } else if dim >= HashingEmbedder::DEFAULT_DIM {
                    // (With a handful of buckets a sum can cancel to about 0, and normalising
                    // blows its last bits up: only realistic sizes are compared this way.)
                    let worst = got
                        .iter()
                        .zip(&first)
                        .map(|(a, b)| (a - b).abs())
                        .fold(0f32, f32::max);
                    assert!(worst < 1e-5, "dim {dim}: {text:?}: {worst}");
                }
            }
        }
    }

    #[test]
    fn lowercase_is_str_to_lowercase() {
        let mut buf = String::new();
        for text in varied_texts() {
            for word in text.split(|c: char| !c.is_alphanumeric()) {
                assert_eq!(lowercase(word, &mut buf), word.to_lowercase(), "{word:?}");
            }
        }
        for c in (0..=0x10FFFFu32).filter_map(char::from_u32) {
            if !c.is_alphanumeric() {
                continue;
            }
            for word in [
                c.to_string(),
                format!("a{c}"),
                format!("{c}b"),
                format!("Σ{c}Σ"),
            ] {
                assert_eq!(lowercase(&word, &mut buf), word.to_lowercase(), "{word:?}");
            }
        }
    }

    #[tokio::test]
    async fn a_batch_split_over_tasks_embeds_as_one() {
        let e = HashingEmbedder::new(HashingEmbedder::DEFAULT_DIM);
        let texts = varied_texts();
        for n in [
            0,
            1,
            MIN_TEXTS_PER_TASK,
            MIN_TEXTS_PER_TASK + 1,
            texts.len(),
        ] {
            let batch = &texts[..n];
            let got = e.embed(batch).await.unwrap();
            assert_eq!(got, e.embed_sync(batch), "{n} texts");
        }
    }

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
