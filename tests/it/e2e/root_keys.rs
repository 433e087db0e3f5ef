//! Root access keys on the local AWS: a root key of an account the organization manages (the
//! function's own), the GuardDuty finding on it, and Organizations' centralized root access
//! (quarantine-role.yaml plus root-access-role.yaml in the management account). Forged: nothing;
//! by default: the manual steps; with `KILLSWITCH_ROOT_KEYS=delete`: deleted through
//! `sts:AssumeRoot`, and refused from then on.

use super::quarantine::quarantine_deployed;
use super::*;

const ACCOUNT: &str = "123456789012";

/// A root access key of ACCOUNT, as its root user would create it.
fn plant_root_key() -> Key {
    let answer = control("/_killswitch/root/keys", &json!({"account": ACCOUNT}));
    Key {
        id: answer["AccessKeyId"]
            .as_str()
            .unwrap_or_else(|| panic!("{answer}"))
            .to_owned(),
        secret: answer["SecretAccessKey"].as_str().unwrap().to_owned(),
        token: None,
    }
}

fn root_keys_listed() -> Vec<String> {
    let answer = control("/_killswitch/root/keys/list", &json!({"account": ACCOUNT}));
    answer["keys"]
        .as_array()
        .unwrap_or_else(|| panic!("{answer}"))
        .iter()
        .filter_map(|k| k["id"].as_str().map(str::to_owned))
        .collect()
}

/// Who STS says the key is, or the error code it refuses the key with.
async fn caller(key: &Key) -> Result<String, String> {
    aws_sdk_sts::Client::new(&sdk(key).await)
        .get_caller_identity()
        .send()
        .await
        .map(|o| o.arn().unwrap_or_default().to_owned())
        .map_err(|e| {
            use aws_sdk_sts::error::ProvideErrorMetadata;
            e.code().map_or_else(
                || format!("{}", aws_sdk_sts::error::DisplayErrorContext(&e)),
                str::to_owned,
            )
        })
}

#[tokio::test]
#[ignore = "needs the local AWS: run scripts/test.sh"]
async fn a_root_key_is_deleted_through_a_root_session_only_when_asked_and_on_a_raised_finding() {
    let w = World::new().await;
    let (management, mut env) = quarantine_deployed(&w).await;
    let role_arn = env
        .iter()
        .find(|(k, _)| *k == "KILLSWITCH_QUARANTINE_ROLE_ARN")
        .map(|(_, v)| v.clone())
        .unwrap();
    let role_name = role_arn.rsplit_once('/').unwrap().1.to_owned();
    deployment::deploy_stack(
        &management,
        "root-access-role.yaml",
        &[("QuarantineRoleName", &role_name)],
    )
    .await;
    let key = plant_root_key();
    let root_arn = format!("arn:aws:iam::{ACCOUNT}:root");
    assert_eq!(caller(&key).await, Ok(root_arn.clone()));
    let payload: Value = serde_json::from_str(
        &unraised_fixture(
            "guardduty-root-key-malicious-ip-finding.json",
            &key.id,
            "Root",
        )
        .to_string()
        .replace("AKIAI44QH8DHBEXAMPLE", &key.id),
    )
    .unwrap();
    let deleting = || {
        let mut e = env.clone();
        e.push(("KILLSWITCH_ROOT_KEYS", "delete".into()));
        e
    };

    // 1. GuardDuty never raised it: rejected, no root session.
    let (code, report, stderr) = w.respond_with(&payload, &[], &deleting());
    assert_eq!(code, 2, "{stderr}\n{report}");
    assert_eq!(report["reports"][0]["status"], "rejected", "{report}");
    assert_eq!(
        caller(&key).await,
        Ok(root_arn.clone()),
        "a forged finding deleted the key"
    );

    // 2. Raised, by default: refused with the manual steps; the key is untouched.
    raise(&payload);
    let (_, report, stderr) = w.respond_with(&payload, &[], &env);
    let r = &report["reports"][0];
    assert_eq!(r["status"], "refused", "{stderr}\n{report}");
    assert!(r.to_string().contains("aws sts assume-root"), "{r}");
    assert!(root_keys_listed().contains(&key.id));

    // 3. Raised, with delete: deleted through AssumeRoot; STS refuses the key from then on.
    env = deleting();
    let (code, report, stderr) = w.respond_with(&payload, &[], &env);
    let r = &report["reports"][0];
    assert_eq!(code, 0, "{stderr}\n{report}");
    assert_eq!(r["status"], "contained", "{r}");
    let said = r["summary"].as_str().unwrap();
    assert!(
        said.contains(&format!(
            "DELETED root access key {} of account {ACCOUNT}",
            key.id
        )),
        "{said}"
    );
    assert!(r.to_string().contains("sts:AssumeRoot"), "{r}");
    assert!(!root_keys_listed().contains(&key.id));
    // moto answers STS for an unknown key in IAM's error shape, which the STS SDK reads without
    // a code: the code is in the body.
    let refused = caller(&key)
        .await
        .expect_err("the deleted root key still works");
    assert!(refused.contains("InvalidClientTokenId"), "{refused}");
}
