//! The docs are read in the middle of an incident, so none may lead to nothing: every
//! relative link in README.md and docs/*.md leads to a file that exists (and, with an `#anchor`,
//! to a heading of that file, slugged as GitHub does), and every command they show that runs the
//! binary (`killswitch …`, `cargo run … -- …`, in a code block or an inline code span) names only
//! subcommands and flags that the built binary's `--help` lists. The README stays an entry page
//! that points to every doc.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// README.md and every docs/*.md, each with its text.
fn doc_files() -> Vec<(PathBuf, String)> {
    let mut paths = vec![Path::new(ROOT).join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(Path::new(ROOT).join("docs"))
        .expect("docs/")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    docs.sort();
    assert!(!docs.is_empty(), "docs/ has no .md file");
    paths.extend(docs);
    paths
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{p:?}: {e}"));
            (p, text)
        })
        .collect()
}

fn shown(path: &Path) -> String {
    path.strip_prefix(ROOT)
        .unwrap_or(path)
        .display()
        .to_string()
}

/// A Markdown text as its parts: the lines of fenced code blocks (a line ending in `\` joined
/// with the next), headings, and paragraphs of prose (table rows included), each with the number
/// of its first line.
#[derive(Default)]
struct Markdown {
    code: Vec<(usize, String)>,
    headings: Vec<String>,
    paragraphs: Vec<(usize, String)>,
}

fn parse(text: &str) -> Markdown {
    let mut md = Markdown::default();
    let mut fence = false;
    let mut paragraph: Option<(usize, String)> = None;
    let mut continued: Option<(usize, String)> = None;
    for (i, line) in text.lines().enumerate() {
        let number = i + 1;
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            fence = !fence;
            md.paragraphs.extend(paragraph.take());
            md.code.extend(continued.take());
            continue;
        }
        if fence {
            let (start, mut joined) = continued.take().unwrap_or((number, String::new()));
            joined.push_str(line.trim());
            match joined.strip_suffix('\\') {
                Some(open) => continued = Some((start, format!("{open} "))),
                None => md.code.push((start, joined)),
            }
        } else if trimmed.is_empty() {
            md.paragraphs.extend(paragraph.take());
        } else if line.starts_with('#') {
            md.paragraphs.extend(paragraph.take());
            let title = line.trim_start_matches('#');
            if title.starts_with(' ') {
                md.headings
                    .push(title.trim().trim_end_matches('#').trim().to_owned());
            }
        } else {
            let (_, p) = paragraph.get_or_insert((number, String::new()));
            p.push_str(line);
            p.push('\n');
        }
    }
    md.paragraphs.extend(paragraph);
    md.code.extend(continued);
    md
}

/// A paragraph with its inline code blanked out (same length, newlines kept, so offsets still
/// give lines), and its inline code spans with their offsets, newlines as spaces.
fn prose_and_spans(paragraph: &str) -> (String, Vec<(usize, String)>) {
    let mut prose = String::with_capacity(paragraph.len());
    let mut spans = Vec::new();
    let mut offset = 0;
    for (i, part) in paragraph.split('`').enumerate() {
        if i % 2 == 0 {
            prose.push_str(part);
        } else {
            spans.push((offset, part.replace('\n', " ")));
            for c in part.chars() {
                match c {
                    '\n' => prose.push(c),
                    c => prose.extend(std::iter::repeat_n(' ', c.len_utf8())),
                }
            }
        }
        prose.push(' '); // the backtick
        offset += part.len() + 1;
    }
    prose.pop();
    (prose, spans)
}

/// The line, in a file, of an offset into a paragraph that starts on line `start`.
fn line_of(start: usize, paragraph: &str, offset: usize) -> usize {
    start + paragraph[..offset].matches('\n').count()
}

/// The anchor GitHub gives a heading: lower case, punctuation dropped (backticks, parentheses,
/// commas, dots…), spaces as hyphens; a repeated heading gets `-1`, `-2`, ….
fn slug(heading: &str) -> String {
    heading
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

fn anchors(headings: &[String]) -> BTreeSet<String> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    headings
        .iter()
        .map(|h| {
            let base = slug(h);
            let n = seen.entry(base.clone()).or_insert(0);
            let anchor = if *n == 0 {
                base.clone()
            } else {
                format!("{base}-{n}")
            };
            *n += 1;
            anchor
        })
        .collect()
}

/// The targets of the inline links `[text](target)` in a piece of prose, with their offsets.
fn link_targets(prose: &str) -> Vec<(usize, String)> {
    prose
        .match_indices("](")
        .map(|(at, _)| {
            let target = prose[at + 2..]
                .chars()
                .take_while(|c| *c != ')' && !c.is_whitespace())
                .collect::<String>();
            (at, target)
        })
        .collect()
}

