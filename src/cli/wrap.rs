//! Text for a terminal: reports and notices are written once (they are also the email body), and
//! fitted here to the terminal's width, so that nothing on-call reads runs off the screen and
//! every command still pastes as one.

/// The width to fit to: the terminal's, else `COLUMNS`; never under 40. Text written to a pipe
/// without `COLUMNS` is left as it is (a script may read it line by line).
pub fn width() -> usize {
    terminal_size::terminal_size()
        .map(|(w, _)| usize::from(w.0))
        .or_else(|| std::env::var("COLUMNS").ok()?.parse().ok())
        .map_or(usize::MAX, |w: usize| w.max(40))
}

/// The `--profile` the command was given: the commands a report suggests carry it too, so
/// that a pasted one acts as the same identity.
static PROFILE: std::sync::OnceLock<String> = std::sync::OnceLock::new();

pub fn set_profile(name: &str) {
    let _ = PROFILE.set(name.to_owned());
}

/// `killswitch …` / `aws …` at a line's start, with `--profile NAME` after the program name.
fn with_profile(line: &str) -> std::borrow::Cow<'_, str> {
    let Some(profile) = PROFILE.get() else {
        return line.into();
    };
    let trimmed = line.trim_start();
    let indent = &line[..line.len() - trimmed.len()];
    for program in ["killswitch ", "aws "] {
        if let Some(rest) = trimmed.strip_prefix(program)
            && !rest.starts_with("--profile")
        {
            return format!("{indent}{program}--profile {profile} {rest}").into();
        }
    }
    line.into()
}

/// Every line of `text` at most `width` columns (characters) wide.
pub fn fit(text: &str, width: usize) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    for line in text.split_inclusive('\n') {
        let (body, end) = match line.strip_suffix('\n') {
            Some(b) => (b, "\n"),
            None => (line, ""),
        };
        for (i, piece) in fit_line(&with_profile(body), width).iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            out.push_str(piece);
        }
        out.push_str(end);
    }
    out
}

fn columns(s: &str) -> usize {
    s.chars().count()
}

/// `COMMAND   (what it does)`: the remark becomes shell comment lines of its own, so that the
/// continued command above it still pastes.
fn command_and_remark(line: &str, width: usize) -> Option<Vec<String>> {
    let trimmed = line.trim_start();
    if !is_command(trimmed) {
        return None;
    }
    let at = line.find("   (")?;
    let indent = &line[..line.len() - trimmed.len()];
    let mut out = fit_line(line[..at].trim_end(), width);
    let remark = fit_line(
        &format!("{indent}{}", line[at..].trim()),
        width.saturating_sub(2),
    );
    out.extend(
        remark
            .iter()
            .map(|l| format!("{indent}# {}", l.trim_start())),
    );
    Some(out)
}

/// `aws …`, `killswitch …`, or either after `NAME=value` settings for that one command.
fn is_command(text: &str) -> bool {
    let mut words = text.split(' ');
    let mut word = words.next().unwrap_or_default();
    while let Some((name, _)) = word.split_once('=')
        && !name.is_empty()
        && name.chars().all(|c| c.is_ascii_uppercase() || c == '_')
    {
        word = words.next().unwrap_or_default();
    }
    word == "aws" || word == "killswitch"
}

/// A word longer than the line (an ARN, say) is cut where it must be.
fn cut_long_words(lines: Vec<String>, width: usize, next_indent: &str) -> Vec<String> {
    let mut out = Vec::new();
    for mut l in lines {
        while columns(&l) > width {
            let head: String = l.chars().take(width).collect();
            let tail: String = l.chars().skip(width).collect();
            out.push(head);
            l = format!("{next_indent}{tail}");
        }
        out.push(l);
    }
    out
}

/// Where a labelled value starts (`Key:        AKIA…`, a step's detail after its outcome column):
/// its continuation lines go under it.
fn hang(line: &str, after: usize) -> Option<usize> {
    let chars: Vec<char> = line.chars().collect();
    (after.max(2)..chars.len().min(45))
        .rev()
        .find(|&i| chars[i - 1] == ' ' && chars[i - 2] == ' ' && chars[i] != ' ')
}

/// A shell command (continued with ` \`, so it still pastes and runs) or prose (continued under
/// its own indentation, one step further in).
fn fit_line(line: &str, width: usize) -> Vec<String> {
    if columns(line) <= width {
        return vec![line.to_owned()];
    }
    if let Some(split) = command_and_remark(line, width) {
        return split;
    }
    let indent: String = line.chars().take_while(|c| *c == ' ').collect();
    let rest = &line[indent.len()..];
    let bullet = if rest.starts_with("- ") { "  " } else { "" };
    let command = is_command(rest);
    let lead = indent.len() + bullet.len();
    let next_indent = " ".repeat(if command {
        lead + 4
    } else {
        // A bullet's text continues under its first word; other prose one step further in.
        // Never at or past the width: no continuation line would then ever get shorter.
        hang(line, lead + 1)
            .filter(|&at| at < width)
            .unwrap_or(if bullet.is_empty() { lead + 4 } else { lead })
    });
    let budget = |first: bool| {
        // A command's line keeps room for its ` \`.
        width
            .saturating_sub(if command { 2 } else { 0 })
            .max(if first {
                columns(&indent) + 1
            } else {
                columns(&next_indent) + 1
            })
    };
    let lines = fill(
        rest.split(' '),
        &indent,
        &next_indent,
        |line, word, first| {
            // A word that fits on no line is cut below, where it stands.
            columns(line) + 1 + columns(word) <= budget(first)
                || columns(&next_indent) + columns(word) > budget(false)
        },
    );
    let mut out = cut_long_words(lines, width, &next_indent);
    if command {
        let last = out.len() - 1;
        for l in &mut out[..last] {
            l.push_str(" \\");
        }
    }
    out
}

