//! The shipped Dockerfiles (`operator/Dockerfile`, `server/Dockerfile`, what the release pipeline
//! builds and pushes) and the daemonless images of `tests/images/` (what the real-node suites run)
//! describe the same image: the same user, entrypoint, command, working directory, environment,
//! exposed port and files. The real-node suites then prove, for the shipped layout, that it runs
//! as the restricted Pod Security profile demands (non-root, read-only root file system).

use oyl_e2e::repo_root;
use std::collections::{BTreeMap, BTreeSet};

/// What an image's config and file layout promise.
#[derive(Debug, Default, PartialEq)]
struct ImageSpec {
    user: String,
    entrypoint: Vec<String>,
    cmd: Vec<String>,
    workdir: Option<String>,
    env: BTreeMap<String, String>,
    exposed: BTreeSet<String>,
    /// Executables in /usr/local/bin.
    binaries: BTreeSet<String>,
    /// Directories owned by the image's user (writable without root).
    owned_dirs: BTreeSet<String>,
}

/// The environment distroless/cc-debian12 (the Dockerfiles' base) sets itself, which the
/// daemonless build has to set explicitly.
const DISTROLESS_ENV: [(&str, &str); 2] = [
    (
        "PATH",
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    ),
    ("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt"),
];

fn read(path: &str) -> String {
    std::fs::read_to_string(repo_root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The final stage of a Dockerfile (after its last FROM), as logical lines (continuations
/// joined), without comments.
fn final_stage(dockerfile: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut cur = String::new();
    for raw in dockerfile.lines() {
        let l = raw.trim();
        if l.starts_with('#') || (l.is_empty() && cur.is_empty()) {
            continue;
        }
        if let Some(part) = l.strip_suffix('\\') {
            cur.push_str(part.trim_end());
            cur.push(' ');
        } else {
            cur.push_str(l);
            lines.push(std::mem::take(&mut cur));
        }
    }
    let last_from = lines
        .iter()
        .rposition(|l| l.starts_with("FROM "))
        .expect("a FROM");
    assert!(
        lines[last_from].contains("gcr.io/distroless/cc-debian12:nonroot"),
        "the final stage's base changed ({}): update DISTROLESS_ENV",
        lines[last_from]
    );
    lines[last_from + 1..].to_vec()
}

fn json_array(s: &str) -> Vec<String> {
    serde_json::from_str(s.trim()).unwrap_or_else(|e| panic!("exec form expected, {s}: {e}"))
}

fn from_dockerfile(path: &str) -> ImageSpec {
    dockerfile_spec(path, &read(path))
}

fn dockerfile_spec(path: &str, text: &str) -> ImageSpec {
    let stage = final_stage(text);
    // Files the build stage prepares under /out, and which of them it makes (mkdir) there.
    let made: BTreeSet<String> = text
        .split_whitespace()
        .filter_map(|w| w.strip_prefix("/out/"))
        .map(|p| format!("/{p}"))
        .collect();
    let mut spec = ImageSpec::default();
    for l in stage {
        let (op, rest) = l.split_once(' ').unwrap_or((&l, ""));
        match op {
            "USER" => spec.user = rest.trim().to_string(),
            "ENTRYPOINT" => spec.entrypoint = json_array(rest),
            "CMD" => spec.cmd = json_array(rest),
            "WORKDIR" => spec.workdir = Some(rest.trim().to_string()),
            "EXPOSE" => {
                spec.exposed = rest
                    .split_whitespace()
                    .map(|p| format!("{p}/tcp"))
                    .collect();
            }
            "ENV" => {
                for kv in rest.split_whitespace() {
                    let (k, v) = kv.split_once('=').expect("ENV K=V");
                    spec.env.insert(k.into(), v.into());
                }
            }
            "COPY" => {
                let words: Vec<&str> = rest.split_whitespace().collect();
                let dest = words.last().unwrap().to_string();
                let chowned = words.contains(&"--chown=65532:65532");
                if let Some(bin) = dest.strip_prefix("/usr/local/bin/") {
                    spec.binaries.insert(bin.to_string());
                } else if chowned {
                    // A directory copied with its subdirectories, all owned by the user.
                    spec.owned_dirs.insert(dest.clone());
                    for m in &made {
                        if m.starts_with(&format!("{dest}/")) {
                            spec.owned_dirs.insert(m.clone());
                        }
                    }
                }
            }
            "FROM" | "ARG" => {}
            other => panic!("{path}: unexpected instruction {other} in the final stage"),
        }
    }
    for (k, v) in DISTROLESS_ENV {
        spec.env.entry(k.into()).or_insert_with(|| v.into());
    }
    spec
}

fn from_recipe(name: &str) -> ImageSpec {
    let path = format!("tests/images/{name}/recipe.sh");
    let text = read(&path).replace("\\\n", " ");
    let mut vars = BTreeMap::new();
    let mut spec = ImageSpec::default();
    for l in text.lines() {
        let l = l.trim();
        if let Some(rest) = l.strip_prefix("local path=") {
            vars.insert("$path", rest.to_string());
        }
        if l.starts_with("binary_rootfs ") {
            let bin = l.split("release_bin ").nth(1).expect("release_bin NAME");
            spec.binaries
                .insert(bin.trim_end_matches(")\"").trim().to_string());
        }
        if l.starts_with("install -d -o 65532 -g 65532 ") {
            for w in l.split_whitespace().filter(|w| w.starts_with("\"$r")) {
                spec.owned_dirs
                    .insert(w.trim_matches('"').trim_start_matches("$r").to_string());
            }
        }
        for w in l.split_whitespace() {
            let w = w.trim_matches('"');
            let Some(opt) = w.strip_prefix("--config.") else {
                continue;
            };
            let (k, v) = opt.split_once('=').unwrap();
            let v = v.trim_matches('"').replace("$path", &vars["$path"]);
            match k {
                "user" => spec.user = v,
                "entrypoint" => spec.entrypoint.push(v),
                "cmd" => spec.cmd.push(v),
                "workingdir" => spec.workdir = Some(v),
                "exposedports" => {
                    spec.exposed.insert(v);
                }
                "env" => {
                    let (ek, ev) = v.split_once('=').unwrap();
                    spec.env.insert(ek.into(), ev.into());
                }
                other => panic!("{path}: unexpected --config.{other}"),
            }
        }
    }
    spec
}

#[test]
fn the_server_dockerfile_and_the_daemonless_server_image_agree() {
    let docker = from_dockerfile("server/Dockerfile");
    assert_eq!(docker, from_recipe("oyl-server"));
    // And what that is: non-root, writable only where uploads go, the API on 8000.
    assert_eq!(docker.user, "65532:65532");
    assert_eq!(docker.entrypoint, ["oyl-server"]);
    assert_eq!(docker.cmd, ["serve"]);
    assert_eq!(docker.env["UPLOAD_DIR"], "/var/lib/oyl/uploads");
    assert!(
        docker.owned_dirs.contains("/var/lib/oyl/uploads"),
        "{docker:?}"
    );
}

#[test]
fn the_operator_dockerfile_and_the_daemonless_operator_image_agree() {
    let docker = from_dockerfile("operator/Dockerfile");
    assert_eq!(docker, from_recipe("oyl-operator"));
    assert_eq!(docker.user, "65532:65532");
    assert_eq!(docker.entrypoint, ["oyl-operator"]);
    assert_eq!(docker.cmd, ["run"]);
    assert!(
        docker.owned_dirs.is_empty(),
        "the operator writes nothing: {docker:?}"
    );
}

/// The comparison sees a difference: a Dockerfile that drifts from its recipe (another port,
/// another user, one more environment variable) fails the tests above.
#[test]
fn a_drifted_dockerfile_is_noticed() {
    let original = read("server/Dockerfile");
    let recipe = from_recipe("oyl-server");
    for (from, to) in [
        ("PORT=8000", "PORT=8080"),
        ("USER 65532:65532", "USER 0:0"),
        ("LOG_FORMAT=json", "LOG_FORMAT=json DEBUG=1"),
        ("CMD [\"serve\"]", "CMD [\"migrate\"]"),
    ] {
        assert!(original.contains(from), "server/Dockerfile has no {from}");
        let drifted = dockerfile_spec("drifted", &original.replace(from, to));
        assert_ne!(drifted, recipe, "{from} -> {to} went unnoticed");
    }
}

/// Both Dockerfiles build from the repository root: each has a `<Dockerfile>.dockerignore` that
/// keeps build outputs, Git and local credentials out of the context.
#[test]
fn each_dockerfile_has_its_dockerignore() {
    for df in ["operator/Dockerfile", "server/Dockerfile"] {
        let ignore = read(&format!("{df}.dockerignore"));
        let rules: BTreeSet<&str> = ignore
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect();
        for must in ["**/target", ".git", "*.kubeconfig", ".env", ".oyl"] {
            assert!(
                rules.contains(must),
                "{df}.dockerignore lacks {must}: {rules:?}"
            );
        }
    }
    assert_eq!(
        read(".dockerignore"),
        read("server/Dockerfile.dockerignore"),
        "the root .dockerignore (for builders without per-Dockerfile ignores) is the same"
    );
}
