//! Request mapping and error mapping of the AWS adapters, over aws-smithy-mocks.

use aws_sdk_cloudtrail::operation::lookup_events::LookupEventsOutput;
use aws_sdk_cloudtrail::types::{Event, LookupAttributeKey};
use aws_sdk_iam::error::ErrorMetadata;
use aws_sdk_iam::operation::get_user_policy::GetUserPolicyOutput;
use aws_sdk_iam::operation::put_user_policy::{PutUserPolicyError, PutUserPolicyOutput};
use aws_sdk_iam::operation::update_access_key::{UpdateAccessKeyError, UpdateAccessKeyOutput};
use aws_sdk_iam::types::StatusType;
use aws_sdk_iam::types::error::{LimitExceededException, NoSuchEntityException};
use aws_sdk_sns::operation::publish::PublishOutput;
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use chrono::{TimeDelta, Utc};
use killswitch::aws::AwsClients;
use killswitch::incident::AccessKeyId;
use killswitch::ports::{
    Accounts, ActivityLog, Identity, KeyChange, LookupQuery, Notifier, PolicyTarget,
};

fn clients(
    iam: aws_sdk_iam::Client,
    cloudtrail: aws_sdk_cloudtrail::Client,
    sns: aws_sdk_sns::Client,
) -> AwsClients {
    AwsClients {
        account: mock_client!(aws_sdk_account, []),
        iam,
        sts: mock_client!(aws_sdk_sts, []),
        sns: sns.clone(),
        cloudtrail,
        topic_arn: "arn:aws:sns:us-east-1:123456789012:killswitch".into(),
        chat_topic_arn: Some("arn:aws:sns:eu-west-1:123456789012:killswitch-chat".into()),
        chat_sns: sns.clone(),
        dynamodb: mock_client!(aws_sdk_dynamodb, []),
        sqs: mock_client!(aws_sdk_sqs, []),
        securityhub: mock_client!(aws_sdk_securityhub, []),
        guardduty: mock_client!(aws_sdk_guardduty, []),
        kms: mock_client!(aws_sdk_kms, []),
        record_key_arn: None,
        incident_table: Some("killswitch-incidents".into()),
        follow_up_queue_url: Some(
            "https://sqs.us-east-1.amazonaws.com/123456789012/killswitch-follow-up".into(),
        ),
        sdk: aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build(),
        #[cfg(feature = "drill")]
        staged: Default::default(),
    }
}

fn key() -> AccessKeyId {
    AccessKeyId::parse("AKIAIOSFODNN7EXAMPLE").unwrap()
}

#[tokio::test]
async fn deactivation_sends_inactive_with_the_explicit_user_name() {
    let rule = mock!(aws_sdk_iam::Client::update_access_key)
        .match_requests(|r| {
            r.user_name() == Some("alice")
                && r.access_key_id() == Some("AKIAIOSFODNN7EXAMPLE")
                && r.status() == Some(&StatusType::Inactive)
        })
        .then_output(|| UpdateAccessKeyOutput::builder().build());
    let iam = mock_client!(aws_sdk_iam, RuleMode::MatchAny, [&rule]);
    let c = clients(
        iam,
        mock_client!(aws_sdk_cloudtrail, []),
        mock_client!(aws_sdk_sns, []),
    );
    assert_eq!(
        c.deactivate_key("alice", &key()).await.unwrap(),
        KeyChange::Deactivated
    );
    assert_eq!(rule.num_calls(), 1);
}

#[tokio::test]
async fn no_such_entity_is_a_state_not_an_error() {
    let rule = mock!(aws_sdk_iam::Client::update_access_key).then_error(|| {
        UpdateAccessKeyError::NoSuchEntityException(
            NoSuchEntityException::builder()
                .message("not found")
                .meta(ErrorMetadata::builder().code("NoSuchEntity").build())
                .build(),
        )
    });
    let iam = mock_client!(aws_sdk_iam, [&rule]);
    let c = clients(
        iam,
        mock_client!(aws_sdk_cloudtrail, []),
        mock_client!(aws_sdk_sns, []),
    );
    assert_eq!(
        c.deactivate_key("alice", &key()).await.unwrap(),
        KeyChange::NotFound
    );
}

