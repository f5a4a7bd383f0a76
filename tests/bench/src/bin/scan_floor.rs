//! The brute-force reference of the RAG benchmark: exact search by a plain scan, in this one
//! process, of as many `f32` vectors as the server indexed (ROWS x DIM, 4 bytes a value: at
//! 100 000 x 384 that is 154 MB read per query, the memory-bandwidth bound of an exact search
//! without an index). For each CONNS value, that many threads each run queries back to back for
//! SECONDS; every query scores every row by cosine (row norms computed once, as an index would)
//! and keeps the top 5. Prints one line per CONNS in api.sh's results format
//! (`brute-force-scan none rag CONNS RUN rps p50_ms p99_ms 0 rss_mb 0 0`), so that report.rs
//! puts the server's RAG cells beside it.
//!
//!   scan_floor --rows 100000 [--dim 384] [--conns "1 16"] [--seconds 10] [--run 1]

use oyl_bench::{arg, xorshift};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Deterministic values in [-1, 1) (xorshift), so every run scans the same data.
fn values(seed: u64, n: usize) -> Vec<f32> {
    let mut next = xorshift(seed);
    (0..n)
        .map(|_| (next() >> 40) as f32 / (1u64 << 23) as f32 - 1.0)
        .collect()
}

struct Matrix {
    dim: usize,
    data: Vec<f32>,
    norms: Vec<f32>,
}

impl Matrix {
    /// The positions of the 5 rows most similar to `query` by cosine.
    fn top5(&self, query: &[f32]) -> Vec<usize> {
        let qn = query.iter().map(|x| x * x).sum::<f32>().sqrt();
        let mut scored: Vec<(f32, usize)> = self
            .data
            .chunks_exact(self.dim)
            .zip(&self.norms)
            .enumerate()
            .map(|(i, (row, n))| {
                let dot: f32 = row.iter().zip(query).map(|(a, b)| a * b).sum();
                (dot / (n * qn).max(f32::MIN_POSITIVE), i)
            })
            .collect();
        let k = 5.min(scored.len());
        if k > 0 {
            scored.select_nth_unstable_by(k - 1, |a, b| b.0.total_cmp(&a.0));
        }
        scored.truncate(k);
        scored.into_iter().map(|(_, i)| i).collect()
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// VmHWM of this process in MiB.
fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn main() {
    let rows: usize = arg("--rows", "10000").parse().expect("--rows");
    let dim: usize = arg("--dim", "384").parse().expect("--dim");
    let seconds: u64 = arg("--seconds", "10").parse().expect("--seconds");
    let run = arg("--run", "1");
    let data = values(1, rows * dim);
    let norms = data
        .chunks_exact(dim)
        .map(|r| r.iter().map(|x| x * x).sum::<f32>().sqrt())
        .collect();
    let matrix = Arc::new(Matrix { dim, data, norms });
    for conns in arg("--conns", "1 16").split_whitespace() {
        let conns: usize = conns.parse().expect("--conns");
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let started = Instant::now();
        let threads: Vec<_> = (0..conns)
            .map(|t| {
                let matrix = matrix.clone();
                std::thread::spawn(move || {
                    let mut latencies = Vec::new();
                    let mut q = 0u64;
                    while Instant::now() < deadline {
                        let query = values(1000 + t as u64 * 1_000_003 + q, matrix.dim);
                        let t0 = Instant::now();
                        std::hint::black_box(matrix.top5(&query));
                        latencies.push(t0.elapsed().as_secs_f64() * 1000.0);
                        q += 1;
                    }
                    latencies
                })
            })
            .collect();
        let mut latencies: Vec<f64> = threads
            .into_iter()
            .flat_map(|t| t.join().expect("scan thread"))
            .collect();
        let elapsed = started.elapsed().as_secs_f64();
        latencies.sort_by(f64::total_cmp);
        println!(
            "brute-force-scan\tnone\trag\t{conns}\t{run}\t{:.1}\t{:.3}\t{:.3}\t0\t{:.1}\t0\t0",
            latencies.len() as f64 / elapsed,
            percentile(&latencies, 0.5),
            percentile(&latencies, 0.99),
            peak_rss_mb(),
        );
    }
}
