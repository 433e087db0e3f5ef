//! `killswitch doctor` against a stack deployed on the local AWS: all green when fresh, and each
//! one-call switch-off (dry run in the live environment, the rule disabled, concurrency 0, a
//! permission removed from the role, a protected principal added) fails its own check.

use super::*;

const ACCOUNT: &str = "123456789012";
/// The template's GuardDuty rule pattern (template.yaml, GuardDutyAccessKeyFinding).
const GUARDDUTY_PATTERN: &str = r#"{"source":["aws.guardduty"],"detail-type":["GuardDuty Finding"],"detail":{"type":[{"wildcard":"*:IAMUser/*"}],"resource":{"resourceType":["AccessKey"]}}}"#;

/// A stack shaped like template.yaml's, made through the APIs (the local AWS has no SAM).
struct Stack {
    function: String,
    role: String,
    rule: String,
    topic_arn: String,
    lambda: aws_sdk_lambda::Client,
    iam: aws_sdk_iam::Client,
}

/// The ResponderRole policy of template.yaml for one stack, without its KMS, Logs, SQS, DynamoDB
/// and quarantine statements (this stack has no key for the code to call, no table or queue).
fn responder_policy(stack: &str, topic_arn: &str, member: Option<(&str, &str)>) -> Value {
    let arn = |r: &str| format!("arn:aws:iam::{ACCOUNT}:{r}");
    let users = arn("user/*");
    let deny_all = "arn:aws:iam::aws:policy/AWSDenyAll";
    let mut statements = vec![
        json!({"Effect": "Allow", "Resource": users, "Action": ["iam:GetAccessKeyLastUsed", "iam:ListAccessKeys",
            "iam:UpdateAccessKey", "iam:GetUserPolicy", "iam:PutUserPolicy", "iam:ListAttachedUserPolicies",
            "iam:DeleteLoginProfile", "iam:GetLoginProfile", "iam:GetUser"]}),
        json!({"Effect": "Allow", "Action": "iam:PutUserPermissionsBoundary", "Resource": users,
            "Condition": {"StringEquals": {"iam:PermissionsBoundary": deny_all}}}),
        json!({"Effect": "Allow", "Action": "iam:AttachUserPolicy", "Resource": users,
            "Condition": {"ArnEquals": {"iam:PolicyARN": deny_all}}}),
        json!({"Effect": "Allow", "Action": ["iam:GetRole", "iam:GetRolePolicy", "iam:PutRolePolicy",
            "iam:ListAttachedRolePolicies"], "Resource": arn("role/*")}),
        // A role whose inline quota is full: killswitch's own managed deny, this path only.
        json!({"Effect": "Allow", "Action": ["iam:CreatePolicy", "iam:GetPolicy", "iam:GetPolicyVersion",
            "iam:ListPolicyVersions", "iam:CreatePolicyVersion", "iam:DeletePolicyVersion"],
            "Resource": arn("policy/killswitch/*")}),
        json!({"Effect": "Allow", "Action": "iam:AttachRolePolicy", "Resource": arn("role/*"),
            "Condition": {"ArnLike": {"iam:PolicyARN": arn("policy/killswitch/*")}}}),
        json!({"Effect": "Allow", "Action": ["iam:GetPolicy", "iam:GetPolicyVersion", "iam:ListPolicyVersions",
            "iam:CreatePolicyVersion", "iam:DeletePolicyVersion"], "Resource": arn("policy/KillSwitchDeny")}),
        json!({"Effect": "Allow", "Action": "iam:ListAttachedRolePolicies",
            "Resource": arn("role/aws-reserved/sso.amazonaws.com/*")}),
        json!({"Effect": "Allow", "Action": "iam:ListRoles", "Resource": "*"}),
        json!({"Effect": "Allow", "Action": ["iam:TagUser", "iam:TagRole"], "Resource": [users, arn("role/*")],
            "Condition": {"ForAllValues:StringEquals": {"aws:TagKeys": ["killswitch-contained", "killswitch-guarded"]}}}),
        json!({"Effect": "Allow", "Action": ["iam:ListUserTags", "iam:ListRoleTags"],
            "Resource": [users, arn("role/*")]}),
        json!({"Effect": "Deny", "Action": ["iam:PutRolePolicy", "iam:DeleteRolePolicy", "iam:AttachRolePolicy",
            "iam:DetachRolePolicy", "iam:UpdateAssumeRolePolicy", "iam:DeleteRole", "iam:TagRole"],
            "Resource": [arn("role/aws-service-role/*"), arn("role/aws-reserved/sso.amazonaws.com/*"),
                arn(&format!("role/{stack}-*"))]}),
        json!({"Effect": "Allow", "Action": ["cloudtrail:LookupEvents", "account:ListRegions",
            "sts:GetAccessKeyInfo"], "Resource": "*"}),
        json!({"Effect": "Allow", "Action": "sns:Publish", "Resource": topic_arn}),
        json!({"Effect": "Allow", "Action": ["guardduty:ListDetectors", "guardduty:GetFindings",
            "securityhub:GetFindings"], "Resource": "*"}),
        json!({"Effect": "Allow", "Action": "securityhub:BatchUpdateFindings",
            "Resource": format!("arn:aws:securityhub:*:{ACCOUNT}:hub/default")}),
    ];
    if let Some((role, account)) = member {
        statements.push(json!({"Effect": "Allow", "Action": "sts:AssumeRole",
            "Resource": format!("arn:aws:iam::*:role/{role}"),
            "Condition": {"StringEquals": {"aws:ResourceAccount": [account]}}}));
    }
    json!({"Version": "2012-10-17", "Statement": statements})
}

