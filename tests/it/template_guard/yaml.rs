//! The YAML of the project's CloudFormation templates, read into JSON the way CloudFormation
//! reads it: block maps and lists, flow lists and maps (over several lines too), quoted and plain
//! scalars, folded and literal block scalars, comments, and the short-form intrinsic tags
//! (`!Ref X` as `{"Ref": "X"}`, `!GetAtt A.B` as `{"Fn::GetAtt": ["A", "B"]}`, `!Sub s` as
//! `{"Fn::Sub": s}`, `!If [...]` as `{"Fn::If": [...]}`, …). Every scalar stays a string. Anything
//! else (anchors, multi-line plain scalars) is refused with the line, so a template that grows
//! past this subset fails the tests loudly instead of being half read.

use serde_json::{Map, Value};

/// The whole document, or what is wrong and where.
pub fn parse(text: &str) -> Result<Value, String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut reader = Reader { lines, at: 0 };
    reader.skip_insignificant();
    if reader.at >= reader.lines.len() {
        return Ok(Value::Null);
    }
    let indent = reader.indent();
    let value = reader.node(indent, None)?;
    reader.skip_insignificant();
    if reader.at < reader.lines.len() {
        return Err(reader.error("content after the document's top level"));
    }
    Ok(value)
}

struct Reader<'a> {
    lines: Vec<&'a str>,
    at: usize,
}

impl Reader<'_> {
    fn error(&self, what: &str) -> String {
        let line = self.lines.get(self.at).copied().unwrap_or("");
        format!("line {}: {what}: {line:?}", self.at + 1)
    }

    fn indent(&self) -> usize {
        let line = self.lines[self.at];
        line.len() - line.trim_start_matches(' ').len()
    }

    /// The current line without its indentation and comment.
    fn content(&self) -> &str {
        strip_comment(self.lines[self.at]).trim()
    }

    fn skip_insignificant(&mut self) {
        while self.at < self.lines.len() && strip_comment(self.lines[self.at]).trim().is_empty() {
            self.at += 1;
        }
    }

    /// The node at `indent`: a list or a map. `first` replaces the current line's content (a
    /// list item's own text, which starts further right than its dash).
    fn node(&mut self, indent: usize, first: Option<String>) -> Result<Value, String> {
        let text = first.clone().unwrap_or_else(|| self.content().to_owned());
        if text == "-" || text.starts_with("- ") {
            self.list(indent, first)
        } else if split_key(&text).is_some() {
            self.map(indent, first)
        } else {
            Err(self.error("expected a map entry or a list item"))
        }
    }

    fn map(&mut self, indent: usize, mut first: Option<String>) -> Result<Value, String> {
        let mut map = Map::new();
        loop {
            let text = match first.take() {
                Some(t) => t,
                None => {
                    self.skip_insignificant();
                    if self.at >= self.lines.len() || self.indent() != indent {
                        break;
                    }
                    self.content().to_owned()
                }
            };
            if text.starts_with("- ") || text == "-" {
                break;
            }
            let Some((key, rest)) = split_key(&text) else {
                return Err(self.error("expected `key: value`"));
            };
            let key = unquote(&key);
            if map.contains_key(&key) {
                return Err(self.error(&format!("duplicate key {key}")));
            }
            let value = self.value(indent, &rest, true)?;
            map.insert(key, value);
        }
        Ok(Value::Object(map))
    }

    fn list(&mut self, indent: usize, mut first: Option<String>) -> Result<Value, String> {
        let mut items = Vec::new();
        loop {
            let text = match first.take() {
                Some(t) => t,
                None => {
                    self.skip_insignificant();
                    if self.at >= self.lines.len() || self.indent() != indent {
                        break;
                    }
                    self.content().to_owned()
                }
            };
            let Some(item) = text.strip_prefix('-') else {
                break;
            };
            if !(item.is_empty() || item.starts_with(' ')) {
                break;
            }
            // Where the item's own text starts, as if it were a line of its own.
            let column = indent + text.len() - item.trim_start().len();
            let item = item.trim_start();
            let value = if item.starts_with("- ") || item == "-" || split_key(item).is_some() {
                self.node(column, Some(item.to_owned()))?
            } else {
                self.value(indent, item, false)?
            };
            items.push(value);
        }
        Ok(Value::Array(items))
    }

    /// The value after `key:` (or a list item's scalar) on the current line: `rest`; the lines
    /// below it when `rest` is empty, a bare tag or a block-scalar indicator. `owner` is the
    /// indentation of the key or the dash. The cursor ends after the value.
    fn value(&mut self, owner: usize, rest: &str, in_map: bool) -> Result<Value, String> {
        let (tag, rest) = split_tag(rest);
        let value = if rest.is_empty() {
            self.at += 1;
            self.skip_insignificant();
            let below = self.at < self.lines.len()
                && (self.indent() > owner
                    || (in_map && self.indent() == owner && self.content().starts_with("- ")));
            if below {
                let indent = self.indent();
                self.node(indent, None)?
            } else {
                Value::Null
            }
        } else if let Some(style) = block_style(&rest) {
            self.at += 1;
            self.block_scalar(owner, style)
        } else if rest.starts_with('[') || rest.starts_with('{') {
            let mut text = rest.clone();
            while !balanced(&text) {
                self.at += 1;
                if self.at >= self.lines.len() {
                    return Err("a flow collection is never closed".into());
                }
                text.push(' ');
                text.push_str(self.content());
            }
            self.at += 1;
            flow(&text).map_err(|e| format!("line {}: {e}", self.at))?
        } else {
            self.at += 1;
            self.skip_insignificant();
            if self.at < self.lines.len() && self.indent() > owner {
                return Err(self.error("a plain scalar over several lines"));
            }
            Value::String(scalar(&rest))
        };
        Ok(match tag {
            Some(t) => tagged(&t, value),
            None => value,
        })
    }

    /// `>`/`>-` (folded: lines joined with spaces) or `|`/`|-` (literal) below `owner`.
    fn block_scalar(&mut self, owner: usize, folded: bool) -> Value {
        let mut lines: Vec<&str> = Vec::new();
        while self.at < self.lines.len() {
            let line = self.lines[self.at];
            let blank = line.trim().is_empty();
            let indent = line.len() - line.trim_start_matches(' ').len();
            if !blank && indent <= owner {
                break;
            }
            lines.push(line.trim());
            self.at += 1;
        }
        while lines.last().is_some_and(|l| l.is_empty()) {
            lines.pop();
        }
        Value::String(lines.join(if folded { " " } else { "\n" }))
    }
}

