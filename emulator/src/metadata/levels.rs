//! Which level of the metadata document an attribute belongs to.
//!
//! HealthImaging hoists the attributes of the Patient module to `Patient`,
//! of the General Study and Patient Study modules to `Study`, and of the
//! General Series, Frame of Reference and General Equipment modules to the
//! series (observed: a real document holds `FrameOfReferenceUID`,
//! `Manufacturer` and `SoftwareVersions` at series level). Everything else,
//! file meta information included, stays with the instance.

use dicom_core::Tag;
use dicom_dictionary_std::tags as t;

/// A level of the metadata document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// `Patient.DICOM`.
    Patient,
    /// `Study.DICOM`.
    Study,
    /// `Study.Series.<uid>.DICOM`.
    Series,
    /// `…Instances.<uid>.DICOM`.
    Instance,
}

const PATIENT: &[Tag] = &[
    t::PATIENT_NAME,
    t::PATIENT_ID,
    t::ISSUER_OF_PATIENT_ID,
    t::ISSUER_OF_PATIENT_ID_QUALIFIERS_SEQUENCE,
    t::TYPE_OF_PATIENT_ID,
    t::PATIENT_BIRTH_DATE,
    t::PATIENT_BIRTH_TIME,
    t::PATIENT_SEX,
    t::QUALITY_CONTROL_SUBJECT,
    t::REFERENCED_PATIENT_SEQUENCE,
    t::REFERENCED_PATIENT_PHOTO_SEQUENCE,
    t::OTHER_PATIENT_I_DS_SEQUENCE,
    t::OTHER_PATIENT_NAMES,
    // EthnicGroup: retired in the current standard, still common in files.
    Tag(0x0010, 0x2160),
    t::PATIENT_COMMENTS,
    t::PATIENT_SPECIES_DESCRIPTION,
    t::PATIENT_SPECIES_CODE_SEQUENCE,
    t::PATIENT_BREED_DESCRIPTION,
    t::PATIENT_BREED_CODE_SEQUENCE,
    t::BREED_REGISTRATION_SEQUENCE,
    t::RESPONSIBLE_PERSON,
    t::RESPONSIBLE_PERSON_ROLE,
    t::RESPONSIBLE_ORGANIZATION,
    t::PATIENT_IDENTITY_REMOVED,
    t::DEIDENTIFICATION_METHOD,
    t::DEIDENTIFICATION_METHOD_CODE_SEQUENCE,
];

const STUDY: &[Tag] = &[
    // General Study
    t::STUDY_INSTANCE_UID,
    t::STUDY_DATE,
    t::STUDY_TIME,
    t::REFERRING_PHYSICIAN_NAME,
    t::REFERRING_PHYSICIAN_IDENTIFICATION_SEQUENCE,
    t::CONSULTING_PHYSICIAN_NAME,
    t::CONSULTING_PHYSICIAN_IDENTIFICATION_SEQUENCE,
    t::STUDY_ID,
    t::ACCESSION_NUMBER,
    t::ISSUER_OF_ACCESSION_NUMBER_SEQUENCE,
    t::STUDY_DESCRIPTION,
    t::PHYSICIANS_OF_RECORD,
    t::PHYSICIANS_OF_RECORD_IDENTIFICATION_SEQUENCE,
    t::NAME_OF_PHYSICIANS_READING_STUDY,
    t::PHYSICIANS_READING_STUDY_IDENTIFICATION_SEQUENCE,
    t::REQUESTING_SERVICE_CODE_SEQUENCE,
    t::REFERENCED_STUDY_SEQUENCE,
    t::PROCEDURE_CODE_SEQUENCE,
    t::REASON_FOR_PERFORMED_PROCEDURE_CODE_SEQUENCE,
    // Patient Study
    t::ADMITTING_DIAGNOSES_DESCRIPTION,
    t::ADMITTING_DIAGNOSES_CODE_SEQUENCE,
    t::PATIENT_AGE,
    t::PATIENT_SIZE,
    t::PATIENT_WEIGHT,
    t::PATIENT_BODY_MASS_INDEX,
    t::MEDICAL_ALERTS,
    t::ALLERGIES,
    t::SMOKING_STATUS,
    t::PREGNANCY_STATUS,
    t::LAST_MENSTRUAL_DATE,
    t::PATIENT_STATE,
    t::ADMISSION_ID,
    t::OCCUPATION,
    t::ADDITIONAL_PATIENT_HISTORY,
    t::PATIENT_SEX_NEUTERED,
    t::REASON_FOR_VISIT,
];

