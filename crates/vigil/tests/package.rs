//! vigil installed like real software: shell completions and manual pages generated from the
//! command line's definitions, and the Debian package (deploy/deb/build.sh) built from the
//! binary under test, checked by lintian and systemd, and installed into a Debian root.

#![allow(clippy::unwrap_used)] // a test that cannot run its tools or write its files should stop at once

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::skip::skip_step;
use common::tools::{assert_succeeded, tool};
use common::{vigil, VIGIL};

/// The repository's root.
fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A fresh directory of this test's own, removed with what it holds (a package and its
/// unpacked tree weigh tens of megabytes) when the test ends.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("vigil-package-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl std::ops::Deref for Scratch {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The subcommands `vigil --help` lists.
fn subcommands() -> Vec<String> {
    let help = stdout(&vigil(&["--help"]));
    let listed: Vec<String> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .filter(|name| name != "help")
        .collect();
    assert!(
        listed.len() > 20,
        "vigil --help lists its subcommands: {help}"
    );
    listed
}

#[test]
fn the_bash_completion_script_completes_subcommands() {
    let out = vigil(&["completions", "bash"]);
    assert_succeeded(&out, "vigil completions bash");
    let dir = Scratch::new("bash");
    let script = dir.join("vigil.bash");
    std::fs::write(&script, &out.stdout).unwrap();

    let syntax = Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
        .unwrap();
    assert_succeeded(&syntax, "bash -n on the completion script");

    // What bash does when a user types `vigil ag<TAB>`, and then `vigil keyring <TAB>`.
    let complete = |line: &str| {
        let words: Vec<&str> = line.split(' ').collect();
        let program = format!(
            "source {script}\ncomplete -p vigil\nCOMP_WORDS=({words})\nCOMP_CWORD={cword}\nCOMP_LINE='{line}'\nCOMP_POINT={point}\n_vigil vigil '{last}' '{previous}'\nprintf 'reply:%s\\n' \"${{COMPREPLY[@]}}\"\n",
            script = script.display(),
            words = words.iter().map(|w| format!("'{w}'")).collect::<Vec<_>>().join(" "),
            cword = words.len() - 1,
            point = line.len(),
            last = words[words.len() - 1],
            previous = words[words.len() - 2],
        );
        let out = Command::new("bash")
            .arg("-c")
            .arg(program)
            .output()
            .unwrap();
        assert_succeeded(&out, "completing with the script sourced");
        stdout(&out)
    };
    let agent = complete("vigil ag");
    assert!(
        agent.contains("-F _vigil") && agent.lines().any(|l| l.ends_with(" vigil")),
        "sourcing the script registers a completion for vigil: {agent}"
    );
    assert!(
        agent.lines().any(|l| l == "reply:agent"),
        "`vigil ag<TAB>` completes to agent: {agent}"
    );
    let keyring = complete("vigil keyring ");
    for action in ["install", "list", "remove", "use"] {
        assert!(
            keyring.lines().any(|l| l == format!("reply:{action}")),
            "`vigil keyring <TAB>` offers {action}: {keyring}"
        );
    }
}

