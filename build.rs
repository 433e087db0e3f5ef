//! `killswitch --version` names the commit it was built from: `KILLSWITCH_COMMIT` if set (a build
//! without `.git`, e.g. a release pipeline), else `git rev-parse`, else "unknown".

use std::path::Path;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        .filter(|s| !s.is_empty())
}

fn main() {
    println!("cargo:rerun-if-env-changed=KILLSWITCH_COMMIT");
    let commit = std::env::var("KILLSWITCH_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(|| git(&["rev-parse", "--short=12", "HEAD"]))
        .unwrap_or_else(|| "unknown".into());
    // Rebuilt when HEAD moves; paths that do not exist would make every build stale.
    if let Some(dir) = git(&["rev-parse", "--git-dir"]) {
        let dir = Path::new(&dir);
        for f in ["HEAD", "packed-refs"] {
            if dir.join(f).exists() {
                println!("cargo:rerun-if-changed={}", dir.join(f).display());
            }
        }
        if let Some(head_ref) = git(&["symbolic-ref", "-q", "HEAD"])
            && dir.join(&head_ref).exists()
        {
            println!("cargo:rerun-if-changed={}", dir.join(head_ref).display());
        }
    }
    println!("cargo:rustc-env=KILLSWITCH_COMMIT={commit}");
}