/// A line without its `#` comment (a `#` at the start or after a space, outside quotes; a quote
/// opens a scalar only where one can start, so an apostrophe in a plain scalar is text).
fn strip_comment(line: &str) -> &str {
    let mut quote: Option<char> = None;
    let mut previous = ' ';
    for (i, c) in line.char_indices() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if (c == '"' || c == '\'')
                && (previous.is_whitespace() || "[{,:".contains(previous)) =>
            {
                quote = Some(c)
            }
            None if c == '#' && previous.is_whitespace() => return &line[..i],
            None => {}
        }
        previous = c;
    }
    line
}

/// `key: rest` or `key:` at the top level of a line (not inside quotes or brackets).
fn split_key(text: &str) -> Option<(String, String)> {
    if text.starts_with(['[', '{', '!']) || text.starts_with("- ") || text == "-" {
        return None;
    }
    let mut quote: Option<char> = None;
    let mut depth = 0usize;
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    for (n, &(i, c)) in chars.iter().enumerate() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None => match c {
                '"' | '\'' if n == 0 => quote = Some(c),
                '[' | '{' => depth += 1,
                ']' | '}' => depth = depth.saturating_sub(1),
                ':' if depth == 0 => {
                    let next = chars.get(n + 1).map(|&(_, c)| c);
                    if next.is_none() || next == Some(' ') {
                        return Some((
                            text[..i].trim().to_owned(),
                            text[i + 1..].trim().to_owned(),
                        ));
                    }
                }
                _ => {}
            },
        }
    }
    None
}