const SERIES: &[Tag] = &[
    // General Series
    t::MODALITY,
    t::SERIES_INSTANCE_UID,
    t::SERIES_NUMBER,
    t::LATERALITY,
    t::SERIES_DATE,
    t::SERIES_TIME,
    t::PERFORMING_PHYSICIAN_NAME,
    t::PERFORMING_PHYSICIAN_IDENTIFICATION_SEQUENCE,
    t::PROTOCOL_NAME,
    t::SERIES_DESCRIPTION,
    t::SERIES_DESCRIPTION_CODE_SEQUENCE,
    t::OPERATORS_NAME,
    t::OPERATOR_IDENTIFICATION_SEQUENCE,
    t::REFERENCED_PERFORMED_PROCEDURE_STEP_SEQUENCE,
    t::RELATED_SERIES_SEQUENCE,
    t::BODY_PART_EXAMINED,
    t::PATIENT_POSITION,
    t::SMALLEST_PIXEL_VALUE_IN_SERIES,
    t::LARGEST_PIXEL_VALUE_IN_SERIES,
    t::REQUEST_ATTRIBUTES_SEQUENCE,
    t::PERFORMED_PROCEDURE_STEP_ID,
    t::PERFORMED_PROCEDURE_STEP_START_DATE,
    t::PERFORMED_PROCEDURE_STEP_START_TIME,
    t::PERFORMED_PROCEDURE_STEP_DESCRIPTION,
    t::PERFORMED_PROTOCOL_CODE_SEQUENCE,
    t::COMMENTS_ON_THE_PERFORMED_PROCEDURE_STEP,
    t::ANATOMICAL_ORIENTATION_TYPE,
    // Frame of Reference
    t::FRAME_OF_REFERENCE_UID,
    t::POSITION_REFERENCE_INDICATOR,
    // General Equipment
    t::MANUFACTURER,
    t::INSTITUTION_NAME,
    t::INSTITUTION_ADDRESS,
    t::STATION_NAME,
    t::INSTITUTIONAL_DEPARTMENT_NAME,
    t::MANUFACTURER_MODEL_NAME,
    t::DEVICE_SERIAL_NUMBER,
    t::SOFTWARE_VERSIONS,
    t::GANTRY_ID,
    t::DEVICE_UID,
    t::SPATIAL_RESOLUTION,
    t::DATE_OF_LAST_CALIBRATION,
    t::TIME_OF_LAST_CALIBRATION,
    t::PIXEL_PADDING_VALUE,
];

/// The level of `tag`: a binary search of the listed attributes, sorted
/// once (every element of every imported instance asks).
pub fn level(tag: Tag) -> Level {
    static SORTED: std::sync::OnceLock<Vec<(Tag, Level)>> = std::sync::OnceLock::new();
    let sorted = SORTED.get_or_init(|| {
        let mut all: Vec<(Tag, Level)> = Vec::new();
        // The first list naming a tag decides, as the lists are read in order.
        for (tags, level) in [
            (PATIENT, Level::Patient),
            (STUDY, Level::Study),
            (SERIES, Level::Series),
        ] {
            for &tag in tags {
                if !all.iter().any(|(listed, _)| *listed == tag) {
                    all.push((tag, level));
                }
            }
        }
        all.sort_by_key(|(tag, _)| *tag);
        all
    });
    sorted
        .binary_search_by_key(&tag, |(listed, _)| *listed)
        .map_or(Level::Instance, |found| sorted[found].1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_search_agrees_with_the_lists() {
        let linear = |tag: Tag| {
            if PATIENT.contains(&tag) {
                Level::Patient
            } else if STUDY.contains(&tag) {
                Level::Study
            } else if SERIES.contains(&tag) {
                Level::Series
            } else {
                Level::Instance
            }
        };
        for group in [
            0x0002, 0x0008, 0x0010, 0x0018, 0x0020, 0x0028, 0x0032, 0x0040,
        ] {
            for element in 0..=0xffff {
                let tag = Tag(group, element);
                assert_eq!(level(tag), linear(tag), "{tag}");
            }
        }
    }

    #[test]
    fn levels_follow_the_modules() {
        assert_eq!(level(t::PATIENT_NAME), Level::Patient);
        assert_eq!(level(t::PATIENT_IDENTITY_REMOVED), Level::Patient);
        assert_eq!(level(t::ACCESSION_NUMBER), Level::Study);
        assert_eq!(level(t::PATIENT_AGE), Level::Study);
        assert_eq!(level(t::FRAME_OF_REFERENCE_UID), Level::Series);
        assert_eq!(level(t::SOFTWARE_VERSIONS), Level::Series);
        assert_eq!(level(t::SOP_INSTANCE_UID), Level::Instance);
        assert_eq!(level(t::TRANSFER_SYNTAX_UID), Level::Instance);
        assert_eq!(level(t::IMAGE_POSITION_PATIENT), Level::Instance);
    }
}
