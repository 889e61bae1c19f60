//! `get_series_montage` on the demo set: evenly spaced slices of a real
//! series in one captioned PNG, the instances asked for, and clear refusals.

use std::time::Duration;

use base64::Engine;
use healthimaging_e2e::{Mcp, demo_emulator, structured, text};
use healthimaging_mcp::permissions::Grant;
use serde_json::{Value, json};

/// The caption colour the montage draws in.
const CAPTION: [u8; 3] = [255, 220, 0];

fn png(result: &rmcp::model::CallToolResult) -> (png::OutputInfo, Vec<u8>) {
    let image = result.content[0].as_image().expect("an image block");
    assert_eq!(image.mime_type, "image/png");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(&image.data)
        .unwrap();
    let mut reader = png::Decoder::new(std::io::Cursor::new(bytes))
        .read_info()
        .unwrap();
    let mut buffer = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buffer).unwrap();
    buffer.truncate(info.buffer_size());
    (info, buffer)
}

/// The text blocks of a result (the picture comes first).
fn words(result: &rmcp::model::CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|block| block.as_text().map(|t| t.text.clone()))
        .collect()
}

fn instance_number(instance: &Value) -> i64 {
    let value = &instance["DICOM"]["InstanceNumber"];
    value
        .as_i64()
        .or_else(|| value.as_str().and_then(|s| s.trim().parse().ok()))
        .expect("numbered")
}

#[tokio::test]
async fn a_series_at_a_glance() {
    let dir = tempfile::tempdir().unwrap();
    let (_emulator, sdk, ds) = demo_emulator(dir.path()).await;
    let mcp = Mcp::connect(sdk, Grant::READ_ONLY, Duration::from_secs(60)).await;

    // The primary image set with the most instances: a CT or MR volume.
    let all = structured(
        &mcp.call(
            "search_image_sets",
            json!({"datastore_id": ds, "limit": 1000}),
        )
        .await,
    );
    let mut best: Option<(String, Value)> = None;
    for set in all["image_sets"].as_array().unwrap() {
        if set["is_primary"] != true {
            continue;
        }
        let id = set["image_set_id"].as_str().unwrap();
        let metadata = structured(
            &mcp.call(
                "get_image_set_metadata",
                json!({"datastore_id": ds, "image_set_id": id, "max_bytes": 1000000}),
            )
            .await,
        );
        let size = |m: &Value| m["instance_count"].as_u64().unwrap_or(0);
        if best.as_ref().is_none_or(|(_, b)| size(&metadata) > size(b)) {
            best = Some((id.to_owned(), metadata));
        }
    }
    let (id, metadata) = best.unwrap();
    let series = metadata["metadata"]["Study"]["Series"].as_object().unwrap();
    assert_eq!(series.len(), 1);
    let (series_uid, series_doc) = series.iter().next().unwrap();
    let mut numbers: Vec<i64> = series_doc["Instances"]
        .as_object()
        .unwrap()
        .values()
        .map(instance_number)
        .collect();
    numbers.sort_unstable();
    assert!(numbers.len() >= 9, "a volume of {} slices", numbers.len());

    let montage = mcp
        .call(
            "get_series_montage",
            json!({"datastore_id": ds, "image_set_id": id, "count": 4}),
        )
        .await;
    assert_ne!(montage.is_error, Some(true), "{}", text(&montage));
    let facts = structured(&montage);
    assert_eq!(facts["series_instance_uid"], series_uid.as_str());
    assert_eq!(facts["grid"], json!([2, 2]));
    let tiles = facts["tiles"].as_array().unwrap();
    assert_eq!(tiles.len(), 4);
    let shown: Vec<i64> = tiles
        .iter()
        .map(|t| t["instance_number"].as_str().unwrap().parse().unwrap())
        .collect();
    assert_eq!(shown[0], numbers[0], "evenly spaced from the first slice");
    assert_eq!(shown[3], *numbers.last().unwrap(), "to the last");
    assert!(shown.windows(2).all(|w| w[1] > w[0]), "{shown:?}");
    let (info, pixels) = png(&montage);
    assert!(info.width.max(info.height) <= 1024);
    assert_eq!(
        [info.width, info.height],
        [
            facts["size"][0].as_u64().unwrap() as u32,
            facts["size"][1].as_u64().unwrap() as u32
        ]
    );
    assert_eq!(info.color_type, png::ColorType::Rgb);
    let quadrant_lit = |qx: u32, qy: u32| {
        let (w, h) = (info.width / 2, info.height / 2);
        (qy * h..(qy + 1) * h).any(|y| {
            (qx * w..(qx + 1) * w).any(|x| {
                let at = ((y * info.width + x) * 3) as usize;
                let p = &pixels[at..at + 3];
                p != [0, 0, 0] && p != CAPTION
            })
        })
    };
    let captioned = |qx: u32, qy: u32| {
        let (w, h) = (info.width / 2, info.height / 2);
        (qy * h..(qy + 1) * h).any(|y| {
            (qx * w..(qx + 1) * w).any(|x| {
                let at = ((y * info.width + x) * 3) as usize;
                pixels[at..at + 3] == CAPTION
            })
        })
    };
    for (qx, qy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
        assert!(quadrant_lit(qx, qy), "tile {qx},{qy} shows an image");
        assert!(captioned(qx, qy), "tile {qx},{qy} has a caption");
    }
    let summary = words(&montage);
    assert!(summary.contains("4 of its"), "{summary}");
    assert!(summary.contains("window"), "{summary}");

    // The instances asked for, in the order asked.
    let picked = [numbers[2], numbers[0]];
    let chosen = mcp
        .call(
            "get_series_montage",
            json!({"datastore_id": ds, "image_set_id": id, "instance_numbers": picked,
                   "max_size": 256, "window_center": 40, "window_width": 400}),
        )
        .await;
    let facts = structured(&chosen);
    let shown: Vec<i64> = facts["tiles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["instance_number"].as_str().unwrap().parse().unwrap())
        .collect();
    assert_eq!(shown, picked);
    let (info, _) = png(&chosen);
    assert!(info.width.max(info.height) <= 256);
    assert!(
        words(&chosen).contains("from the arguments"),
        "{}",
        words(&chosen)
    );

    // Refusals name what is wrong.
    let missing = mcp
        .call(
            "get_series_montage",
            json!({"datastore_id": ds, "image_set_id": id, "instance_numbers": [99999]}),
        )
        .await;
    assert_eq!(missing.is_error, Some(true));
    assert!(
        text(&missing).contains("no instance numbered 99999"),
        "{}",
        text(&missing)
    );
    for bad in [
        json!({"count": 0}),
        json!({"count": 37}),
        json!({"max_size": 2048}),
    ] {
        let mut args = json!({"datastore_id": ds, "image_set_id": id});
        args.as_object_mut()
            .unwrap()
            .extend(bad.as_object().unwrap().clone());
        let refused = mcp.call("get_series_montage", args).await;
        assert_eq!(refused.is_error, Some(true), "{bad}");
        assert!(
            text(&refused).starts_with("InvalidArgument"),
            "{}",
            text(&refused)
        );
    }
}
