//! `healthimaging-mcp scenario`: listing, the transcript and exit status,
//! a standalone emulator (`--endpoint-url`), another server on stdio
//! (`--server-command`), and the refusal to write on data that is not known
//! to be synthetic.

mod support;

use support::{BINARY, command, standalone_emulator};

const SCENARIOS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios");

async fn run(args: &[&str]) -> (bool, String, String) {
    let home = tempfile::tempdir().unwrap();
    let output = command(args, home.path()).output().await.unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn list_shows_every_scenario_with_its_story() {
    let (ok, stdout, _) = run(&["scenario", "list", "--dir", SCENARIOS]).await;
    assert!(ok);
    assert!(
        stdout.contains("01-imaging-history  (read, demo set, 5 steps)"),
        "{stdout}"
    );
    assert!(stdout.contains("08-gdpr-erasure  (delete"), "{stdout}");
    assert!(stdout.contains("Mr Suzuki has exercised his right to erasure."));
    assert_eq!(stdout.matches(" set, ").count(), 11);
}

#[tokio::test]
async fn a_failing_scenario_prints_why_and_exits_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wrong.toml");
    std::fs::write(
        &path,
        "title = \"Wrong\"\nstory = \"s\"\nfixtures = \"ci\"\nlevel = \"read\"\n[[steps]]\nnarration = \"List.\"\ntool = \"list_datastores\"\nexpect = [{ path = \"/count\", equals = 2 }]\n",
    )
    .unwrap();
    let report = dir.path().join("report");
    let (ok, stdout, stderr) = run(&[
        "scenario",
        "run",
        path.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
    ])
    .await;
    assert!(!ok, "{stdout}");
    assert!(stdout.contains("✗ /count is 1, not 2"), "{stdout}");
    assert!(stdout.contains("0 of 1 scenario(s) passed"), "{stdout}");
    assert!(stderr.contains("1 of 1 scenario(s) failed"), "{stderr}");
    let page = std::fs::read_to_string(report.join("wrong.html")).unwrap();
    assert!(page.contains("✗ /count is 1, not 2"));
    assert!(
        std::fs::read_to_string(report.join("index.html"))
            .unwrap()
            .contains("0 of 1 passed")
    );
    // Unknown scenarios and a bad folder are plain errors.
    let (ok, _, stderr) = run(&["scenario", "run", "no-such", "--dir", SCENARIOS]).await;
    assert!(!ok && stderr.contains("no-such.toml"), "{stderr}");
}

#[tokio::test]
async fn the_first_run_imports_the_set_and_later_ones_restore_it_from_the_cache() {
    let home = tempfile::tempdir().unwrap();
    let scenario = |names: &[&str]| {
        let mut args = vec!["scenario", "run", "--dir", SCENARIOS];
        args.extend_from_slice(names);
        command(&args, home.path()).output()
    };
    let first = scenario(&["01-imaging-history", "02-read-a-ct"])
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&first.stdout);
    assert!(first.status.success(), "{stdout}");
    assert_eq!(
        stdout.matches("(the demo set imported in").count(),
        1,
        "{stdout}"
    );
    assert_eq!(
        stdout
            .matches("(the demo set restored from the cache)")
            .count(),
        1,
        "{stdout}"
    );
    let later = scenario(&["01-imaging-history"]).await.unwrap();
    let stdout = String::from_utf8_lossy(&later.stdout);
    assert!(later.status.success(), "{stdout}");
    assert!(
        stdout.contains("(the demo set restored from the cache)"),
        "{stdout}"
    );
}

#[tokio::test]
async fn scenarios_run_against_a_standalone_emulator_and_another_server_on_stdio() {
    let home = tempfile::tempdir().unwrap();
    let support::StandaloneEmulator {
        child: mut emulator,
        url,
    } = standalone_emulator(home.path(), &["--fixtures", "demo"]).await;
    // A read scenario through this server on the emulator.
    let (ok, stdout, _) = run(&[
        "scenario",
        "run",
        "01-imaging-history",
        "--dir",
        SCENARIOS,
        "--endpoint-url",
        &url,
    ])
    .await;
    assert!(ok, "{stdout}");
    assert!(stdout.contains("✓ passed (5 steps)"), "{stdout}");

    // Another MCP server on stdio (this binary, on the same emulator): it
    // does not say its data is synthetic, so a write scenario is refused
    // unless asked for, and runs when asked.
    let server = format!("{BINARY} serve --endpoint-url {url} --allow-write");
    let (ok, stdout, _) = run(&[
        "scenario",
        "run",
        "07-revert-a-bad-edit",
        "--dir",
        SCENARIOS,
        "--server-command",
        &server,
    ])
    .await;
    assert!(!ok);
    assert!(stdout.contains("--allow-writes-on-real-data"), "{stdout}");
    let (ok, stdout, _) = run(&[
        "scenario",
        "run",
        "07-revert-a-bad-edit",
        "--dir",
        SCENARIOS,
        "--server-command",
        &server,
        "--allow-writes-on-real-data",
    ])
    .await;
    assert!(ok, "{stdout}");
    emulator.start_kill().unwrap();
}
