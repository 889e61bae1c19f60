//! Datastore operations through aws-sdk-medicalimaging, success and errors.

use aws_sdk_medicalimaging::error::ProvideErrorMetadata;
use aws_sdk_medicalimaging::operation::RequestId;
use aws_sdk_medicalimaging::types::{DatastoreStatus, LosslessStorageFormat};
use healthimaging_e2e::{DELAY, Fixture};

const KMS: &str = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
const LAMBDA: &str = "arn:aws:lambda:us-east-1:123456789012:function:oidc-authorizer";

fn code<E: ProvideErrorMetadata>(error: &E) -> &str {
    error.code().unwrap_or("none")
}

#[tokio::test]
async fn create_goes_from_creating_to_active_and_echoes_every_property() {
    let f = Fixture::start(10).await;
    let created = f
        .sdk
        .create_datastore()
        .datastore_name("radiology-archive")
        .kms_key_arn(KMS)
        .lambda_authorizer_arn(LAMBDA)
        .lossless_storage_format(LosslessStorageFormat::Jpeg2000Lossless)
        .tags("project", "demo")
        .send()
        .await
        .unwrap();
    assert_eq!(created.datastore_status(), &DatastoreStatus::Creating);
    assert!(created.request_id().is_some_and(|id| id.len() == 36));
    let id = created.datastore_id();

    let get = |f: &Fixture| f.sdk.get_datastore().datastore_id(id).send();
    let props = get(&f).await.unwrap().datastore_properties.unwrap();
    assert_eq!(props.datastore_status(), &DatastoreStatus::Creating);
    assert_eq!(props.datastore_name(), "radiology-archive");
    assert_eq!(props.kms_key_arn(), Some(KMS));
    assert_eq!(props.lambda_authorizer_arn(), Some(LAMBDA));
    assert_eq!(
        props.lossless_storage_format(),
        Some(&LosslessStorageFormat::Jpeg2000Lossless)
    );
    assert_eq!(
        props.datastore_arn(),
        Some(format!("arn:aws:medical-imaging:us-east-1:123456789012:datastore/{id}").as_str())
    );
    let created_at = props.created_at().unwrap().to_millis().unwrap();
    assert_eq!(
        created_at, 1_767_225_600_000,
        "timestamps come from the emulator's clock"
    );

    f.clock.advance(DELAY);
    let props = get(&f).await.unwrap().datastore_properties.unwrap();
    assert_eq!(props.datastore_status(), &DatastoreStatus::Active);
    // Epoch seconds travel as a JSON float: parsed back, a millisecond can be
    // lost to binary rounding, exactly as with the real service's values.
    let updated_at = props.updated_at().unwrap().to_millis().unwrap();
    let expected = created_at + DELAY.as_millis() as i64;
    assert!(
        (updated_at - expected).abs() <= 1,
        "{updated_at} vs {expected}"
    );
}

#[tokio::test]
async fn an_unnamed_datastore_gets_a_name_and_the_htj2k_default() {
    let f = Fixture::start(10).await;
    let id = f.sdk.create_datastore().send().await.unwrap().datastore_id;
    let props = f
        .sdk
        .get_datastore()
        .datastore_id(&id)
        .send()
        .await
        .unwrap()
        .datastore_properties
        .unwrap();
    assert!(!props.datastore_name().is_empty());
    assert_eq!(
        props.lossless_storage_format(),
        Some(&LosslessStorageFormat::Htj2K)
    );
}

#[tokio::test]
async fn client_tokens_make_create_idempotent() {
    let f = Fixture::start(10).await;
    let create = |name: &'static str| {
        f.sdk
            .create_datastore()
            .datastore_name(name)
            .client_token("retry-token-1")
            .send()
    };
    let first = create("a").await.unwrap();
    let again = create("a").await.unwrap();
    assert_eq!(first.datastore_id(), again.datastore_id());
    let listed = f.sdk.list_datastores().send().await.unwrap();
    assert_eq!(
        listed.datastore_summaries().len(),
        1,
        "a retry creates nothing new"
    );

    let error = create("b").await.unwrap_err().into_service_error();
    assert!(error.is_conflict_exception(), "{error:?}");
}

