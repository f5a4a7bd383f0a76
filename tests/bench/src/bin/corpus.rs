//! Deterministic documents for the ingestion and RAG benchmarks: pseudo-English prose (a fixed
//! vocabulary with a Zipf-like word distribution, sentences and paragraphs) so the hashing
//! embedder sees realistic word and trigram statistics, and the same bytes on every run.
//!
//!     corpus --dir DIR --docs N --chars L [--format md|txt|html] [--seed S]
//!
//! Writes DIR/doc-0000.md ... (N files of about L characters each; with the server's defaults,
//! CHUNK_SIZE=1000 and CHUNK_OVERLAP=200, a file of 79 600 characters gives 100 chunks).
use std::fmt::Write as _;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545F4914F6CDD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const SYLLABLES: &[&str] = &[
    "ta", "ren", "vo", "lis", "kar", "me", "dun", "sel", "pra", "o", "gin", "tel", "mar", "qu",
    "es", "ba", "lon", "fi", "der", "ca", "no", "strum", "ex", "pol", "ian", "ver", "su", "ad",
];
/// Words a business knowledge base would contain, mixed into the generated vocabulary so that
/// queries about them retrieve something.
const TOPICAL: &[&str] = &[
    "invoice",
    "deadline",
    "payment",
    "contract",
    "delivery",
    "customer",
    "warranty",
    "refund",
    "policy",
    "shipping",
    "account",
    "support",
    "renewal",
    "license",
    "pricing",
    "discount",
    "onboarding",
    "security",
    "password",
    "backup",
    "storage",
    "report",
    "quarter",
    "budget",
];

fn vocabulary(rng: &mut Rng, size: usize) -> Vec<String> {
    let mut words: Vec<String> = TOPICAL.iter().map(|w| w.to_string()).collect();
    while words.len() < size {
        let n = 1 + rng.below(3);
        let w: String = (0..n)
            .map(|_| SYLLABLES[rng.below(SYLLABLES.len())])
            .collect();
        words.push(w);
    }
    words
}

/// A Zipf-like pick: small indices (frequent words) much more often than large ones.
fn pick<'a>(rng: &mut Rng, words: &'a [String]) -> &'a str {
    let u = (rng.next() >> 11) as f64 / (1u64 << 53) as f64;
    let i = ((words.len() as f64).powf(u) - 1.0) as usize;
    &words[i.min(words.len() - 1)]
}

fn document(rng: &mut Rng, words: &[String], chars: usize) -> String {
    let mut text = String::with_capacity(chars + 200);
    while text.len() < chars {
        let sentences = 3 + rng.below(5);
        for _ in 0..sentences {
            let n = 6 + rng.below(14);
            for i in 0..n {
                let w = pick(rng, words);
                if i == 0 {
                    let mut c = w.chars();
                    if let Some(f) = c.next() {
                        text.extend(f.to_uppercase());
                        text.push_str(c.as_str());
                    }
                } else {
                    text.push(' ');
                    text.push_str(w);
                }
            }
            text.push_str(". ");
        }
        text.push_str("\n\n");
    }
    text.truncate(chars);
    text
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let get = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1).cloned())
    };
    let dir = get("--dir").expect("--dir DIR");
    let docs: usize = get("--docs").map_or(100, |v| v.parse().expect("--docs N"));
    let chars: usize = get("--chars").map_or(79_600, |v| v.parse().expect("--chars L"));
    let format = get("--format").unwrap_or_else(|| "md".into());
    let seed: u64 = get("--seed").map_or(42, |v| v.parse().expect("--seed S"));
    std::fs::create_dir_all(&dir).expect("create --dir");
    let mut rng = Rng(seed.wrapping_mul(0x9E3779B97F4A7C15) | 1);
    let words = vocabulary(&mut rng, 5000);
    for d in 0..docs {
        let body = document(&mut rng, &words, chars);
        let content = match format.as_str() {
            "md" => format!("# Document {d}\n\n{body}"),
            "html" => {
                let mut h = format!(
                    "<html><head><title>Document {d}</title></head><body><h1>Document {d}</h1>"
                );
                for p in body.split("\n\n").filter(|p| !p.is_empty()) {
                    let _ = write!(h, "<p>{p}</p>");
                }
                h.push_str("</body></html>");
                h
            }
            _ => body,
        };
        std::fs::write(format!("{dir}/doc-{d:04}.{format}"), content).expect("write");
    }
}
