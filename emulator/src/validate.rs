//! The constraints of the HealthImaging model, enforced on every request.
//!
//! The SDKs validate almost nothing (the Rust SDK only checks required
//! members), so a request that breaks a length, pattern, range or enum
//! constraint reaches the service and must get a `ValidationException` whose
//! message names the member. Patterns are the model's own regular expressions;
//! the model does not anchor them, and the service matches the whole value,
//! so they are compiled anchored (`^(?:…)$`).

use std::sync::LazyLock;

use regex::Regex;

use crate::error::{ApiError, ApiResult};

/// A model pattern, compiled on first use.
pub struct Pattern {
    source: &'static str,
    compiled: LazyLock<Regex>,
}

impl Pattern {
    /// The pattern `source`, exactly as the model writes it.
    const fn new(source: &'static str, compile: fn() -> Regex) -> Self {
        Self {
            source,
            compiled: LazyLock::new(compile),
        }
    }

    /// Whether `value` matches the whole pattern.
    pub fn matches(&self, value: &str) -> bool {
        self.compiled.is_match(value)
    }

    /// The pattern as the model writes it, for error messages.
    pub fn source(&self) -> &'static str {
        self.source
    }
}

/// Declares a model pattern: the regex is the anchored form of the source.
macro_rules! model_pattern {
    ($(#[$doc:meta])* $name:ident = $source:literal) => {
        $(#[$doc])*
        pub static $name: Pattern = Pattern::new($source, || {
            Regex::new(concat!("^(?:", $source, ")$")).expect("model patterns compile")
        });
    };
}

model_pattern!(
    /// `DatastoreId`, `ImageSetId`, `ImageFrameId`.
    RESOURCE_ID = "[0-9a-z]{32}"
);
model_pattern!(
    /// `DatastoreName`.
    DATASTORE_NAME = "[A-Za-z0-9._/#-]+"
);
model_pattern!(
    /// `ClientToken`.
    CLIENT_TOKEN = "[A-Za-z0-9._-]+"
);
model_pattern!(
    /// `KmsKeyArn`: a KMS key or alias ARN.
    KMS_KEY_ARN = r"arn:aws[a-zA-Z-]{0,16}:kms:[a-z]{2}(-[a-z]{1,16}){1,3}-\d{1}:\d{12}:((key/[a-fA-F0-9]{8}-[a-fA-F0-9]{4}-[a-fA-F0-9]{4}-[a-fA-F0-9]{4}-[a-fA-F0-9]{12})|(alias/[a-zA-Z0-9:/_-]{1,256}))"
);
model_pattern!(
    /// `LambdaArn`. Note `9-_` in the model's classes is a range, kept as is.
    LAMBDA_ARN = r"arn:(aws[a-zA-Z-]*)?:lambda:[a-z]{2}((-gov)|(-iso(b?)))?-[a-z]+-\d{1}:\d{12}:function:[a-zA-Z0-9-_]+(:(\$LATEST|[a-zA-Z0-9-_]+))?"
);
model_pattern!(
    /// `Arn`: a datastore or image set ARN.
    RESOURCE_ARN = r"arn:aws((-us-gov)|(-iso)|(-iso-b)|(-cn))?:medical-imaging:[a-z0-9-]+:[0-9]{12}:datastore/[0-9a-z]{32}(/imageset/[0-9a-z]{32})?"
);
model_pattern!(
    /// `TagKey` without its `(?!aws:)` look-ahead, which [`tag_key`] checks.
    /// `+-=` in the class is the range `+` to `=`, which admits digits.
    TAG_KEY = "[a-zA-Z+-=._:/]+"
);
model_pattern!(
    /// `NextToken`: the model's `\p{ASCII}{0,8192}`, written as a byte range
    /// so that it needs none of the regex crate's Unicode tables.
    NEXT_TOKEN = r"[\x00-\x7F]{0,8192}"
);

model_pattern!(
    /// `JobName`.
    JOB_NAME = "[A-Za-z0-9._/#-]+"
);
model_pattern!(
    /// `RoleArn`.
    ROLE_ARN = "arn:aws(-[^:]+)?:iam::[0-9]{12}:role/.+"
);
model_pattern!(
    /// `S3Uri`.
    S3_URI = r"s3://[a-z0-9][\.\-a-z0-9]{1,61}[a-z0-9](/.*)?"
);
model_pattern!(
    /// `AwsAccountId`.
    ACCOUNT_ID = "[0-9]{12}"
);
model_pattern!(
    /// `JobId`.
    JOB_ID = "[0-9a-z]{1,32}"
);
model_pattern!(
    /// `ImageSetExternalVersionId`: version IDs.
    VERSION_ID = r"\d+"
);
model_pattern!(
    /// `DicomMetadataMapping.metadataFilePath`.
    METADATA_FILE_PATH = "[a-zA-Z0-9!-~]+([a-zA-Z0-9!-~ ]*[a-zA-Z0-9!-~]+)*"
);
model_pattern!(
    /// `DicomMetadataMapping.studyInstanceUID` and `seriesInstanceUID`.
    MAPPING_UID = "[0-9.]+"
);

/// Every violation of a request's members, reported together as the
/// service reports them: `2 validation errors detected: Value at 'a' failed
/// to satisfy constraint: …; Value at 'b' failed …`.
#[derive(Debug, Default)]
pub struct Violations(Vec<String>);

const ONE_VIOLATION: &str = "1 validation error detected: ";

impl Violations {
    /// The value of `result`, or `None` with its violation recorded; an
    /// error that is not a violation is answered at once.
    pub fn check<T>(&mut self, result: ApiResult<T>) -> ApiResult<Option<T>> {
        match result {
            Ok(value) => Ok(Some(value)),
            Err(error) if error.code == crate::error::ErrorCode::Validation => {
                let text = match error.message.strip_prefix(ONE_VIOLATION) {
                    Some(violation) => violation.to_owned(),
                    None => error.message,
                };
                self.0.push(text);
                Ok(None)
            }
            Err(error) => Err(error),
        }
    }

    /// `Ok` when nothing was violated, else one `ValidationException`
    /// listing every violation.
    pub fn finish(self) -> ApiResult<()> {
        match self.0.as_slice() {
            [] => Ok(()),
            [one] => Err(ApiError::new(
                crate::error::ErrorCode::Validation,
                format!("{ONE_VIOLATION}{one}"),
            )),
            many => Err(ApiError::new(
                crate::error::ErrorCode::Validation,
                format!(
                    "{} validation errors detected: {}",
                    many.len(),
                    many.join("; ")
                ),
            )),
        }
    }
}

/// Compiles every model pattern now, so that a pattern the regex engine
/// cannot build fails when the emulator starts, never during a request.
pub fn compile_all() {
    for pattern in [
        &RESOURCE_ID,
        &DATASTORE_NAME,
        &CLIENT_TOKEN,
        &KMS_KEY_ARN,
        &LAMBDA_ARN,
        &RESOURCE_ARN,
        &TAG_KEY,
        &NEXT_TOKEN,
        &JOB_NAME,
        &ROLE_ARN,
        &S3_URI,
        &ACCOUNT_ID,
        &JOB_ID,
        &VERSION_ID,
        &METADATA_FILE_PATH,
        &MAPPING_UID,
    ] {
        LazyLock::force(&pattern.compiled);
    }
}

/// Checks that `value` has between `min` and `max` characters.
pub fn length(field: &str, value: &str, min: usize, max: usize) -> ApiResult<()> {
    let chars = value.chars().count();
    if chars < min {
        return Err(ApiError::validation(
            field,
            format!("Member must have length greater than or equal to {min}"),
        ));
    }
    if chars > max {
        return Err(ApiError::validation(
            field,
            format!("Member must have length less than or equal to {max}"),
        ));
    }
    Ok(())
}

/// Checks that `value` matches `pattern` as a whole.
pub fn pattern(field: &str, value: &str, pattern: &Pattern) -> ApiResult<()> {
    if pattern.matches(value) {
        Ok(())
    } else {
        Err(ApiError::validation(
            field,
            format!(
                "Member must satisfy regular expression pattern: {}",
                pattern.source()
            ),
        ))
    }
}

/// Checks a string member against its length range and pattern.
pub fn string(field: &str, value: &str, min: usize, max: usize, p: &Pattern) -> ApiResult<()> {
    length(field, value, min, max)?;
    pattern(field, value, p)
}

/// Checks that `value` lies in `min..=max`.
pub fn range(field: &str, value: i64, min: i64, max: i64) -> ApiResult<()> {
    if value < min {
        return Err(ApiError::validation(
            field,
            format!("Member must have value greater than or equal to {min}"),
        ));
    }
    if value > max {
        return Err(ApiError::validation(
            field,
            format!("Member must have value less than or equal to {max}"),
        ));
    }
    Ok(())
}

/// Checks a resource identifier (`datastoreId`, `imageSetId`, …).
pub fn resource_id(field: &str, value: &str) -> ApiResult<()> {
    pattern(field, value, &RESOURCE_ID)
}

/// Checks a tag key: 1–128 characters of the model's class, not `aws:`-prefixed.
pub fn tag_key(field: &str, key: &str) -> ApiResult<()> {
    string(field, key, 1, 128, &TAG_KEY)?;
    if key.starts_with("aws:") {
        return Err(ApiError::validation(
            field,
            "Member must satisfy regular expression pattern: (?!aws:)[a-zA-Z+-=._:/]+ (the aws: prefix is reserved)",
        ));
    }
    Ok(())
}

/// Checks a tag value: 0–256 characters.
pub fn tag_value(field: &str, value: &str) -> ApiResult<()> {
    length(field, value, 0, 256)
}

/// Parses an enum member from its wire name.
pub fn enumeration<T: Copy>(field: &str, value: &str, variants: &[(&str, T)]) -> ApiResult<T> {
    variants
        .iter()
        .find(|(name, _)| *name == value)
        .map(|(_, variant)| *variant)
        .ok_or_else(|| {
            let names: Vec<&str> = variants.iter().map(|(name, _)| *name).collect();
            ApiError::validation(
                field,
                format!("Member must satisfy enum value set: [{}]", names.join(", ")),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pattern_compiles_and_next_tokens_are_ascii() {
        compile_all();
        assert!(NEXT_TOKEN.matches("4c697374"));
        assert!(!NEXT_TOKEN.matches("é"));
        assert!(!NEXT_TOKEN.matches(&"a".repeat(8193)));
    }

    #[test]
    fn patterns_match_whole_values_only() {
        assert!(RESOURCE_ID.matches("0123456789abcdef0123456789abcdef"));
        assert!(!RESOURCE_ID.matches("0123456789abcdef0123456789abcdef0"));
        assert!(!RESOURCE_ID.matches("0123456789ABCDEF0123456789abcdef"));
        assert!(DATASTORE_NAME.matches("my-store_1.2/#x"));
        assert!(!DATASTORE_NAME.matches("has space"));
    }

    #[test]
    fn tag_keys_follow_the_model_class_and_reserve_aws_prefix() {
        assert!(tag_key("tags", "Project-7").is_ok());
        assert!(tag_key("tags", "cost:center/a=b").is_ok());
        assert!(tag_key("tags", "has space").is_err());
        assert!(tag_key("tags", "aws:reserved").is_err());
        assert!(tag_key("tags", "").is_err());
        assert!(tag_key("tags", &"k".repeat(129)).is_err());
    }

    #[test]
    fn arns_cover_datastores_and_image_sets() {
        let ds = "arn:aws:medical-imaging:us-east-1:123456789012:datastore/0123456789abcdef0123456789abcdef";
        assert!(RESOURCE_ARN.matches(ds));
        assert!(RESOURCE_ARN.matches(&format!("{ds}/imageset/0123456789abcdef0123456789abcdef")));
        assert!(!RESOURCE_ARN.matches(&format!("{ds}/imageSet/0123456789abcdef0123456789abcdef")));
    }

    #[test]
    fn kms_and_lambda_arns() {
        assert!(KMS_KEY_ARN.matches(
            "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
        ));
        assert!(KMS_KEY_ARN.matches("arn:aws:kms:eu-west-2:123456789012:alias/imaging"));
        assert!(!KMS_KEY_ARN.matches("arn:aws:kms:us-east-1:123456789012:key/short"));
        assert!(LAMBDA_ARN.matches("arn:aws:lambda:us-east-1:123456789012:function:authorizer"));
        assert!(!LAMBDA_ARN.matches("arn:aws:lambda:us-east-1:1234:function:authorizer"));
    }

    #[test]
    fn ranges_and_lengths_name_the_bound() {
        let error = range("maxResults", 51, 1, 50).unwrap_err();
        assert!(error.message.contains("less than or equal to 50"));
        assert!(error.message.contains("'maxResults'"));
        let error = length("datastoreName", "", 1, 256).unwrap_err();
        assert!(error.message.contains("greater than or equal to 1"));
    }
}
