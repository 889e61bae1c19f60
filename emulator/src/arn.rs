//! Amazon Resource Names of HealthImaging resources.
//!
//! `arn:aws:medical-imaging:{region}:{account}:datastore/{datastoreId}` and
//! `…/imageset/{imageSetId}` (lowercase `imageset`). Tag operations carry the
//! ARN as one percent-encoded path segment.

use crate::error::{ApiError, ApiResult};
use crate::validate;

/// The resource a valid ARN names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResourceArn {
    /// A datastore.
    Datastore {
        /// The ARN's region.
        region: String,
        /// The ARN's account.
        account: String,
        /// The datastore ID.
        datastore_id: String,
    },
    /// An image set inside a datastore.
    ImageSet {
        /// The ARN's region.
        region: String,
        /// The ARN's account.
        account: String,
        /// The datastore ID.
        datastore_id: String,
        /// The image set ID.
        image_set_id: String,
    },
}

impl ResourceArn {
    /// Parses and validates `arn` (the `resourceArn` member).
    pub fn parse(arn: &str) -> ApiResult<Self> {
        validate::pattern("resourceArn", arn, &validate::RESOURCE_ARN)?;
        // The pattern guarantees six colon-separated fields and the resource shape.
        let fields: Vec<&str> = arn.splitn(6, ':').collect();
        let (region, account, resource) = (fields[3], fields[4], fields[5]);
        let parts: Vec<&str> = resource.split('/').collect();
        let datastore_id = parts[1].to_owned();
        Ok(match parts.get(3) {
            Some(image_set_id) => ResourceArn::ImageSet {
                region: region.to_owned(),
                account: account.to_owned(),
                datastore_id,
                image_set_id: (*image_set_id).to_owned(),
            },
            None => ResourceArn::Datastore {
                region: region.to_owned(),
                account: account.to_owned(),
                datastore_id,
            },
        })
    }

    /// Fails with `ResourceNotFoundException` unless the ARN is in `region`
    /// and `account` and the partition of `region`: resources of other
    /// partitions, accounts or regions are not here.
    pub fn ensure_local(&self, region: &str, account: &str, arn: &str) -> ApiResult<()> {
        let (r, a) = match self {
            ResourceArn::Datastore {
                region, account, ..
            }
            | ResourceArn::ImageSet {
                region, account, ..
            } => (region, account),
        };
        let partition = arn.split(':').nth(1).unwrap_or_default();
        if r == region && a == account && partition == partition_of(region) {
            Ok(())
        } else {
            Err(ApiError::not_found(format!("Resource {arn} not found")))
        }
    }
}

/// The partition a region belongs to (`aws-cn` for `cn-…`, `aws-us-gov`
/// for `us-gov-…`, `aws-iso` for `us-iso-…`, `aws-iso-b` for
/// `us-isob-…`, `aws` otherwise).
pub fn partition_of(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else if region.starts_with("us-isob-") {
        "aws-iso-b"
    } else if region.starts_with("us-iso-") {
        "aws-iso"
    } else {
        "aws"
    }
}

/// The ARN of a datastore.
pub fn datastore(region: &str, account: &str, datastore_id: &str) -> String {
    let partition = partition_of(region);
    format!("arn:{partition}:medical-imaging:{region}:{account}:datastore/{datastore_id}")
}

/// The ARN of an image set.
pub fn image_set(region: &str, account: &str, datastore_id: &str, image_set_id: &str) -> String {
    format!(
        "{}/imageset/{image_set_id}",
        datastore(region, account, datastore_id)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const DS: &str = "0123456789abcdef0123456789abcdef";
    const IS: &str = "fedcba9876543210fedcba9876543210";

    #[test]
    fn parses_datastore_and_image_set_arns() {
        let arn = datastore("us-east-1", "123456789012", DS);
        assert_eq!(
            ResourceArn::parse(&arn).unwrap(),
            ResourceArn::Datastore {
                region: "us-east-1".into(),
                account: "123456789012".into(),
                datastore_id: DS.into()
            }
        );
        let parsed = ResourceArn::parse(&format!("{arn}/imageset/{IS}")).unwrap();
        assert!(matches!(parsed, ResourceArn::ImageSet { image_set_id, .. } if image_set_id == IS));
    }

    #[test]
    fn rejects_malformed_arns_and_foreign_accounts() {
        assert!(ResourceArn::parse("arn:aws:s3:::bucket").is_err());
        let arn = datastore("eu-west-1", "123456789012", DS);
        let parsed = ResourceArn::parse(&arn).unwrap();
        assert!(
            parsed
                .ensure_local("us-east-1", "123456789012", &arn)
                .is_err()
        );
        assert!(
            parsed
                .ensure_local("eu-west-1", "123456789012", &arn)
                .is_ok()
        );
    }

    #[test]
    fn other_partitions_do_not_reach_local_resources() {
        let local = datastore("us-east-1", "123456789012", DS);
        for foreign in [
            local.replace("arn:aws:", "arn:aws-cn:"),
            local.replace("arn:aws:", "arn:aws-us-gov:"),
            local.replace("arn:aws:", "arn:aws-iso:"),
            local.replace("arn:aws:", "arn:aws-iso-b:"),
        ] {
            let parsed = ResourceArn::parse(&foreign).expect("a valid ARN of the model");
            assert!(
                parsed
                    .ensure_local("us-east-1", "123456789012", &foreign)
                    .is_err(),
                "{foreign}"
            );
        }
        let china = datastore("cn-north-1", "123456789012", DS);
        assert!(china.starts_with("arn:aws-cn:medical-imaging:cn-north-1:"));
        assert!(
            ResourceArn::parse(&china)
                .unwrap()
                .ensure_local("cn-north-1", "123456789012", &china)
                .is_ok()
        );
    }
}