/// A Lambda deployment package: an empty zip archive (its end-of-central-directory record).
fn empty_zip() -> Vec<u8> {
    let mut zip = b"PK\x05\x06".to_vec();
    zip.resize(22, 0);
    zip
}

/// What a fresh `sam deploy` leaves: the function with its live settings (`env` on top) and
/// reserved concurrency, its role, the GuardDuty rule targeting it, the KMS-encrypted topic with
/// a confirmed subscription (World's inbox); GuardDuty in every enabled Region and a logging
/// trail for the account.
async fn deploy(w: &World, env: &[(&str, &str)], member: Option<(&str, &str)>) -> Stack {
    let admin_sdk = sdk(&admin()).await;
    let stack = unique("ks");
    let kms = aws_sdk_kms::Client::new(&admin_sdk);
    let key = kms.create_key().send().await.unwrap().key_metadata.unwrap();
    aws_sdk_sns::Client::new(&admin_sdk)
        .set_topic_attributes()
        .topic_arn(&w.topic_arn)
        .attribute_name("KmsMasterKeyId")
        .attribute_value(key.key_id())
        .send()
        .await
        .unwrap();
    let role = format!("{stack}-responder");
    let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]});
    let iam = aws_sdk_iam::Client::new(&admin_sdk);
    let role_arn = iam
        .create_role()
        .role_name(&role)
        .assume_role_policy_document(trust.to_string())
        .send()
        .await
        .unwrap()
        .role
        .unwrap()
        .arn;
    put_policy(&iam, &role, &responder_policy(&stack, &w.topic_arn, member)).await;
    let lambda = aws_sdk_lambda::Client::new(&admin_sdk);
    let function = format!("{stack}-KillSwitchFunction");
    let mut variables = aws_sdk_lambda::types::Environment::builder()
        .variables("KILLSWITCH_TOPIC_ARN", &w.topic_arn)
        .variables("KILLSWITCH_DRY_RUN", "false")
        .variables("KILLSWITCH_PROTECTED_PRINCIPALS", "")
        .variables("KILLSWITCH_FUNCTION_TIMEOUT_SECONDS", "120");
    for (k, v) in env {
        variables = variables.variables(*k, *v);
    }
    let function_arn = lambda
        .create_function()
        .function_name(&function)
        .runtime(aws_sdk_lambda::types::Runtime::Providedal2023)
        .role(role_arn)
        .handler("bootstrap")
        .code(
            aws_sdk_lambda::types::FunctionCode::builder()
                .zip_file(empty_zip().into())
                .build(),
        )
        .kms_key_arn(key.arn().unwrap())
        .environment(variables.build())
        .send()
        .await
        .unwrap()
        .function_arn
        .unwrap();
    set_concurrency(&lambda, &function, 25).await;
    let rule = format!("{stack}-KillSwitchFunctionGuardDutyAccessKeyFinding");
    let events = aws_sdk_eventbridge::Client::new(&admin_sdk);
    events
        .put_rule()
        .name(&rule)
        .event_pattern(GUARDDUTY_PATTERN)
        .send()
        .await
        .unwrap();
    events
        .put_targets()
        .rule(&rule)
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("KillSwitchFunction")
                .arn(&function_arn)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    guardduty_everywhere(&admin_sdk).await;
    logging_trail(&admin_sdk, &stack).await;
    Stack {
        function,
        role,
        rule,
        topic_arn: w.topic_arn.clone(),
        lambda,
        iam,
    }
}