/// `!Tag rest` as the tag and the rest.
fn split_tag(text: &str) -> (Option<String>, String) {
    match text.strip_prefix('!') {
        Some(t) => {
            let (tag, rest) = t.split_once(' ').unwrap_or((t, ""));
            (Some(tag.to_owned()), rest.trim().to_owned())
        }
        None => (None, text.trim().to_owned()),
    }
}

/// Folded (`true`) or literal (`false`), if `text` is a block-scalar indicator.
fn block_style(text: &str) -> Option<bool> {
    match text {
        ">" | ">-" | ">+" => Some(true),
        "|" | "|-" | "|+" => Some(false),
        _ => None,
    }
}

fn balanced(text: &str) -> bool {
    let mut quote: Option<char> = None;
    let mut depth = 0i32;
    for c in text.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None => match c {
                '"' | '\'' => quote = Some(c),
                '[' | '{' => depth += 1,
                ']' | '}' => depth -= 1,
                _ => {}
            },
        }
    }
    depth <= 0
}

/// A quoted or plain scalar's value.
fn scalar(text: &str) -> String {
    let text = text.trim();
    if text.len() >= 2 && text.starts_with('"') && text.ends_with('"') {
        let mut out = String::new();
        let mut chars = text[1..text.len() - 1].chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                match chars.next() {
                    Some('n') => out.push('\n'),
                    Some('t') => out.push('\t'),
                    Some(other) => out.push(other),
                    None => {}
                }
            } else {
                out.push(c);
            }
        }
        out
    } else if text.len() >= 2 && text.starts_with('\'') && text.ends_with('\'') {
        text[1..text.len() - 1].replace("''", "'")
    } else {
        text.to_owned()
    }
}

fn unquote(key: &str) -> String {
    scalar(key)
}

/// A short-form intrinsic as CloudFormation's JSON form.
fn tagged(tag: &str, value: Value) -> Value {
    let mut map = Map::new();
    match tag {
        "Ref" => {
            map.insert("Ref".into(), value);
        }
        "Condition" => {
            map.insert("Condition".into(), value);
        }
        "GetAtt" => {
            let v = match value {
                Value::String(s) => {
                    let (a, b) = s.split_once('.').unwrap_or((s.as_str(), ""));
                    Value::Array(vec![a.into(), b.into()])
                }
                other => other,
            };
            map.insert("Fn::GetAtt".into(), v);
        }
        other => {
            map.insert(format!("Fn::{other}"), value);
        }
    }
    Value::Object(map)
}

/// A flow collection or scalar, as written on one (joined) line.
fn flow(text: &str) -> Result<Value, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut at = 0;
    let value = flow_value(&chars, &mut at)?;
    skip_spaces(&chars, &mut at);
    if at != chars.len() {
        return Err(format!("unexpected text after a flow collection: {text:?}"));
    }
    Ok(value)
}

fn skip_spaces(chars: &[char], at: &mut usize) {
    while *at < chars.len() && chars[*at].is_whitespace() {
        *at += 1;
    }
}

