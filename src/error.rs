//! The one error type. `op` names the IAM action, so a log line says which permission to check.

pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The input is not something we act on; nothing was changed.
    #[error("event not understood: {0}")]
    BadEvent(String),
    /// The command line was used wrongly (a file that cannot be read, a missing Region): not
    /// an event problem.
    #[error("{0}")]
    Usage(String),
    /// The operator did not confirm (or could not: no terminal); nothing was changed.
    #[error("not confirmed: {0}")]
    Declined(String),
    #[error("setting {name}: {reason}")]
    Config { name: &'static str, reason: String },
    #[error("{op} failed{}", code.as_deref().map(|c| format!(" ({c})")).unwrap_or_default())]
    Aws {
        op: &'static str,
        code: Option<String>,
        #[source]
        source: BoxError,
    },
    /// Containment did not complete; returned so that Lambda retries the invocation.
    #[error("containment incomplete: {0}")]
    ContainmentFailed(String),
    /// Containment held, but the on-call engineer was not told.
    #[error("notification failed: {0}")]
    NotifyFailed(String),
}

impl From<crate::vocab::Invalid> for Error {
    fn from(e: crate::vocab::Invalid) -> Self {
        Error::BadEvent(e.0)
    }
}

impl Error {
    /// A stable name for Lambda's `errorType` and for alarms.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::BadEvent(_) => "KillSwitch.BadEvent",
            Error::Usage(_) => "KillSwitch.Usage",
            Error::Declined(_) => "KillSwitch.Declined",
            Error::Config { .. } => "KillSwitch.Config",
            Error::Aws { .. } => "KillSwitch.Aws",
            Error::ContainmentFailed(_) => "KillSwitch.ContainmentFailed",
            Error::NotifyFailed(_) => "KillSwitch.NotifyFailed",
        }
    }

    /// The AWS error code, when the failure came from AWS.
    pub fn aws_code(&self) -> Option<&str> {
        match self {
            Error::Aws { code, .. } => code.as_deref(),
            _ => None,
        }
    }

    /// The message with its whole `source()` chain, for humans and for Lambda's `errorMessage`.
    pub fn chain(&self) -> String {
        let mut out = self.to_string();
        let mut next = std::error::Error::source(self);
        while let Some(e) = next {
            let text = e.to_string();
            if !out.contains(&text) {
                out.push_str(": ");
                out.push_str(&text);
            }
            next = e.source();
        }
        out
    }
}