async fn put_policy(iam: &aws_sdk_iam::Client, role: &str, policy: &Value) {
    iam.put_role_policy()
        .role_name(role)
        .policy_name("killswitch")
        .policy_document(policy.to_string())
        .send()
        .await
        .unwrap();
}

async fn set_concurrency(lambda: &aws_sdk_lambda::Client, function: &str, n: i32) {
    lambda
        .put_function_concurrency()
        .function_name(function)
        .reserved_concurrent_executions(n)
        .send()
        .await
        .unwrap();
}

/// An enabled detector in every Region the account has enabled (one per Region: tests share
/// the account, so an existing one is kept).
async fn guardduty_everywhere(admin_sdk: &aws_config::SdkConfig) {
    let regions = aws_sdk_account::Client::new(admin_sdk)
        .list_regions()
        .region_opt_status_contains(aws_sdk_account::types::RegionOptStatus::EnabledByDefault)
        .send()
        .await
        .unwrap();
    for region in regions.regions().iter().filter_map(|r| r.region_name()) {
        let gd = aws_sdk_guardduty::Client::from_conf(
            aws_sdk_guardduty::config::Builder::from(admin_sdk)
                .region(aws_config::Region::new(region.to_owned()))
                .build(),
        );
        let mut enabled = false;
        for id in gd.list_detectors().send().await.unwrap().detector_ids() {
            let status = gd.get_detector().detector_id(id).send().await.unwrap();
            enabled |= status.status() == Some(&aws_sdk_guardduty::types::DetectorStatus::Enabled);
        }
        if !enabled {
            gd.create_detector().enable(true).send().await.unwrap();
        }
    }
}

/// A multi-Region trail that logs, into a bucket made through CloudFormation (the tests have
/// no S3 client).
async fn logging_trail(admin_sdk: &aws_config::SdkConfig, stack: &str) {
    let bucket = format!("{stack}-trail").to_lowercase();
    let template = json!({"Resources": {"Trail": {"Type": "AWS::S3::Bucket",
        "Properties": {"BucketName": bucket}}}});
    aws_sdk_cloudformation::Client::new(admin_sdk)
        .create_stack()
        .stack_name(format!("{stack}-trail"))
        .template_body(template.to_string())
        .send()
        .await
        .unwrap();
    let trails = aws_sdk_cloudtrail::Client::new(admin_sdk);
    trails
        .create_trail()
        .name(stack)
        .s3_bucket_name(&bucket)
        .is_multi_region_trail(true)
        .send()
        .await
        .unwrap();
    trails.start_logging().name(stack).send().await.unwrap();
}

/// `killswitch doctor --output json` as `key`: (exit code, report, stderr).
fn doctor(key: &Key, function: &str, extra: &[&str]) -> (i32, Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_killswitch"))
        .args(["doctor", "--function-name", function, "--output", "json"])
        .args(extra)
        .env("AWS_ACCESS_KEY_ID", &key.id)
        .env("AWS_SECRET_ACCESS_KEY", &key.secret)
        .envs(
            key.token
                .as_ref()
                .map(|t| ("AWS_SESSION_TOKEN", t.as_str())),
        )
        .env("AWS_ENDPOINT_URL", endpoint())
        .env("AWS_REGION", "us-east-1")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let report = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out.status.code().unwrap_or(-1), report, stderr)
}

/// The checks that are not ok: (name, status).
fn not_ok(report: &Value) -> Vec<(String, String)> {
    report["checks"]
        .as_array()
        .unwrap_or_else(|| panic!("no checks in {report}"))
        .iter()
        .filter(|c| c["status"] != "ok")
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_owned(),
                c["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn check<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no {name} check in {report}"))
}

