//! Every scenario of `scenarios/` run through MCP against the embedded
//! emulator, one test per file so that a failure names it; and the HTML
//! report checked in a real browser.

use std::path::{Path, PathBuf};

use healthimaging_mcp::scenario::run::{Backend, Options, ScenarioRecord, run};
use healthimaging_mcp::scenario::{Scenario, report};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios")
}

async fn record(file: &str) -> ScenarioRecord {
    let scenario = Scenario::load(&dir().join(file)).expect("the scenario loads");
    run(
        &scenario,
        &Options {
            backend: Backend::Embedded,
            allow_writes_on_real_data: false,
            print: false,
            fixture_cache: false,
        },
    )
    .await
}

/// Runs `file` and fails with every step's failures named.
async fn passes(file: &str) {
    let record = record(file).await;
    let mut problems = Vec::new();
    if let Some(error) = &record.error {
        problems.push(error.clone());
    }
    for (n, step) in record.steps.iter().enumerate() {
        for failure in &step.failures {
            problems.push(format!("step {} ({}): {failure}", n + 1, step.tool));
        }
    }
    assert!(problems.is_empty(), "{file}:\n{}", problems.join("\n"));
}

macro_rules! scenarios {
    ($($test:ident => $file:literal),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $test() {
                passes($file).await;
            }
        )*

        /// A new scenario file cannot go untested.
        #[test]
        fn every_scenario_file_has_its_test() {
            let mut listed = vec![$($file),*];
            listed.sort_unstable();
            let mut files: Vec<String> = std::fs::read_dir(dir())
                .unwrap()
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".toml"))
                .collect();
            files.sort();
            assert_eq!(files, listed);
        }
    };
}

scenarios! {
    scenario_01_imaging_history => "01-imaging-history.toml",
    scenario_02_read_a_ct => "02-read-a-ct.toml",
    scenario_03_compare_with_prior => "03-compare-with-prior.toml",
    scenario_04_correct_a_name => "04-correct-a-name.toml",
    scenario_05_refuse_a_malformed_correction => "05-refuse-a-malformed-correction.toml",
    scenario_06_split_an_image_set => "06-split-an-image-set.toml",
    scenario_07_revert_a_bad_edit => "07-revert-a-bad-edit.toml",
    scenario_08_gdpr_erasure => "08-gdpr-erasure.toml",
    scenario_09_import_a_study => "09-import-a-study.toml",
    scenario_10_failure_drill => "10-failure-drill.toml",
    scenario_11_deidentified_research_export => "11-deidentified-research-export.toml",
}

#[tokio::test]
async fn a_failed_expectation_fails_the_scenario_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wrong.toml");
    std::fs::write(
        &path,
        r#"
title = "A wrong expectation"
story = "Checks that the runner notices."
fixtures = "ci"
level = "write"

[[steps]]
narration = "List datastores, expecting three."
tool = "list_datastores"
expect = [{ path = "/count", equals = 3 }]

[[steps]]
narration = "A write, which the write level grants."
tool = "create_datastore"
arguments = { datastore_name = "x" }
"#,
    )
    .unwrap();
    let scenario = Scenario::load(&path).unwrap();
    let record = run(
        &scenario,
        &Options {
            backend: Backend::Embedded,
            allow_writes_on_real_data: false,
            print: false,
            fixture_cache: false,
        },
    )
    .await;
    assert!(!record.passed());
    assert_eq!(record.steps[0].failures, ["/count is 1, not 3"]);
    assert!(
        record.steps[1].failures.is_empty(),
        "the write level grants writes"
    );
}

/// What headless Chromium makes of a page: the dumped DOM after load, and
/// the console messages it logged.
fn chromium(url: &str, extra: &[&str]) -> Option<(String, String)> {
    let binary = ["chromium", "chromium-browser"].into_iter().find(|b| {
        std::process::Command::new(b)
            .arg("--version")
            .output()
            .is_ok()
    })?;
    let output = std::process::Command::new(binary)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=5000",
        ])
        .args(extra)
        .arg(url)
        .output()
        .expect("chromium runs");
    Some((
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr)
            .lines()
            .filter(|l| l.contains(":CONSOLE"))
            .collect::<Vec<_>>()
            .join("\n"),
    ))
}

fn data(dom: &str, name: &str) -> Option<usize> {
    let at = dom.find(&format!("data-{name}=\""))? + name.len() + 7;
    dom[at..].split('"').next()?.parse().ok()
}

#[tokio::test]
async fn the_report_renders_its_images_in_a_browser_without_console_errors() {
    let records = vec![
        record("01-imaging-history.toml").await,
        record("02-read-a-ct.toml").await,
    ];
    let out = tempfile::tempdir().unwrap();
    report::write(
        out.path(),
        &records,
        "healthimaging-mcp on the embedded emulator",
    )
    .unwrap();
    let index = format!("file://{}", out.path().join("index.html").display());
    let Some((dom, console)) = chromium(&index, &["--dump-dom"]) else {
        eprintln!("skipped: headless Chromium is not installed (apt-get install chromium)");
        return;
    };
    assert!(dom.contains("2 of 2 passed"), "{dom}");
    assert!(dom.contains("02-read-a-ct.html"));
    assert_eq!(console, "", "the index logs nothing");

    let page = format!("file://{}", out.path().join("02-read-a-ct.html").display());
    let (dom, console) = chromium(&page, &["--dump-dom"]).unwrap();
    assert_eq!(data(&dom, "images"), Some(3), "a montage and two frames");
    assert_eq!(data(&dom, "broken-images"), Some(0), "every image decodes");
    assert_eq!(console, "", "the page logs nothing");
    let shot = out.path().join("shot.png");
    chromium(
        &page,
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1000,1400",
        ],
    )
    .unwrap();
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&shot).unwrap()));
    let info = decoder.read_info().unwrap();
    assert_eq!((info.info().width, info.info().height), (1000, 1400));

    // The checks can fail: a page with a broken image and a console error.
    let control = out.path().join("control.html");
    std::fs::write(
        &control,
        r#"<html><body><img src="data:image/png;base64,AAAA"><script>console.error("boom");
addEventListener("load",()=>{const i=[...document.images];document.body.dataset.brokenImages=i.filter(x=>!x.naturalWidth).length})</script></body></html>"#,
    )
    .unwrap();
    let (dom, console) =
        chromium(&format!("file://{}", control.display()), &["--dump-dom"]).unwrap();
    assert_eq!(data(&dom, "broken-images"), Some(1));
    assert!(console.contains("boom"), "{console}");
}
