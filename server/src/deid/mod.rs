//! De-identification: the Basic Application Level Confidentiality Profile of
//! PS3.15 Annex E, with five of its options, driven by Table E.1-1 as
//! pinned in [`table`].
//!
//! - Every attribute the table lists gets the table's action (the chosen
//!   options' column first, the basic profile's otherwise); attributes it
//!   does not list are kept, as the profile says. Sequences are recursed,
//!   whatever their own action keeps of them.
//! - UIDs are replaced by `2.25.` UIDs derived with HMAC-SHA-256 from the job
//!   key: the same input under the same key gives the same output, so a
//!   study stays a study and references stay resolvable.
//! - The Patient ID becomes a pseudonym under the same key; with the
//!   Modified Dates option every date of a patient moves back by the same
//!   number of days (1 to 3,650, from the key and the patient).
//! - Private attributes are removed (no safe-private list is offered).
//! - Instances whose pixels may show burned-in text (BurnedInAnnotation
//!   YES, or Secondary Capture and ultrasound without it saying NO) are
//!   refused: this profile does not clean pixel data.
//! - PatientIdentityRemoved, DeidentificationMethod,
//!   DeidentificationMethodCodeSequence (CID 7050) and
//!   LongitudinalTemporalInformationModified are written.

pub mod table;

use std::collections::BTreeSet;

use dicom_core::value::{DataSetSequence, PrimitiveValue, Value};
use dicom_core::{DataElement, Length, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::file::ReadPreamble;
use dicom_object::meta::FileMetaTableBuilder;
use dicom_object::{InMemDicomObject, OpenFileOptions};
use ring::hmac;

pub use table::{Action, Opt, TABLE};

/// Encapsulated PDF Storage: its document is replaced whole.
const ENCAPSULATED_PDF: &str = "1.2.840.10008.5.1.4.1.1.104.1";

/// Options of the profile, beyond the basic one.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct ProfileOptions {
    /// Dates shifted per patient (Retain Longitudinal … Modified Dates).
    #[serde(default)]
    pub retain_modified_dates: bool,
    /// Keep sex, age, size, weight.
    #[serde(default)]
    pub retain_patient_characteristics: bool,
    /// Keep device identity.
    #[serde(default)]
    pub retain_device_identity: bool,
    /// Keep descriptions holding no identifying value.
    #[serde(default)]
    pub clean_descriptors: bool,
    /// Keep the original UIDs.
    #[serde(default)]
    pub retain_uids: bool,
}

impl ProfileOptions {
    fn enabled(&self, opt: Opt) -> bool {
        match opt {
            Opt::RetainUids => self.retain_uids,
            Opt::RetainDeviceIdentity => self.retain_device_identity,
            Opt::RetainPatientCharacteristics => self.retain_patient_characteristics,
            Opt::RetainModifiedDates => self.retain_modified_dates,
            Opt::CleanDescriptors => self.clean_descriptors,
        }
    }

    /// The CID 7050 codes of the profile and these options.
    fn codes(&self) -> Vec<(&'static str, &'static str)> {
        let mut codes = vec![("113100", "Basic Application Confidentiality Profile")];
        if self.clean_descriptors {
            codes.push(("113105", "Clean Descriptors Option"));
        }
        if self.retain_modified_dates {
            codes.push((
                "113107",
                "Retain Longitudinal Temporal Information Modified Dates Option",
            ));
        }
        if self.retain_patient_characteristics {
            codes.push(("113108", "Retain Patient Characteristics Option"));
        }
        if self.retain_device_identity {
            codes.push(("113109", "Retain Device Identity Option"));
        }
        if self.retain_uids {
            codes.push(("113110", "Retain UIDs Option"));
        }
        codes
    }

