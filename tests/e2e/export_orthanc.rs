//! Export to an independent archive: Debian's Orthanc, started on loopback
//! with a temporary configuration, receives a demo study over STOW-RS (its
//! DICOMweb plugin) and over DIMSE C-STORE. Its instance counts match the
//! job's, and the pixel data it stored matches the fixtures' frame CRCs.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use healthimaging_e2e::{Mcp, demo_emulator, raw_http, structured};
use healthimaging_mcp::config::ExportPolicy;
use healthimaging_mcp::export::Destination;
use serde_json::{Value, json};

const ORTHANC: &str = "/usr/sbin/Orthanc";
const PLUGIN: &str = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so";

struct Orthanc {
    child: Child,
    http: String,
    dicom_port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Orthanc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn start_orthanc() -> Option<Orthanc> {
    if !Path::new(ORTHANC).exists() || !Path::new(PLUGIN).exists() {
        eprintln!(
            "skipped: Orthanc or its DICOMweb plugin is not installed (apt-get install orthanc orthanc-dicomweb)"
        );
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let (http_port, dicom_port) = (free_port(), free_port());
    let config = json!({
        "Name": "export-test",
        "StorageDirectory": dir.path().join("storage"),
        "IndexDirectory": dir.path().join("index"),
        "HttpPort": http_port,
        "RemoteAccessAllowed": false,
        "AuthenticationEnabled": false,
        "DicomServerEnabled": true,
        "DicomAet": "ORTHANC",
        "DicomPort": dicom_port,
        "DicomCheckCalledAet": true,
        // Orthanc 1.10 cannot bind its DICOM port to loopback only: it
        // accepts stores only from this server's AE title on 127.0.0.1.
        "DicomAlwaysAllowStore": false,
        "DicomCheckModalityHost": true,
        "DicomModalities": {"mcp": ["HEALTHIMAGING", "127.0.0.1", 104]},
        "Plugins": [PLUGIN],
        "DicomWeb": {"Enable": true, "Root": "/dicom-web/"}
    });
    let path = dir.path().join("orthanc.json");
    std::fs::write(&path, config.to_string()).unwrap();
    let log = std::fs::File::create(dir.path().join("orthanc.log")).unwrap();
    let child = Command::new(ORTHANC)
        .arg(&path)
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log))
        .spawn()
        .expect("Orthanc starts");
    let orthanc = Orthanc {
        child,
        http: format!("http://127.0.0.1:{http_port}"),
        dicom_port,
        _dir: dir,
    };
    for _ in 0..200 {
        let listening = tokio::net::TcpStream::connect(("127.0.0.1", http_port))
            .await
            .is_ok();
        if listening && raw_http(&orthanc.http, "GET", "/system", &[], "").await.0 == 200 {
            return Some(orthanc);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("Orthanc did not answer on {} within 20 s", orthanc.http);
}

async fn get_json(base: &str, path: &str) -> Value {
    let (status, _, body) = raw_http(base, "GET", path, &[], "").await;
    assert_eq!(status, 200, "GET {path}: {body}");
    serde_json::from_str(&body).unwrap()
}

/// The bytes of GET `path` (a DICOM file).
async fn get_bytes(base: &str, path: &str) -> Vec<u8> {
    let address = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let at = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a header")
        + 4;
    response.split_off(at)
}

/// CRC32 of each frame of a native (uncompressed) file's pixel data.
fn frame_crcs(bytes: &[u8]) -> Vec<u32> {
    use dicom_dictionary_std::tags;
    let object = dicom_object::from_reader(&bytes[128..]).unwrap();
    let int = |tag| {
        object
            .element(tag)
            .ok()
            .and_then(|e| e.to_int::<u32>().ok())
    };
    let frames = int(tags::NUMBER_OF_FRAMES).unwrap_or(1) as usize;
    let pixels = object
        .element(tags::PIXEL_DATA)
        .unwrap()
        .to_bytes()
        .unwrap()
        .into_owned();
    let size = int(tags::ROWS).unwrap() as usize
        * int(tags::COLUMNS).unwrap() as usize
        * int(tags::SAMPLES_PER_PIXEL).unwrap_or(1) as usize
        * (int(tags::BITS_ALLOCATED).unwrap() as usize / 8);
    (0..frames)
        .map(|i| crc32fast::hash(&pixels[i * size..(i + 1) * size]))
        .collect()
}

#[tokio::test]
async fn a_study_reaches_orthanc_by_stow_rs_and_by_c_store_pixel_for_pixel() {
    let Some(orthanc) = start_orthanc().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let (emulator, sdk, ds) = demo_emulator(dir.path()).await;
    let stow = format!("{}/dicom-web/studies", orthanc.http);
    let node = format!("dicom://ORTHANC@127.0.0.1:{}", orthanc.dicom_port);
    let policy = ExportPolicy {
        allowed: vec![
            Destination::parse(&stow).unwrap(),
            Destination::parse(&node).unwrap(),
        ],
        ..ExportPolicy::default()
    };
    let mcp = Mcp::connect_exporting(&emulator, sdk, &state, policy).await;
    let manifest: Value = healthimaging_e2e::demo_manifest(&emulator);
    // The fixtures' frame CRCs of every instance, by SOP Instance UID.
    let mut expected: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    let mut studies = Vec::new();
    for patient in manifest["patients"].as_array().unwrap().iter().take(2) {
        for study in patient["studies"].as_array().unwrap().iter().take(1) {
            studies.push(study["study_instance_uid"].as_str().unwrap().to_owned());
            for series in study["series"].as_array().unwrap() {
                for instance in series["instances"].as_array().unwrap() {
                    let crcs = instance["frame_crc32"]
                        .as_array()
                        .map(|a| a.iter().map(|c| c.as_u64().unwrap() as u32).collect())
                        .unwrap_or_default();
                    expected.insert(
                        instance["sop_instance_uid"].as_str().unwrap().to_owned(),
                        crcs,
                    );
                }
            }
        }
    }

    // One study over STOW-RS, one over C-STORE; identified (confirmed), in
    // explicit little endian so that Orthanc stores native pixels.
    let mut sent = 0;
    for (study, destination) in [(&studies[0], &stow), (&studies[1], &node)] {
        let arguments = json!({"datastore_id": ds, "study_instance_uid": study,
            "destination": destination, "de_identify": false,
            "transfer_syntax": "1.2.840.10008.1.2.1", "wait": true});
        let preview = structured(&mcp.call("start_dicom_export_job", arguments.clone()).await);
        let mut confirmed = arguments;
        confirmed["confirmation_token"] = preview["confirmation_token"].clone();
        let out = structured(&mcp.call("start_dicom_export_job", confirmed).await);
        let job = &out["job"];
        assert_eq!(
            job["status"], "COMPLETED",
            "{destination}: {}",
            out["summary"]
        );
        assert_eq!(job["failed_instances"], 0);
        sent += job["exported_instances"].as_u64().unwrap();
    }

    let instances = get_json(&orthanc.http, "/instances").await;
    let ids = instances.as_array().unwrap();
    assert_eq!(ids.len() as u64, sent, "Orthanc holds every instance sent");
    let mut checked = 0;
    for id in ids {
        let id = id.as_str().unwrap();
        let tags = get_json(&orthanc.http, &format!("/instances/{id}/simplified-tags")).await;
        let sop = tags["SOPInstanceUID"].as_str().unwrap();
        let want = expected
            .get(sop)
            .unwrap_or_else(|| panic!("{sop} was not in the studies sent"));
        if want.is_empty() {
            continue; // a report: no pixels
        }
        let file = get_bytes(&orthanc.http, &format!("/instances/{id}/file")).await;
        assert_eq!(&frame_crcs(&file), want, "pixel data of {sop}");
        checked += 1;
    }
    assert!(checked > 0, "images were compared");
}

#[tokio::test]
async fn a_node_that_refuses_the_association_fails_each_instance_with_the_reason() {
    let Some(orthanc) = start_orthanc().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let (emulator, sdk, ds) = demo_emulator(dir.path()).await;
    // Orthanc checks the called AE title: WRONG is refused.
    let node = format!("dicom://WRONG@127.0.0.1:{}", orthanc.dicom_port);
    let policy = ExportPolicy {
        allowed: vec![Destination::parse(&node).unwrap()],
        ..ExportPolicy::default()
    };
    let mcp = Mcp::connect_exporting(&emulator, sdk, &state, policy).await;
    let manifest: Value = healthimaging_e2e::demo_manifest(&emulator);
    let series = manifest["patients"][0]["studies"][0]["series"][0]["series_instance_uid"].clone();
    // De-identified by default: no confirmation needed.
    let out = structured(
        &mcp.call(
            "start_dicom_export_job",
            json!({"datastore_id": ds, "series_instance_uid": series, "destination": node, "wait": true}),
        )
        .await,
    );
    let job = &out["job"];
    assert_eq!(job["status"], "FAILED", "{}", out["summary"]);
    assert_eq!(job["exported_instances"], 0);
    assert_eq!(job["failed_instances"], job["total_instances"]);
    let reason = job["failures"][0]["reason"].as_str().unwrap();
    assert!(reason.contains("association"), "{reason}");
    let instances = get_json(&orthanc.http, "/instances").await;
    assert_eq!(instances, json!([]));
}
