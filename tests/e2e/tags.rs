//! TagResource, ListTagsForResource and UntagResource through the SDK.

use aws_sdk_medicalimaging::error::ProvideErrorMetadata;
use healthimaging_e2e::Fixture;

fn arn(datastore_id: &str) -> String {
    format!("arn:aws:medical-imaging:us-east-1:123456789012:datastore/{datastore_id}")
}

#[tokio::test]
async fn tags_are_added_overwritten_listed_and_removed() {
    let f = Fixture::start(10).await;
    let created = f
        .sdk
        .create_datastore()
        .tags("team", "imaging")
        .send()
        .await
        .unwrap();
    let arn = arn(created.datastore_id());
    f.sdk
        .tag_resource()
        .resource_arn(&arn)
        .tags("team", "radiology")
        .tags("cost-center", "42")
        .tags("spaces are:fine=no/", "value with spaces")
        .send()
        .await
        .expect_err("a key with spaces breaks the model's TagKey pattern");
    f.sdk
        .tag_resource()
        .resource_arn(&arn)
        .tags("team", "radiology")
        .tags("cost-center", "42")
        .send()
        .await
        .unwrap();
    let tags = f
        .sdk
        .list_tags_for_resource()
        .resource_arn(&arn)
        .send()
        .await
        .unwrap();
    assert_eq!(tags.tags().len(), 2);
    assert_eq!(
        tags.tags().get("team").map(String::as_str),
        Some("radiology")
    );

    f.sdk
        .untag_resource()
        .resource_arn(&arn)
        .tag_keys("team")
        .tag_keys("not-there")
        .send()
        .await
        .unwrap();
    let tags = f
        .sdk
        .list_tags_for_resource()
        .resource_arn(&arn)
        .send()
        .await
        .unwrap();
    assert_eq!(tags.tags().keys().collect::<Vec<_>>(), vec!["cost-center"]);
}

#[tokio::test]
async fn unknown_foreign_and_deleted_resources_are_not_found() {
    let f = Fixture::start(10).await;
    let id = f.active_datastore("store").await;
    let missing = [
        arn("0123456789abcdef0123456789abcdef"),
        format!("{}/imageset/0123456789abcdef0123456789abcdef", arn(&id)),
        format!("arn:aws:medical-imaging:eu-west-1:123456789012:datastore/{id}"),
        format!("arn:aws:medical-imaging:us-east-1:999999999999:datastore/{id}"),
    ];
    for arn in &missing {
        let error = f
            .sdk
            .list_tags_for_resource()
            .resource_arn(arn)
            .send()
            .await
            .unwrap_err();
        assert!(
            error.into_service_error().is_resource_not_found_exception(),
            "{arn}"
        );
    }
    f.sdk
        .delete_datastore()
        .datastore_id(&id)
        .send()
        .await
        .unwrap();
    f.settle();
    let error = f
        .sdk
        .tag_resource()
        .resource_arn(arn(&id))
        .tags("k", "v")
        .send()
        .await
        .unwrap_err();
    assert!(error.into_service_error().is_resource_not_found_exception());
}

#[tokio::test]
async fn malformed_arns_and_reserved_keys_are_validation_errors() {
    let f = Fixture::start(10).await;
    let id = f.active_datastore("store").await;
    let error = f
        .sdk
        .list_tags_for_resource()
        .resource_arn("arn:aws:s3:::bucket/key")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(error.code(), Some("ValidationException"));
    assert!(error.message().unwrap().contains("resourceArn"));

    let error = f
        .sdk
        .untag_resource()
        .resource_arn(arn(&id))
        .tag_keys("aws:createdBy")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(error.code(), Some("ValidationException"));
    assert!(error.message().unwrap().contains("tagKeys"));

    let error = f
        .sdk
        .tag_resource()
        .resource_arn(arn(&id))
        .tags("k", "v".repeat(257))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(error.code(), Some("ValidationException"));
}