    /// A one-line description for DeidentificationMethod (LO, ≤ 64 chars).
    fn method(&self) -> String {
        let mut text = String::from("PS3.15 E.1 Basic");
        for (flag, letter) in [
            (self.clean_descriptors, " +CleanDesc"),
            (self.retain_modified_dates, " +ModDates"),
            (self.retain_patient_characteristics, " +PatChars"),
            (self.retain_device_identity, " +DevId"),
            (self.retain_uids, " +UIDs"),
        ] {
            if flag {
                text.push_str(letter);
            }
        }
        text
    }
}

/// Why an instance was not de-identified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeidError {
    /// The bytes are not a DICOM Part 10 file this server can read.
    #[error("not a readable DICOM file: {0}")]
    Unreadable(String),
    /// The instance cannot be de-identified safely by this profile.
    #[error("not de-identified: {0}")]
    Refused(String),
    /// The result could not be written.
    #[error("the de-identified file could not be written: {0}")]
    Write(String),
}

/// A de-identified instance.
#[derive(Debug, Clone)]
pub struct Deidentified {
    /// The Part 10 bytes.
    pub bytes: Vec<u8>,
    /// The new (or retained) UIDs.
    pub study: String,
    /// The series' UID.
    pub series: String,
    /// The instance's UID.
    pub sop_instance: String,
}

/// De-identifies instances under one key and one set of options.
#[derive(Clone)]
pub struct Deidentifier {
    key: hmac::Key,
    options: ProfileOptions,
}

impl std::fmt::Debug for Deidentifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deidentifier")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// Values of the original instance that must not survive in free text.
struct Context {
    date_shift_days: i64,
    identifying: Vec<String>,
}