/// What is wrong with the relative links of `file` (whose text is `text`): a target that does
/// not exist, or an anchor that names no heading of the file it points into.
fn link_problems(file: &Path, text: &str) -> Vec<String> {
    let md = parse(text);
    let mut problems = Vec::new();
    for (start, paragraph) in &md.paragraphs {
        let (prose, _) = prose_and_spans(paragraph);
        for (offset, target) in link_targets(&prose) {
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let line = line_of(*start, paragraph, offset);
            let at = format!("{}:{line}: link {target:?}", shown(file));
            let (path, anchor) = match target.split_once('#') {
                Some((p, a)) => (p, Some(a)),
                None => (target.as_str(), None),
            };
            let resolved = file.parent().unwrap().join(path);
            if !path.is_empty() && !resolved.exists() {
                problems.push(format!("{at}: {} does not exist", resolved.display()));
                continue;
            }
            let Some(anchor) = anchor else { continue };
            let headings = if path.is_empty() {
                md.headings.clone()
            } else if resolved.extension().is_some_and(|x| x == "md") {
                parse(&std::fs::read_to_string(&resolved).unwrap()).headings
            } else {
                problems.push(format!("{at}: an anchor into a file that is not Markdown"));
                continue;
            };
            let known = anchors(&headings);
            if !known.contains(anchor) {
                problems.push(format!(
                    "{at}: no heading with the anchor #{anchor} ({known:?})"
                ));
            }
        }
    }
    problems
}

/// What the binary's help lists: its subcommands, and per command (`""` for the top level) its
/// flags, long and short, and which of them take a value.
#[derive(Default, Debug)]
struct Help {
    subcommands: BTreeSet<String>,
    flags: BTreeMap<String, BTreeSet<String>>,
    takes_value: BTreeSet<String>,
}

fn help_text(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_killswitch"))
        .args(args)
        .env_remove("AWS_LAMBDA_RUNTIME_API")
        .env("COLUMNS", "200")
        .output()
        .unwrap();
    assert!(out.status.success(), "killswitch {args:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// Reads one `--help`: the `Commands:` section's names and the `Options:` section's flags
/// (with their aliases).
fn read_help(text: &str, help: &mut Help, command: &str) {
    let flags = help.flags.entry(command.to_owned()).or_default();
    let mut section = "";
    let mut current = String::new(); // the flag the lines below describe
    for line in text.lines() {
        if !line.starts_with(' ') && line.ends_with(':') {
            section = line;
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        let trimmed = line.trim_start();
        if section == "Commands:"
            && indent == 2
            && let Some(name) = trimmed.split_whitespace().next()
        {
            help.subcommands.insert(name.to_owned());
        }
        if section != "Options:" {
            continue;
        }
        if indent <= 6 && trimmed.starts_with('-') {
            for word in trimmed.split_whitespace() {
                if word.starts_with('-') {
                    current = word.trim_end_matches(',').to_owned();
                    flags.insert(current.clone());
                } else {
                    if word.starts_with('<') {
                        help.takes_value.insert(current.clone());
                    }
                    break;
                }
            }
        }
        for marker in ["[alias: ", "[aliases: "] {
            if let Some(at) = line.find(marker) {
                let names = line[at + marker.len()..].split(']').next().unwrap();
                for name in names.split(',').map(str::trim) {
                    flags.insert(name.to_owned());
                    if help.takes_value.contains(&current) {
                        help.takes_value.insert(name.to_owned());
                    }
                }
            }
        }
    }
}

fn help() -> &'static Help {
    static HELP: OnceLock<Help> = OnceLock::new();
    HELP.get_or_init(|| {
        let mut help = Help::default();
        read_help(&help_text(&["--help"]), &mut help, "");
        for sub in help.subcommands.clone() {
            if sub != "help" {
                read_help(&help_text(&[&sub, "--help"]), &mut help, &sub);
            }
        }
        // The help must have been read, or every check below would pass on nothing.
        for sub in ["respond", "status", "restore", "completions", "man"] {
            assert!(help.subcommands.contains(sub), "{sub}: {help:?}");
        }
        assert!(help.flags[""].contains("--profile"), "{help:?}");
        assert!(
            help.flags["respond"].contains("--access-key-id"),
            "{help:?}"
        );
        assert!(help.flags["restore"].contains("--session-name"), "{help:?}");
        assert!(help.takes_value.contains("--profile"), "{help:?}");
        let drill_harness = cfg!(feature = "drill");
        assert_eq!(
            help.subcommands.contains("drill"),
            drill_harness,
            "{help:?}"
        );
        help
    })
}

/// Shell words, with whether each was quoted (a quoted word is never a flag or an operator).
fn words(line: &str) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    let mut word = String::new();
    let (mut quote, mut quoted, mut any) = (None, false, false);
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '"' | '\'') => (quote, quoted, any) = (Some(c), true, true),
            (None, c) if c.is_whitespace() => {
                if any {
                    out.push((std::mem::take(&mut word), quoted));
                }
                (quoted, any) = (false, false);
            }
            (None, c) => {
                word.push(c);
                any = true;
            }
        }
    }
    if any {
        out.push((word, quoted));
    }
    out
}

