//! Tool argument types that validate themselves as they are deserialized.
//!
//! An identifier that reaches a tool body is already known to be well formed:
//! a malformed one fails deserialization, which rmcp reports to the assistant
//! as a tool error naming the argument. Each type's JSON Schema carries the
//! same pattern, so the assistant sees the rule before it calls.

use std::borrow::Cow;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize};

/// Declares a string newtype checked by `$check`, with a schema of
/// `$pattern`; `$description` explains a refusal.
macro_rules! checked_string {
    ($(#[$doc:meta])* $name:ident, $pattern:literal, $description:literal, $check:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Checks `value` and wraps it.
            pub fn parse(value: &str) -> Result<Self, String> {
                let check: fn(&str) -> bool = $check;
                if check(value) {
                    Ok(Self(value.to_owned()))
                } else {
                    Err(format!(
                        "{:?} is not a valid {}: {}",
                        value,
                        stringify!($name),
                        $description
                    ))
                }
            }

            /// The validated string.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;

            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(deserializer)?;
                Self::parse(&raw).map_err(serde::de::Error::custom)
            }
        }

        impl JsonSchema for $name {
            fn schema_name() -> Cow<'static, str> {
                stringify!($name).into()
            }

            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                // The description stays in errors: each argument's own
                // words describe it in the schema.
                json_schema!({
                    "type": "string",
                    "pattern": $pattern,
                })
            }
        }
    };
}

fn resource_id_ok(value: &str) -> bool {
    value.len() == 32
        && value
            .bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
}

checked_string!(
    /// A datastore ID: 32 lowercase letters and digits.
    DatastoreId,
    "^[0-9a-z]{32}$",
    "32 lowercase letters or digits, the datastoreId returned by list_datastores or create_datastore",
    resource_id_ok
);

checked_string!(
    /// An image set ID: 32 lowercase letters and digits.
    ImageSetId,
    "^[0-9a-z]{32}$",
    "32 lowercase letters or digits, the image_set_id returned by search_image_sets or another search tool",
    resource_id_ok
);

checked_string!(
    /// An image frame ID: 32 lowercase letters and digits.
    ImageFrameId,
    "^[0-9a-z]{32}$",
    "32 lowercase letters or digits, an ImageFrames[].ID from get_image_set_metadata",
    resource_id_ok
);

checked_string!(
    /// An image set version ID: decimal digits.
    VersionId,
    "^[0-9]{1,10}$",
    "a version number such as \"1\", from get_image_set or list_image_set_versions",
    |v| (1..=10).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_digit())
);

checked_string!(
    /// A DICOM UID: 1–64 digits and dots (PS3.5 §9).
    DicomUid,
    "^[0-9.]{1,64}$",
    "a DICOM UID (digits and dots), as search results and get_image_set_metadata show it",
    |v| (1..=64).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_digit() || b == b'.')
);