#[tokio::test]
async fn policy_documents_are_url_decoded() {
    let rule = mock!(aws_sdk_iam::Client::get_user_policy)
        .match_requests(|r| r.user_name() == Some("alice") && r.policy_name() == Some("KillSwitchDenyAll"))
        .then_output(|| {
            GetUserPolicyOutput::builder()
                .user_name("alice")
                .policy_name("KillSwitchDenyAll")
                .policy_document("%7B%22Statement%22%3A%5B%7B%22Effect%22%3A%22Deny%22%2C%22Action%22%3A%22%2A%22%2C%22Resource%22%3A%22%2A%22%7D%5D%7D")
                .build()
                .unwrap()
        });
    let iam = mock_client!(aws_sdk_iam, [&rule]);
    let c = clients(
        iam,
        mock_client!(aws_sdk_cloudtrail, []),
        mock_client!(aws_sdk_sns, []),
    );
    let doc = c
        .read_policy(&PolicyTarget::User("alice".into()), "KillSwitchDenyAll")
        .await
        .unwrap()
        .unwrap();
    assert!(killswitch::policy::is_deny_all(&doc), "{doc}");
}

#[tokio::test]
async fn put_user_policy_sends_name_and_document_and_maps_limit_exceeded() {
    let ok = mock!(aws_sdk_iam::Client::put_user_policy)
        .match_requests(|r| {
            r.user_name() == Some("alice")
                && r.policy_name() == Some("KillSwitchDenyAll")
                && r.policy_document() == Some(killswitch::policy::deny_all().as_str())
        })
        .then_output(|| PutUserPolicyOutput::builder().build());
    let iam = mock_client!(aws_sdk_iam, [&ok]);
    let c = clients(
        iam,
        mock_client!(aws_sdk_cloudtrail, []),
        mock_client!(aws_sdk_sns, []),
    );
    c.put_policy(
        &PolicyTarget::User("alice".into()),
        "KillSwitchDenyAll",
        &killswitch::policy::deny_all(),
    )
    .await
    .unwrap();
    assert_eq!(ok.num_calls(), 1);

    let full = mock!(aws_sdk_iam::Client::put_user_policy).then_error(|| {
        PutUserPolicyError::LimitExceededException(
            LimitExceededException::builder()
                .message("Maximum policy size of 2048 bytes exceeded")
                .meta(ErrorMetadata::builder().code("LimitExceeded").build())
                .build(),
        )
    });
    let iam = mock_client!(aws_sdk_iam, [&full]);
    let c = clients(
        iam,
        mock_client!(aws_sdk_cloudtrail, []),
        mock_client!(aws_sdk_sns, []),
    );
    let err = c
        .put_policy(
            &PolicyTarget::User("alice".into()),
            "KillSwitchDenyAll",
            "{}",
        )
        .await
        .unwrap_err();
    assert_eq!(err.aws_code(), Some("LimitExceeded"));
    assert!(
        err.to_string().starts_with("iam:PutUserPolicy failed"),
        "{err}"
    );
}

#[tokio::test]
async fn lookup_uses_the_access_key_attribute_full_pages_and_parses_the_record() {
    let rule = mock!(aws_sdk_cloudtrail::Client::lookup_events)
        .match_requests(|r| {
            let attr = &r.lookup_attributes()[0];
            r.lookup_attributes().len() == 1
                && attr.attribute_key() == &LookupAttributeKey::AccessKeyId
                && attr.attribute_value() == "AKIAIOSFODNN7EXAMPLE"
                && r.max_results() == Some(50)
                && r.next_token() == Some("page-2")
                && r.start_time().is_some()
                && r.end_time().is_some()
        })
        .then_output(|| {
            LookupEventsOutput::builder()
                .events(
                    Event::builder()
                        .event_name("CreateUser")
                        .event_source("iam.amazonaws.com")
                        .event_time(aws_smithy_types::DateTime::from_secs(1_795_000_000))
                        .cloud_trail_event(include_str!(
                            "../../events/cloudtrail/denied-create-user.json"
                        ))
                        .build(),
                )
                .next_token("page-3")
                .build()
        });
    let ct = mock_client!(aws_sdk_cloudtrail, [&rule]);
    let c = clients(
        mock_client!(aws_sdk_iam, []),
        ct,
        mock_client!(aws_sdk_sns, []),
    );
    let k = key();
    let page = c
        .lookup_page(LookupQuery {
            region: "eu-west-1",
            key: &k,
            start: Utc::now() - TimeDelta::hours(1),
            end: Utc::now(),
            next_token: Some("page-2".into()),
        })
        .await
        .unwrap();
    assert_eq!(rule.num_calls(), 1);
    assert_eq!(page.next_token.as_deref(), Some("page-3"));
    let call = &page.calls[0];
    assert_eq!(call.event_name, "CreateUser");
    assert_eq!(call.source_ip.as_deref(), Some("203.0.113.77"));
    assert_eq!(call.error_code.as_deref(), Some("AccessDenied"));
    assert_eq!(call.read_only, Some(false));
}

