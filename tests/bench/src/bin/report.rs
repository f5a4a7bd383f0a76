//! Tables for the benchmark scripts, from the tab-separated results they write.
//!
//!     report api DIR        # DIR/results.tsv from api.sh
//!     report ingest DIR     # DIR/results.tsv from ingest.sh
//!     report operator DIR   # DIR/results.tsv from operator.sh
//!
//! Prints DIR/machine.txt, a Markdown table (medians over runs) and the targets of issue 8 with
//! met / not met.
use std::collections::BTreeMap;

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn rows(dir: &str) -> Vec<Vec<String>> {
    std::fs::read_to_string(format!("{dir}/results.tsv"))
        .expect("results.tsv")
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect()
}

fn num(s: &str) -> f64 {
    s.parse().unwrap_or(f64::NAN)
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "NOT met" }
}

fn fmt_rps(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

fn fmt_ms(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// api.sh: target backend endpoint conns run rps p50_ms p99_ms errors peak_rss_mb load other_cpu
fn api(dir: &str) {
    let rows = rows(dir);
    type Key = (String, String, String, u32);
    let mut cells: BTreeMap<Key, Vec<&Vec<String>>> = BTreeMap::new();
    let mut idle = Vec::new();
    let order = |e: &str| {
        ["health", "get", "list", "rag", "post"]
            .iter()
            .position(|x| *x == e)
            .unwrap_or(9)
    };
    for r in &rows {
        if r[0] == "idle" {
            idle.push(format!("{} ({}): {} MiB", r[1], r[2], r[9]));
            continue;
        }
        let key = (
            format!("{}{}", if r[0] == "bare-axum" { "z" } else { "a" }, r[1]),
            format!("{}{}", order(&r[2]), r[2]),
            r[0].clone(),
            r[3].parse().unwrap_or(0),
        );
        cells.entry(key).or_default().push(r);
    }
    println!(
        "| server | database | endpoint | conns | req/s | p50 ms | p99 ms | errors | peak RSS MiB | load avg | other CPU % | runs |"
    );
    println!("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut med: BTreeMap<Key, (f64, f64, f64)> = BTreeMap::new();
    for ((b, e, target, c), runs) in &cells {
        let col = |i: usize| runs.iter().map(|r| num(&r[i])).collect::<Vec<_>>();
        let (rps, p50, p99) = (median(col(5)), median(col(6)), median(col(7)));
        let errors: f64 = col(8).iter().sum();
        let rss = col(9).into_iter().fold(0.0, f64::max);
        let (backend, endpoint) = (&b[1..], &e[1..]);
        med.insert(
            (
                target.clone(),
                backend.to_string(),
                endpoint.to_string(),
                *c,
            ),
            (rps, p50, p99),
        );
        println!(
            "| {target} | {backend} | {endpoint} | {c} | {} | {} | {} | {errors:.0} | {rss:.1} | {:.2} | {:.0} | {} |",
            fmt_rps(rps),
            fmt_ms(p50),
            fmt_ms(p99),
            median(col(10)),
            median(col(11)),
            runs.len()
        );
    }
    if !idle.is_empty() {
        println!("\nIdle RSS: {}", idle.join("; "));
    }
    println!("\nTargets (issue 8):");
    let get =
        |t: &str, b: &str, e: &str, c: u32| med.get(&(t.into(), b.into(), e.into(), c)).copied();
    if let Some((rps, _, p99)) = get("oyl-server", "sqlite", "get", 64) {
        println!(
            "- authenticated GET by id, SQLite, 64 connections: {} req/s (target >= 20000): {}",
            fmt_rps(rps),
            verdict(rps >= 20000.0)
        );
        println!(
            "- ... p99 {} ms (target <= 10 ms): {}",
            fmt_ms(p99),
            verdict(p99 <= 10.0)
        );
        if let Some((ceil, _, _)) = get("bare-axum", "none", "get", 64) {
            println!(
                "- ... within 2x of the bare-axum ceiling ({} req/s, ratio {:.2}): {}",
                fmt_rps(ceil),
                ceil / rps,
                verdict(ceil / rps <= 2.0)
            );
        }
    }
    for r in &rows {
        if r[0] == "idle" && r[1] == "sqlite" && r[2] == "start" {
            let v = num(&r[9]);
            println!(
                "- idle RSS (SQLite, after start): {v:.1} MiB (target <= 25 MiB): {}",
                verdict(v <= 25.0)
            );
        }
    }
    for c in [1, 16, 64] {
        if let Some((_, p50, _)) = get("oyl-server", "sqlite", "rag", c) {
            println!(
                "- RAG query over 10 000 chunks, embedded store, SQLite, {c} connection(s): p50 {} ms (target <= 20 ms): {}",
                fmt_ms(p50),
                verdict(p50 <= 20.0)
            );
        }
    }
    // Issue 19, target 6: each RAG cell against an exact brute-force scan of as many vectors in
    // one process (scan_floor), at the same concurrency.
    for ((target, backend, endpoint, c), (rps, p50, _)) in &med {
        if target != "oyl-server" || endpoint != "rag" {
            continue;
        }
        if let Some((scan_rps, scan_p50, _)) = get("brute-force-scan", "none", "rag", *c) {
            println!(
                "- RAG {backend}, {c} connection(s): p50 {} ms, {} queries/s; brute-force scan p50 {} ms, {} queries/s: p50 ratio {:.2}, throughput ratio {:.2} (server / scan; at more connections than cores the scan's p50 leaves out the queueing the server's includes: compare throughput)",
                fmt_ms(*p50),
                fmt_rps(*rps),
                fmt_ms(scan_p50),
                fmt_rps(scan_rps),
                p50 / scan_p50,
                rps / scan_rps
            );
        }
    }
}

/// ingest.sh: store database docs chunks upload_s process_s embed_s total_s peak_rss_mb load other_cpu run
fn ingest(dir: &str) {
    let rows = rows(dir);
    let mut cells: BTreeMap<(String, String), Vec<&Vec<String>>> = BTreeMap::new();
    for r in &rows {
        cells
            .entry((r[0].clone(), r[1].clone()))
            .or_default()
            .push(r);
    }
    println!(
        "| vector store | database | docs | chunks | extract (upload) docs/s | chunk+embed+index chunks/s | embed chunks/s | end to end docs/s | end to end chunks/s | peak RSS MiB | load avg | other CPU % | runs |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for ((store, db), runs) in &cells {
        let col = |i: usize| runs.iter().map(|r| num(&r[i])).collect::<Vec<_>>();
        let docs = median(col(2));
        let chunks = median(col(3));
        let upload = median(col(4));
        let process = median(col(5));
        let embed = median(col(6));
        let total = median(col(7));
        println!(
            "| {store} | {db} | {docs:.0} | {chunks:.0} | {:.1} | {:.0} | {:.0} | {:.1} | {:.0} | {:.1} | {:.2} | {:.0} | {} |",
            docs / upload,
            chunks / process,
            chunks / embed,
            docs / total,
            chunks / total,
            col(8).into_iter().fold(0.0, f64::max),
            median(col(9)),
            median(col(10)),
            runs.len()
        );
    }
}

/// operator.sh: key value (one measurement per line; repeated keys are runs)
fn operator(dir: &str) {
    let rows = rows(dir);
    let mut values: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut order = Vec::new();
    for r in &rows {
        if !values.contains_key(&r[0]) {
            order.push(r[0].clone());
        }
        values.entry(r[0].clone()).or_default().push(num(&r[1]));
    }
    println!("| measurement | value | runs |");
    println!("|---|---:|---:|");
    for k in &order {
        let v = &values[k];
        println!("| {k} | {} | {} |", fmt_ms(median(v.clone())), v.len());
    }
    let m = |k: &str| values.get(k).map(|v| median(v.clone()));
    println!("\nTargets (issue 8):");
    if let Some(v) = m("1 platform: apply -> all children created (s)") {
        println!(
            "- one platform applied -> all children created: {v:.2} s (target <= 2 s): {}",
            verdict(v <= 2.0)
        );
    }
    if let Some(v) = m("100 platforms: apply -> all Ready (s)") {
        println!(
            "- 100 platforms Ready: {v:.1} s (target <= 60 s): {}",
            verdict(v <= 60.0)
        );
    }
    if let Some(v) = m("steady state: writes per platform in 5 min") {
        println!(
            "- writes in steady state: {v} per platform (target 0): {}",
            verdict(v == 0.0)
        );
    }
    if let Some(v) = m("operator peak RSS, whole run with 100 platforms (MiB)") {
        println!(
            "- operator RSS with 100 platforms: {v:.1} MiB (target <= 50 MiB): {}",
            verdict(v <= 50.0)
        );
    }
    println!("\nTargets (issue 19, item 5; meant for PLATFORMS=1000):");
    if let Some(v) = m("ratio: operator all Ready / direct all ready") {
        println!(
            "- through the operator / the control plane alone: {v:.2} (target <= 1.5): {}",
            verdict(v <= 1.5)
        );
    }
    let starting = |prefix: &str| {
        values
            .iter()
            .find(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), median(v.clone())))
    };
    if let Some((k, v)) = starting("restart: writes in") {
        println!("- {k}: {v} (target 0): {}", verdict(v == 0.0));
    }
    if let Some((k, v)) = starting("operator peak RSS, whole run with") {
        println!("- {k}: {v:.1} (target <= 150 MB): {}", verdict(v <= 143.0));
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(kind), Some(dir)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: report api|ingest|operator DIR");
        std::process::exit(2);
    };
    if let Ok(m) = std::fs::read_to_string(format!("{dir}/machine.txt")) {
        print!("{m}");
    }
    println!();
    match kind.as_str() {
        "api" => api(dir),
        "ingest" => ingest(dir),
        "operator" => operator(dir),
        _ => {
            eprintln!("unknown report {kind}");
            std::process::exit(2);
        }
    }
    println!("\nresults: {dir}/results.tsv");
}
