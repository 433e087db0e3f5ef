use std::collections::HashMap;

use super::*;

fn config(pairs: &[(&str, &str)]) -> Result<Config, Error> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Config::from_lookup(|k| map.get(k).cloned())
}

const TOPIC: (&str, &str) = (
    "KILLSWITCH_TOPIC_ARN",
    "arn:aws:sns:us-east-1:123456789012:killswitch",
);

#[test]
fn defaults_apply_when_only_the_topic_is_set() {
    let c = config(&[TOPIC]).unwrap();
    assert!(!c.dry_run);
    assert_eq!(c.lookback, Duration::from_secs(24 * 3600));
    assert_eq!(c.verify_delay, Duration::from_secs(10));
    assert!(c.protected.is_empty() && c.regions.is_empty());
}

#[test]
fn bad_values_name_the_variable() {
    for (pairs, name) in [
        (vec![], "KILLSWITCH_TOPIC_ARN"),
        (
            vec![("KILLSWITCH_TOPIC_ARN", "arn:aws:sqs:us-east-1:1:q")],
            "KILLSWITCH_TOPIC_ARN",
        ),
        (
            vec![TOPIC, ("KILLSWITCH_DRY_RUN", "maybe")],
            "KILLSWITCH_DRY_RUN",
        ),
        (
            vec![TOPIC, ("KILLSWITCH_LOOKBACK_HOURS", "9999")],
            "KILLSWITCH_LOOKBACK_HOURS",
        ),
        (
            vec![TOPIC, ("KILLSWITCH_VERIFY_DELAY_SECONDS", "-1")],
            "KILLSWITCH_VERIFY_DELAY_SECONDS",
        ),
        (
            vec![TOPIC, ("KILLSWITCH_REGIONS", "us-east-1,mars")],
            "KILLSWITCH_REGIONS",
        ),
        (
            vec![TOPIC, ("KILLSWITCH_MEMBER_ROLE_NAME", "KillSwitchMember")],
            "KILLSWITCH_MEMBER_EXTERNAL_ID",
        ),
        (
            vec![TOPIC, ("KILLSWITCH_MEMBER_EXTERNAL_ID", "abc123")],
            "KILLSWITCH_MEMBER_ROLE_NAME",
        ),
        (
            vec![
                TOPIC,
                ("KILLSWITCH_MEMBER_ROLE_NAME", "role/KillSwitchMember"),
                ("KILLSWITCH_MEMBER_EXTERNAL_ID", "abc123"),
            ],
            "KILLSWITCH_MEMBER_ROLE_NAME",
        ),
        (
            vec![
                TOPIC,
                ("KILLSWITCH_MEMBER_ROLE_NAME", "KillSwitchMember"),
                ("KILLSWITCH_MEMBER_EXTERNAL_ID", "has space"),
            ],
            "KILLSWITCH_MEMBER_EXTERNAL_ID",
        ),
        (
            vec![
                TOPIC,
                ("KILLSWITCH_MEMBER_ROLE_NAME", "KillSwitchMember"),
                ("KILLSWITCH_MEMBER_EXTERNAL_ID", "abc123"),
                ("KILLSWITCH_MEMBER_ACCOUNTS", "111122223333,12345"),
            ],
            "KILLSWITCH_MEMBER_ACCOUNTS",
        ),
        (
            vec![TOPIC, ("KILLSWITCH_MEMBER_ACCOUNTS", "111122223333")],
            "KILLSWITCH_MEMBER_ACCOUNTS",
        ),
    ] {
        match config(&pairs) {
            Err(Error::Config { name: got, .. }) => assert_eq!(got, name),
            other => panic!("{pairs:?}: expected a config error, got {other:?}"),
        }
    }
}

#[test]
fn lists_and_flags_are_parsed() {
    let c = config(&[
        TOPIC,
        ("KILLSWITCH_DRY_RUN", "TRUE"),
        (
            "KILLSWITCH_PROTECTED_PRINCIPALS",
            " break-glass , arn:aws:iam::123456789012:role/deployer,",
        ),
        ("KILLSWITCH_REGIONS", "eu-west-1, us-gov-west-1"),
    ])
    .unwrap();
    assert!(c.dry_run);
    assert_eq!(
        c.protected,
        vec!["break-glass", "arn:aws:iam::123456789012:role/deployer"]
    );
    assert_eq!(c.regions, vec!["eu-west-1", "us-gov-west-1"]);
    assert!(c.members.is_none());
}