impl Deidentifier {
    /// A de-identifier with `key` (kept secret: it links outputs to inputs).
    pub fn new(key: &[u8], options: ProfileOptions) -> Self {
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, key),
            options,
        }
    }

    fn mac(&self, domain: &str, value: &str) -> [u8; 32] {
        let mut context = hmac::Context::with_key(&self.key);
        context.update(domain.as_bytes());
        context.update(&[0]);
        context.update(value.as_bytes());
        let tag = context.sign();
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }

    /// The replacement of `uid`: `2.25.` and 128 bits of the keyed hash.
    pub fn uid(&self, uid: &str) -> String {
        let mac = self.mac("uid", uid.trim_end_matches(['\0', ' ']));
        let mut bits = [0u8; 16];
        bits.copy_from_slice(&mac[..16]);
        // PS3.5 B.2: a UUID-derived UID; the leading bits cleared keep it a
        // plain 128-bit integer without a leading zero issue.
        format!("2.25.{}", u128::from_be_bytes(bits) >> 1)
    }

    /// The pseudonym of a Patient ID.
    pub fn pseudonym(&self, patient_id: &str) -> String {
        let mac = self.mac("patient", patient_id.trim());
        let hex: String = mac[..6].iter().map(|b| format!("{b:02X}")).collect();
        format!("ANON-{hex}")
    }

    /// Days every date of `patient_id` moves back, 1 to 3,650.
    pub fn date_shift_days(&self, patient_id: &str) -> i64 {
        let mac = self.mac("dates", patient_id.trim());
        1 + i64::from(u16::from_be_bytes([mac[0], mac[1]]) % 3650)
    }

    /// De-identifies one Part 10 file.
    pub fn part10(&self, bytes: &[u8]) -> Result<Deidentified, DeidError> {
        let file = OpenFileOptions::new()
            .read_preamble(ReadPreamble::Auto)
            .from_reader(bytes)
            .map_err(|e| DeidError::Unreadable(e.to_string()))?;
        let transfer_syntax = file
            .meta()
            .transfer_syntax()
            .trim_end_matches('\0')
            .to_owned();
        let mut object = file.into_inner();
        self.refuse_burned_in(&object)?;
        let context = self.context(&object);
        self.apply(&mut object, &context);
        self.mark(&mut object);
        let text = |tag| {
            object
                .get(tag)
                .and_then(|e| e.to_str().ok())
                .map(|s| s.trim_end_matches(['\0', ' ']).to_owned())
                .unwrap_or_default()
        };
        let (study, series, sop_instance, sop_class) = (
            text(tags::STUDY_INSTANCE_UID),
            text(tags::SERIES_INSTANCE_UID),
            text(tags::SOP_INSTANCE_UID),
            text(tags::SOP_CLASS_UID),
        );
        let meta = FileMetaTableBuilder::new()
            .media_storage_sop_class_uid(sop_class)
            .media_storage_sop_instance_uid(sop_instance.clone())
            .transfer_syntax(transfer_syntax)
            .implementation_class_uid(healthimaging_fixtures::IMPLEMENTATION_CLASS_UID)
            .implementation_version_name("HIMCP_DEID");
        let file = object
            .with_meta(meta)
            .map_err(|e| DeidError::Write(e.to_string()))?;
        let mut out = Vec::with_capacity(bytes.len());
        file.write_all(&mut out)
            .map_err(|e| DeidError::Write(e.to_string()))?;
        Ok(Deidentified {
            bytes: out,
            study,
            series,
            sop_instance,
        })
    }

    fn refuse_burned_in(&self, object: &InMemDicomObject) -> Result<(), DeidError> {
        let text = |tag| {
            object
                .get(tag)
                .and_then(|e| e.to_str().ok())
                .map(|s| s.trim().to_ascii_uppercase())
        };
        let burned = text(tags::BURNED_IN_ANNOTATION);
        let class = text(tags::SOP_CLASS_UID).unwrap_or_default();
        if class == ENCAPSULATED_PDF {
            // The document, the only place its text can be, is replaced (D).
            return Ok(());
        }
        if burned.as_deref() == Some("YES") {
            return Err(DeidError::Refused(
                "BurnedInAnnotation is YES: its pixels show text this profile does not remove"
                    .to_owned(),
            ));
        }
        let screen_like = class.starts_with("1.2.840.10008.5.1.4.1.1.7")
            || class.starts_with("1.2.840.10008.5.1.4.1.1.6.")
            || class == "1.2.840.10008.5.1.4.1.1.3.1";
        if screen_like && burned.as_deref() != Some("NO") {
            return Err(DeidError::Refused(format!(
                "SOP class {class} often carries burned-in text and BurnedInAnnotation does not say NO; pixel de-identification is not offered"
            )));
        }
        Ok(())
    }

    fn context(&self, object: &InMemDicomObject) -> Context {
        let text = |tag| {
            object
                .get(tag)
                .and_then(|e| e.to_str().ok())
                .map(|s| s.trim().to_owned())
                .unwrap_or_default()
        };
        let patient_id = text(tags::PATIENT_ID);
        let mut identifying = BTreeSet::new();
        for tag in [
            tags::PATIENT_NAME,
            tags::PATIENT_ID,
            tags::OTHER_PATIENT_NAMES,
            tags::PATIENT_BIRTH_NAME,
            tags::PATIENT_MOTHER_BIRTH_NAME,
            tags::ACCESSION_NUMBER,
            tags::PATIENT_BIRTH_DATE,
            tags::INSTITUTION_NAME,
            tags::INSTITUTION_ADDRESS,
            tags::REFERRING_PHYSICIAN_NAME,
            tags::PERFORMING_PHYSICIAN_NAME,
            tags::OPERATORS_NAME,
            tags::STUDY_ID,
            tags::PATIENT_ADDRESS,
        ] {
            for part in text(tag).split(['^', ' ', '\\', '=', ',']) {
                if part.chars().count() >= 3 {
                    identifying.insert(part.to_lowercase());
                }
            }
        }
        Context {
            date_shift_days: self.date_shift_days(&patient_id),
            identifying: identifying.into_iter().collect(),
        }
    }

    /// The action for a row under the options.
    pub fn action(&self, row: &table::Row) -> Action {
        Opt::ALL
            .iter()
            .filter(|opt| self.options.enabled(**opt))
            .find_map(|opt| row.options.get(opt).copied())
            .unwrap_or(row.basic)
    }

    fn apply(&self, object: &mut InMemDicomObject, context: &Context) {
        let tags: Vec<Tag> = object.tags().collect();
        for tag in tags {
            if tag.group() == 0x0002 {
                continue;
            }
            let Some(element) = object.take(tag) else {
                continue;
            };
            let action = TABLE.row(tag).map(|row| self.action(row));
            if let Some(element) = self.act(element, action, context) {
                object.put(element);
            }
        }
    }

    fn act(
        &self,
        element: dicom_object::mem::InMemElement,
        action: Option<Action>,
        context: &Context,
    ) -> Option<dicom_object::mem::InMemElement> {
        let tag = element.header().tag;
        let vr = element.vr();
        match action {
            Some(Action::X) => None,
            Some(Action::Z) => Some(empty(tag, vr)),
            Some(Action::D) => Some(self.dummy(tag, vr, &element)),
            None | Some(Action::K) => Some(self.recurse(element, context)),
            Some(Action::U) => match vr {
                VR::UI => {
                    let uids: Vec<String> = element
                        .to_multi_str()
                        .map(|values| values.iter().map(|u| self.uid(u)).collect())
                        .unwrap_or_default();
                    Some(DataElement::new(
                        tag,
                        VR::UI,
                        PrimitiveValue::Strs(uids.into()),
                    ))
                }
                VR::SQ => Some(self.recurse(element, context)),
                _ => Some(self.dummy(tag, vr, &element)),
            },
            Some(Action::C) => Some(self.clean(element, context)),
        }
    }

    fn recurse(
        &self,
        mut element: dicom_object::mem::InMemElement,
        context: &Context,
    ) -> dicom_object::mem::InMemElement {
        if let Some(items) = element.items_mut() {
            for item in items.iter_mut() {
                self.apply(item, context);
            }
        }
        element
    }

    fn clean(
        &self,
        element: dicom_object::mem::InMemElement,
        context: &Context,
    ) -> dicom_object::mem::InMemElement {
        let tag = element.header().tag;
        let vr = element.vr();
        match vr {
            VR::SQ => self.recurse(element, context),
            VR::DA | VR::DT => {
                let values = element
                    .to_multi_str()
                    .map(|v| v.to_vec())
                    .unwrap_or_default();
                let shifted: Option<Vec<String>> = values
                    .iter()
                    .map(|v| shift_date(v.trim(), context.date_shift_days))
                    .collect();
                match shifted {
                    Some(values) => DataElement::new(tag, vr, PrimitiveValue::Strs(values.into())),
                    None => self.dummy(tag, vr, &element),
                }
            }
            // Times carry no date: kept as they are, as the option allows.
            VR::TM => element,
            VR::LO | VR::SH | VR::ST | VR::LT | VR::UT | VR::UC | VR::CS | VR::PN => {
                let text = element
                    .to_str()
                    .map(|s| s.to_lowercase())
                    .unwrap_or_default();
                if is_clean(&text, &context.identifying) {
                    element
                } else {
                    empty(tag, vr)
                }
            }
            _ => element,
        }
    }

    fn dummy(
        &self,
        tag: Tag,
        vr: VR,
        original: &dicom_object::mem::InMemElement,
    ) -> dicom_object::mem::InMemElement {
        if tag == tags::PATIENT_ID {
            let id = original
                .to_str()
                .map(|s| s.into_owned())
                .unwrap_or_default();
            return DataElement::new(tag, vr, PrimitiveValue::from(self.pseudonym(&id)));
        }
        if tag == tags::ENCAPSULATED_DOCUMENT {
            let mut document =
                healthimaging_fixtures::iod::pdf::pdf("Document removed by de-identification", &[]);
            if document.len() % 2 == 1 {
                document.push(0);
            }
            return DataElement::new(tag, vr, PrimitiveValue::from(document));
        }
        let text = |s: &str| PrimitiveValue::from(s.to_owned());
        let value = match vr {
            VR::SQ => {
                return DataElement::new(
                    tag,
                    VR::SQ,
                    Value::from(DataSetSequence::new(
                        vec![InMemDicomObject::new_empty()],
                        Length::UNDEFINED,
                    )),
                );
            }
            VR::UI => text(&self.uid(&original.to_str().unwrap_or_default())),
            VR::DA => text("19000101"),
            VR::DT => text("19000101000000"),
            VR::TM => text("000000"),
            VR::AS => text("000D"),
            VR::IS | VR::DS => text("0"),
            VR::UR => text("https://example.invalid/"),
            VR::PN | VR::LO | VR::SH | VR::ST | VR::LT | VR::UT | VR::UC | VR::CS | VR::AE => {
                text("ANONYMIZED")
            }
            VR::US => PrimitiveValue::from(0u16),
            VR::SS => PrimitiveValue::from(0i16),
            VR::UL => PrimitiveValue::from(0u32),
            VR::SL => PrimitiveValue::from(0i32),
            VR::UV => PrimitiveValue::from(0u64),
            VR::SV => PrimitiveValue::from(0i64),
            VR::FL => PrimitiveValue::from(0f32),
            VR::FD => PrimitiveValue::from(0f64),
            VR::AT => PrimitiveValue::from(Tag(0, 0)),
            _ => PrimitiveValue::from(vec![0u8, 0u8]),
        };
        DataElement::new(tag, vr, value)
    }

    fn mark(&self, object: &mut InMemDicomObject) {
        if let Some(length) = object
            .get(tags::ENCAPSULATED_DOCUMENT)
            .and_then(|e| e.to_bytes().ok())
            // Without the padding to an even length (PS3.3 C.24.2.1).
            .map(|b| b.iter().rposition(|&c| c != 0).map_or(0, |last| last + 1) as u32)
        {
            if object.get(tags::ENCAPSULATED_DOCUMENT_LENGTH).is_some() {
                object.put(DataElement::new(
                    tags::ENCAPSULATED_DOCUMENT_LENGTH,
                    VR::UL,
                    PrimitiveValue::from(length),
                ));
            }
            object.put(DataElement::new(
                tags::BURNED_IN_ANNOTATION,
                VR::CS,
                PrimitiveValue::from("NO"),
            ));
        }
        object.put(DataElement::new(
            tags::PATIENT_IDENTITY_REMOVED,
            VR::CS,
            PrimitiveValue::from("YES"),
        ));
        object.put(DataElement::new(
            tags::DEIDENTIFICATION_METHOD,
            VR::LO,
            PrimitiveValue::from(self.options.method()),
        ));
        let items: Vec<InMemDicomObject> = self
            .options
            .codes()
            .into_iter()
            .map(|(value, meaning)| {
                InMemDicomObject::from_element_iter([
                    DataElement::new(tags::CODE_VALUE, VR::SH, PrimitiveValue::from(value)),
                    DataElement::new(
                        tags::CODING_SCHEME_DESIGNATOR,
                        VR::SH,
                        PrimitiveValue::from("DCM"),
                    ),
                    DataElement::new(tags::CODE_MEANING, VR::LO, PrimitiveValue::from(meaning)),
                ])
            })
            .collect();
        object.put(DataElement::new(
            tags::DEIDENTIFICATION_METHOD_CODE_SEQUENCE,
            VR::SQ,
            Value::from(DataSetSequence::new(items, Length::UNDEFINED)),
        ));
        let temporal = if self.options.retain_modified_dates {
            "MODIFIED"
        } else {
            "REMOVED"
        };
        object.put(DataElement::new(
            tags::LONGITUDINAL_TEMPORAL_INFORMATION_MODIFIED,
            VR::CS,
            PrimitiveValue::from(temporal),
        ));
    }
}

