//! A data directory on a file system that fills up: writes that cannot be
//! made answer an AWS-shaped `InternalServerException` and change nothing,
//! every write acknowledged before stays, the emulator works again once
//! there is room, and it restarts cleanly.
//!
//! Needs a small tmpfs, which only root may mount: elsewhere the test says
//! why it skipped.

use std::io::Write;
use std::path::Path;
use std::process::Command;

use healthimaging_e2e::{Fixture, write_fixtures};
use healthimaging_fixtures::FixtureSet;

/// A mounted tmpfs, unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Result<Self, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .map_err(|e| format!("mount could not run: {e}"))?;
        if !status.success() {
            return Err(format!("mount -t tmpfs failed ({status}); it needs root"));
        }
        Ok(Self { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

/// Fills the file system holding `dir` to the last byte.
fn fill(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("filler");
    let mut file = std::fs::File::create(&path).unwrap();
    let chunk = vec![0u8; 64 * 1024];
    loop {
        if file.write_all(&chunk).is_err() {
            break;
        }
    }
    for _ in 0..64 {
        if file.write_all(&[0u8; 512]).is_err() {
            break;
        }
    }
    let _ = file.sync_all();
    path
}

#[tokio::test]
async fn a_full_disk_refuses_writes_whole_and_keeps_every_acknowledged_one() {
    let mount = match Tmpfs::mount("6m") {
        Ok(mount) => mount,
        Err(why) => {
            eprintln!("skipped: {why}");
            return;
        }
    };
    let outside = tempfile::tempdir().unwrap();
    let s3 = outside.path().join("s3");
    write_fixtures(FixtureSet::Ci, &s3, "fixtures", "ci");
    let data = mount.path().join("data");
    let fx = Fixture::start_with(20, |c| c.with_data_dir(&data).with_s3_root(&s3)).await;
    let ds = fx.active_datastore("before").await;
    let arn = fx
        .sdk
        .get_datastore()
        .datastore_id(&ds)
        .send()
        .await
        .unwrap()
        .datastore_properties
        .unwrap()
        .datastore_arn
        .unwrap();
    for n in 0..5 {
        fx.sdk
            .tag_resource()
            .resource_arn(&arn)
            .tags(format!("k{n}"), "acknowledged")
            .send()
            .await
            .unwrap();
    }

    // An import under way when the disk fills.
    let job = fx
        .sdk
        .start_dicom_import_job()
        .datastore_id(&ds)
        .data_access_role_arn("arn:aws:iam::123456789012:role/ImportRole")
        .input_s3_uri("s3://fixtures/ci/dicom/")
        .output_s3_uri("s3://fixtures/out/")
        .send()
        .await
        .unwrap()
        .job_id;
    let filler = fill(mount.path());
    let mut refused = 0;
    for n in 0..40 {
        let big = "v".repeat(256);
        match fx
            .sdk
            .tag_resource()
            .resource_arn(&arn)
            .tags(format!("full{n}"), &big)
            .send()
            .await
        {
            Ok(_) => {}
            Err(error) => {
                let error = error.into_service_error();
                assert!(
                    error.is_internal_server_exception(),
                    "a full disk is the service's fault: {error:?}"
                );
                assert!(error.to_string().contains("full"), "{error}");
                refused += 1;
            }
        }
    }
    assert!(refused > 0, "the full disk refused some writes");
    let error = fx
        .sdk
        .create_datastore()
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(error.is_internal_server_exception(), "{error:?}");

    // Room again: the same emulator writes without a restart.
    std::fs::remove_file(filler).unwrap();
    fx.sdk
        .tag_resource()
        .resource_arn(&arn)
        .tags("after", "room")
        .send()
        .await
        .expect("writes work again once there is room");
    let tags = fx
        .sdk
        .list_tags_for_resource()
        .resource_arn(&arn)
        .send()
        .await
        .unwrap()
        .tags;
    for n in 0..5 {
        assert_eq!(tags[&format!("k{n}")], "acknowledged");
    }
    let mut acknowledged: Vec<String> = tags.keys().cloned().collect();
    acknowledged.sort();
    // The import ends (here, or it resumes after the restart below), and
    // whatever image sets it committed are whole.
    let ended = healthimaging_e2e::wait_for_job(&fx.sdk, &ds, &job).await;
    for set in healthimaging_e2e::all_image_sets(&fx.sdk, &ds).await {
        healthimaging_e2e::metadata(&fx.sdk, &ds, set.image_set_id(), None).await;
    }
    assert!(
        matches!(ended.job_status().as_str(), "COMPLETED" | "FAILED"),
        "{:?}",
        ended.job_status()
    );

    // A restart reads the same store.
    fx.emulator.shutdown().await.unwrap();
    let restarted = healthimaging_emulator::Emulator::start(
        healthimaging_emulator::EmulatorConfig::default()
            .with_data_dir(&data)
            .with_s3_root(&s3),
    )
    .await
    .expect("the store opens after the episode");
    let sdk = healthimaging_mcp::backend::emulator_client(
        restarted.url(),
        healthimaging_e2e::fast_tuning(),
    );
    let mut after: Vec<String> = sdk
        .list_tags_for_resource()
        .resource_arn(&arn)
        .send()
        .await
        .unwrap()
        .tags
        .keys()
        .cloned()
        .collect();
    after.sort();
    assert_eq!(after, acknowledged, "every acknowledged tag, nothing else");
    restarted.shutdown().await.unwrap();
}
