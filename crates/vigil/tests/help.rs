//! What a newcomer reads first says what vigil is today: the `--help` texts, and the README and
//! DESIGN layouts against the directories that exist.

#![allow(clippy::unwrap_used)] // a test that cannot read its files should stop at once

mod common;

use std::path::Path;

use common::vigil;

fn help(args: &[&str]) -> String {
    let out = vigil(args);
    assert!(out.status.success(), "vigil {args:?}");
    String::from_utf8(out.stdout).unwrap()
}

fn repo_file(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn the_tagline_names_clusters_and_stacks() {
    let text = help(&["--help"]);
    let tagline = text.lines().next().unwrap();
    for word in ["health checks", "clusters", "leader", "vigil up"] {
        assert!(tagline.contains(word), "{word:?} not in {tagline:?}");
    }
}

#[test]
fn the_demo_says_it_runs_a_cluster() {
    let text = help(&["demo", "--help"]);
    assert!(
        text.starts_with("Run a local demo cluster (three nodes by default)"),
        "{text}"
    );
    assert!(!text.contains("demo node "), "{text}");
    let listed = help(&["--help"]);
    assert!(
        listed.contains("Run a local demo cluster (three nodes by default)"),
        "{listed}"
    );
}

#[test]
fn the_layouts_name_every_crate_and_only_what_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let readme = repo_file("README.md");
    let design = repo_file("DESIGN.md");
    let layout = readme
        .split("## Layout")
        .nth(1)
        .expect("README has a Layout section");
    for entry in std::fs::read_dir(root.join("crates")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        assert!(
            layout.contains(&format!("`crates/{name}`")),
            "README's layout omits crates/{name}"
        );
        assert!(
            design.contains(&format!("  {name}/")),
            "DESIGN's layout omits crates/{name}"
        );
    }
    // Every top-level folder DESIGN's layout lists is there.
    let tree = design
        .split("## Workspace layout")
        .nth(1)
        .and_then(|rest| rest.split("```").nth(1))
        .expect("DESIGN has a workspace layout block");
    for line in tree.lines().filter(|l| !l.starts_with(' ')) {
        let Some(path) = line.split_whitespace().next() else {
            continue;
        };
        assert!(
            root.join(path).exists(),
            "DESIGN lists {path}, which does not exist"
        );
    }
    assert!(
        !readme.contains("crate by crate"),
        "the README still promises parts that exist"
    );
}