fn failed(names: &[&str]) -> Vec<(String, String)> {
    names
        .iter()
        .map(|n| ((*n).to_owned(), "fail".to_owned()))
        .collect()
}

#[tokio::test]
#[ignore = "needs the local AWS: run scripts/test.sh"]
async fn doctor_passes_a_fresh_deployment() {
    let w = World::new().await;
    let stack = deploy(&w, &[], None).await;
    let (code, report, stderr) = doctor(&admin(), &stack.function, &[]);
    assert_eq!(not_ok(&report), vec![], "{stderr}\n{report:#}");
    assert_eq!(code, 0, "{stderr}");
    let names: Vec<&str> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    for name in [
        "function",
        "environment",
        "dry_run",
        "protected_principals",
        "concurrency",
        "rule",
        "guardduty_rule",
        "topic",
        "kms_key",
        "guardduty",
        "cloudtrail",
        "permissions",
    ] {
        assert!(names.contains(&name), "no {name} check: {names:?}");
    }
    assert_eq!(check(&report, "rule")["subject"], stack.rule.as_str());
    assert_eq!(check(&report, "topic")["subject"], stack.topic_arn.as_str());
    assert!(
        check(&report, "guardduty")["detail"]
            .as_str()
            .unwrap()
            .contains("all 17 enabled Regions"),
        "{report:#}"
    );
}

#[tokio::test]
#[ignore = "needs the local AWS: run scripts/test.sh"]
async fn doctor_fails_dry_run_set_in_the_live_environment() {
    let w = World::new().await;
    let stack = deploy(&w, &[], None).await;
    // One UpdateFunctionConfiguration: the template still says DryRun=false.
    let live = stack
        .lambda
        .get_function_configuration()
        .function_name(&stack.function)
        .send()
        .await
        .unwrap();
    let mut env = aws_sdk_lambda::types::Environment::builder();
    for (k, v) in live.environment().unwrap().variables().unwrap() {
        env = env.variables(k, if k == "KILLSWITCH_DRY_RUN" { "true" } else { v });
    }
    stack
        .lambda
        .update_function_configuration()
        .function_name(&stack.function)
        .environment(env.build())
        .send()
        .await
        .unwrap();
    let (code, report, stderr) = doctor(&admin(), &stack.function, &[]);
    assert_eq!(
        not_ok(&report),
        failed(&["dry_run"]),
        "{stderr}\n{report:#}"
    );
    assert_eq!(code, 1);
}

#[tokio::test]
#[ignore = "needs the local AWS: run scripts/test.sh"]
async fn doctor_fails_a_disabled_rule() {
    let w = World::new().await;
    let stack = deploy(&w, &[], None).await;
    aws_sdk_eventbridge::Client::new(&sdk(&admin()).await)
        .disable_rule()
        .name(&stack.rule)
        .send()
        .await
        .unwrap();
    let (code, report, stderr) = doctor(&admin(), &stack.function, &[]);
    assert_eq!(
        not_ok(&report),
        failed(&["rule", "guardduty_rule"]),
        "{stderr}\n{report:#}"
    );
    assert!(
        check(&report, "rule")["fix"]
            .as_str()
            .unwrap()
            .contains("enable-rule")
    );
    assert_eq!(code, 1);
}

#[tokio::test]
#[ignore = "needs the local AWS: run scripts/test.sh"]
async fn doctor_fails_zero_reserved_concurrency() {
    let w = World::new().await;
    let stack = deploy(&w, &[], None).await;
    set_concurrency(&stack.lambda, &stack.function, 0).await;
    let (code, report, stderr) = doctor(&admin(), &stack.function, &[]);
    assert_eq!(
        not_ok(&report),
        failed(&["concurrency"]),
        "{stderr}\n{report:#}"
    );
    assert_eq!(code, 1);
}

