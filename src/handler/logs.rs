//! The function's and the command line's logs (`tracing`).

/// Structured logs: JSON in Lambda (CloudWatch), text on stderr for the CLI. `RUST_LOG` filters.
pub fn init_tracing(json: bool) {
    init_tracing_at(json, "info");
}

/// The command line's logs: text on stderr at `default_level` unless `RUST_LOG` says otherwise,
/// colored only when asked (a terminal without `NO_COLOR`).
pub fn init_tracing_cli(default_level: &str, color: bool) {
    // The SDK's own search for a Region (IMDS off an instance) is noise at a terminal: a missing
    // Region is one clear error of ours.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!("{default_level},aws_config=error"))
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(color)
        .init();
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
