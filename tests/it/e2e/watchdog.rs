//! The watchdog and the canary in Lambda mode on the local AWS: the scheduled rules' payloads
//! delivered through a Runtime API, the table, IAM and the topic real (moto).

use std::collections::VecDeque;
use std::io::{BufRead, Write};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use super::*;

/// What a run of the function in Lambda mode posted back, one (path, body) per event, and what
/// it wrote on stdout (where the canary's heartbeat goes).
struct Run {
    posted: Vec<(String, Value)>,
    stdout: String,
}

/// Runs the function in Lambda mode against a Runtime API that hands out `events` in order, each
/// after its delay, and stops it once it has answered them all.
fn lambda_run(w: &World, env: &[(&str, &str)], events: Vec<(Duration, Value)>) -> Run {
    let expected = events.len();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let runtime = listener.local_addr().unwrap().to_string();
    let queue = Arc::new(Mutex::new(
        events.into_iter().enumerate().collect::<VecDeque<_>>(),
    ));
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (queue, tx) = (queue.clone(), tx.clone());
            std::thread::spawn(move || serve_runtime(stream, &queue, &tx));
        }
    });
    let mut child = w
        .lambda(&runtime, env)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let posted = (0..expected)
        .map(|_| {
            rx.recv_timeout(Duration::from_secs(90))
                .expect("the function did not answer")
        })
        .collect();
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    Run {
        posted,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
    }
}

/// One connection of the Runtime API: `/next` hands out the next event (request `req-<n>`),
/// anything else is the function's answer, passed on.
fn serve_runtime(
    stream: std::net::TcpStream,
    queue: &Mutex<VecDeque<(usize, (Duration, Value))>>,
    answers: &mpsc::Sender<(String, Value)>,
) {
    let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
    let mut stream = stream;
    loop {
        let mut request = String::new();
        if reader.read_line(&mut request).unwrap_or(0) == 0 {
            return;
        }
        let mut length = 0;
        loop {
            let mut header = String::new();
            reader.read_line(&mut header).unwrap();
            if header.trim().is_empty() {
                break;
            }
            if let Some(v) = header.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        std::io::Read::read_exact(&mut reader, &mut body).unwrap();
        let path = request.split_whitespace().nth(1).unwrap_or("").to_owned();
        if !path.ends_with("/invocation/next") {
            let _ = answers.send((path, serde_json::from_slice(&body).unwrap_or(Value::Null)));
            write!(
                stream,
                "HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\n{{}}"
            )
            .unwrap();
            continue;
        }
        let next = queue.lock().unwrap().pop_front();
        let Some((n, (delay, event))) = next else {
            // Used up: hold the request open, as Lambda does between invocations.
            std::thread::sleep(Duration::from_secs(600));
            return;
        };
        std::thread::sleep(delay);
        let payload = event.to_string();
        let deadline = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis()
            + 60_000;
        write!(
            stream,
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nLambda-Runtime-Aws-Request-Id: req-{n}\r\nLambda-Runtime-Deadline-Ms: {deadline}\r\nLambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:123456789012:function:killswitch\r\nLambda-Runtime-Trace-Id: Root=1-00000000-000000000000000000000000\r\nContent-Length: {}\r\n\r\n{payload}",
            payload.len()
        )
        .unwrap();
    }
}

/// The canary's heartbeats on stdout (embedded metric format lines).
fn heartbeats(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v.get("_aws").is_some())
        .collect()
}

fn watchdog() -> Value {
    json!({"killswitch": "watchdog"})
}

fn canary() -> Value {
    json!({"killswitch": "canary"})
}

#[tokio::test]
#[ignore = "needs the local AWS: run scripts/test.sh"]
async fn a_follow_through_that_never_ran_is_paged_by_the_watchdog_once() {
    let w = World::new().await;
    let (queue_url, _, table) = follow_up_queue_and_table(&w).await;
    let user = unique("leaky");
    let leaked = create_user_with_key(&user, &["iam:List*"]).await;
    let finding = fixture("guardduty-iam-user-finding.json", &leaked.id, &user);

    // Contained and queued; the queue never delivers it. The watchdog runs past the due time and
    // its grace, then once more.
    let run = lambda_run(
        &w,
        &[
            ("KILLSWITCH_VERIFY_DELAY_SECONDS", "1"),
            ("KILLSWITCH_WATCH_SECONDS", "0"),
            ("KILLSWITCH_FOLLOW_UP_QUEUE_URL", &queue_url),
            ("KILLSWITCH_INCIDENT_TABLE", &table),
            ("KILLSWITCH_WATCHDOG_GRACE_SECONDS", "1"),
        ],
        vec![
            (Duration::ZERO, finding),
            (Duration::from_secs(3), watchdog()),
            (Duration::ZERO, watchdog()),
        ],
    );

    let (path, contained) = &run.posted[0];
    assert!(path.ends_with("/req-0/response"), "{path}: {contained}");
    assert!(
        contained["reports"][0]["follow_through"]
            .as_str()
            .unwrap()
            .starts_with("queued"),
        "{contained}"
    );
    let (path, first) = &run.posted[1];
    assert!(path.ends_with("/req-1/response"), "{path}: {first}");
    let overdue = &first["watchdog"]["overdue"];
    assert_eq!(overdue.as_array().unwrap().len(), 1, "{first}");
    assert_eq!(overdue[0]["what"], "follow-through");
    assert_eq!(overdue[0]["access_key_id"], leaked.id.as_str());
    assert_eq!(overdue[0]["paged"], true);
    let (_, second) = &run.posted[2];
    assert_eq!(second["watchdog"]["overdue"][0]["paged"], false, "{second}");

    // On-call got the page (after the short CONTAINED notice), and only one.
    let (subject, body) = w.inbox().await;
    assert!(
        subject.starts_with(&format!(
            "[killswitch] OVERDUE follow-through: {} (IAM user {user})",
            leaked.id
        )),
        "{subject}"
    );
    assert!(
        body.contains(&format!("killswitch respond --access-key-id {}", leaked.id)),
        "{body}"
    );
    let more = sandbox().await.receive(&w.queue_url, 2).await.unwrap();
    assert!(more.is_none(), "a second page: {more:?}");
    // The follow-up itself is still waiting on the queue: the watchdog changed nothing.
    let waiting = w
        .sqs
        .receive_message()
        .queue_url(&queue_url)
        .wait_time_seconds(2)
        .send()
        .await
        .unwrap();
    assert_eq!(waiting.messages().len(), 1);
}