#[test]
fn member_accounts_are_opt_in_and_the_external_id_is_never_printed() {
    let c = config(&[
        TOPIC,
        ("KILLSWITCH_MEMBER_ROLE_NAME", "KillSwitchMember"),
        ("KILLSWITCH_MEMBER_EXTERNAL_ID", "s3cr3t-ext-id"),
        ("KILLSWITCH_MEMBER_ACCOUNTS", "111122223333, 444455556666"),
    ])
    .unwrap();
    let m = c.members.clone().unwrap();
    assert_eq!(m.role_name, "KillSwitchMember");
    assert!(m.allows(&AccountId::parse("444455556666").unwrap()));
    assert!(!m.allows(&AccountId::parse("999999999999").unwrap()));
    assert!(!format!("{c:?}").contains("s3cr3t"));
    // No "any account": the allow-list is required.
    let any = config(&[
        TOPIC,
        ("KILLSWITCH_MEMBER_ROLE_NAME", "KillSwitchMember"),
        ("KILLSWITCH_MEMBER_EXTERNAL_ID", "s3cr3t-ext-id"),
    ]);
    assert!(
        matches!(
            any,
            Err(Error::Config {
                name: "KILLSWITCH_MEMBER_ACCOUNTS",
                ..
            })
        ),
        "{any:?}"
    );
}

#[test]
fn protected_entries_that_can_never_match_are_refused() {
    for bad in [
        "arn:aws:sts::123456789012:assumed-role/admin/session",
        "arn:aws:iam::123456789012:group/admins",
    ] {
        assert!(
            matches!(
                config(&[TOPIC, ("KILLSWITCH_PROTECTED_PRINCIPALS", bad)]),
                Err(Error::Config {
                    name: "KILLSWITCH_PROTECTED_PRINCIPALS",
                    ..
                })
            ),
            "{bad}"
        );
    }
    assert!(
        config(&[
            TOPIC,
            (
                "KILLSWITCH_PROTECTED_PRINCIPALS",
                "breakglass, arn:aws:iam::123456789012:role/path/Admin"
            )
        ])
        .is_ok()
    );
}

#[test]
fn role_wide_revocation_is_opt_in_per_role_case_insensitively() {
    let c = config(&[TOPIC]).unwrap();
    assert!(!c.role_wide("web-tier"));
    let c = config(&[
        TOPIC,
        ("KILLSWITCH_ROLE_WIDE_REVOCATION", "CI-Deployer, batch"),
    ])
    .unwrap();
    assert!(c.role_wide("ci-deployer") && c.role_wide("batch") && !c.role_wide("web-tier"));
    assert!(
        config(&[TOPIC, ("KILLSWITCH_ROLE_WIDE_REVOCATION", "*")])
            .unwrap()
            .role_wide("x")
    );
    assert!(config(&[TOPIC, ("KILLSWITCH_ROLE_WIDE_REVOCATION", "a b")]).is_err());
}

#[test]
fn the_health_trigger_refuses_a_region_where_its_events_never_arrive() {
    let health = ("KILLSWITCH_HEALTH_TRIGGER", "true");
    assert!(config(&[TOPIC, health, ("AWS_REGION", "us-east-1")]).is_ok());
    assert!(config(&[TOPIC, health, ("AWS_REGION", "us-west-2")]).is_ok());
    assert!(matches!(
        config(&[TOPIC, health, ("AWS_REGION", "eu-west-1")]),
        Err(Error::Config {
            name: "KILLSWITCH_HEALTH_TRIGGER",
            ..
        })
    ));
    assert!(config(&[TOPIC, ("AWS_REGION", "eu-west-1")]).is_ok());
}