#[tokio::test]
async fn publish_goes_to_the_configured_topic() {
    let rule = mock!(aws_sdk_sns::Client::publish)
        .match_requests(|r| {
            r.topic_arn() == Some("arn:aws:sns:us-east-1:123456789012:killswitch")
                && r.subject() == Some("[killswitch] CONTAINED")
                && r.message() == Some("body")
        })
        .then_output(|| PublishOutput::builder().message_id("m-1").build());
    let sns = mock_client!(aws_sdk_sns, [&rule]);
    let c = clients(
        mock_client!(aws_sdk_iam, []),
        mock_client!(aws_sdk_cloudtrail, []),
        sns,
    );
    c.publish("[killswitch] CONTAINED", "body").await.unwrap();
    assert_eq!(rule.num_calls(), 1);
}

#[tokio::test]
async fn entering_a_member_account_presents_the_external_id_and_keeps_the_topic() {
    use aws_sdk_sts::operation::assume_role::AssumeRoleOutput;
    use aws_sdk_sts::types::{AssumedRoleUser, Credentials};
    let rule = mock!(aws_sdk_sts::Client::assume_role)
        .match_requests(|r| {
            r.role_arn() == Some("arn:aws:iam::111122223333:role/KillSwitchMember")
                && r.external_id() == Some("ext-id-1")
                && r.role_session_name() == Some("killswitch-AKIAIOSFODNN7EXAMPLE")
                && r.duration_seconds() == Some(900)
        })
        .then_output(|| {
            AssumeRoleOutput::builder()
                .credentials(
                    Credentials::builder()
                        .access_key_id("ASIAMEMBEREXAMPLE")
                        .secret_access_key("secret")
                        .session_token("token")
                        .expiration(aws_smithy_types::DateTime::from_secs(4_102_444_800))
                        .build()
                        .unwrap(),
                )
                .assumed_role_user(
                    AssumedRoleUser::builder()
                        .assumed_role_id("AROAEXAMPLE:killswitch-AKIAIOSFODNN7EXAMPLE")
                        .arn("arn:aws:sts::111122223333:assumed-role/KillSwitchMember/killswitch-AKIAIOSFODNN7EXAMPLE")
                        .build()
                        .unwrap(),
                )
                .build()
        });
    let mut c = clients(
        mock_client!(aws_sdk_iam, []),
        mock_client!(aws_sdk_cloudtrail, []),
        mock_client!(aws_sdk_sns, []),
    );
    c.sts = mock_client!(aws_sdk_sts, RuleMode::MatchAny, [&rule]);
    let entered = c
        .enter(
            "arn:aws:iam::111122223333:role/KillSwitchMember",
            "ext-id-1",
            "killswitch-AKIAIOSFODNN7EXAMPLE",
        )
        .await
        .unwrap();
    assert_eq!(rule.num_calls(), 1);
    assert!(
        entered
            .arn
            .ends_with(":assumed-role/KillSwitchMember/killswitch-AKIAIOSFODNN7EXAMPLE")
    );
    assert_eq!(entered.clients.topic_arn, c.topic_arn);
}

