//! Chat cards and the Security Hub workflow reach their services.

use super::*;

/// The local Security Hub's finding `arn`, and the whole of what the harness recorded.
fn hub_finding(arn: &str) -> (Value, Value) {
    let hub = control_get("/_killswitch/securityhub/findings");
    let finding = hub["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["Id"] == arn)
        .unwrap()
        .clone();
    (finding, hub)
}

/// The chat topic got cards (no subject), one thread, the full report among them.
async fn chat_cards_of_one_thread(chat_queue: &str, key: &str) {
    let sandbox = sandbox().await;
    let mut cards = Vec::new();
    for _ in 0..6 {
        if let Some((_, message)) = sandbox.receive(chat_queue, 2).await.unwrap() {
            cards.push(serde_json::from_str::<Value>(&message).unwrap());
            if cards.len() == 2 {
                break;
            }
        }
    }
    assert_eq!(cards.len(), 2, "{cards:?}");
    for card in &cards {
        assert_eq!(card["version"], "1.0");
        assert_eq!(card["source"], "custom");
        assert_eq!(card["content"]["textType"], "client-markdown");
        assert_eq!(
            card["metadata"]["threadId"],
            format!("killswitch-123456789012-{key}")
        );
    }
    let full = cards
        .iter()
        .find(|c| c["metadata"]["eventType"] == "killswitch.report")
        .unwrap();
    let description = full["content"]["description"].as_str().unwrap();
    assert!(description.contains("Verified: HOLDS"), "{description}");
    assert!(description.contains(key), "{description}");
}

/// Security Hub: NOTIFIED with our note, through the real SDK call, never SUPPRESSED.
fn the_finding_is_notified(finding_arn: &str, finding_id: &str, key: &str) {
    let (finding, hub) = hub_finding(finding_arn);
    assert_eq!(finding["Workflow"]["Status"], "NOTIFIED", "{finding}");
    let note = finding["Note"]["Text"].as_str().unwrap();
    assert!(note.contains(key) && note.contains("verified at"), "{note}");
    assert_eq!(finding["Note"]["UpdatedBy"], "killswitch");
    assert!(
        hub["calls"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["body"].to_string().contains(finding_id))
            .all(|c| c["body"]["Workflow"]["Status"] != "SUPPRESSED"),
        "{hub}"
    );
}

#[tokio::test]
#[ignore = "needs the local AWS: run scripts/test.sh"]
async fn chat_cards_and_the_security_hub_workflow_reach_their_services() {
    let w = World::new().await;
    let user = unique("leaky");
    let leaked = create_user_with_key(&user, &["iam:List*"]).await;
    // A finding of its own (parallel tests): GuardDuty's ARN is its ID in Security Hub.
    let finding_id = unique("finding");
    let finding_arn = format!(
        "arn:aws:guardduty:us-east-1:123456789012:detector/12abc34d567e8fa901bc2d34e56789f0/finding/{finding_id}"
    );
    let mut event = fixture("guardduty-iam-user-finding.json", &leaked.id, &user);
    event["detail"]["id"] = json!(finding_id);
    event["detail"]["arn"] = json!(finding_arn);
    raise(&event);
    control(
        "/_killswitch/securityhub/findings",
        &json!({"account": "123456789012", "region": "us-east-1", "Id": finding_arn,
                "ProductArn": "arn:aws:securityhub:us-east-1::product/aws/guardduty"}),
    );
    let (chat_topic, chat_queue) = sandbox().await.create_inbox(&unique("chat")).await.unwrap();
    // The incident record: the restore finds the finding there.
    let (_, _, table) = follow_up_queue_and_table(&w).await;

    let (code, report, stderr) = w.respond_with(
        &event,
        &[],
        &[
            ("KILLSWITCH_CHAT_TOPIC_ARN", chat_topic),
            ("KILLSWITCH_INCIDENT_TABLE", table.clone()),
        ],
    );
    assert_eq!(code, 0, "{stderr}\n{report}");
    let r = &report["reports"][0];
    assert_eq!(r["status"], "contained", "{r}");
    assert_eq!(r["chat"]["state"], "sent", "{r}");
    assert_eq!(attacker_call(&leaked).await, "InvalidClientTokenId");

    // The chat topic got cards (no subject), one thread; the email topic kept its text.
    chat_cards_of_one_thread(&chat_queue, &leaked.id).await;
    let (subject, message) = w.inbox().await;
    assert!(subject.starts_with("[killswitch] CONTAINED"), "{subject}");
    assert!(serde_json::from_str::<Value>(&message).is_err());

    // Security Hub: NOTIFIED with our note, through the real SDK call.
    the_finding_is_notified(&finding_arn, &finding_id, &leaked.id);

    // Restore adds a note; the workflow stays NOTIFIED.
    let out = w.run(
        &[
            "restore",
            "--access-key-id",
            &leaked.id,
            "--requested-by",
            "oncall@example.com",
            "--reason",
            "drill over",
            "--yes",
        ],
        &[("KILLSWITCH_INCIDENT_TABLE", &table)],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (finding, _) = hub_finding(&finding_arn);
    assert_eq!(finding["Workflow"]["Status"], "NOTIFIED");
    assert_eq!(finding["Notes"].as_array().unwrap().len(), 2, "{finding}");
    assert!(
        finding["Note"]["Text"]
            .as_str()
            .unwrap()
            .contains("lifted by oncall@example.com"),
        "{finding}"
    );
}