/// A user for the canary, as the stack creates it (no policy, no key).
async fn canary_user(w: &World) -> String {
    let user = format!("{}-canary", unique("ks"));
    w.iam.create_user().user_name(&user).send().await.unwrap();
    user
}

#[tokio::test]
#[ignore = "needs the local AWS: run scripts/test.sh"]
async fn the_canary_writes_and_reads_back_on_its_own_user_and_beats() {
    let w = World::new().await;
    let user = canary_user(&w).await;

    let run = lambda_run(
        &w,
        &[("KILLSWITCH_CANARY_USER", &user)],
        vec![(Duration::ZERO, canary())],
    );

    let (path, body) = &run.posted[0];
    assert!(path.ends_with("/req-0/response"), "{path}: {body}");
    assert_eq!(body["canary"]["user"], user.as_str(), "{body}");
    let written = w
        .policy(PolicyTarget::User(user.clone()), "KillSwitchCanary")
        .await;
    let doc: Value = serde_json::from_str(&written).unwrap();
    assert_eq!(doc["Statement"][0]["Effect"], "Deny");
    // The heartbeat the alarm reads, for the function the rule runs.
    let beats = heartbeats(&run.stdout);
    assert_eq!(beats.len(), 1, "{}", run.stdout);
    assert_eq!(beats[0]["CanaryPassed"], 1);
    assert_eq!(beats[0]["FunctionName"], "killswitch");
    // Its only write, on the canary user.
    let writes: Vec<String> = w
        .function_calls()
        .await
        .into_iter()
        .filter(|c| WRITES.contains(&c.as_str()))
        .collect();
    assert_eq!(writes, ["PutUserPolicy"]);
}

#[tokio::test]
#[ignore = "needs the local AWS: run scripts/test.sh"]
async fn a_canary_whose_write_is_denied_fails_loudly() {
    let w = World::new().await;
    let user = canary_user(&w).await;
    let function_user = aws_sdk_iam::Client::new(&sdk(&w.function_key).await)
        .get_user()
        .send()
        .await
        .unwrap()
        .user
        .unwrap()
        .user_name;
    let deny = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Deny",
        "Action": "iam:PutUserPolicy", "Resource": "*"}]});
    w.iam
        .put_user_policy()
        .user_name(&function_user)
        .policy_name("no-canary-write")
        .policy_document(deny.to_string())
        .send()
        .await
        .unwrap();

    let run = lambda_run(
        &w,
        &[("KILLSWITCH_CANARY_USER", &user)],
        vec![(Duration::ZERO, canary())],
    );

    let (path, error) = &run.posted[0];
    assert!(path.ends_with("/req-0/error"), "{path}: {error}");
    assert_eq!(
        error["errorType"], "KillSwitch.ContainmentFailed",
        "{error}"
    );
    let message = error["errorMessage"].as_str().unwrap();
    assert!(
        message.contains("iam:PutUserPolicy") && message.contains("AccessDenied"),
        "{message}"
    );
    let (subject, body) = w.inbox_any().await;
    assert!(
        subject.starts_with("[killswitch] CANARY FAILED"),
        "{subject}"
    );
    assert!(
        body.contains(&user) && body.contains("AccessDenied"),
        "{body}"
    );
    let beats = heartbeats(&run.stdout);
    assert_eq!(beats.len(), 1, "{}", run.stdout);
    assert_eq!(beats[0]["CanaryPassed"], 0);
    assert!(
        w.iam
            .get_user_policy()
            .user_name(&user)
            .policy_name("KillSwitchCanary")
            .send()
            .await
            .is_err(),
        "the denied write landed"
    );
}