/// The argument lists of the binary's invocations on one line: each simple command (split at
/// `|`, `&&`, `||`, `;`, ending at a `#` comment, a redirection or a parenthesised remark) whose
/// program, after `NAME=value` assignments and a `$ ` prompt, is `killswitch` or `cargo run … --`.
fn invocations(line: &str) -> Vec<Vec<(String, bool)>> {
    let mut commands = vec![Vec::new()];
    for (word, quoted) in words(line) {
        if !quoted && ["|", "||", "&&", ";"].contains(&word.as_str()) {
            commands.push(Vec::new());
        } else if !quoted
            && (word.starts_with(['#', '(', '>'])
                || word.starts_with("2>")
                || word.starts_with("1>"))
        {
            break;
        } else {
            commands.last_mut().unwrap().push((word, quoted));
        }
    }
    let assignment = |w: &str| {
        w.split_once('=').is_some_and(|(name, _)| {
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        })
    };
    commands
        .into_iter()
        .filter_map(|command| {
            let mut rest = command
                .into_iter()
                .skip_while(|(w, q)| !q && (w == "$" || assignment(w)));
            let (program, _) = rest.next()?;
            if program == "killswitch" || program.ends_with("/killswitch") {
                return Some(rest.collect());
            }
            let rest: Vec<_> = rest.collect();
            if program == "cargo" && rest.first().is_some_and(|(w, _)| w == "run") {
                let dashes = rest.iter().position(|(w, q)| !q && w == "--")?;
                return Some(rest[dashes + 1..].to_vec());
            }
            None
        })
        .collect()
}

/// What is wrong with one invocation: a subcommand or a flag its `--help` does not list.
fn invocation_problems(args: &[(String, bool)], help: &Help) -> Vec<String> {
    let mut problems = Vec::new();
    let mut command = String::new();
    let mut args = args.iter();
    while let Some((arg, quoted)) = args.next() {
        if *quoted {
            continue;
        }
        if arg == "--" {
            break;
        }
        if arg.starts_with('-') && arg.len() > 1 {
            let name = arg.split('=').next().unwrap();
            if !help.flags[&command].contains(name) {
                let at = format!("killswitch {command} --help").replace("  ", " ");
                problems.push(format!("{name} is not a flag of `{at}`"));
            } else if help.takes_value.contains(name) && !arg.contains('=') {
                args.next();
            }
        } else if command.is_empty() {
            if arg == "help" {
                break;
            }
            if arg == "drill" && !cfg!(feature = "drill") {
                return problems; // built without the drill harness: nothing to hold it to
            }
            if !help.subcommands.contains(arg.as_str()) {
                problems.push(format!("killswitch has no subcommand {arg:?}"));
                break;
            }
            command.clone_from(arg);
        }
    }
    problems
}

/// Every invocation of the binary in a Markdown text (code blocks and inline code), with its line.
fn shown_invocations(text: &str) -> Vec<(usize, Vec<(String, bool)>)> {
    let md = parse(text);
    let mut found = Vec::new();
    for (line, code) in &md.code {
        found.extend(invocations(code).into_iter().map(|args| (*line, args)));
    }
    for (start, paragraph) in &md.paragraphs {
        for (offset, span) in prose_and_spans(paragraph).1 {
            let line = line_of(*start, paragraph, offset);
            found.extend(invocations(&span).into_iter().map(|args| (line, args)));
        }
    }
    found
}

fn command_problems(file: &Path, text: &str, help: &Help) -> Vec<String> {
    shown_invocations(text)
        .into_iter()
        .flat_map(|(line, args)| {
            let typed: Vec<&str> = args.iter().map(|(w, _)| w.as_str()).collect();
            let at = format!("{}:{line}: killswitch {}", shown(file), typed.join(" "));
            invocation_problems(&args, help)
                .into_iter()
                .map(move |p| format!("{at}: {p}"))
        })
        .collect()
}

