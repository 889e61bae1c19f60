//! The summary of an image set's metadata that `get_image_set_metadata`
//! returns when the document is too large or a summary is asked for.
//!
//! It keeps the Patient and Study attributes, and per series its attributes,
//! its instance count, and its instances in InstanceNumber order with their
//! frame IDs, so that seeing an image takes two calls. The summary itself
//! fits the caller's `max_bytes`: when every instance does not fit, each
//! series shows the same number of instances from the requested offset, as
//! many as fit, and the summary says from which offset to continue.

use serde_json::{Map, Value, json};

/// A summary and where to continue when it is cut short.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// The summary document.
    pub value: Value,
    /// The instance offset to ask for next, when some series has more
    /// instances than the summary shows.
    pub next_offset: Option<usize>,
}

/// One instance as the summary shows it, with the key it is ordered by.
struct Row {
    order: (i64, String),
    value: Value,
}

fn instance_rows(series: &Value) -> Vec<Row> {
    let mut rows: Vec<Row> = series["Instances"]
        .as_object()
        .map(|instances| {
            instances
                .iter()
                .map(|(sop, instance)| {
                    let number = &instance["DICOM"]["InstanceNumber"];
                    let order = number
                        .as_i64()
                        .or_else(|| number.as_str().and_then(|n| n.trim().parse().ok()))
                        .unwrap_or(i64::MAX);
                    let frames: Vec<Value> = instance["ImageFrames"]
                        .as_array()
                        .map(|frames| frames.iter().map(|f| f["ID"].clone()).collect())
                        .unwrap_or_default();
                    Row {
                        order: (order, sop.clone()),
                        value: json!({
                            "SOPInstanceUID": sop,
                            "InstanceNumber": number,
                            "SOPClassUID": instance["DICOM"]["SOPClassUID"],
                            "FrameIDs": frames,
                        }),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    rows.sort_by(|a, b| a.order.cmp(&b.order));
    rows
}

/// The summary with at most `per_series` instances of each series from
/// `offset`; `series_attributes` false leaves out each series' attributes.
fn build(
    document: &Value,
    series: &[(String, Value, Vec<Row>)],
    offset: usize,
    per_series: usize,
    series_attributes: bool,
) -> Value {
    let mut all = Map::new();
    for (uid, attributes, rows) in series {
        let shown: Vec<Value> = rows
            .iter()
            .skip(offset)
            .take(per_series)
            .map(|row| row.value.clone())
            .collect();
        let mut entry = json!({
            "InstanceCount": rows.len(),
            "Instances": shown,
        });
        if series_attributes {
            entry["DICOM"] = attributes.clone();
        }
        if rows.len() > offset + per_series {
            entry["MoreInstances"] = json!(true);
        }
        all.insert(uid.clone(), entry);
    }
    json!({
        "DatastoreID": document["DatastoreID"],
        "ImageSetID": document["ImageSetID"],
        "Patient": document["Patient"],
        "Study": { "DICOM": document["Study"]["DICOM"], "Series": all },
    })
}

fn size(value: &Value) -> usize {
    serde_json::to_vec(value).map_or(usize::MAX, |v| v.len())
}

/// A summary of `document` within `max_bytes`, its instances from `offset`.
pub fn summarize(document: &Value, max_bytes: usize, offset: usize) -> Summary {
    let series: Vec<(String, Value, Vec<Row>)> = document["Study"]["Series"]
        .as_object()
        .map(|all| {
            all.iter()
                .map(|(uid, s)| (uid.clone(), s["DICOM"].clone(), instance_rows(s)))
                .collect()
        })
        .unwrap_or_default();
    let longest = series
        .iter()
        .map(|(_, _, rows)| rows.len().saturating_sub(offset))
        .max()
        .unwrap_or(0);
    let fits = |per: usize, attributes: bool| {
        let value = build(document, &series, offset, per, attributes);
        (size(&value) <= max_bytes).then_some(value)
    };
    let (value, per) = if let Some(value) = fits(longest, true) {
        (value, longest)
    } else {
        // The most instances per series that fit: a binary search.
        let (mut low, mut high) = (0usize, longest);
        while low < high {
            let middle = (low + high).div_ceil(2);
            if fits(middle, true).is_some() {
                low = middle;
            } else {
                high = middle - 1;
            }
        }
        match fits(low, true).or_else(|| fits(0, false)) {
            Some(value) => (value, low),
            // Not even the series without their attributes: counts only.
            None => (
                json!({
                    "DatastoreID": document["DatastoreID"],
                    "ImageSetID": document["ImageSetID"],
                    "SeriesCount": series.len(),
                    "InstanceCount": series.iter().map(|(_, _, r)| r.len()).sum::<usize>(),
                }),
                0,
            ),
        }
    };
    let more = series.iter().any(|(_, _, rows)| rows.len() > offset + per);
    Summary {
        value,
        next_offset: more.then_some(offset + per.max(1)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn document(instances: usize) -> Value {
        let mut all = Map::new();
        for n in (0..instances).rev() {
            all.insert(
                format!("2.25.{n}"),
                json!({"DICOM": {"InstanceNumber": format!("{} ", n + 1), "SOPClassUID": "1.2"},
                       "ImageFrames": [{"ID": format!("{n:032x}")}]}),
            );
        }
        json!({"Patient": {"DICOM": {"PatientID": "SYN1"}}, "Study": {"DICOM": {}, "Series": {
            "2.25.9": {"DICOM": {"Modality": "CT"}, "Instances": all}}}})
    }

    #[test]
    fn instances_come_in_instance_number_order_with_their_frames() {
        let summary = summarize(&document(12), 1_000_000, 0);
        assert_eq!(summary.next_offset, None);
        let series = &summary.value["Study"]["Series"]["2.25.9"];
        assert_eq!(series["InstanceCount"], 12);
        let numbers: Vec<String> = series["Instances"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["InstanceNumber"].as_str().unwrap().trim().to_owned())
            .collect();
        let expected: Vec<String> = (1..=12).map(|n| n.to_string()).collect();
        assert_eq!(numbers, expected, "numeric, not text, order");
        assert_eq!(series["Instances"][0]["FrameIDs"][0], format!("{:032x}", 0));
    }

    #[test]
    fn a_large_summary_fits_max_bytes_and_says_where_to_continue() {
        let document = document(3000);
        for max_bytes in [2_000, 20_000, 60_000] {
            let summary = summarize(&document, max_bytes, 0);
            assert!(size(&summary.value) <= max_bytes, "{max_bytes}");
            let shown = summary.value["Study"]["Series"]["2.25.9"]["Instances"]
                .as_array()
                .unwrap()
                .len();
            assert!(shown > 0, "{max_bytes}: something is shown");
            assert_eq!(summary.next_offset, Some(shown));
            let next = summarize(&document, max_bytes, shown);
            assert_eq!(
                next.value["Study"]["Series"]["2.25.9"]["Instances"][0]["InstanceNumber"]
                    .as_str()
                    .unwrap()
                    .trim(),
                (shown + 1).to_string(),
                "the next page starts after the last shown"
            );
        }
        let tiny = summarize(&document, 100, 0);
        assert!(size(&tiny.value) <= 200, "{}", tiny.value);
    }
}
