//! Lambda mode against a fake Runtime API: reports and typed errors, and the hand-off of the
//! follow-through to the queue.

use super::*;

/// A minimal Lambda Runtime API: hands out `events` one per `/next`, records what the function
/// posts back, and holds the next `/next` open once the events are used up.
fn fake_runtime_api(events: Vec<Value>) -> (String, std::sync::mpsc::Receiver<(String, Value)>) {
    let (feed, source) = std::sync::mpsc::channel();
    // Handed out from the end, as before: the last event first.
    for (i, e) in events.into_iter().enumerate().rev() {
        feed.send((i, e)).unwrap();
    }
    drop(feed);
    fed_runtime_api(source)
}

/// A Lambda Runtime API that hands out the events sent to `source` (request id `req-<n>`),
/// waiting for the next one like Lambda does, and reports each posted response or error.
fn fed_runtime_api(
    source: std::sync::mpsc::Receiver<(usize, Value)>,
) -> (String, std::sync::mpsc::Receiver<(String, Value)>) {
    use std::io::BufRead;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (tx, rx) = std::sync::mpsc::channel();
    let events = std::sync::Arc::new(std::sync::Mutex::new(source));
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let tx = tx.clone();
            let events = events.clone();
            std::thread::spawn(move || {
                let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
                let mut stream = stream;
                loop {
                    let mut request_line = String::new();
                    if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
                        return;
                    }
                    let mut length = 0usize;
                    loop {
                        let mut h = String::new();
                        reader.read_line(&mut h).unwrap();
                        if h == "\r\n" || h.is_empty() {
                            break;
                        }
                        if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                            length = v.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0; length];
                    reader.read_exact(&mut body).unwrap();
                    let path = request_line
                        .split_whitespace()
                        .nth(1)
                        .unwrap_or("")
                        .to_owned();
                    if path.ends_with("/invocation/next") {
                        let next = { events.lock().unwrap().recv().ok() };
                        let Some((i, event)) = next else {
                            std::thread::sleep(std::time::Duration::from_secs(600));
                            return;
                        };
                        let payload = event.to_string();
                        let deadline = std::time::SystemTime::now()
                            .duration_since(std::time::UNIX_EPOCH)
                            .unwrap()
                            .as_millis()
                            + 60_000;
                        write!(
                            stream,
                            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nLambda-Runtime-Aws-Request-Id: req-{i}\r\nLambda-Runtime-Deadline-Ms: {deadline}\r\nLambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:123456789012:function:killswitch\r\nLambda-Runtime-Trace-Id: Root=1-00000000-000000000000000000000000\r\nContent-Length: {}\r\n\r\n{payload}",
                            payload.len()
                        )
                        .unwrap();
                    } else {
                        let value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                        tx.send((path, value)).unwrap();
                        write!(
                            stream,
                            "HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\n{{}}"
                        )
                        .unwrap();
                    }
                }
            });
        }
    });
    (addr, rx)
}

