//! The deployed shape on the local AWS: the follow-up queue and incident table, the responder
//! role, the project's CloudFormation templates, the member account's admin.

use super::*;

/// The deployed shape on the local AWS: a follow-up queue and an incident table.
pub(super) async fn follow_up_queue_and_table(w: &World) -> (String, String, String) {
    let name = unique("follow-up");
    let queue_url = w
        .sqs
        .create_queue()
        .queue_name(&name)
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let attrs = w
        .sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap();
    let queue_arn =
        attrs.attributes().unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn].clone();
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    };
    let table = unique("incidents");
    aws_sdk_dynamodb::Client::new(&sdk(&admin()).await)
        .create_table()
        .table_name(&table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("pk")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    (queue_url, queue_arn, table)
}

pub(super) fn member_admin() -> (String, Key) {
    let var = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("{k} is not set: {NEEDS}"));
    (
        var("KILLSWITCH_LOCAL_MEMBER_ACCOUNT"),
        Key {
            id: var("KILLSWITCH_LOCAL_MEMBER_ACCESS_KEY_ID"),
            secret: var("KILLSWITCH_LOCAL_MEMBER_SECRET_ACCESS_KEY"),
            token: None,
        },
    )
}

/// The function as it runs in Lambda: a role session (member roles trust a role, not a user).
pub(super) async fn responder_session(w: &World, role: &str) -> Key {
    let fn_user = aws_sdk_iam::Client::new(&sdk(&w.function_key).await)
        .get_user()
        .send()
        .await
        .unwrap()
        .user
        .unwrap()
        .arn;
    let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"AWS": fn_user}, "Action": "sts:AssumeRole"}]});
    w.iam
        .create_role()
        .role_name(role)
        .assume_role_policy_document(trust.to_string())
        .send()
        .await
        .unwrap();
    let allow = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]});
    w.iam
        .put_role_policy()
        .role_name(role)
        .policy_name("work")
        .policy_document(allow.to_string())
        .send()
        .await
        .unwrap();
    assume(
        &w.function_key,
        &format!("arn:aws:iam::123456789012:role/{role}"),
        "killswitch",
        None,
    )
    .await
    .unwrap()
}

/// Creates a stack of one of the project's templates as `key` and checks it completed.
pub(super) async fn deploy_stack(key: &Key, template: &str, params: &[(&str, &str)]) {
    use aws_sdk_cloudformation::types::{Capability, Parameter, StackStatus};
    let cfn = aws_sdk_cloudformation::Client::new(&sdk(key).await);
    let stack = unique(template.trim_end_matches(".yaml"));
    let body =
        std::fs::read_to_string(format!("{}/{template}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let mut create = cfn
        .create_stack()
        .stack_name(&stack)
        .template_body(body)
        .capabilities(Capability::CapabilityNamedIam);
    for (k, v) in params {
        create = create.parameters(
            Parameter::builder()
                .parameter_key(*k)
                .parameter_value(*v)
                .build(),
        );
    }
    create.send().await.unwrap();
    let status = cfn
        .describe_stacks()
        .stack_name(&stack)
        .send()
        .await
        .unwrap()
        .stacks()[0]
        .stack_status()
        .cloned();
    assert_eq!(status, Some(StackStatus::CreateComplete), "{template}");
}

/// The local AWS's CloudFormation refuses a resource type it cannot create, as AWS refuses one it
/// does not know, instead of skipping it and reporting CREATE_COMPLETE (it once skipped
/// root-access-role.yaml's grant that way).
#[tokio::test]
#[ignore = "needs the local AWS: run scripts/test.sh"]
async fn a_resource_type_the_local_aws_cannot_create_fails_the_stack() {
    let cfn = aws_sdk_cloudformation::Client::new(&sdk(&admin()).await);
    let body =
        "Resources:\n  Unknown:\n    Type: AWS::Killswitch::NoSuchThing\n    Properties: {}\n";
    let err = cfn
        .create_stack()
        .stack_name(unique("unsupported"))
        .template_body(body)
        .send()
        .await
        .expect_err("a stack with a type nobody creates was accepted");
    let said = format!(
        "{}",
        aws_sdk_cloudformation::error::DisplayErrorContext(&err)
    );
    assert!(said.contains("Unrecognized resource types"), "{said}");
}
