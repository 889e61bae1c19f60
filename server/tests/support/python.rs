//! A Python virtual environment with boto3 and the AWS CLI, made once.
//!
//! The versions come from `tests/python/requirements.txt`. The environment
//! lives in the target directory and is rebuilt only when that file changes,
//! so the first run needs PyPI and later runs need nothing.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("server/ sits in the workspace")
        .to_owned()
}

/// The `bin/` folder of the environment, ready to use.
pub fn bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(provision)
}

fn provision() -> PathBuf {
    let requirements = workspace().join("tests/python/requirements.txt");
    let wanted = std::fs::read_to_string(&requirements).expect("requirements.txt is readable");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target"));
    let venv = target.join("python-venv");
    let stamp = venv.join("requirements.installed");
    let bin = venv.join("bin");
    if std::fs::read_to_string(&stamp).is_ok_and(|installed| installed == wanted) {
        return bin;
    }
    let _ = std::fs::remove_dir_all(&venv);
    run(
        Command::new("python3").args(["-m", "venv"]).arg(&venv),
        "python3 -m venv (Debian: apt-get install python3-venv)",
    );
    run(
        Command::new(bin.join("pip"))
            .args(["install", "--quiet", "--disable-pip-version-check", "-r"])
            .arg(&requirements),
        "pip install -r tests/python/requirements.txt",
    );
    std::fs::write(&stamp, wanted).expect("the stamp is writable");
    bin
}

fn run(command: &mut Command, what: &str) {
    let output = command.output().unwrap_or_else(|e| {
        panic!("could not run {what}: {e}. The boto3 tests need python3 with venv.")
    });
    assert!(
        output.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
