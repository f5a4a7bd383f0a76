//! The repository's task runner: `cargo xtask <task>` (the alias is in `.cargo/config.toml`).
//! Each task is the one command a contributor needs; the scripts it runs stay usable on their own.

mod cycles;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

const TASKS: &str = "\
usage: cargo xtask <task> [args...]

  test [--cold]   every test: tests/run.sh (--cold: empty OYL_CACHE and target dir)
  lint            cargo fmt --check, clippy -D warnings, and `cycles`
  cycles [ROOT]   fail on a module import cycle in the operator or the server
                  (of the checkout at ROOT, default this one)
  crd             regenerate crds/ and the chart's copy from the Rust types, and
                  config/install.yaml from the chart
  demo [--real-node]
                  tests/demo.sh: local cluster, operator, a platform reaching Ready
                  (--real-node, as root: every container runs; prints the API's URL)
  bench [NAME]    tests/bench/NAME.sh (api, operator, ingest); all three without NAME
";

/// The crates whose module graphs must stay acyclic.
const CRATES: [&str; 2] = ["operator/src/lib.rs", "server/src/lib.rs"];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = repo_root();
    let result = match args.first().map(String::as_str) {
        Some("test") => run(&root, "bash", &["tests/run.sh"], &args[1..]),
        Some("lint") => lint(&root),
        Some("cycles") => check_cycles(&args.get(1).map_or(root, PathBuf::from)),
        Some("crd") => crd(&root),
        Some("demo") => run(&root, "bash", &["tests/demo.sh"], &args[1..]),
        Some("bench") => bench(&root, args.get(1).map(String::as_str)),
        Some("help" | "-h" | "--help") | None => {
            print!("{TASKS}");
            Ok(())
        }
        Some(other) => Err(format!("unknown task {other:?}\n{TASKS}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .unwrap()
        .to_path_buf()
}

fn run(root: &Path, program: &str, args: &[&str], extra: &[String]) -> Result<(), String> {
    let status = Command::new(program)
        .args(args)
        .args(extra)
        .current_dir(root)
        .status()
        .map_err(|e| format!("{program}: {e}"))?;
    status
        .success()
        .then_some(())
        .ok_or_else(|| format!("{program} {} failed: {status}", args.join(" ")))
}

fn lint(root: &Path) -> Result<(), String> {
    run(root, "cargo", &["fmt", "--all", "--", "--check"], &[])?;
    run(
        root,
        "cargo",
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
        &[],
    )?;
    check_cycles(root)
}

fn check_cycles(root: &Path) -> Result<(), String> {
    let mut found = Vec::new();
    for krate in CRATES {
        let graph = cycles::read_crate(&root.join(krate))?;
        let count = graph.refs.len();
        let crate_cycles = graph.cycles();
        if crate_cycles.is_empty() {
            println!("{krate}: {count} modules, no import cycle");
        }
        for (parent, members) in crate_cycles {
            found.push(format!(
                "{krate}: in {}: {} import each other",
                cycles::show(&parent),
                members.join(", ")
            ));
        }
    }
    if found.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "module import cycles (a module may only import those below it):\n  {}",
            found.join("\n  ")
        ))
    }
}

fn crd(root: &Path) -> Result<(), String> {
    let out = Command::new("cargo")
        .args(["run", "--quiet", "-p", "oyl-operator", "--", "crd"])
        .current_dir(root)
        .output()
        .map_err(|e| format!("cargo run: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "oyl-operator crd: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    for copy in [
        "crds/oylplatforms.oyl.dev.yaml",
        "charts/oyl-operator/files/oylplatforms.oyl.dev.yaml",
    ] {
        std::fs::write(root.join(copy), &out.stdout).map_err(|e| format!("{copy}: {e}"))?;
        println!("wrote {copy}");
    }
    // The one-file install carries the CRD too: rendered from the chart with the built helm.
    let install = Command::new("bash")
        .arg("tests/chart/install-manifest.sh")
        .current_dir(root)
        .output()
        .map_err(|e| format!("tests/chart/install-manifest.sh: {e}"))?;
    if !install.status.success() {
        return Err(format!(
            "tests/chart/install-manifest.sh (helm comes from tests/cluster/build-tools.sh): {}",
            String::from_utf8_lossy(&install.stderr)
        ));
    }
    std::fs::write(root.join("config/install.yaml"), &install.stdout)
        .map_err(|e| format!("config/install.yaml: {e}"))?;
    println!("wrote config/install.yaml");
    Ok(())
}

fn bench(root: &Path, name: Option<&str>) -> Result<(), String> {
    let names: Vec<&str> = match name {
        Some(n) => vec![n],
        None => vec!["api", "operator", "ingest"],
    };
    for n in names {
        run(root, "bash", &[&format!("tests/bench/{n}.sh")], &[])?;
    }
    Ok(())
}
