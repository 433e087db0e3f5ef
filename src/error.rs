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

    /// The AWS error code, when the failure came from AWS. For humans and logs: decisions use
    /// [`Error::failure`].
    pub fn aws_code(&self) -> Option<&str> {
        match self {
            Error::Aws { code, .. } => code.as_deref(),
            Error::BadEvent(_)
            | Error::Usage(_)
            | Error::Declined(_)
            | Error::Config { .. }
            | Error::ContainmentFailed(_)
            | Error::NotifyFailed(_) => None,
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

    /// What kind of AWS failure this is, when it came from AWS.
    pub fn failure(&self) -> Option<AwsFailure> {
        self.aws_code().map(AwsFailure::of)
    }

    /// A call to AWS failed this way.
    pub fn is(&self, kind: AwsFailure) -> bool {
        self.failure() == Some(kind)
    }
}

/// AWS's error codes, sorted once into what the code decides on. The adapters report the
/// service's code (`Error::Aws`); nothing else compares code strings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AwsFailure {
    /// The entity is gone (`NoSuchEntity`, `ResourceNotFoundException`, …).
    NotFound,
    /// A quota is full (`LimitExceeded`: inline policies, policy versions, attachments).
    LimitExceeded,
    AccessDenied,
    /// Slow down and ask again.
    Throttled,
    /// What was to be created or attached already is (`DuplicatePolicyException`,
    /// `DuplicatePolicyAttachmentException`, `EntityAlreadyExists`).
    AlreadyExists,
    /// It changed under us (`ConcurrentModification`, a failed condition).
    Conflict,
    /// AWS's side failed; asking again may work.
    ServiceFault,
    /// A request-level answer the code has no rule for.
    Other,
}

impl AwsFailure {
    pub fn of(code: &str) -> Self {
        match code {
            "NoSuchEntity"
            | "NoSuchEntityException"
            | "ResourceNotFoundException"
            | "PolicyNotFoundException"
            | "TargetNotFoundException"
            | "NotFoundException" => AwsFailure::NotFound,
            "LimitExceeded" | "LimitExceededException" => AwsFailure::LimitExceeded,
            "TooManyRequestsException" | "RequestLimitExceeded" => AwsFailure::Throttled,
            c if c.contains("Throttl") => AwsFailure::Throttled,
            "AccessDenied"
            | "AccessDeniedException"
            | "UnauthorizedOperation"
            | "InvalidClientTokenId"
            | "ExpiredToken" => AwsFailure::AccessDenied,
            "DuplicatePolicyException"
            | "DuplicatePolicyAttachmentException"
            | "EntityAlreadyExists" => AwsFailure::AlreadyExists,
            "ConcurrentModification"
            | "ConcurrentModificationException"
            | "ConditionalCheckFailedException"
            | "ConflictException" => AwsFailure::Conflict,
            "InternalFailure"
            | "InternalError"
            | "ServiceUnavailable"
            | "InternalServerError"
            | "ServiceFailure"
            | "ServiceUnavailableException" => AwsFailure::ServiceFault,
            _ => AwsFailure::Other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_sort_into_what_the_code_decides_on() {
        for (code, kind) in [
            ("NoSuchEntity", AwsFailure::NotFound),
            ("LimitExceeded", AwsFailure::LimitExceeded),
            ("ThrottlingException", AwsFailure::Throttled),
            ("TooManyRequestsException", AwsFailure::Throttled),
            (
                "DuplicatePolicyAttachmentException",
                AwsFailure::AlreadyExists,
            ),
            ("ConcurrentModificationException", AwsFailure::Conflict),
            ("InternalFailure", AwsFailure::ServiceFault),
            ("AccessDenied", AwsFailure::AccessDenied),
            ("ValidationError", AwsFailure::Other),
        ] {
            assert_eq!(AwsFailure::of(code), kind, "{code}");
        }
        assert_eq!(Error::Usage("x".into()).failure(), None);
    }
}