#[test]
fn the_verification_delay_fits_in_the_function_timeout() {
    let fits = config(&[
        TOPIC,
        ("KILLSWITCH_VERIFY_DELAY_SECONDS", "30"),
        ("KILLSWITCH_FUNCTION_TIMEOUT_SECONDS", "120"),
    ]);
    assert!(fits.is_ok(), "{fits:?}");
    // Without the first-minute watch, the delay may take its time.
    let fits = config(&[
        TOPIC,
        ("KILLSWITCH_WATCH_SECONDS", "0"),
        ("KILLSWITCH_VERIFY_DELAY_SECONDS", "90"),
        ("KILLSWITCH_FUNCTION_TIMEOUT_SECONDS", "120"),
    ]);
    assert!(fits.is_ok(), "{fits:?}");
    let too_long = config(&[
        TOPIC,
        ("KILLSWITCH_VERIFY_DELAY_SECONDS", "31"),
        ("KILLSWITCH_FUNCTION_TIMEOUT_SECONDS", "120"),
    ]);
    assert!(
        matches!(
            too_long,
            Err(Error::Config {
                name: "KILLSWITCH_VERIFY_DELAY_SECONDS",
                ..
            })
        ),
        "{too_long:?}"
    );
    assert!(config(&[TOPIC, ("KILLSWITCH_FUNCTION_TIMEOUT_SECONDS", "soon")]).is_err());
}

/// A configuration that sets everything, so that every setting is read.
fn everything() -> Vec<(&'static str, &'static str)> {
    vec![
        TOPIC,
        ("KILLSWITCH_MEMBER_ROLE_NAME", "KillSwitchMember"),
        ("KILLSWITCH_MEMBER_EXTERNAL_ID", "member-ext-id"),
        ("KILLSWITCH_MEMBER_ACCOUNTS", "111122223333"),
        (
            "KILLSWITCH_QUARANTINE_ROLE_ARN",
            "arn:aws:iam::111122223333:role/KillSwitchQuarantine",
        ),
        ("KILLSWITCH_QUARANTINE_EXTERNAL_ID", "quarantine-ext-id"),
        (
            "KILLSWITCH_IDENTITY_CENTER_ROLE_ARN",
            "arn:aws:iam::111122223333:role/KillSwitchIdentityCenter",
        ),
        ("KILLSWITCH_IDENTITY_CENTER_EXTERNAL_ID", "ic-ext-id"),
        ("KILLSWITCH_FUNCTION_TIMEOUT_SECONDS", "120"),
    ]
}

#[test]
fn every_setting_read_is_declared_and_every_declared_one_is_read() {
    let asked = std::cell::RefCell::new(std::collections::BTreeSet::new());
    let map: HashMap<&str, &str> = everything().into_iter().collect();
    Config::from_lookup(|k| {
        asked.borrow_mut().insert(k.to_owned());
        map.get(k).map(|v| v.to_string())
    })
    .unwrap();
    let asked: Vec<String> = asked
        .into_inner()
        .into_iter()
        .filter(|k| k.starts_with("KILLSWITCH_"))
        .collect();
    let declared: Vec<String> = {
        let mut d: Vec<String> = settings::SETTINGS
            .iter()
            .map(|s| s.name.to_owned())
            .collect();
        d.sort();
        d
    };
    assert_eq!(asked, declared);
}

#[test]
fn secret_settings_never_reach_debug_output() {
    let c = config(&everything()).unwrap();
    let shown = format!("{c:?}");
    for s in settings::SETTINGS.iter().filter(|s| s.secret) {
        let value = everything()
            .into_iter()
            .find(|(k, _)| *k == s.name)
            .map(|(_, v)| v)
            .unwrap_or_else(|| panic!("{}: give it a value in everything()", s.name));
        assert!(!shown.contains(value), "{} is in {shown}", s.name);
    }
}