/// `words` laid onto lines, greedily: `first` opens the first line, `rest` every other. A word
/// joins the line when the line holds no word yet or `fits(line, word, on_first_line)`, after
/// one space; empty words (from runs of spaces) are kept, so that spacing survives.
fn fill<'a>(
    words: impl IntoIterator<Item = &'a str>,
    first: &str,
    rest: &str,
    fits: impl Fn(&str, &str, bool) -> bool,
) -> Vec<String> {
    let mut lines = Vec::new();
    let mut current = first.to_owned();
    let mut empty = true;
    let mut on_first = true;
    for word in words {
        if empty || fits(&current, word, on_first) {
            if !empty {
                current.push(' ');
            }
            current.push_str(word);
            empty = empty && word.is_empty();
            continue;
        }
        lines.push(std::mem::replace(&mut current, format!("{rest}{word}")));
        empty = word.is_empty();
        on_first = false;
    }
    lines.push(current);
    lines
}

/// The width of text written once for every reader (the restore's plan and refusals), whatever
/// the terminal.
pub const WIDTH: usize = 80;

/// `text` as one list item (`  - `), wrapped at [`WIDTH`] under its first word. A command in
/// parentheses (`(aws …)`, `(killswitch …)`) is never broken: it stays copyable.
pub fn item(text: &str) -> String {
    hanging("  - ", "    ", text)
}

/// `text` after `first`, continued under `rest`, wrapped at [`WIDTH`].
pub fn hanging(first: &str, rest: &str, text: &str) -> String {
    let units = keep_commands_whole(text);
    let lines = fill(
        units.iter().map(String::as_str),
        first,
        rest,
        |line, unit, _| columns(line) + 1 + columns(unit) <= WIDTH,
    );
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

/// The words of `text`, a command in parentheses (`(aws …)`, `(killswitch …)`) as one.
fn keep_commands_whole(text: &str) -> Vec<String> {
    let mut units: Vec<String> = Vec::new();
    let mut command: Option<String> = None;
    for word in text.split_whitespace() {
        match command.as_mut() {
            Some(c) => {
                c.push(' ');
                c.push_str(word);
            }
            None if word.starts_with("(aws") || word.starts_with("(killswitch") => {
                command = Some(word.to_owned());
            }
            None => units.push(word.to_owned()),
        }
        if command
            .as_ref()
            .is_some_and(|c| c.trim_end_matches([',', ':', ';', '.']).ends_with(')'))
        {
            units.extend(command.take());
        }
    }
    units.extend(command);
    units
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_fits_and_commands_continue_with_a_backslash() {
        let text = format!(
            "short\n  - {}\n  aws iam update-access-key --user-name leaky --access-key-id AKIAIOSFODNN7EXAMPLE --status Active\n",
            "word ".repeat(40).trim_end()
        );
        let fitted = fit(&text, 80);
        assert!(fitted.lines().all(|l| l.chars().count() <= 80), "{fitted}");
        assert!(fitted.starts_with("short\n  - word"), "{fitted}");
        assert!(fitted.contains("\n    word"), "{fitted}");
        // The command is still one command to a shell.
        let command: String = fitted
            .lines()
            .skip_while(|l| !l.trim_start().starts_with("aws "))
            .map(|l| l.trim().trim_end_matches('\\').trim().to_owned())
            .collect::<Vec<_>>()
            .join(" ");
        assert_eq!(
            command,
            "aws iam update-access-key --user-name leaky --access-key-id AKIAIOSFODNN7EXAMPLE --status Active"
        );
        assert!(
            fitted
                .lines()
                .filter(|l| l.trim_start().starts_with("--") || l.contains("aws "))
                .take(1)
                .all(|l| l.ends_with(" \\")),
            "{fitted}"
        );
        assert_eq!(fit("a\n\nb", 80), "a\n\nb");
        assert!(is_command(
            "KILLSWITCH_ROLE_WIDE_REVOCATION=ci killswitch respond"
        ));
        assert!(!is_command("Key: AKIA"));
        let long = "x".repeat(200);
        assert!(fit(&long, 80).lines().all(|l| l.chars().count() <= 80));
        // A labelled value starting past the width is not hung under its label.
        let label = format!("Label:{}{}", " ".repeat(36), "x".repeat(50));
        assert!(fit(&label, 40).lines().all(|l| l.chars().count() <= 40));
    }

    #[test]
    fn items_wrap_at_80_and_never_break_a_command() {
        let text = "access key AKIAI44QH8DHBEXAMPLE of user backup-svc, minted by the key's holder at 2026-11-23 09:10:02 UTC (CreateAccessKey), is Active: deactivate it first (aws iam update-access-key --user-name backup-svc --access-key-id AKIAI44QH8DHBEXAMPLE --status Inactive)";
        let wrapped = item(text);
        let lines: Vec<&str> = wrapped.lines().collect();
        assert!(lines[0].starts_with("  - access key"), "{wrapped}");
        assert!(
            lines[1..].iter().all(|l| l.starts_with("    ")),
            "{wrapped}"
        );
        let command = lines
            .iter()
            .find(|l| l.contains("update-access-key"))
            .unwrap();
        assert!(
            command
                .trim_start()
                .starts_with("(aws iam update-access-key")
                && command.trim_end().ends_with("--status Inactive)"),
            "{wrapped}"
        );
        for l in &lines {
            assert!(l.chars().count() <= WIDTH || l.contains("(aws"), "{l}");
        }
        assert_eq!(
            wrapped.split_whitespace().skip(1).collect::<Vec<_>>(),
            text.split_whitespace().collect::<Vec<_>>(),
            "nothing lost but the bullet"
        );
    }
}