#[tokio::test]
#[ignore = "needs the local AWS: run scripts/test.sh"]
async fn doctor_fails_a_permission_removed_from_the_role() {
    let w = World::new().await;
    let stack = deploy(&w, &[], None).await;
    let mut policy = responder_policy(
        &stack.role.replace("-responder", ""),
        &stack.topic_arn,
        None,
    );
    let actions = policy["Statement"][0]["Action"].as_array_mut().unwrap();
    actions.retain(|a| a != "iam:UpdateAccessKey");
    put_policy(&stack.iam, &stack.role, &policy).await;
    let (code, report, stderr) = doctor(&admin(), &stack.function, &[]);
    assert_eq!(
        not_ok(&report),
        failed(&["permissions"]),
        "{stderr}\n{report:#}"
    );
    let detail = check(&report, "permissions")["detail"].as_str().unwrap();
    assert!(
        detail.contains(&format!(
            "may not make: iam:UpdateAccessKey on arn:aws:iam::{ACCOUNT}:user/"
        )) && detail.contains("(implicitDeny)"),
        "{detail}"
    );
    assert_eq!(code, 1);
}

#[tokio::test]
#[ignore = "needs the local AWS: run scripts/test.sh"]
async fn doctor_fails_a_protected_principal_nobody_expected() {
    let w = World::new().await;
    let stack = deploy(
        &w,
        &[("KILLSWITCH_PROTECTED_PRINCIPALS", "break-glass,mallory")],
        None,
    )
    .await;
    let (code, report, stderr) = doctor(
        &admin(),
        &stack.function,
        &["--expect-protected", "break-glass"],
    );
    assert_eq!(
        not_ok(&report),
        failed(&["protected_principals"]),
        "{stderr}\n{report:#}"
    );
    assert!(
        check(&report, "protected_principals")["detail"]
            .as_str()
            .unwrap()
            .contains("mallory")
    );
    assert_eq!(code, 1);
    // Without an expectation it is shown, a warning: exit 0 unless --strict.
    let (code, report, _) = doctor(&admin(), &stack.function, &[]);
    assert_eq!(
        not_ok(&report),
        [("protected_principals".to_owned(), "warn".to_owned())]
    );
    assert_eq!(code, 0);
    let (code, _, _) = doctor(&admin(), &stack.function, &["--strict"]);
    assert_eq!(code, 1);
}

#[tokio::test]
#[ignore = "needs the local AWS: run scripts/test.sh"]
async fn doctor_enters_a_member_account_as_its_member_role() {
    let w = World::new().await;
    let (member_account, member) = member_admin();
    // Doctor runs as a role the member role trusts (its ResponderRoleName).
    let doctor_role = unique("killswitch-doctor");
    let session = responder_session(&w, &doctor_role).await;
    let external_id = unique("ext");
    let member_role = unique("KillSwitchMember");
    deploy_stack(
        &member,
        "member-role.yaml",
        &[
            ("SecurityAccountId", ACCOUNT),
            ("ResponderRoleName", &doctor_role),
            ("ExternalId", &external_id),
            ("MemberRoleName", &member_role),
        ],
    )
    .await;
    let env = [
        ("KILLSWITCH_MEMBER_ROLE_NAME", member_role.as_str()),
        ("KILLSWITCH_MEMBER_EXTERNAL_ID", external_id.as_str()),
        ("KILLSWITCH_MEMBER_ACCOUNTS", member_account.as_str()),
    ];
    let stack = deploy(&w, &env, Some((&member_role, &member_account))).await;
    let (code, report, stderr) = doctor(&session, &stack.function, &[]);
    // member-role.yaml grants neither GuardDuty reads nor SimulatePrincipalPolicy: warnings.
    assert_eq!(
        not_ok(&report),
        [
            ("guardduty".to_owned(), "warn".to_owned()),
            ("permissions".to_owned(), "warn".to_owned())
        ],
        "{stderr}\n{report:#}"
    );
    assert_eq!(code, 0);
    let entered = check(&report, "member_role");
    assert_eq!(entered["subject"], member_account.as_str());
    assert!(
        entered["detail"].as_str().unwrap().contains(&format!(
            "run as arn:aws:sts::{member_account}:assumed-role/{member_role}/killswitch-doctor"
        )),
        "{entered}"
    );
    // As anyone the member role does not trust, the entry is not known: a warning.
    let (_, report, _) = doctor(&admin(), &stack.function, &[]);
    assert_eq!(
        check(&report, "member_role")["status"],
        "warn",
        "{report:#}"
    );
}