#[tokio::test]
#[ignore = "needs the local AWS: run scripts/test.sh"]
async fn lambda_mode_answers_the_runtime_api_with_reports_and_typed_errors() {
    let w = World::new().await;
    let user = unique("leaky");
    let leaked = create_user_with_key(&user, &["iam:List*"]).await;
    // Popped from the end: the finding first, then a bad payload.
    let events = vec![
        json!({"access_key_id": "not-a-key", "reason": "r", "requested_by": "me"}),
        fixture("guardduty-iam-user-finding.json", &leaked.id, &user),
    ];
    let (runtime, posted) = fake_runtime_api(events);
    let mut child = w
        .lambda(
            &runtime,
            &[
                ("KILLSWITCH_VERIFY_DELAY_SECONDS", "1"),
                ("KILLSWITCH_WATCH_SECONDS", "0"),
            ],
        )
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let wait = std::time::Duration::from_secs(60);
    let (path, body) = posted
        .recv_timeout(wait)
        .expect("no response from the function");
    assert_eq!(
        path, "/2018-06-01/runtime/invocation/req-1/response",
        "{body}"
    );
    assert_eq!(body["reports"][0]["status"], "contained", "{body}");
    let (path, body) = posted
        .recv_timeout(wait)
        .expect("no error from the function");
    assert_eq!(path, "/2018-06-01/runtime/invocation/req-0/error", "{body}");
    assert_eq!(body["errorType"], "KillSwitch.BadEvent", "{body}");
    assert!(
        body["errorMessage"]
            .as_str()
            .unwrap()
            .contains("does not match"),
        "{body}"
    );
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    let logs = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = logs.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty());
    for line in &lines {
        let v: Value =
            serde_json::from_str(line).unwrap_or_else(|_| panic!("not a JSON log line: {line}"));
        assert!(
            !line.contains(&w.function_key.secret),
            "a secret reached the logs"
        );
        assert!(v.get("level").is_some(), "{line}");
    }
    assert!(
        lines.iter().any(|l| l.contains("\"incident_id\"")),
        "no incident span in the logs"
    );
    assert_eq!(
        w.key_status(&user, &leaked.id).await,
        Some(StatusType::Inactive)
    );
}

/// Plays Lambda's SQS event source mapping once: receives a message, hands it to the function
/// as an SQS event, deletes it when the function does not report it as failed.
async fn deliver_follow_up(
    w: &World,
    queue_url: &str,
    queue_arn: &str,
    feed: &std::sync::mpsc::Sender<(usize, Value)>,
    posted: &std::sync::mpsc::Receiver<(String, Value)>,
    n: usize,
) -> Value {
    let got = w
        .sqs
        .receive_message()
        .queue_url(queue_url)
        .wait_time_seconds(10)
        .send()
        .await
        .unwrap();
    let m = got
        .messages()
        .first()
        .expect("no follow-up message on the queue");
    let event = json!({"Records": [{
        "messageId": m.message_id(), "receiptHandle": m.receipt_handle(), "body": m.body(),
        "attributes": {}, "messageAttributes": {}, "md5OfBody": m.md5_of_body(),
        "eventSource": "aws:sqs", "eventSourceARN": queue_arn, "awsRegion": "us-east-1"}]});
    feed.send((n, event)).unwrap();
    let (path, body) = posted
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("the follow-through did not answer");
    assert_eq!(
        path,
        format!("/2018-06-01/runtime/invocation/req-{n}/response"),
        "{body}"
    );
    if body["batchItemFailures"]
        .as_array()
        .is_some_and(Vec::is_empty)
    {
        w.sqs
            .delete_message()
            .queue_url(queue_url)
            .receipt_handle(m.receipt_handle().unwrap())
            .send()
            .await
            .unwrap();
    }
    body
}

/// Whether the queue has nothing to deliver now.
async fn queue_is_empty(w: &World, queue_url: &str) -> bool {
    w.sqs
        .receive_message()
        .queue_url(queue_url)
        .send()
        .await
        .unwrap()
        .messages()
        .is_empty()
}

/// The incident record of `key` in the responder's table.
async fn incident_record(table: &str, key: &str) -> Value {
    let item = aws_sdk_dynamodb::Client::new(&sdk(&admin()).await)
        .get_item()
        .table_name(table)
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("incident#123456789012#{key}")),
        )
        .send()
        .await
        .unwrap();
    serde_json::from_str(item.item().unwrap()["record"].as_s().unwrap()).unwrap()
}