#[tokio::test]
async fn the_quota_counts_datastores_that_are_not_deleted() {
    let f = Fixture::start(2).await;
    let first = f.active_datastore("one").await;
    f.active_datastore("two").await;
    let error = f.sdk.create_datastore().send().await.unwrap_err();
    let error = error.into_service_error();
    assert!(error.is_service_quota_exceeded_exception(), "{error:?}");

    f.sdk
        .delete_datastore()
        .datastore_id(&first)
        .send()
        .await
        .unwrap();
    f.settle();
    f.sdk
        .create_datastore()
        .send()
        .await
        .expect("a deleted datastore frees its place");
}

#[tokio::test]
async fn get_and_delete_of_unknown_or_malformed_ids() {
    let f = Fixture::start(10).await;
    let unknown = "0123456789abcdef0123456789abcdef";
    let error = f
        .sdk
        .get_datastore()
        .datastore_id(unknown)
        .send()
        .await
        .unwrap_err();
    assert!(error.into_service_error().is_resource_not_found_exception());
    let error = f
        .sdk
        .delete_datastore()
        .datastore_id(unknown)
        .send()
        .await
        .unwrap_err();
    assert!(error.into_service_error().is_resource_not_found_exception());

    let error = f
        .sdk
        .get_datastore()
        .datastore_id("NOT-AN-ID")
        .send()
        .await
        .unwrap_err();
    let error = error.into_service_error();
    assert_eq!(code(&error), "ValidationException");
    assert!(
        error.message().unwrap().contains("datastoreId"),
        "{error:?}"
    );
}

#[tokio::test]
async fn create_rejects_invalid_members_by_name() {
    let f = Fixture::start(10).await;
    let cases = [
        (
            f.sdk.create_datastore().datastore_name("has spaces"),
            "datastoreName",
        ),
        (
            f.sdk.create_datastore().datastore_name("x".repeat(257)),
            "datastoreName",
        ),
        (
            f.sdk.create_datastore().kms_key_arn("arn:aws:kms:nowhere"),
            "kmsKeyArn",
        ),
        (
            f.sdk.create_datastore().lambda_authorizer_arn("not-an-arn"),
            "lambdaAuthorizerArn",
        ),
        (
            f.sdk.create_datastore().client_token("bad token!"),
            "clientToken",
        ),
        (f.sdk.create_datastore().tags("aws:reserved", "x"), "tags"),
        (
            f.sdk
                .create_datastore()
                .lossless_storage_format(LosslessStorageFormat::from("PNG")),
            "losslessStorageFormat",
        ),
    ];
    for (request, field) in cases {
        let error = request.send().await.unwrap_err().into_service_error();
        assert_eq!(code(&error), "ValidationException", "{field}: {error:?}");
        assert!(
            error.message().unwrap().contains(field),
            "{field}: {error:?}"
        );
    }
    let listed = f.sdk.list_datastores().send().await.unwrap();
    assert!(
        listed.datastore_summaries().is_empty(),
        "no invalid request created anything"
    );
}

#[tokio::test]
async fn delete_is_refused_while_creating_then_goes_through_deleting_to_deleted() {
    let f = Fixture::start(10).await;
    let id = f.sdk.create_datastore().send().await.unwrap().datastore_id;
    let error = f
        .sdk
        .delete_datastore()
        .datastore_id(&id)
        .send()
        .await
        .unwrap_err();
    assert!(error.into_service_error().is_conflict_exception());

    f.settle();
    let deleted = f
        .sdk
        .delete_datastore()
        .datastore_id(&id)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.datastore_status(), &DatastoreStatus::Deleting);
    let again = f
        .sdk
        .delete_datastore()
        .datastore_id(&id)
        .send()
        .await
        .unwrap();
    assert_eq!(
        again.datastore_status(),
        &DatastoreStatus::Deleting,
        "delete is idempotent"
    );

    f.settle();
    let props = f
        .sdk
        .get_datastore()
        .datastore_id(&id)
        .send()
        .await
        .unwrap();
    assert_eq!(
        props.datastore_properties().unwrap().datastore_status(),
        &DatastoreStatus::Deleted
    );
    let listed = f
        .sdk
        .list_datastores()
        .datastore_status(DatastoreStatus::Deleted)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.datastore_summaries().len(), 1);
}