fn flow_value(chars: &[char], at: &mut usize) -> Result<Value, String> {
    skip_spaces(chars, at);
    match chars.get(*at) {
        Some('[') => {
            *at += 1;
            let mut items = Vec::new();
            loop {
                skip_spaces(chars, at);
                if chars.get(*at) == Some(&']') {
                    *at += 1;
                    return Ok(Value::Array(items));
                }
                items.push(flow_value(chars, at)?);
                skip_spaces(chars, at);
                match chars.get(*at) {
                    Some(',') => *at += 1,
                    Some(']') => {}
                    _ => return Err("expected , or ] in a flow list".into()),
                }
            }
        }
        Some('{') => {
            *at += 1;
            let mut map = Map::new();
            loop {
                skip_spaces(chars, at);
                if chars.get(*at) == Some(&'}') {
                    *at += 1;
                    return Ok(Value::Object(map));
                }
                let key = flow_scalar(chars, at, true);
                if chars.get(*at) != Some(&':') {
                    return Err("expected : in a flow map".into());
                }
                *at += 1;
                let value = flow_value(chars, at)?;
                map.insert(unquote(&key), value);
                skip_spaces(chars, at);
                match chars.get(*at) {
                    Some(',') => *at += 1,
                    Some('}') => {}
                    _ => return Err("expected , or } in a flow map".into()),
                }
            }
        }
        Some('!') => {
            *at += 1;
            let start = *at;
            while *at < chars.len() && !chars[*at].is_whitespace() {
                *at += 1;
            }
            let tag: String = chars[start..*at].iter().collect();
            let value = flow_value(chars, at)?;
            Ok(tagged(&tag, value))
        }
        Some(_) => Ok(Value::String(scalar(&flow_scalar(chars, at, false)))),
        None => Err("a flow value is missing".into()),
    }
}

/// A scalar inside a flow collection: quoted, or plain up to `,`, `]`, `}` (and `: ` for a key).
fn flow_scalar(chars: &[char], at: &mut usize, key: bool) -> String {
    skip_spaces(chars, at);
    let start = *at;
    if let Some(&q @ ('"' | '\'')) = chars.get(*at) {
        *at += 1;
        while *at < chars.len() && chars[*at] != q {
            if chars[*at] == '\\' && q == '"' {
                *at += 1;
            }
            *at += 1;
        }
        *at += 1;
        let text: String = chars[start..(*at).min(chars.len())].iter().collect();
        skip_spaces(chars, at);
        return text;
    }
    while *at < chars.len() {
        let c = chars[*at];
        if matches!(c, ',' | ']' | '}') {
            break;
        }
        if key && c == ':' && chars.get(*at + 1).is_none_or(|n| n.is_whitespace()) {
            break;
        }
        *at += 1;
    }
    chars[start..*at]
        .iter()
        .collect::<String>()
        .trim()
        .to_owned()
}

mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_the_shapes_the_templates_use() {
        let text = r#"
Top: >-
  folded
  text # not a comment
Map:
  # a comment
  Key: "quoted: #1" # a comment
  Tagged: !Sub "arn:${AWS::Partition}"
  Att: !GetAtt Role.Arn
  Flow: [a, !Ref B, {prefix: !Sub "${C}:"}, "d, e"]
  Long: [iam:A,
    iam:B]
  "Null":
    key: "true"
  List:
    - plain
    - Sid: One
      Action:
        - sns:Publish
    - !If
      - Cond
      - - nested
      - !Ref AWS::NoValue
  Same:
  - x
"#;
        let v = parse(text).unwrap();
        assert_eq!(v["Top"], json!("folded text # not a comment"));
        assert_eq!(v["Map"]["Key"], json!("quoted: #1"));
        assert_eq!(
            v["Map"]["Tagged"],
            json!({"Fn::Sub": "arn:${AWS::Partition}"})
        );
        assert_eq!(v["Map"]["Att"], json!({"Fn::GetAtt": ["Role", "Arn"]}));
        assert_eq!(
            v["Map"]["Flow"],
            json!(["a", {"Ref": "B"}, {"prefix": {"Fn::Sub": "${C}:"}}, "d, e"])
        );
        assert_eq!(v["Map"]["Long"], json!(["iam:A", "iam:B"]));
        assert_eq!(v["Map"]["Null"], json!({"key": "true"}));
        assert_eq!(
            v["Map"]["List"],
            json!(["plain", {"Sid": "One", "Action": ["sns:Publish"]},
                {"Fn::If": ["Cond", ["nested"], {"Ref": "AWS::NoValue"}]}])
        );
        assert_eq!(v["Map"]["Same"], json!(["x"]));
    }

    #[test]
    fn refuses_what_it_does_not_read() {
        assert!(parse("A: [never closed\n").is_err());
        assert!(parse("A: 1\nA: 2\n").is_err());
    }
}