fn repo_file(path: &str) -> String {
    let path = format!("{}/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// `docs/configuration.md`'s table: one row per setting, in the declared order, with the
/// declared default.
#[test]
fn the_docs_table_is_the_declared_settings() {
    let docs = repo_file("docs/configuration.md");
    let rows: Vec<(String, String)> = docs
        .lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.split(" | ").map(str::trim).collect();
            let name = cells.first()?.strip_prefix("| `")?.strip_suffix('`')?;
            name.starts_with("KILLSWITCH_").then(|| {
                (
                    name.to_owned(),
                    cells.get(1).copied().unwrap_or("").to_owned(),
                )
            })
        })
        .collect();
    let declared: Vec<(String, String)> = settings::SETTINGS
        .iter()
        .map(|s| (s.name.to_owned(), s.default.to_owned()))
        .collect();
    assert_eq!(rows, declared);
}

/// The `KILLSWITCH_*` variables of the `Variables:` map right after `header` in `text`.
fn variables(text: &str, header: &str) -> Vec<(String, String)> {
    let Some(start) = text.find(header) else {
        return Vec::new();
    };
    let mut set: Vec<(String, String)> = text[start + header.len()..]
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .map_while(|l| l.split_once(": "))
        .filter(|(k, _)| k.starts_with("KILLSWITCH_"))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    set.sort();
    set
}

/// Each `AWS::Serverless::Function` of the template: (logical ID, its text).
fn functions(template: &str) -> Vec<(String, String)> {
    let resources = &template[template.find("\nResources:\n").expect("Resources")..];
    let lines: Vec<&str> = resources.lines().collect();
    let starts: Vec<usize> = (0..lines.len())
        .filter(|&i| {
            lines[i].starts_with("  ") && !lines[i].starts_with("   ") && lines[i].ends_with(':')
        })
        .collect();
    starts
        .iter()
        .enumerate()
        .map(|(n, &i)| {
            let end = starts.get(n + 1).copied().unwrap_or(lines.len());
            (
                lines[i].trim().trim_end_matches(':').to_owned(),
                lines[i..end].join("\n") + "\n",
            )
        })
        .filter(|(_, text)| text.contains("\n    Type: AWS::Serverless::Function\n"))
        .collect()
}

/// The functions' environment in `template.yaml` sets exactly the settings declared with a
/// template value, each as declared: in `Globals` (so both functions get them), and in each
/// function only its own per-function values (`KILLSWITCH_ACCEPTS`).
#[test]
fn the_template_environment_is_the_declared_settings() {
    let template = repo_file("template.yaml");
    let globals = &template[template.find("\nGlobals:\n").expect("Globals")..];
    let set = variables(globals, "\n    Environment:\n      Variables:\n");
    let mut declared: Vec<(String, String)> = settings::SETTINGS
        .iter()
        .filter_map(|s| match s.template {
            settings::Template::Ref(p) => Some((s.name.to_owned(), format!("!Ref {p}"))),
            settings::Template::Literal(v) => Some((s.name.to_owned(), v.to_owned())),
            settings::Template::PerFunction(_) | settings::Template::Unset => None,
        })
        .collect();
    declared.sort();
    assert_eq!(set, declared, "Globals.Function.Environment");
    let functions = functions(&template);
    assert!(functions.len() >= 2, "the trigger and the manual function");
    for (name, text) in &functions {
        let mut own: Vec<(String, String)> = settings::SETTINGS
            .iter()
            .filter_map(|s| match s.template {
                settings::Template::PerFunction(values) => {
                    let value = values.iter().find(|(f, _)| f == name).map(|(_, v)| *v);
                    let value = value.unwrap_or_else(|| {
                        panic!("{}: declare its value for the function {name}", s.name)
                    });
                    Some((s.name.to_owned(), value.to_owned()))
                }
                settings::Template::Ref(_)
                | settings::Template::Literal(_)
                | settings::Template::Unset => None,
            })
            .collect();
        own.sort();
        let set = variables(text, "\n      Environment:\n        Variables:\n");
        assert_eq!(set, own, "{name}: only its per-function settings");
    }
    for s in settings::SETTINGS {
        if let settings::Template::PerFunction(values) = s.template {
            for (f, _) in values {
                assert!(
                    functions.iter().any(|(name, _)| name == f),
                    "{}: {f} is not a function of template.yaml",
                    s.name
                );
            }
        }
    }
}
