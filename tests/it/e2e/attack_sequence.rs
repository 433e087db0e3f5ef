//! GuardDuty's `AttackSequence:IAM/CompromisedCredentials` on the local AWS: raised by the
//! GuardDuty double, read back through GetFindings, and every credential it names contained.

use super::*;

#[tokio::test]
#[ignore = "needs the local AWS: run scripts/test.sh"]
async fn an_attack_sequence_contains_every_credential_it_names() {
    let w = World::new().await;
    let alice = unique("seq-alice");
    let bob = unique("seq-bob");
    let perms = ["iam:List*", "iam:Get*", "sts:GetCallerIdentity"];
    let leaked = create_user_with_key(&alice, &perms).await;
    let second = create_user_with_key(&bob, &perms).await;
    assert_eq!(attacker_call(&leaked).await, "ok");
    assert_eq!(attacker_call(&second).await, "ok");

    // The fixture names alice's key as an actor's credential and as an ACCESS_KEY resource;
    // bob's key is added as a second actor's credential only.
    let mut payload =
        unraised_fixture("guardduty-attack-sequence-finding.json", &leaked.id, &alice);
    payload["detail"]["service"]["detection"]["sequence"]["actors"]
        .as_array_mut()
        .unwrap()
        .push(
            json!({"id": "actor-2", "user": {"name": bob, "uid": "AIDAI44QH8DHBEXAMPLE",
            "type": "IAMUser", "credentialUid": second.id}}),
        );
    raise(&payload);

    let (code, report, stderr) = w.respond(&payload, &[]);
    assert_eq!(code, 0, "{stderr}\n{report}");
    let reports = report["reports"].as_array().unwrap();
    assert_eq!(reports.len(), 2, "{report}");
    for r in reports {
        assert_eq!(r["status"], "contained", "{r}");
        assert_eq!(r["verification"]["holds"], true, "{r}");
    }
    for (user, key) in [(&alice, &leaked), (&bob, &second)] {
        assert_eq!(
            w.key_status(user, &key.id).await,
            Some(StatusType::Inactive),
            "{user}"
        );
        let decoded = w
            .policy(PolicyTarget::User(user.clone()), policy::USER_POLICY_NAME)
            .await;
        assert!(policy::is_deny_all(&decoded), "{user}: {decoded}");
        assert_eq!(
            attacker_call(key).await,
            "InvalidClientTokenId",
            "{user}: key still accepted"
        );
    }
}

#[tokio::test]
#[ignore = "needs the local AWS: run scripts/test.sh"]
async fn an_attack_sequence_guardduty_never_raised_changes_nothing() {
    let w = World::new().await;
    let user = unique("seq-forged");
    let key =
        create_user_with_key(&user, &["iam:List*", "iam:Get*", "sts:GetCallerIdentity"]).await;
    assert_eq!(attacker_call(&key).await, "ok");
    let payload = unraised_fixture("guardduty-attack-sequence-finding.json", &key.id, &user);

    // REJECTED exits 2, as for any forged finding; nothing was written.
    let (code, report, stderr) = w.respond(&payload, &[]);
    assert_eq!(code, 2, "{stderr}\n{report}");
    assert_eq!(report["reports"][0]["status"], "rejected", "{report}");
    assert_eq!(w.key_status(&user, &key.id).await, Some(StatusType::Active));
    assert_eq!(attacker_call(&key).await, "ok");
}
