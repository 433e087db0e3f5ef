//! The one place that knows Lambda: the runtime loop, the response shape, errors as `Diagnostic`.
//! `handle` is shared with the CLI so both modes run the same playbook.

use std::time::{Duration, SystemTime};

use chrono::Utc;
use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde::Serialize;
use serde_json::Value;
use tokio::time::Instant;
use tracing::{error, info};

use crate::config::Config;
use crate::error::Error;
use crate::incident::Received;
use crate::playbook::{self, Context, Responder};
use crate::ports::{Accounts, ActivityLog, Identity, Notifier};
use crate::report::Report;
use crate::trigger;

/// Kept free at the end of an invocation for verification's last read and the SNS publish.
pub const NOTIFY_RESERVE: Duration = Duration::from_secs(8);

/// Everything built once per process (Lambda init or CLI start).
pub struct App<C> {
    pub cloud: C,
    pub config: Config,
    pub responder: Responder,
}

/// What one invocation returns: one report per key in the trigger.
#[derive(Debug, Serialize)]
pub struct Response {
    pub reports: Vec<Report>,
}

impl Response {
    /// The error Lambda (or the CLI's exit code) must reflect, if any.
    pub fn error(&self) -> Option<Error> {
        playbook::outcome_error(&self.reports)
    }
}

/// Parses the payload and responds to every incident in it.
pub async fn handle<C>(
    app: &App<C>,
    payload: Value,
    deadline: SystemTime,
    force_dry_run: bool,
) -> Result<Response, Error>
where
    C: Identity + ActivityLog + Notifier + Accounts,
{
    let received = trigger::parse(payload)
        .inspect_err(|e| error!(error = %e, kind = e.kind(), "rejected input"))?;
    let now = Utc::now();
    let remaining = deadline
        .duration_since(SystemTime::now())
        .unwrap_or_default()
        .saturating_sub(NOTIFY_RESERVE + app.config.verify_delay);
    let ctx = Context {
        config: &app.config,
        responder: &app.responder,
        now,
        investigation_deadline: Instant::now() + remaining,
        force_dry_run,
    };
    let reports = match received {
        Received::Sample(sample) => {
            vec![playbook::respond_to_sample(&app.cloud, &sample, now).await]
        }
        Received::Incidents(incidents) => {
            let mut reports = Vec::with_capacity(incidents.len());
            for incident in &incidents {
                reports.push(playbook::respond(&app.cloud, incident, &ctx).await);
            }
            reports
        }
    };
    Ok(Response { reports })
}

/// Runs the Lambda runtime until the process is stopped.
pub async fn serve<C>(app: App<C>) -> Result<(), lambda_runtime::Error>
where
    C: Identity + ActivityLog + Notifier + Accounts,
{
    let app = &app;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let caller = event.context.invoked_function_arn.clone();
        info!(request_id = %event.context.request_id, function = %caller, "invocation");
        let response = handle(app, event.payload, event.context.deadline(), false).await?;
        info!(report = %serde_json::to_string(&response).unwrap_or_default(), "response");
        match response.error() {
            Some(e) => Err(e),
            None => Ok(serde_json::to_value(&response).unwrap_or_default()),
        }
    }))
    .await
}

impl From<Error> for Diagnostic {
    fn from(e: Error) -> Self {
        Diagnostic {
            error_type: e.kind().to_owned(),
            error_message: e.chain(),
        }
    }
}

/// Structured logs: JSON in Lambda (CloudWatch), text on stderr for the CLI. `RUST_LOG` filters.
pub fn init_tracing(json: bool) {
    init_tracing_at(json, "info");
}

/// As `init_tracing`, with another default level when `RUST_LOG` is unset.
pub fn init_tracing_at(json: bool, default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    if json {
        builder.json().with_current_span(true).without_time().init();
    } else {
        builder.init();
    }
}