checked_string!(
    /// An S3 location.
    S3Uri,
    "^s3://[a-z0-9][.a-z0-9-]{1,61}[a-z0-9](/.*)?$",
    "an S3 URI, s3://bucket/prefix/",
    |v| {
        let Some(rest) = v.strip_prefix("s3://") else {
            return false;
        };
        let bucket = rest.split('/').next().unwrap_or_default();
        v.len() <= 1024
            && (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
            && !bucket.starts_with(['.', '-'])
            && !bucket.ends_with(['.', '-'])
    }
);

checked_string!(
    /// An IAM role ARN.
    RoleArn,
    "^arn:aws(-[^:]+)?:iam::[0-9]{12}:role/.+$",
    "an IAM role ARN, arn:aws:iam::ACCOUNT:role/NAME, that HealthImaging assumes to read the input and write the output",
    |v| {
        let Some((head, rest)) = v.split_once(":iam::") else {
            return false;
        };
        let partition_ok = head == "arn:aws"
            || head
                .strip_prefix("arn:aws-")
                .is_some_and(|p| !p.is_empty() && !p.contains(':'));
        let (account, role) = rest.split_once(":role/").unwrap_or(("", ""));
        partition_ok
            && (20..=2048).contains(&v.len())
            && account.len() == 12
            && account.bytes().all(|b| b.is_ascii_digit())
            && !role.is_empty()
    }
);

checked_string!(
    /// A datastore name as the model allows it.
    DatastoreName,
    "^[A-Za-z0-9._/#-]{1,256}$",
    "1 to 256 characters: letters, digits and . _ / # -",
    |v| {
        (1..=256).contains(&v.len())
            && v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._/#-".contains(&b))
    }
);

checked_string!(
    /// An idempotency token for a create call.
    ClientToken,
    "^[A-Za-z0-9._-]{1,64}$",
    "1 to 64 characters: letters, digits and . _ -",
    |v| {
        (1..=64).contains(&v.len())
            && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    }
);

checked_string!(
    /// The ARN of a datastore or an image set.
    ResourceArn,
    "^arn:aws[a-z-]*:medical-imaging:[!-~]+$",
    "a datastore ARN (the datastoreArn from get_datastore or list_datastores) or an image set ARN (arn:aws:medical-imaging:REGION:ACCOUNT:datastore/DATASTORE_ID/imageset/IMAGE_SET_ID)",
    resource_arn_ok
);

checked_string!(
    /// A tag key: 1–128 characters, not starting with `aws:`.
    TagKey,
    "^(?!aws:)[a-zA-Z0-9+\\-=._:/]{1,128}$",
    "1 to 128 characters: letters, digits and + - = . _ : / ; the aws: prefix is reserved",
    |v| {
        (1..=128).contains(&v.len())
            && !v.starts_with("aws:")
            && v.bytes()
                .all(|b| b.is_ascii_alphabetic() || (b'+'..=b'=').contains(&b) || b"._:/".contains(&b))
    }
);

/// DICOM text of a VR without backslash or control characters (LO, SH),
/// of 1 to `max` characters.
fn dicom_text_ok(value: &str, max: usize) -> bool {
    (1..=max).contains(&value.chars().count())
        && !value.chars().any(|c| c == '\\' || c.is_control())
}

checked_string!(
    /// A PatientID (LO): 1–64 characters.
    PatientId,
    "^[^\\\\]{1,64}$",
    "a PatientID exactly as stored (1 to 64 characters, case-sensitive), from search results",
    |v| dicom_text_ok(v, 64)
);

checked_string!(
    /// An AccessionNumber or StudyID (SH): 1–16 characters.
    ShortText,
    "^[^\\\\]{1,16}$",
    "1 to 16 characters, as stored",
    |v| dicom_text_ok(v, 16)
);

checked_string!(
    /// An import job ID.
    JobId,
    "^[0-9a-z]{1,32}$",
    "the job_id returned by start_dicom_import_job or list_dicom_import_jobs",
    |v| (1..=32).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
);

checked_string!(
    /// An import job name.
    JobName,
    "^[A-Za-z0-9._/#-]{1,64}$",
    "1 to 64 characters: letters, digits and . _ / # -",
    |v| {
        (1..=64).contains(&v.len())
            && v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._/#-".contains(&b))
    }
);

checked_string!(
    /// A 12-digit AWS account ID.
    AccountId,
    "^[0-9]{12}$",
    "the 12-digit account that owns the input bucket",
    |v| v.len() == 12 && v.bytes().all(|b| b.is_ascii_digit())
);

checked_string!(
    /// A continuation token of a list or search.
    NextToken,
    "^[!-~]{1,8192}$",
    "the next_token of an earlier result of the same call",
    |v| (1..=8192).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_graphic())
);

checked_string!(
    /// A confirmation token of a destructive tool's preview.
    ConfirmationToken,
    "^[A-Za-z0-9_-]{1,128}$",
    "the confirmation_token of this tool's preview, unchanged",
    |v| {
        (1..=128).contains(&v.len())
            && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-".contains(&b))
    }
);

checked_string!(
    /// The ARN of a KMS key or alias, or of a Lambda function.
    ServiceArn,
    "^arn:aws[a-z-]*:[a-z]+:[!-~]{1,480}$",
    "an ARN (arn:aws:kms:REGION:ACCOUNT:key/ID, …:alias/NAME, or arn:aws:lambda:REGION:ACCOUNT:function:NAME)",
    |v| (1..=512).contains(&v.len()) && v.starts_with("arn:aws") && v.bytes().all(|b| b.is_ascii_graphic())
);

