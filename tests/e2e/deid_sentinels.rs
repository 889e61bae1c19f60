//! De-identification tested in the MIDI-B manner: a sentinel value
//! (`PHI-<tag>`, or a recognisable date, time or UID) is planted in every
//! attribute of Table E.1-1 that can carry one, in sequences and private
//! tags too. After de-identification no sentinel survives anywhere (the Part
//! 10 bytes, and the HealthImaging metadata of the copy stored back through
//! STOW-RS), every attribute got exactly the profile's action, the options
//! keep exactly what they say, and dciodvfy accepts de-identified fixtures.

use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry};
use dicom_core::value::{DataSetSequence, PrimitiveValue, Value as DicomValue};
use dicom_core::{DataElement, Length, Tag, VR};
use dicom_dictionary_std::{StandardDataDictionary, tags};
use dicom_object::InMemDicomObject;
use dicom_object::mem::InMemElement;
use healthimaging_e2e::{Fixture, dicomweb_for, metadata};
use healthimaging_fixtures::{FixtureSet, Spec};
use healthimaging_mcp::deid::table::{Pattern, TABLE};
use healthimaging_mcp::deid::{Action, Deidentifier, ProfileOptions};

/// What was planted in one attribute.
struct Planted {
    tag: Tag,
    vr: VR,
    value: String,
}

fn sentinel(tag: Tag, vr: VR) -> Option<String> {
    let hex = format!("{:04X}{:04X}", tag.group(), tag.element());
    Some(match vr {
        VR::AE | VR::CS | VR::SH | VR::LO | VR::LT | VR::ST | VR::UT | VR::UC | VR::PN => {
            format!("PHI-{hex}")
        }
        VR::UR => format!("https://phi.invalid/PHI-{hex}"),
        VR::DA => "19010203".to_owned(),
        VR::DT => "19010203040506".to_owned(),
        VR::TM => "040506".to_owned(),
        VR::UI => format!(
            "1.2.999.{}",
            u32::from(tag.group()) << 16 | u32::from(tag.element())
        ),
        VR::IS => "990001".to_owned(),
        VR::DS => "990001.5".to_owned(),
        VR::AS => "099Y".to_owned(),
        _ => return None,
    })
}

/// A nested item holding a sentinel in a table attribute (PatientName).
fn sentinel_item(tag: Tag) -> InMemDicomObject {
    InMemDicomObject::from_element_iter([DataElement::new(
        tags::PATIENT_NAME,
        VR::PN,
        PrimitiveValue::from(format!("PHI-ITEM-{:04X}{:04X}", tag.group(), tag.element())),
    )])
}

/// A fixture instance with a sentinel in every attribute it can carry.
fn planted(base: &[u8]) -> (Vec<u8>, Vec<Planted>) {
    let file = dicom_object::from_reader(&base[128..]).unwrap();
    let meta = file.meta().clone();
    let mut object = file.into_inner();
    let mut planted = Vec::new();
    for row in &TABLE.rows {
        let Pattern::Tag(tag) = row.pattern else {
            continue;
        };
        if tag.group() == 0x0002 || tag == tags::PIXEL_DATA {
            continue;
        }
        let Some(vr) = StandardDataDictionary
            .by_tag(tag)
            .and_then(|entry| entry.vr().exact())
        else {
            continue;
        };
        if vr == VR::SQ {
            object.put(DataElement::new(
                tag,
                VR::SQ,
                DicomValue::from(DataSetSequence::new(
                    vec![sentinel_item(tag)],
                    Length::UNDEFINED,
                )),
            ));
            planted.push(Planted {
                tag,
                vr,
                value: String::new(),
            });
            continue;
        }
        let Some(value) = sentinel(tag, vr) else {
            continue;
        };
        object.put(DataElement::new(
            tag,
            vr,
            PrimitiveValue::from(value.clone()),
        ));
        planted.push(Planted { tag, vr, value });
    }
    // Private attributes, a repeating-group overlay comment and curve label.
    for (tag, vr, value) in [
        (Tag(0x0009, 0x0010), VR::LO, "PHI-CREATOR"),
        (Tag(0x0009, 0x1001), VR::LO, "PHI-00091001"),
        (Tag(0x6000, 0x4000), VR::LT, "PHI-60004000"),
        (Tag(0x5000, 0x2500), VR::LO, "PHI-50002500"),
    ] {
        object.put(DataElement::new(tag, vr, PrimitiveValue::from(value)));
    }
    object.put(DataElement::new(
        Tag(0x0009, 0x1002),
        VR::UN,
        PrimitiveValue::from(b"PHI-PRIVATE-BYTES".to_vec()),
    ));
    let file = object.with_exact_meta(meta);
    let mut bytes = Vec::new();
    file.write_all(&mut bytes).unwrap();
    (bytes, planted)
}

