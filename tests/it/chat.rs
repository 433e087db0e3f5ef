//! The chat form: every notice also goes to the chat topic as the custom-notification card AWS's
//! chat integration renders, in one thread per key, within its limits, carrying the facts; the
//! email text is unchanged, and a chat failure holds up nothing.

use chrono::{TimeDelta, Utc};
use killswitch::ports::KeyStatus;
use killswitch::report::chat::{
    self, Form, MAX_DESCRIPTION, MAX_KEYWORD, MAX_KEYWORDS, MAX_NEXT_STEP, MAX_NEXT_STEPS,
    MAX_TITLE,
};
use killswitch::report::{Notification, OpenItem, OpenKind, Status};
use serde_json::{Value, json};

use crate::support::*;

fn with_chat(cloud: FakeCloud) -> FakeCloud {
    cloud.state.lock().unwrap().chat_topic = true;
    cloud
}

fn cards(cloud: &FakeCloud) -> Vec<Value> {
    cloud
        .state
        .lock()
        .unwrap()
        .chat_cards
        .iter()
        .map(|c| serde_json::from_str(c).unwrap())
        .collect()
}

/// The documented schema, and our limits on every field.
fn assert_card_shape(card: &Value) {
    assert_eq!(card["version"], "1.0", "{card}");
    assert_eq!(card["source"], "custom", "{card}");
    let content = &card["content"];
    assert_eq!(content["textType"], "client-markdown", "{card}");
    let title = content["title"].as_str().unwrap();
    assert!(
        !title.is_empty() && title.chars().count() <= MAX_TITLE,
        "{title}"
    );
    let description = content["description"].as_str().unwrap();
    assert!(description.chars().count() <= MAX_DESCRIPTION, "{card}");
    let steps = content["nextSteps"].as_array().unwrap();
    assert!(!steps.is_empty() && steps.len() <= MAX_NEXT_STEPS, "{card}");
    for s in steps {
        assert!(s.as_str().unwrap().chars().count() <= MAX_NEXT_STEP, "{s}");
    }
    let keywords = content["keywords"].as_array().unwrap();
    assert!(keywords.len() <= MAX_KEYWORDS, "{card}");
    for k in keywords {
        assert!(k.as_str().unwrap().chars().count() <= MAX_KEYWORD, "{k}");
    }
    assert!(card["metadata"]["threadId"].as_str().unwrap().len() > 10);
}

#[tokio::test]
async fn every_notice_also_goes_to_chat_as_one_thread_with_the_facts() {
    let cloud = with_chat(FakeCloud::with_user("alice", FIXTURE_KEY));
    cloud.add_events(
        "us-east-1",
        vec![api_call(
            "CreateUser",
            Utc::now() - TimeDelta::minutes(3),
            None,
        )],
    );
    let a = lambda(cloud);
    let response = run(&a, event("guardduty-iam-user-finding.json")).await;
    let r = &response.reports[0];
    assert_eq!(r.status, Status::Contained);

    let emails = a.cloud.published();
    let cards = cards(&a.cloud);
    assert!(emails.len() >= 2, "{emails:?}");
    assert_eq!(cards.len(), emails.len(), "one card per notice");
    // The email text stays plain text.
    for (_, body) in &emails {
        assert!(serde_json::from_str::<Value>(body).is_err(), "{body}");
    }
    let thread = format!("killswitch-{ACCOUNT}-{FIXTURE_KEY}");
    for (card, (subject, _)) in cards.iter().zip(&emails) {
        assert_card_shape(card);
        assert_eq!(card["metadata"]["threadId"], thread.as_str(), "{card}");
        assert_eq!(card["content"]["title"], subject.as_str());
    }
    assert_eq!(cards[0]["metadata"]["eventType"], "killswitch.contained");
    let full = cards.last().unwrap();
    assert_eq!(full["metadata"]["eventType"], "killswitch.report");
    let d = full["content"]["description"].as_str().unwrap();
    for fact in [
        FIXTURE_KEY,
        "IAM user alice",
        ACCOUNT,
        "deactivate_key Done",
        "deny_user Done",
        "Verified: HOLDS",
        "STILL OPEN (1)",
        "killswitch restore --access-key-id",
    ] {
        assert!(d.contains(fact), "{fact} missing from {d}");
    }
    let steps = full["content"]["nextSteps"].as_array().unwrap();
    assert!(
        steps
            .iter()
            .any(|s| s.as_str().unwrap().contains("rotate every place")),
        "{steps:?}"
    );
    assert!(matches!(r.chat, Some(Notification::Sent { .. })), "{r:?}");
}

#[tokio::test]
async fn without_a_chat_topic_nothing_goes_to_chat() {
    let a = lambda(FakeCloud::with_user("alice", FIXTURE_KEY));
    let response = run(&a, event("guardduty-iam-user-finding.json")).await;
    assert!(response.reports[0].chat.is_none());
    assert!(cards(&a.cloud).is_empty());
    assert!(!a.cloud.published().is_empty());
}

