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

// On a phone: every card reads on its own, without the email next to it.

/// The card's description, line by line.
fn lines(card: &Value) -> Vec<String> {
    card["content"]["description"]
        .as_str()
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn steps(card: &Value) -> Vec<String> {
    card["content"]["nextSteps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn the_first_card_says_what_happened_after_its_headline() {
    // The trigger's own invocation: the short notice only (the report follows from the queue).
    let a = lambda(with_chat(FakeCloud::with_user("alice", FIXTURE_KEY)));
    deliver(&a, event("guardduty-iam-user-finding.json")).await;
    let cards = cards(&a.cloud);
    assert_eq!(cards.len(), 1, "{cards:?}");
    let first = &cards[0];
    assert_card_shape(first);
    assert_eq!(first["metadata"]["eventType"], "killswitch.contained");
    let headline = &lines(first)[0];
    let said = headline
        .strip_prefix("*CONTAINED*: ")
        .unwrap_or_else(|| panic!("{headline}"));
    assert!(said.contains("contained"), "{headline}");
    assert!(said.contains("read back in place"), "{headline}");
    // Read inside IAM's propagation window: never "holds" yet.
    assert!(!said.contains("holds"), "{headline}");
}

#[tokio::test]
async fn the_undo_line_points_nowhere_the_card_does_not_go() {
    let a = app(with_chat(FakeCloud::with_user("alice", FIXTURE_KEY)));
    run(&a, event("guardduty-iam-user-finding.json")).await;
    let full = cards(&a.cloud).pop().unwrap();
    let undo = lines(&full)
        .into_iter()
        .find(|l| l.starts_with("Undo: "))
        .unwrap_or_else(|| panic!("{full}"));
    assert!(
        undo.starts_with(&format!(
            "Undo: `killswitch restore --access-key-id {FIXTURE_KEY} --requested-by YOU --reason WHY`"
        )),
        "{undo}"
    );
    // Nothing is "below" in a card; the raw commands are in the email.
    assert!(!undo.contains("below") && !undo.contains("above"), "{undo}");
    assert!(undo.contains("raw commands"), "{undo}");
    assert!(undo.contains("email report"), "{undo}");
}

#[tokio::test]
async fn restore_cards_keep_the_tag_the_address_and_the_key() {
    let a = lambda(with_chat(FakeCloud::with_user("alice", FIXTURE_KEY)));
    run(&a, event("guardduty-iam-user-finding.json")).await;
    let before = cards(&a.cloud).len();
    restore_alice(&a, &a.config, "alice@example.com", "rotated").await;
    let cards = cards(&a.cloud);
    let restore_cards = &cards[before..];
    assert_eq!(restore_cards.len(), 2, "{restore_cards:?}");
    for card in restore_cards {
        assert_card_shape(card);
        let title = card["content"]["title"].as_str().unwrap();
        assert!(title.starts_with("[killswitch] RESTOR"), "{title}");
        assert!(title.contains(FIXTURE_KEY), "{title}");
        // Readable, and still no @mention (a fullwidth at sign is not Slack's `@`).
        assert!(title.contains("alice\u{FF20}example"), "{title}");
        assert!(!title.contains('?') && !title.contains('@'), "{title}");
        let description = card["content"]["description"].as_str().unwrap();
        assert!(
            description.contains("alice\u{FF20}example"),
            "{description}"
        );
        assert!(!description.contains('@'), "{description}");
        let steps = steps(card);
        assert!(
            steps.iter().any(|s| s.contains(&format!(
                "killswitch respond --access-key-id {FIXTURE_KEY} --reason"
            ))),
            "{steps:?}"
        );
        assert!(!steps.iter().any(|s| s.contains(" KEY ")), "{steps:?}");
    }
}

#[test]
fn a_refused_restore_card_says_the_key_stays_contained_and_how_to_go_on() {
    let body = "A restore of AKIAIOSFODNN7EXAMPLE was REFUSED: nothing was changed.\n\nKey:    AKIAIOSFODNN7EXAMPLE\nBy:     bob@example.com\n\nWhy:\n  - user backdoor still has an Active access key\n";
    let card: Value = serde_json::from_str(&chat::notice_card(
        Some(ACCOUNT),
        FIXTURE_KEY,
        &format!("[killswitch] RESTORE REFUSED: {FIXTURE_KEY} by bob@example.com"),
        "restore-refused",
        body,
    ))
    .unwrap();
    assert_card_shape(&card);
    let title = card["content"]["title"].as_str().unwrap();
    assert_eq!(
        title,
        format!("[killswitch] RESTORE REFUSED: {FIXTURE_KEY} by bob\u{FF20}example(.)com")
    );
    let steps = steps(&card).join("\n");
    // Not "contain the key again": nothing was lifted.
    assert!(!steps.contains("contain the key again"), "{steps}");
    assert!(steps.contains("stays contained"), "{steps}");
    assert!(
        steps.contains(&format!("killswitch restore --access-key-id {FIXTURE_KEY}")),
        "{steps}"
    );
    assert!(steps.contains("--force"), "{steps}");
}

#[tokio::test]
async fn long_titles_keep_the_outcome_and_the_key_and_shorten_the_principal() {
    let a = app(FakeCloud::with_user("alice", FIXTURE_KEY));
    let mut r = run(&a, event("guardduty-iam-user-finding.json"))
        .await
        .reports[0]
        .clone();
    // IAM's longest names (64 characters), an Identity Center user named by address.
    let role = format!("AWSReservedSSO_{}_0123456789abcdef", "P".repeat(32));
    let session = format!("{}@example.com", "a".repeat(52));
    r.principal = format!("role {role} (session {session})");
    r.open = vec![OpenItem {
        kind: OpenKind::NewUser,
        what: "new IAM user backdoor".into(),
        commands: vec![],
    }];
    for form in [Form::Short, Form::Full] {
        let card: Value = serde_json::from_str(&chat::card(&r, "unused", form)).unwrap();
        assert_card_shape(&card);
        let title = card["content"]["title"].as_str().unwrap();
        // The SNS subject's limit (under 100) is not the card's.
        assert!(title.chars().count() > 100, "{title}");
        assert!(title.starts_with("[killswitch] CONTAINED"), "{title}");
        assert!(title.contains(FIXTURE_KEY), "{title}");
        assert!(title.contains(&role), "{title}");
        assert!(title.contains("\u{FF20}example"), "{title}");
        assert!(!title.contains('?'), "{title}");
    }
    let full: Value = serde_json::from_str(&chat::card(&r, "unused", Form::Full)).unwrap();
    let title = full["content"]["title"].as_str().unwrap();
    assert!(title.contains("1 new user"), "{title}");
    assert!(title.ends_with(&format!(" acct {ACCOUNT}")), "{title}");

    // A principal longer than any title: the outcome, the key and the account stay whole; the
    // principal gives way, and says so.
    r.principal = format!("role {} (session x)", "R".repeat(600));
    r.status = Status::Contested;
    for form in [Form::Short, Form::Full] {
        let card: Value = serde_json::from_str(&chat::card(&r, "unused", form)).unwrap();
        assert_card_shape(&card);
        let title = card["content"]["title"].as_str().unwrap();
        assert!(
            title.starts_with("[killswitch] CONTESTED, re-applied"),
            "{title}"
        );
        assert!(title.contains(FIXTURE_KEY), "{title}");
        assert!(title.contains("RRRR…)"), "{title}");
        if form == Form::Full {
            assert!(title.ends_with(&format!(" acct {ACCOUNT}")), "{title}");
        }
    }
}

#[tokio::test]
async fn a_rejected_card_says_what_to_do_next() {
    let cloud = with_chat(FakeCloud::with_user("alice", FIXTURE_KEY));
    cloud
        .state
        .lock()
        .unwrap()
        .key_account
        .insert(FIXTURE_KEY.into(), "999999999999".into());
    let a = app(cloud);
    let response = run(&a, event("guardduty-iam-user-finding.json")).await;
    assert_eq!(response.reports[0].status, Status::Rejected);
    let card = cards(&a.cloud).pop().unwrap();
    assert_card_shape(&card);
    let steps = steps(&card).join("\n");
    assert!(steps.contains("Nothing was changed"), "{steps}");
    assert!(
        steps.contains(&format!("killswitch respond --access-key-id {FIXTURE_KEY}")),
        "{steps}"
    );
    assert!(steps.contains("KILLSWITCH_MEMBER_ACCOUNTS"), "{steps}");
}