fn get(object: &InMemDicomObject, tag: Tag) -> Option<&InMemElement> {
    object.get(tag)
}

fn text(element: &InMemElement) -> String {
    element
        .to_str()
        .map(|s| s.trim_end_matches(['\0', ' ']).to_owned())
        .unwrap_or_default()
}

fn ci_instance(dir: &std::path::Path, sop_class: &str) -> Vec<u8> {
    let manifest = healthimaging_fixtures::write(
        &Spec {
            set: FixtureSet::Ci,
            seed: 3,
            patients: None,
        },
        dir,
    )
    .unwrap();
    let path = manifest
        .patients
        .iter()
        .flat_map(|p| &p.studies)
        .flat_map(|s| &s.series)
        .flat_map(|s| &s.instances)
        .find(|i| i.sop_class_uid == sop_class)
        .map(|i| i.path.clone())
        .expect("the ci set holds one");
    std::fs::read(dir.join(path)).unwrap()
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

#[tokio::test]
async fn no_sentinel_survives_and_every_attribute_gets_its_action() {
    let dir = tempfile::tempdir().unwrap();
    let base = ci_instance(dir.path(), "1.2.840.10008.5.1.4.1.1.2");
    let (bytes, planted) = planted(&base);
    assert!(planted.len() > 300, "{} attributes planted", planted.len());
    assert!(contains(&bytes, "PHI-00100010"));

    let deidentifier = Deidentifier::new(b"job key", ProfileOptions::default());
    let out = deidentifier.part10(&bytes).unwrap();
    for needle in ["PHI-", "19010203", "1.2.999.", "phi.invalid"] {
        assert!(
            !contains(&out.bytes, needle),
            "a sentinel ({needle}) survives in the Part 10 bytes"
        );
    }
    let object = dicom_object::from_reader(&out.bytes[128..]).unwrap();
    for plant in &planted {
        let row = TABLE.row(plant.tag).unwrap();
        let action = deidentifier.action(row);
        let element = get(&object, plant.tag);
        let name = &row.name;
        match action {
            Action::X => assert!(element.is_none(), "{name} is removed"),
            Action::Z => {
                let element = element.unwrap_or_else(|| panic!("{name} stays, empty"));
                if plant.vr == VR::SQ {
                    assert_eq!(element.items().map(<[_]>::len), Some(0), "{name}");
                } else {
                    assert_eq!(text(element), "", "{name} is emptied");
                }
            }
            Action::D => {
                let element = element.unwrap_or_else(|| panic!("{name} gets a dummy"));
                if plant.vr == VR::SQ {
                    assert_eq!(element.items().map(<[_]>::len), Some(1), "{name}");
                } else {
                    let value = text(element);
                    assert!(!value.is_empty() && value != plant.value, "{name}: {value}");
                }
            }
            Action::U => {
                let element = element.unwrap_or_else(|| panic!("{name} keeps a new UID"));
                if plant.vr == VR::UI {
                    assert!(text(element).starts_with("2.25."), "{name}");
                    assert_eq!(text(element), deidentifier.uid(&plant.value));
                } else {
                    // A sequence of references: its items recursed.
                    let items = element.items().unwrap();
                    assert_eq!(items.len(), 1, "{name}");
                    assert_eq!(text(get(&items[0], tags::PATIENT_NAME).unwrap()), "");
                }
            }
            Action::K | Action::C => panic!("{name}: the basic profile keeps nothing planted"),
        }
    }
    for private in [
        Tag(0x0009, 0x0010),
        Tag(0x0009, 0x1001),
        Tag(0x0009, 0x1002),
    ] {
        assert!(get(&object, private).is_none(), "private {private} removed");
    }
    assert!(get(&object, Tag(0x6000, 0x4000)).is_none());
    assert!(get(&object, Tag(0x5000, 0x2500)).is_none());
    assert_eq!(
        text(get(&object, tags::PATIENT_IDENTITY_REMOVED).unwrap()),
        "YES"
    );
    let codes = get(&object, tags::DEIDENTIFICATION_METHOD_CODE_SEQUENCE)
        .unwrap()
        .items()
        .unwrap();
    assert_eq!(text(get(&codes[0], tags::CODE_VALUE).unwrap()), "113100");
    assert_eq!(
        text(get(&codes[0], tags::CODING_SCHEME_DESIGNATOR).unwrap()),
        "DCM"
    );
    assert_eq!(
        text(get(&object, tags::LONGITUDINAL_TEMPORAL_INFORMATION_MODIFIED).unwrap()),
        "REMOVED"
    );
    // The same input under the same key gives the same output.
    let again = deidentifier.part10(&bytes).unwrap();
    assert_eq!(again.bytes, out.bytes);
    assert_ne!(
        Deidentifier::new(b"another key", ProfileOptions::default())
            .part10(&bytes)
            .unwrap()
            .sop_instance,
        out.sop_instance
    );

    // Stored back through STOW-RS and read as HealthImaging metadata: no
    // sentinel there either.
    let f = Fixture::start(10).await;
    let ds = f.active_datastore("deid-copy").await;
    let dicomweb = dicomweb_for(f.emulator.url());
    let response = dicomweb
        .send(
            "POST",
            &dicomweb.datastore_url(&ds, "/studies"),
            &[
                ("content-type", "application/dicom"),
                ("accept", "application/dicom+json"),
            ],
            out.bytes.clone().into(),
            true,
        )
        .await
        .expect("the emulator stores the de-identified instance");
    assert_eq!(response.status, 200);
    let found = f
        .sdk
        .search_image_sets()
        .datastore_id(&ds)
        .send()
        .await
        .unwrap();
    let set = &found.image_sets_metadata_summaries()[0];
    let document = metadata(&f.sdk, &ds, set.image_set_id(), None).await;
    let json = document.to_string();
    for needle in ["PHI-", "19010203", "1.2.999."] {
        assert!(!json.contains(needle), "{needle} survives in the metadata");
    }
}

#[test]
fn options_keep_exactly_what_they_say() {
    let dir = tempfile::tempdir().unwrap();
    let base = ci_instance(dir.path(), "1.2.840.10008.5.1.4.1.1.2");
    let (bytes, planted) = planted(&base);
    let options = ProfileOptions {
        retain_modified_dates: true,
        retain_patient_characteristics: true,
        retain_device_identity: true,
        clean_descriptors: true,
        retain_uids: true,
    };
    let deidentifier = Deidentifier::new(b"job key", options);
    let out = deidentifier.part10(&bytes).unwrap();
    let object = dicom_object::from_reader(&out.bytes[128..]).unwrap();
    let shift = deidentifier.date_shift_days("PHI-00100020");
    let mut kept = 0;
    let mut shifted = 0;
    for plant in &planted {
        let row = TABLE.row(plant.tag).unwrap();
        let element = get(&object, plant.tag);
        match (deidentifier.action(row), plant.vr) {
            (Action::K, VR::SQ) => assert!(element.is_some(), "{}", row.name),
            (Action::K, _) => {
                assert_eq!(text(element.unwrap()), plant.value, "{} is kept", row.name);
                kept += 1;
            }
            (Action::C, VR::DA) => {
                let value = text(element.unwrap());
                assert_ne!(value, plant.value, "{}", row.name);
                // 1901-02-03 moved back `shift` days.
                let days_before = chrono_like_days("19010203") - chrono_like_days(&value);
                assert_eq!(days_before, shift, "{}", row.name);
                shifted += 1;
            }
            (Action::C, VR::TM) => assert_eq!(text(element.unwrap()), plant.value),
            // Sentinel descriptors hold a run of digits: not clean.
            (Action::C, VR::LO | VR::SH | VR::LT | VR::ST | VR::UT | VR::CS | VR::PN) => {
                assert_eq!(text(element.unwrap()), "", "{} is cleaned", row.name)
            }
            _ => {}
        }
    }
    assert!(kept > 50, "{kept} attributes kept by the options");
    assert!(shifted > 10, "{shifted} dates shifted");
    let method = text(get(&object, tags::DEIDENTIFICATION_METHOD).unwrap());
    assert!(
        method.contains("+ModDates") && method.contains("+UIDs"),
        "{method}"
    );
    assert_eq!(
        text(get(&object, tags::LONGITUDINAL_TEMPORAL_INFORMATION_MODIFIED).unwrap()),
        "MODIFIED"
    );
    let codes: Vec<String> = get(&object, tags::DEIDENTIFICATION_METHOD_CODE_SEQUENCE)
        .unwrap()
        .items()
        .unwrap()
        .iter()
        .map(|item| text(get(item, tags::CODE_VALUE).unwrap()))
        .collect();
    assert_eq!(
        codes,
        ["113100", "113105", "113107", "113108", "113109", "113110"]
    );
}

/// Days since 0000-03-01 of a YYYYMMDD date (enough to compare two).
fn chrono_like_days(date: &str) -> i64 {
    let (y, m, d): (i64, i64, i64) = (
        date[..4].parse().unwrap(),
        date[4..6].parse().unwrap(),
        date[6..8].parse().unwrap(),
    );
    let (y, m) = if m <= 2 { (y - 1, m + 12) } else { (y, m) };
    365 * y + y / 4 - y / 100 + y / 400 + (153 * (m - 3) + 2) / 5 + d
}

#[test]
fn dciodvfy_accepts_de_identified_fixtures() {
    if std::process::Command::new("dciodvfy")
        .arg("-help")
        .output()
        .is_err()
    {
        eprintln!("skipped: dciodvfy is not installed (apt-get install dicom3tools)");
        return;
    }
    let deidentifier = Deidentifier::new(b"job key", ProfileOptions::default());
    let mut checked = 0;
    for class in [
        "1.2.840.10008.5.1.4.1.1.2",
        "1.2.840.10008.5.1.4.1.1.4",
        "1.2.840.10008.5.1.4.1.1.1",
        "1.2.840.10008.5.1.4.1.1.104.1",
    ] {
        let dir = tempfile::tempdir().unwrap();
        let base = ci_instance(dir.path(), class);
        let before = dciodvfy_errors(&base);
        if before
            .iter()
            .any(|e| e.contains("Dicom dataset read failed"))
        {
            // Debian's dciodvfy does not inflate Deflated Explicit VR Little
            // Endian, the syntax of the fixtures' reports.
            eprintln!("{class}: skipped, dciodvfy cannot read the original either");
            continue;
        }
        checked += 1;
        let out = deidentifier.part10(&base).unwrap();
        let after = dciodvfy_errors(&out.bytes);
        let new: Vec<&String> = after.iter().filter(|e| !before.contains(e)).collect();
        assert!(
            new.is_empty(),
            "{class}: de-identification made errors: {new:#?}"
        );
    }
    assert!(checked >= 3, "CT, MR and CR were checked");
}

fn dciodvfy_errors(bytes: &[u8]) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("instance.dcm");
    std::fs::write(&path, bytes).unwrap();
    let output = std::process::Command::new("dciodvfy")
        .arg("-new")
        .arg(&path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stderr)
        .lines()
        .chain(String::from_utf8_lossy(&output.stdout).lines())
        .filter(|line| line.starts_with("Error"))
        .map(str::to_owned)
        .collect()
}
