//! Security Hub's `Findings Imported V2` (OCSF) on the local AWS: read back at GuardDuty, where
//! it was raised (the GuardDuty double's GetFindings), before any write.

use super::*;

/// The V2 fixture for `key` on `user`, with a GuardDuty finding ID of its own, and the
/// GuardDuty finding it came from (what the read-back finds).
fn v2_payload(key: &str, user: &str) -> (Value, Value) {
    let mut payload = unraised_fixture("securityhub-v2-guardduty-user-finding.json", key, user);
    let id = finding_id_for("securityhub-v2-guardduty-user-finding.json", key, user);
    let f = &mut payload["detail"]["findings"][0];
    let arn = f["finding_info"]["uid"].as_str().unwrap().to_owned();
    let arn = format!("{}/finding/{id}", arn.rsplit_once("/finding/").unwrap().0);
    f["finding_info"]["uid"] = json!(arn);
    let copy = json!({
        "id": id, "arn": arn, "type": f["finding_info"]["types"][0],
        "accountId": f["cloud"]["account"]["uid"], "region": f["cloud"]["region"],
        "resource": {"resourceType": "AccessKey", "accessKeyDetails": {
            "accessKeyId": key, "principalId": "AIDACKCEVSQ6C2EXAMPLE",
            "userName": user, "userType": "IAMUser"}},
        "service": {},
    });
    (payload, copy)
}

#[tokio::test]
#[ignore = "needs the local AWS: run scripts/test.sh"]
async fn a_v2_finding_guardduty_holds_is_contained() {
    let w = World::new().await;
    let user = unique("v2-leaky");
    let leaked =
        create_user_with_key(&user, &["iam:List*", "iam:Get*", "sts:GetCallerIdentity"]).await;
    assert_eq!(attacker_call(&leaked).await, "ok");
    let (payload, copy) = v2_payload(&leaked.id, &user);
    let answer = control("/_killswitch/guardduty/findings", &json!({"finding": copy}));
    assert!(answer.get("raised").is_some(), "{answer}");

    let (code, report, stderr) = w.respond(&payload, &[]);
    assert_eq!(code, 0, "{stderr}\n{report}");
    let r = &report["reports"][0];
    assert_eq!(r["status"], "contained", "{r}");
    assert_eq!(r["verification"]["holds"], true, "{r}");
    assert!(
        r.to_string().contains("read back at GuardDuty detector"),
        "{r}"
    );
    assert_eq!(
        w.key_status(&user, &leaked.id).await,
        Some(StatusType::Inactive)
    );
    assert_eq!(attacker_call(&leaked).await, "InvalidClientTokenId");
}

#[tokio::test]
#[ignore = "needs the local AWS: run scripts/test.sh"]
async fn a_v2_finding_guardduty_never_raised_changes_nothing() {
    let w = World::new().await;
    let user = unique("v2-forged");
    let key =
        create_user_with_key(&user, &["iam:List*", "iam:Get*", "sts:GetCallerIdentity"]).await;
    assert_eq!(attacker_call(&key).await, "ok");
    let (payload, _) = v2_payload(&key.id, &user);

    let (code, report, stderr) = w.respond(&payload, &[]);
    // A rejected payload is bad input: exit 2.
    assert_eq!(code, 2, "{stderr}\n{report}");
    assert_eq!(report["reports"][0]["status"], "rejected", "{report}");
    assert_eq!(w.key_status(&user, &key.id).await, Some(StatusType::Active));
    assert_eq!(attacker_call(&key).await, "ok");
}