/// The trigger's invocation (request 0): contained, short notice, follow-through queued and
/// delayed on the queue.
async fn the_trigger_contains_and_queues(
    w: &World,
    feed: &std::sync::mpsc::Sender<(usize, Value)>,
    posted: &std::sync::mpsc::Receiver<(String, Value)>,
    queue_url: &str,
    user: &str,
    leaked: &Key,
) {
    feed.send((
        0,
        fixture("guardduty-iam-user-finding.json", &leaked.id, user),
    ))
    .unwrap();
    let (path, body) = posted
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("no response");
    assert_eq!(
        path, "/2018-06-01/runtime/invocation/req-0/response",
        "{body}"
    );
    let report = &body["reports"][0];
    assert_eq!(report["status"], "contained", "{body}");
    assert!(
        report["follow_through"]
            .as_str()
            .unwrap()
            .starts_with("queued"),
        "{body}"
    );
    assert_eq!(report["investigation"]["state"], "not_run", "{body}");
    assert_eq!(
        w.key_status(user, &leaked.id).await,
        Some(StatusType::Inactive)
    );
    let (subject, _) = w.inbox_any().await;
    assert!(
        subject.contains("CONTAINED") && subject.contains("details follow"),
        "{subject}"
    );
    // The message waits out IAM's propagation window on the queue (DelaySeconds).
    assert!(
        queue_is_empty(w, queue_url).await,
        "the follow-up was not delayed"
    );
}

#[tokio::test]
#[ignore = "needs the local AWS: run scripts/test.sh"]
async fn a_trigger_contains_and_hands_off_and_the_queue_brings_the_full_report() {
    let w = World::new().await;
    let (queue_url, queue_arn, table) = follow_up_queue_and_table(&w).await;
    let user = unique("leaky");
    let leaked = create_user_with_key(&user, &["iam:List*"]).await;
    attacker_call(&leaked).await;
    let (feed, source) = std::sync::mpsc::channel();
    let (runtime, posted) = fed_runtime_api(source);
    let mut child = w
        .lambda(
            &runtime,
            &[
                ("KILLSWITCH_VERIFY_DELAY_SECONDS", "3"),
                ("KILLSWITCH_WATCH_SECONDS", "0"),
                // LookupEvents' 2 calls/s are shared with every test running at the same time:
                // room to back off and still read the attacker's calls.
                ("KILLSWITCH_INVESTIGATION_SECONDS", "45"),
                ("KILLSWITCH_FOLLOW_UP_QUEUE_URL", &queue_url),
                ("KILLSWITCH_INCIDENT_TABLE", &table),
            ],
        )
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let wait = std::time::Duration::from_secs(60);

    // The trigger's invocation: contained, short notice, follow-through queued.
    the_trigger_contains_and_queues(&w, &feed, &posted, &queue_url, &user, &leaked).await;

    // The event source mapping's invocation: re-check, CloudTrail, full report.
    let answer = deliver_follow_up(&w, &queue_url, &queue_arn, &feed, &posted, 1).await;
    assert_eq!(answer["batchItemFailures"], json!([]), "{answer}");
    let (subject, message) = w.inbox().await;
    assert!(subject.starts_with("[killswitch] CONTAINED:"), "{subject}");
    assert!(message.contains("after 3s propagation delay"), "{message}");
    assert!(message.contains("Activity of this key"), "{message}");

    // The incident record, in the responder's table.
    let record = incident_record(&table, &leaked.id).await;
    assert_eq!(record["applied"]["plan"]["user"], user.as_str(), "{record}");
    assert!(record["verified_at"].is_string(), "{record}");
    // The attacker's call, by CloudTrail event ID, for the later sweep to tell new from seen.
    assert!(
        record["first_pass_event_ids"]
            .as_array()
            .is_some_and(|ids| !ids.is_empty()),
        "{record}"
    );

    // GuardDuty re-emits the finding: a silent no-op, nothing queued.
    let mut again = fixture("guardduty-iam-user-finding.json", &leaked.id, &user);
    again["detail"]["updatedAt"] = json!("2026-11-30T09:00:00.000Z");
    feed.send((2, again)).unwrap();
    let (_, body) = posted.recv_timeout(wait).expect("no response");
    assert_eq!(body["reports"][0]["status"], "already_contained", "{body}");
    assert_eq!(
        body["reports"][0]["notification"]["state"], "suppressed",
        "{body}"
    );
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    assert!(
        queue_is_empty(&w, &queue_url).await,
        "a re-emit was followed through again"
    );
    let _ = child.kill();
    let _ = child.wait();
}
