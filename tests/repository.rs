//! The repository itself: what a fresh clone gets must work on another machine.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::Command;

/// No committed symbolic link points at an absolute path (one did: keys-example/keys-example
/// pointed into the machine it was made on), nor outside the repository.
#[test]
fn committed_symlinks_stay_inside_the_repository() {
    let root = common::root();
    let listed = Command::new("git")
        .args(["ls-files", "-s"])
        .current_dir(&root)
        .output()
        .expect("running git ls-files");
    assert!(listed.status.success());
    for line in String::from_utf8(listed.stdout).unwrap().lines() {
        let Some((meta, path)) = line.split_once('\t') else {
            continue;
        };
        if !meta.starts_with("120000 ") {
            continue;
        }
        let target = std::fs::read_link(root.join(path)).unwrap();
        assert!(
            !target.is_absolute(),
            "{path} points at the absolute path {}",
            target.display()
        );
        let resolved = root.join(path).parent().unwrap().join(&target);
        let resolved = resolved.canonicalize().unwrap_or(resolved);
        assert!(
            resolved.starts_with(root.canonicalize().unwrap()),
            "{path} points outside the repository: {}",
            target.display()
        );
    }
}