fn resource_arn_ok(value: &str) -> bool {
    let fields: Vec<&str> = value.splitn(6, ':').collect();
    let [arn, partition, service, region, account, resource] = fields.as_slice() else {
        return false;
    };
    let parts: Vec<&str> = resource.split('/').collect();
    let resource_ok = match parts.as_slice() {
        ["datastore", ds] => resource_id_ok(ds),
        ["datastore", ds, "imageset", set] => resource_id_ok(ds) && resource_id_ok(set),
        _ => false,
    };
    *arn == "arn"
        && partition.starts_with("aws")
        && *service == "medical-imaging"
        && !region.is_empty()
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit())
        && resource_ok
}

/// A tag value: at most 256 characters.
pub fn tag_value_ok(value: &str) -> bool {
    value.chars().count() <= 256
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_checked_when_deserialized() {
        let ok: DatastoreId = serde_json::from_str("\"0123456789abcdef0123456789abcdef\"").unwrap();
        assert_eq!(ok.as_str().len(), 32);
        let error = serde_json::from_str::<DatastoreId>("\"ABC\"")
            .unwrap_err()
            .to_string();
        assert!(error.contains("not a valid DatastoreId"), "{error}");
    }

    #[test]
    fn arns_and_tag_keys() {
        let ds = "arn:aws:medical-imaging:us-east-1:123456789012:datastore/0123456789abcdef0123456789abcdef";
        assert!(ResourceArn::parse(ds).is_ok());
        assert!(
            ResourceArn::parse(&format!("{ds}/imageset/0123456789abcdef0123456789abcdef")).is_ok()
        );
        assert!(ResourceArn::parse("arn:aws:s3:::bucket").is_err());
        assert!(TagKey::parse("project").is_ok());
        assert!(TagKey::parse("aws:x").is_err());
        assert!(TagKey::parse("with space").is_err());
        assert!(tag_value_ok("") && !tag_value_ok(&"v".repeat(257)));
    }

    #[test]
    fn import_arguments() {
        assert!(S3Uri::parse("s3://my-bucket/in/").is_ok());
        assert!(S3Uri::parse("s3://My_Bucket/in/").is_err());
        assert!(S3Uri::parse("https://bucket/x").is_err());
        assert!(RoleArn::parse("arn:aws:iam::123456789012:role/Import").is_ok());
        assert!(RoleArn::parse("arn:aws:iam::1234:role/Import").is_err());
        assert!(VersionId::parse("12").is_ok() && VersionId::parse("v1").is_err());
    }

    #[test]
    fn dicom_text_and_tokens_are_bounded() {
        assert!(PatientId::parse("SYN0001003").is_ok());
        assert!(PatientId::parse(&"x".repeat(64)).is_ok());
        assert!(PatientId::parse(&"x".repeat(65)).is_err());
        assert!(PatientId::parse(&"x".repeat(10_000_000)).is_err());
        assert!(PatientId::parse("a\\b").is_err());
        assert!(PatientId::parse("a\nb").is_err());
        assert!(PatientId::parse("").is_err());
        assert!(ShortText::parse("SYN1234567890123").is_ok());
        assert!(ShortText::parse("SYN12345678901234").is_err());
        assert!(NextToken::parse(&"a".repeat(8193)).is_err());
        assert!(ConfirmationToken::parse("x y").is_err());
        assert!(JobId::parse("0123456789abcdef0123456789abcdef").is_ok());
        assert!(JobName::parse("has space").is_err());
        assert!(ServiceArn::parse("arn:aws:kms:us-east-1:123456789012:key/abc").is_ok());
        assert!(ServiceArn::parse(&format!("arn:aws:kms:{}", "x".repeat(600))).is_err());
    }

    #[test]
    fn schemas_carry_the_pattern() {
        let schema = serde_json::to_value(schemars::schema_for!(DatastoreId)).unwrap();
        assert_eq!(schema["pattern"], "^[0-9a-z]{32}$");
    }
}