#[tokio::test]
async fn a_refused_assume_role_is_an_error_with_its_code() {
    use aws_sdk_sts::operation::assume_role::AssumeRoleError;
    let rule = mock!(aws_sdk_sts::Client::assume_role).then_error(|| {
        AssumeRoleError::generic(
            ErrorMetadata::builder()
                .code("AccessDenied")
                .message("not authorized")
                .build(),
        )
    });
    let mut c = clients(
        mock_client!(aws_sdk_iam, []),
        mock_client!(aws_sdk_cloudtrail, []),
        mock_client!(aws_sdk_sns, []),
    );
    c.sts = mock_client!(aws_sdk_sts, [&rule]);
    match c
        .enter("arn:aws:iam::111122223333:role/KillSwitchMember", "x1", "s")
        .await
    {
        Err(e) => assert_eq!(e.aws_code(), Some("AccessDenied")),
        Ok(_) => panic!("entered despite AccessDenied"),
    }
}

#[tokio::test]
async fn a_claim_is_a_conditional_put_and_an_existing_claim_answers_false() {
    use aws_sdk_dynamodb::operation::put_item::{PutItemError, PutItemOutput};
    use aws_sdk_dynamodb::types::error::ConditionalCheckFailedException;
    let first = mock!(aws_sdk_dynamodb::Client::put_item)
        .match_requests(|r| {
            r.table_name() == Some("killswitch-incidents")
                && r.condition_expression() == Some("attribute_not_exists(pk)")
                && r.item()
                    .and_then(|i| i.get("pk"))
                    .and_then(|v| v.as_s().ok())
                    == Some(&"incident#1#AKIA#g0#contained".to_string())
        })
        .then_output(|| PutItemOutput::builder().build());
    let taken = mock!(aws_sdk_dynamodb::Client::put_item).then_error(|| {
        PutItemError::ConditionalCheckFailedException(
            ConditionalCheckFailedException::builder().build(),
        )
    });
    let mut c = clients(
        mock_client!(aws_sdk_iam, []),
        mock_client!(aws_sdk_cloudtrail, []),
        mock_client!(aws_sdk_sns, []),
    );
    c.dynamodb = mock_client!(aws_sdk_dynamodb, RuleMode::Sequential, [&first, &taken]);
    use killswitch::ports::IncidentStore;
    assert!(c.claim("incident#1#AKIA#g0#contained").await.unwrap());
    assert!(!c.claim("incident#1#AKIA#g0#contained").await.unwrap());
}

#[tokio::test]
async fn the_hand_off_is_a_delayed_message_on_the_configured_queue() {
    use aws_sdk_sqs::operation::send_message::SendMessageOutput;
    let rule = mock!(aws_sdk_sqs::Client::send_message)
        .match_requests(|r| {
            r.queue_url()
                == Some("https://sqs.us-east-1.amazonaws.com/123456789012/killswitch-follow-up")
                && r.delay_seconds() == Some(10)
                && r.message_body() == Some("{}")
        })
        .then_output(|| SendMessageOutput::builder().build());
    let mut c = clients(
        mock_client!(aws_sdk_iam, []),
        mock_client!(aws_sdk_cloudtrail, []),
        mock_client!(aws_sdk_sns, []),
    );
    c.sqs = mock_client!(aws_sdk_sqs, [&rule]);
    use killswitch::ports::FollowUpQueue;
    c.hand_off("{}", std::time::Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(rule.num_calls(), 1);
}

#[test]
fn notices_go_to_the_topics_own_region_whatever_the_profile_says() {
    let sdk = aws_config::SdkConfig::builder()
        .region(aws_config::Region::new("us-west-2"))
        .behavior_version(aws_config::BehaviorVersion::latest())
        .build();
    let cloud = AwsClients::from_sdk_config(&sdk, "arn:aws:sns:eu-west-1:123456789012:killswitch");
    assert_eq!(
        cloud.sns.config().region().map(|r| r.as_ref()),
        Some("eu-west-1")
    );
    // Everything else stays where the profile points.
    assert_eq!(
        cloud.iam.config().region().map(|r| r.as_ref()),
        Some("us-west-2")
    );
    assert_eq!(
        killswitch::aws::topic_region("arn:aws-us-gov:sns:us-gov-west-1:123456789012:t"),
        Some("us-gov-west-1")
    );
    assert_eq!(
        killswitch::aws::topic_region("arn:aws:sqs:eu-west-1:1:q"),
        None
    );
    assert_eq!(killswitch::aws::topic_region(""), None);
}
