//! The container image and the compose file, run with podman: the runtime
//! stage of the project's Dockerfile built on a local Debian base around the
//! binary under test, `docker-compose.yml` brought up with podman-compose
//! (the emulator with the demo set, the MCP server over HTTP against it),
//! and the MCP server driven over HTTP from this machine: list datastores,
//! search a demo patient, fetch a frame. Skipped, with the reason printed,
//! where podman cannot run (as in an unprivileged container).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use rmcp::ServiceExt;
use rmcp::model::CallToolRequestParams;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::{Value, json};

const BINARY: &str = env!("CARGO_BIN_EXE_healthimaging-mcp");
const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
const TOKEN: &str = "a-compose-token-of-32-characters";
const IMAGE: &str = "localhost/healthimaging-mcp:compose-test";

fn run(program: &str, args: &[&str], dir: &Path) -> Result<String, String> {
    let output = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .map_err(|e| format!("{program} does not run: {e}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(format!(
            "{program} {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// Why containers cannot run here, if they cannot.
fn unavailable() -> Option<String> {
    for tool in ["podman", "podman-compose"] {
        if Command::new(tool).arg("--version").output().is_err() {
            return Some(format!(
                "{tool} is not installed (apt-get install podman podman-compose runc debootstrap)"
            ));
        }
    }
    if let Err(why) = run("podman", &["info"], Path::new("/")) {
        return Some(format!("podman cannot run here: {why}"));
    }
    None
}

/// The Debian base image, made with debootstrap when it is not there
/// (no registry is reachable).
fn base_image() -> Result<(), String> {
    if run(
        "podman",
        &["image", "exists", "debian:bookworm-slim"],
        Path::new("/"),
    )
    .is_ok()
    {
        return Ok(());
    }
    let root = tempfile::tempdir().map_err(|e| e.to_string())?;
    let rootfs = root.path().join("rootfs");
    run(
        "debootstrap",
        &["--variant=minbase", "bookworm", rootfs.to_str().unwrap()],
        Path::new("/"),
    )?;
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "tar -C {} -c . | podman import - debian:bookworm-slim",
            rootfs.display()
        ))
        .status()
        .map_err(|e| e.to_string())?;
    if !status.success() {
        return Err("podman import of the debootstrap root failed".to_owned());
    }
    Ok(())
}

/// The runtime stage of the project's Dockerfile, around `binary`.
fn runtime_dockerfile() -> String {
    let dockerfile = std::fs::read_to_string(Path::new(ROOT).join("Dockerfile")).unwrap();
    let runtime = &dockerfile[dockerfile
        .find("FROM debian:bookworm-slim AS runtime")
        .expect("the Dockerfile has its runtime stage")..];
    let copy = "COPY --from=builder /out/healthimaging-mcp /usr/local/bin/healthimaging-mcp";
    assert!(
        runtime.contains(copy),
        "the runtime stage copies the built binary"
    );
    runtime.replace(
        copy,
        "COPY healthimaging-mcp /usr/local/bin/healthimaging-mcp",
    )
}

struct Compose {
    dir: tempfile::TempDir,
    project: String,
}

impl Drop for Compose {
    fn drop(&mut self) {
        let _ = run(
            "podman-compose",
            &["-p", &self.project, "down", "-v"],
            self.dir.path(),
        );
        let _ = run("podman", &["rmi", "-f", IMAGE], Path::new("/"));
    }
}

#[tokio::test]
async fn the_compose_demo_serves_mcp_over_http_from_containers() {
    if let Some(why) = unavailable() {
        eprintln!("skipped: {why}");
        return;
    }
    if let Err(why) = base_image() {
        eprintln!("skipped: no Debian base image could be made: {why}");
        return;
    }
    let context = tempfile::tempdir().unwrap();
    std::fs::copy(BINARY, context.path().join("healthimaging-mcp")).unwrap();
    std::fs::write(context.path().join("Dockerfile"), runtime_dockerfile()).unwrap();
    run(
        "podman",
        &["build", "--format", "docker", "-t", IMAGE, "."],
        context.path(),
    )
    .expect("the runtime image builds");

    // The project's compose file, on this image and a free loopback port.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let compose = std::fs::read_to_string(Path::new(ROOT).join("docker-compose.yml")).unwrap();
    assert!(
        compose.contains("\"127.0.0.1:8000:8000\""),
        "published on loopback only"
    );
    let compose = compose
        .replace(
            "    image: healthimaging-mcp\n    build: .\n",
            &format!("    image: {IMAGE}\n"),
        )
        .replace(
            "\"127.0.0.1:8000:8000\"",
            &format!("\"127.0.0.1:{port}:8000\""),
        );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("docker-compose.yml"), compose).unwrap();
    std::fs::write(dir.path().join("mcp-token.txt"), format!("{TOKEN}\n")).unwrap();
    let up = Compose {
        project: format!("himcp{}", std::process::id()),
        dir,
    };
    run(
        "podman-compose",
        &["-p", &up.project, "up", "-d"],
        up.dir.path(),
    )
    .expect("compose comes up");

    // Drive the MCP server from this machine once the demo set is in.
    let url = format!("http://127.0.0.1:{port}/mcp");
    let deadline = Instant::now() + Duration::from_secs(180);
    let (client, datastore) = loop {
        assert!(
            Instant::now() < deadline,
            "the demo did not come up in 180 s"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        let transport = StreamableHttpClientTransport::from_config(
            StreamableHttpClientTransportConfig::with_uri(url.clone()).auth_header(TOKEN),
        );
        let Ok(client) = ().serve(transport).await else {
            continue;
        };
        let listed = client
            .call_tool(
                CallToolRequestParams::new("list_datastores").with_arguments(Default::default()),
            )
            .await;
        let demo = listed
            .ok()
            .and_then(|l| l.structured_content)
            .and_then(|s| {
                s["datastores"]
                    .as_array()?
                    .iter()
                    .find(|d| d["datastore_name"] == "demo")
                    .map(|d| d["datastore_id"].clone())
            });
        match demo {
            Some(id) => break (client, id),
            None => {
                let _ = client.cancel().await;
            }
        }
    };
    let call = |tool: &'static str, arguments: Value| {
        let client = &client;
        async move {
            client
                .call_tool(
                    CallToolRequestParams::new(tool)
                        .with_arguments(arguments.as_object().unwrap().clone()),
                )
                .await
                .unwrap()
        }
    };
    // The emulator serves while it imports the demo set: wait for the patient.
    let found = loop {
        let found = call(
            "search_by_patient_id",
            json!({"datastore_id": datastore, "patient_id": "SYN0001003"}),
        )
        .await
        .structured_content
        .expect("search results");
        if found["count"].as_u64().unwrap_or(0) > 0 {
            break found;
        }
        assert!(
            Instant::now() < deadline,
            "the demo set was not imported in 180 s"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let ct = found["image_sets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["series_modality"] == "CT" && s["is_primary"] == true)
        .unwrap_or_else(|| panic!("a primary CT image set in {found}"))["image_set_id"]
        .clone();
    let montage = call(
        "get_series_montage",
        json!({"datastore_id": datastore, "image_set_id": ct, "count": 4}),
    )
    .await;
    let tiles = montage.structured_content.unwrap()["tiles"].clone();
    let frame = call(
        "get_image_frame",
        json!({"datastore_id": datastore, "image_set_id": ct, "image_frame_id": tiles[0]["image_frame_id"]}),
    )
    .await;
    assert_ne!(frame.is_error, Some(true), "{frame:?}");
    let image = frame.content[0].as_image().expect("a PNG image");
    assert_eq!(image.mime_type, "image/png");
    assert_eq!(frame.structured_content.unwrap()["checksum_matches"], true);
    client.cancel().await.unwrap();
    // Without the token, the published port refuses.
    let refused = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-X",
            "POST",
            &url,
        ])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    assert!(refused == "401" || refused.is_empty(), "{refused}");
    // The compose file's health checks (podman runs them on request only,
    // without systemd): the binary's own `health` in each container.
    for service in ["emulator", "mcp"] {
        let container = format!("{}_{service}_1", up.project);
        run(
            "podman",
            &["healthcheck", "run", &container],
            Path::new("/"),
        )
        .unwrap_or_else(|why| panic!("the {service} container is not healthy: {why}"));
    }
    // And a failing one fails: no server on that port inside the container.
    let container = format!("{}_mcp_1", up.project);
    assert!(
        run(
            "podman",
            &[
                "exec",
                &container,
                "healthimaging-mcp",
                "health",
                "http://127.0.0.1:9/"
            ],
            Path::new("/"),
        )
        .is_err(),
        "health must fail where nothing answers"
    );
    drop(up);
}