#[tokio::test]
async fn sns_down_for_chat_and_email_never_holds_up_containment() {
    let cloud = with_chat(FakeCloud::with_user("alice", FIXTURE_KEY));
    cloud.fail("sns:Publish", "InternalError");
    let a = lambda(cloud);
    let response = run(&a, event("guardduty-iam-user-finding.json")).await;
    let r = &response.reports[0];
    assert_eq!(r.status, Status::Contained);
    assert_eq!(
        a.cloud.key_state("alice", FIXTURE_KEY),
        Some(KeyStatus::Inactive)
    );
    assert!(matches!(r.chat, Some(Notification::Failed { .. })), "{r:?}");
    assert!(matches!(r.notification, Notification::Failed { .. }));
}

#[tokio::test]
async fn what_the_attacker_wrote_cannot_mention_link_or_break_the_card() {
    let a = app(FakeCloud::with_user("alice", FIXTURE_KEY));
    let response = run(&a, event("guardduty-iam-user-finding.json")).await;
    let mut r = response.reports[0].clone();
    let hostile = "<!channel> *urgent* [reset here](https://evil.example) `rm -rf` @here\u{202E}";
    r.summary = hostile.into();
    r.principal = format!("IAM user {hostile}");
    r.open = (0..40)
        .map(|i| OpenItem {
            kind: OpenKind::NewUser,
            what: format!("{i}: {hostile} {}", "x".repeat(1200)),
            commands: vec![format!("aws iam delete-user --user-name u{i}")],
        })
        .collect();
    r.next_steps = (0..12)
        .map(|i| format!("step {i} {}", "y".repeat(900)))
        .collect();
    for form in [
        Form::Short,
        Form::Full,
        Form::StillTrying { was: 2, now: 9 },
    ] {
        let card: Value = serde_json::from_str(&chat::card(&r, &"T".repeat(400), form)).unwrap();
        assert_card_shape(&card);
        let text = card["content"].to_string();
        for bad in ["<!channel>", "](", "*urgent*", "`rm", "@here", "\u{202E}"] {
            assert!(!text.contains(bad), "{bad} in {text}");
        }
        let d = card["content"]["description"].as_str().unwrap();
        assert!(d.contains("cut to fit the chat card"), "{d}");
        assert!(d.contains("STILL OPEN (40)"), "{d}");
        // Our own commands stay pasteable.
        assert!(d.contains("`aws iam delete-user --user-name u0`"), "{d}");
    }
}

#[tokio::test]
async fn a_still_trying_notice_is_a_card_in_the_same_thread() {
    let a = lambda(with_chat(FakeCloud::with_user("alice", FIXTURE_KEY)));
    let payload = event("guardduty-iam-user-finding.json");
    deliver(&a, payload.clone()).await;
    let mut again = payload;
    again["detail"]["service"]["count"] = json!(7);
    again["detail"]["updatedAt"] = json!("2026-11-23T09:10:02.114Z");
    deliver(&a, again).await;
    let cards = cards(&a.cloud);
    let last = cards.last().unwrap();
    assert_eq!(
        last["metadata"]["eventType"], "killswitch.still-trying",
        "{cards:?}"
    );
    assert_eq!(
        last["metadata"]["threadId"],
        cards[0]["metadata"]["threadId"]
    );
    assert!(
        last["content"]["description"]
            .as_str()
            .unwrap()
            .starts_with("*STILL TRYING*")
    );
}

#[tokio::test]
async fn restore_notices_reach_the_same_chat_thread() {
    let a = lambda(with_chat(FakeCloud::with_user("alice", FIXTURE_KEY)));
    run(&a, event("guardduty-iam-user-finding.json")).await;
    let before = cards(&a.cloud).len();
    restore_alice(
        &a,
        &a.config,
        "<!channel> oncall",
        "[click](https://evil.example)",
    )
    .await;
    let cards = cards(&a.cloud);
    let restore_cards = &cards[before..];
    assert_eq!(
        restore_cards.len(),
        2,
        "RESTORING and RESTORED: {restore_cards:?}"
    );
    for card in restore_cards {
        assert_card_shape(card);
        assert_eq!(
            card["metadata"]["threadId"],
            format!("killswitch-{ACCOUNT}-{FIXTURE_KEY}")
        );
        assert_eq!(card["metadata"]["eventType"], "killswitch.restore");
        let text = card["content"].to_string();
        assert!(
            !text.contains("<!channel>") && !text.contains("]("),
            "{text}"
        );
    }
    assert!(
        restore_cards[1]["content"]["title"]
            .as_str()
            .unwrap()
            .contains("RESTORED")
    );
}
