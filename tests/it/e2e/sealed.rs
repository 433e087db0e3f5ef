//! Incident records sealed with a KMS HMAC key on the local AWS: the function's records carry
//! a MAC of the key, and an item rewritten by someone else in the table is not trusted.

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_kms::types::{KeySpec, KeyUsageType};

use super::deployment::follow_up_queue_and_table;
use super::*;

async fn record_key() -> String {
    aws_sdk_kms::Client::new(&sdk(&admin()).await)
        .create_key()
        .key_spec(KeySpec::Hmac256)
        .key_usage(KeyUsageType::GenerateVerifyMac)
        .send()
        .await
        .unwrap()
        .key_metadata()
        .unwrap()
        .arn()
        .unwrap()
        .to_owned()
}

fn record_pk(key: &str) -> AttributeValue {
    AttributeValue::S(format!("incident#123456789012#{key}"))
}

async fn stored(table: &str, key: &str) -> Value {
    let item = aws_sdk_dynamodb::Client::new(&sdk(&admin()).await)
        .get_item()
        .table_name(table)
        .key("pk", record_pk(key))
        .send()
        .await
        .unwrap();
    serde_json::from_str(item.item().unwrap()["record"].as_s().unwrap()).unwrap()
}

#[tokio::test]
#[ignore = "needs the local AWS: run scripts/test.sh"]
async fn records_are_sealed_and_one_rewritten_in_the_table_is_not_trusted() {
    let w = World::new().await;
    let (_, _, table) = follow_up_queue_and_table(&w).await;
    let env = [
        ("KILLSWITCH_INCIDENT_TABLE", table.clone()),
        ("KILLSWITCH_RECORD_KEY_ARN", record_key().await),
    ];
    let user = unique("leaky");
    let leaked = create_user_with_key(&user, &["iam:List*"]).await;
    let finding = fixture("guardduty-iam-user-finding.json", &leaked.id, &user);
    let (code, report, stderr) = w.respond_with(&finding, &[], &env);
    assert_eq!(code, 0, "{stderr}\n{report}");
    let item = stored(&table, &leaked.id).await;
    assert!(
        item["sealed"].is_string() && item["mac"].is_string(),
        "{item}"
    );

    // Someone allowed to write the table rewrites the record, keeping its seal; the key's
    // holder meanwhile sets its key back to Active.
    let mut forged = item.clone();
    forged["sealed"] = json!(item["sealed"].as_str().unwrap().replace("verified_at", "x"));
    aws_sdk_dynamodb::Client::new(&sdk(&admin()).await)
        .put_item()
        .table_name(&table)
        .item("pk", record_pk(&leaked.id))
        .item("record", AttributeValue::S(forged.to_string()))
        .send()
        .await
        .unwrap();
    w.iam
        .update_access_key()
        .user_name(&user)
        .access_key_id(&leaked.id)
        .status(StatusType::Active)
        .send()
        .await
        .unwrap();
    let (_, report, stderr) = w.respond_with(&finding, &[], &env);
    let r = &report["reports"][0];
    assert!(
        r["steps"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["step"] == "record"
                && s["outcome"] == "failed"
                && s["detail"].as_str().unwrap().contains("NOT TRUSTED")),
        "{stderr}\n{report}"
    );
    assert_eq!(
        w.key_status(&user, &leaked.id).await,
        Some(StatusType::Inactive)
    );
}