fn empty(tag: Tag, vr: VR) -> dicom_object::mem::InMemElement {
    if vr == VR::SQ {
        return DataElement::new(
            tag,
            VR::SQ,
            Value::from(DataSetSequence::<InMemDicomObject>::new(
                Vec::new(),
                Length::UNDEFINED,
            )),
        );
    }
    DataElement::new(tag, vr, PrimitiveValue::Empty)
}

/// Free text is kept only if it holds none of the instance's identifying
/// values and no word longer than three characters with a digit in it (a
/// date, an ID, an accession or phone number; `T2` and `3D` are fine).
fn is_clean(text: &str, identifying: &[String]) -> bool {
    let coded = text
        .split(|c: char| !c.is_alphanumeric())
        .any(|word| word.chars().count() > 3 && word.chars().any(|c| c.is_ascii_digit()));
    !coded
        && !identifying
            .iter()
            .any(|value| text.contains(value.as_str()))
}

/// `YYYYMMDD…` with its date moved back `days`; the rest of a DT kept.
fn shift_date(value: &str, days: i64) -> Option<String> {
    if value.is_empty() {
        return Some(String::new());
    }
    if value.len() < 8 || !value.is_char_boundary(8) {
        return None;
    }
    let (date, rest) = value.split_at(8);
    let year: i64 = date[..4].parse().ok()?;
    let month: i64 = date[4..6].parse().ok()?;
    let day: i64 = date[6..8].parse().ok()?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let (y, m, d) = civil_from_days(days_from_civil(year, month, day) - days);
    if !(1..=9999).contains(&y) {
        return None;
    }
    Some(format!("{y:04}{m:02}{d:02}{rest}"))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_shift_across_months_years_and_leap_days() {
        assert_eq!(shift_date("20240301", 1).as_deref(), Some("20240229"));
        assert_eq!(shift_date("20230101", 1).as_deref(), Some("20221231"));
        assert_eq!(
            shift_date("20200315103000.5+0100", 366).as_deref(),
            Some("20190315103000.5+0100")
        );
        assert_eq!(shift_date("2020", 3), None);
        assert_eq!(shift_date("20201340", 3), None);
    }

    #[test]
    fn uids_and_pseudonyms_are_deterministic_per_key() {
        let a = Deidentifier::new(b"key one", ProfileOptions::default());
        let b = Deidentifier::new(b"key two", ProfileOptions::default());
        assert_eq!(a.uid("1.2.3"), a.uid("1.2.3"));
        assert_ne!(a.uid("1.2.3"), a.uid("1.2.4"));
        assert_ne!(a.uid("1.2.3"), b.uid("1.2.3"));
        assert!(a.uid("1.2.3").starts_with("2.25."));
        assert!(a.uid("1.2.3").len() <= 64);
        assert_eq!(a.pseudonym("PAT-1"), a.pseudonym("PAT-1 "));
        assert_ne!(a.pseudonym("PAT-1"), b.pseudonym("PAT-1"));
        let shift = a.date_shift_days("PAT-1");
        assert!((1..=3650).contains(&shift));
    }

    #[test]
    fn free_text_with_identifying_values_or_digit_runs_is_not_clean() {
        let identifying = vec!["doe".to_owned(), "acc123".to_owned()];
        assert!(is_clean("ct chest with contrast", &identifying));
        assert!(is_clean("mr brain t2 flair 3d", &identifying));
        assert!(!is_clean("phi-300a00c3", &identifying));
        assert!(!is_clean("ct chest for jane doe", &identifying));
        assert!(!is_clean("follow-up of 2024-03-01", &identifying));
        assert!(!is_clean("call 5551234", &identifying));
    }
}