#[test]
fn the_zsh_and_fish_completion_scripts_parse() {
    for (shell, check) in [("zsh", ["-n"]), ("fish", ["--no-execute"])] {
        let out = vigil(&["completions", shell]);
        assert_succeeded(&out, &format!("vigil completions {shell}"));
        assert!(
            stdout(&out).contains("vigil"),
            "the {shell} script is about vigil"
        );
        let Some(program) = which(shell) else {
            skip_step(
                &format!("the {shell} syntax check"),
                &format!("{shell} (Debian package `{shell}`)"),
            );
            continue;
        };
        let dir = Scratch::new(shell);
        let script = dir.join("vigil");
        std::fs::write(&script, &out.stdout).unwrap();
        let parsed = Command::new(program)
            .args(check)
            .arg(&script)
            .output()
            .unwrap();
        assert_succeeded(&parsed, &format!("{shell} {} on the script", check[0]));
    }
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

#[test]
fn the_manual_has_a_page_for_every_subcommand() {
    let Some(groff) = tool("groff", "Debian package `groff-base`") else {
        return;
    };
    let page = vigil(&["man"]);
    assert_succeeded(&page, "vigil man");
    let dir = Scratch::new("man");
    std::fs::write(dir.join("stdout.1"), &page.stdout).unwrap();
    // Rendered as man(1) would, with every groff warning turned on and reported.
    let rendered = Command::new(&groff)
        .args(["-k", "-man", "-Tutf8", "-P-cbou", "-ww", "-rLL=200n"])
        .arg(dir.join("stdout.1"))
        .output()
        .unwrap();
    assert_succeeded(&rendered, "groff -man on vigil(1)");
    let warnings = String::from_utf8_lossy(&rendered.stderr);
    assert!(warnings.trim().is_empty(), "groff warns: {warnings}");
    let text = stdout(&rendered);
    assert!(
        text.contains("vigil - "),
        "vigil(1) has a NAME line: {text}"
    );

    let pages = dir.join("pages");
    assert_succeeded(
        &vigil(&["man", "--dir", pages.to_str().unwrap()]),
        "vigil man --dir",
    );
    for name in subcommands() {
        assert!(
            text.contains(&format!("vigil-{name}(1)")),
            "vigil(1) names vigil-{name}(1): {text}"
        );
        assert!(
            pages.join(format!("vigil-{name}.1")).is_file(),
            "vigil man --dir writes vigil-{name}.1"
        );
    }
    for nested in ["vigil-keyring-install.1", "vigil-config-check.1", "vigil.1"] {
        assert!(
            pages.join(nested).is_file(),
            "vigil man --dir writes {nested}"
        );
    }
    let agent = Command::new(&groff)
        .args(["-k", "-man", "-Tutf8", "-P-cbou"])
        .arg(pages.join("vigil-agent.1"))
        .output()
        .unwrap();
    assert!(
        stdout(&agent).contains("--config"),
        "vigil-agent(1) documents --config: {}",
        stdout(&agent)
    );
}

/// What the package must hold, beside what dpkg adds.
const PACKAGED: &[&str] = &[
    "./usr/bin/vigil",
    "./lib/systemd/system/vigil.service",
    "./etc/vigil/vigil.toml",
    "./usr/lib/sysusers.d/vigil.conf",
    "./usr/share/bash-completion/completions/vigil",
    "./usr/share/zsh/vendor-completions/_vigil",
    "./usr/share/fish/vendor_completions.d/vigil.fish",
    "./usr/share/man/man1/vigil.1.gz",
    "./usr/share/man/man1/vigil-agent.1.gz",
    "./usr/share/doc/vigil/copyright",
    "./usr/share/doc/vigil/changelog.Debian.gz",
];

#[test]
fn the_debian_package_builds_passes_lintian_and_installs() {
    for (program, package) in [("dpkg-deb", "dpkg"), ("dpkg-shlibdeps", "dpkg-dev")] {
        if tool(program, &format!("Debian package `{package}`")).is_none() {
            return;
        }
    }
    let out = Scratch::new("deb");
    // xz, the default, takes half a minute on the debug binary; what is packed is the same.
    let built = Command::new(repo().join("deploy/deb/build.sh"))
        .arg(VIGIL)
        .arg(&*out)
        .env("DPKG_DEB_COMPRESSOR_TYPE", "gzip")
        .env("DPKG_DEB_COMPRESSOR_LEVEL", "1")
        .output()
        .unwrap();
    assert_succeeded(&built, "deploy/deb/build.sh");
    let deb = PathBuf::from(stdout(&built).trim());
    assert!(deb.is_file(), "build.sh prints the .deb it wrote: {deb:?}");

    let fields = Command::new("dpkg-deb")
        .arg("--info")
        .arg(&deb)
        .output()
        .unwrap();
    assert_succeeded(&fields, "dpkg-deb --info");
    let info = stdout(&fields);
    let version = stdout(&vigil(&["--version"]));
    let version = version.split_whitespace().nth(1).unwrap();
    assert!(
        info.contains(&format!("Version: {version}-1")),
        "the package carries the binary's version {version}: {info}"
    );
    assert!(
        info.lines()
            .any(|l| l.contains("Depends:") && l.contains("libc6 (>=")),
        "Depends names the libc the binary links: {info}"
    );
    let listing = Command::new("dpkg-deb")
        .arg("--contents")
        .arg(&deb)
        .output()
        .unwrap();
    let listing = stdout(&listing);
    for path in PACKAGED {
        assert!(
            listing
                .lines()
                .any(|l| l.ends_with(path) && l.contains("root/root")),
            "the package holds {path}, owned by root: {listing}"
        );
    }

    let tree = out.join("tree");
    let extracted = Command::new("dpkg-deb")
        .arg("-x")
        .arg(&deb)
        .arg(&tree)
        .output()
        .unwrap();
    assert_succeeded(&extracted, "dpkg-deb -x");
    let config = tree.join("etc/vigil/vigil.toml");
    assert_succeeded(
        &vigil(&["config", "check", "-c", config.to_str().unwrap()]),
        "the packaged config is valid",
    );

    lintian(&deb);
    verify_unit(&tree);
    install_into_debian(&deb);
}

/// lintian finds no error; its warnings are printed.
fn lintian(deb: &Path) {
    let Some(lintian) = which("lintian") else {
        skip_step("lintian", "lintian (Debian package `lintian`)");
        return;
    };
    let out = Command::new(lintian)
        .args(["--fail-on", "error", "--tag-display-limit", "0"])
        .arg(deb)
        .output()
        .unwrap();
    let report = stdout(&out);
    assert!(
        out.status.success() && !report.lines().any(|l| l.starts_with("E:")),
        "lintian finds errors in the package:\n{report}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("lintian on {}:\n{report}", deb.display());
}

/// `systemd-analyze verify` accepts the unit as packaged, its manual pages found where the
/// package puts them. The package is not installed on this machine, so the one thing verify may
/// say is that /usr/bin/vigil is missing.
fn verify_unit(tree: &Path) {
    let Some(analyze) = which("systemd-analyze") else {
        skip_step(
            "systemd-analyze verify",
            "systemd-analyze (Debian package `systemd`)",
        );
        return;
    };
    let out = Command::new(analyze)
        .arg("verify")
        .arg(tree.join("lib/systemd/system/vigil.service"))
        .env("MANPATH", tree.join("usr/share/man"))
        .output()
        .unwrap();
    let said = format!("{}{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
    let objections: Vec<&str> = said
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter(|l| !l.contains("Command /usr/bin/vigil is not executable"))
        .collect();
    assert!(
        objections.is_empty(),
        "systemd-analyze verify objects to vigil.service:\n{said}"
    );
}

/// `dpkg -i` into a minimal Debian bookworm in docker: vigil runs, its user and state directory
/// exist, and a purge takes them away again.
fn install_into_debian(deb: &Path) {
    let Some(docker) = which("docker") else {
        skip_step("installing into Debian", "docker (a Docker Engine)");
        return;
    };
    if which("debootstrap").is_none()
        && !Command::new(&docker)
            .args(["image", "inspect", IMAGE])
            .output()
            .is_ok_and(|out| out.status.success())
    {
        skip_step(
            "installing into Debian",
            "debootstrap (Debian package `debootstrap`)",
        );
        return;
    }
    let image = Command::new(repo().join("deploy/deb/debian-root.sh"))
        .arg(IMAGE)
        .output()
        .unwrap();
    assert_succeeded(&image, "deploy/deb/debian-root.sh");
    let dir = deb.parent().unwrap();
    let script = "set -e
dpkg -i /deb/vigil_*.deb
vigil --version
id vigil
test -d /var/lib/vigil
test \"$(stat -c %U /var/lib/vigil)\" = vigil
vigil config check -c /etc/vigil/vigil.toml
dpkg --purge vigil
! id vigil 2>/dev/null
test ! -e /var/lib/vigil
echo purged";
    let run = Command::new(&docker)
        .args(["run", "--rm", "--network", "none", "-v"])
        .arg(format!("{}:/deb:ro", dir.display()))
        .args([IMAGE, "sh", "-c", script])
        .output()
        .unwrap();
    assert_succeeded(&run, "installing the package into Debian bookworm");
    let said = stdout(&run);
    let version = stdout(&vigil(&["--version"]));
    assert!(
        said.contains(version.trim()),
        "the installed vigil prints its version: {said}"
    );
    assert!(said.contains("purged"), "the purge leaves nothing: {said}");
}

/// The Debian root the package is installed into, built once by deploy/deb/debian-root.sh.
const IMAGE: &str = "vigil-debian-root:bookworm";