#[test]
fn every_relative_link_in_the_docs_leads_to_a_file_and_a_heading_that_exist() {
    let mut problems = Vec::new();
    let mut links = 0;
    for (file, text) in doc_files() {
        let md = parse(&text);
        links += md
            .paragraphs
            .iter()
            .map(|(_, p)| link_targets(&prose_and_spans(p).0).len())
            .sum::<usize>();
        problems.extend(link_problems(&file, &text));
    }
    assert!(
        links >= 20,
        "only {links} links found: is the parser broken?"
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_command_the_docs_show_uses_only_subcommands_and_flags_the_binary_has() {
    let help = help();
    let mut problems = Vec::new();
    let mut seen = 0;
    for (file, text) in doc_files() {
        seen += shown_invocations(&text).len();
        problems.extend(command_problems(&file, &text, help));
    }
    assert!(
        seen >= 20,
        "only {seen} commands found: is the parser broken?"
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_doc_checks_catch_a_made_up_flag_subcommand_file_and_anchor() {
    let help = help();
    let text = "# Doc\n\n## Running it (by hand)\n\n\
        See [ok](#running-it-by-hand), [file](../README.md#the-two-commands),\n\
        [gone](no-such-file.md), [nowhere](#no-such-heading) and\n\
        [elsewhere](../README.md#no-such-heading); not `[code](missing.md)`.\n\n\
        ```sh\n\
        killswitch --profile sec respond --access-key-id AKIA... --reason \"--not-a-flag\"\n\
        killswitch respond --access-key-id AKIA... \\\n    --bogus-flag\n\
        cat e.json | AWS_PROFILE=x killswitch respond --event - --reactivate-key\n\
        killswitch frobnicate --yes   # a remark --also-not-checked\n\
        cargo run --release -- status --access-key-id AKIA... --dry-run\n\
        killswitch: first report sent (output, not a command) --ignored\n\
        ```\n\n\
        Inline: `killswitch restore --access-key-id AKIA... --session-name S\n--made-up`.\n";
    let file = Path::new(ROOT).join("docs/synthetic.md");

    let links = link_problems(&file, text).join("\n");
    for bad in [
        "no-such-file.md",
        "\"#no-such-heading\"",
        "README.md#no-such-heading",
    ] {
        assert!(links.contains(bad), "{bad} not caught:\n{links}");
    }
    assert_eq!(links.lines().count(), 3, "{links}");

    let commands = command_problems(&file, text, help).join("\n");
    for bad in [
        "--bogus-flag is not a flag of `killswitch respond --help`",
        "--reactivate-key is not a flag of `killswitch respond --help`",
        "no subcommand \"frobnicate\"",
        "--dry-run is not a flag of `killswitch status --help`",
        "--made-up is not a flag of `killswitch restore --help`",
    ] {
        assert!(commands.contains(bad), "{bad} not caught:\n{commands}");
    }
    assert_eq!(commands.lines().count(), 5, "{commands}");

    assert_eq!(
        slug("What `template.yaml` creates"),
        "what-templateyaml-creates"
    );
    assert_eq!(
        slug("Running it by hand (on-call)"),
        "running-it-by-hand-on-call"
    );
    assert_eq!(
        anchors(&["Upgrading".into(), "Upgrading".into()]),
        BTreeSet::from(["upgrading".into(), "upgrading-1".into()])
    );
}

/// The README is the entry page: short, and a way to every doc.
#[test]
fn the_readme_is_short_and_points_to_every_doc() {
    let readme = std::fs::read_to_string(Path::new(ROOT).join("README.md")).unwrap();
    let lines = readme.lines().count();
    assert!(
        lines <= 250,
        "README.md has {lines} lines; move detail to docs/"
    );
    for (file, _) in doc_files().into_iter().skip(1) {
        let name = file.file_name().unwrap().to_str().unwrap();
        assert!(
            readme.contains(&format!("(docs/{name}")),
            "README.md does not link docs/{name}"
        );
    }
}

/// Repository paths the docs name in code spans (`src/…`, `tests/…`, `scripts/…`, `events/…`,
/// `drills/…`, `docs/…`): each must exist, so a moved file cannot leave a reader at a dead end.
fn path_problems(file: &Path, text: &str) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        for span in line.split('`').skip(1).step_by(2) {
            let path = span.split([' ', ':', '(']).next().unwrap_or("");
            let named = ["src/", "tests/", "scripts/", "events/", "drills/", "docs/"]
                .iter()
                .any(|p| path.starts_with(p));
            if named && !path.contains(['*', '<', '{']) && !root.join(path).exists() {
                out.push(format!(
                    "{}:{}: `{path}` does not exist",
                    shown(file),
                    n + 1
                ));
            }
        }
    }
    out
}

#[test]
fn every_repository_path_the_docs_name_exists() {
    let problems: Vec<String> = doc_files()
        .iter()
        .flat_map(|(file, text)| path_problems(file, text))
        .collect();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    let made_up = path_problems(Path::new("x.md"), "see `src/nowhere.rs` and `src/lib.rs`");
    assert_eq!(made_up, ["x.md:1: `src/nowhere.rs` does not exist"]);
}
