//! Label selectors in the API server's syntax (`kubectl get -l`):
//! `app=web`, `tier!=cache`, `env in (prod,staging)`, `env notin (dev)`,
//! `team`, `!legacy`, `replicas>2`, joined by commas (all must hold).

use std::collections::BTreeMap;

/// One requirement on an object's labels.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Requirement {
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    DoesNotExist(String),
    GreaterThan(String, i64),
    LessThan(String, i64),
}

/// A parsed selector: every requirement must hold.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Selector(Vec<Requirement>);

/// Why a selector does not parse, with where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("label selector {selector:?}: {why}")]
pub struct SelectorError {
    selector: String,
    why: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Word(String),
    Not,
    Equals,
    NotEquals,
    Open,
    Close,
    Comma,
    Greater,
    Less,
}

impl Selector {
    /// Parses `text`; the empty selector selects everything.
    pub fn parse(text: &str) -> Result<Selector, SelectorError> {
        let fail = |why: String| SelectorError {
            selector: text.to_owned(),
            why,
        };
        let tokens = lex(text).map_err(fail)?;
        parse(&tokens).map(Selector).map_err(fail)
    }

    /// Whether `labels` satisfy every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.0.iter().all(|requirement| match requirement {
            Requirement::In(key, values) => {
                labels.get(key).is_some_and(|value| values.contains(value))
            }
            Requirement::NotIn(key, values) => {
                labels.get(key).is_none_or(|value| !values.contains(value))
            }
            Requirement::Exists(key) => labels.contains_key(key),
            Requirement::DoesNotExist(key) => !labels.contains_key(key),
            Requirement::GreaterThan(key, bound) => {
                number(labels, key).is_some_and(|value| value > *bound)
            }
            Requirement::LessThan(key, bound) => {
                number(labels, key).is_some_and(|value| value < *bound)
            }
        })
    }
}

fn number(labels: &BTreeMap<String, String>, key: &str) -> Option<i64> {
    labels.get(key)?.parse().ok()
}

fn lex(text: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some((at, char)) = chars.next() {
        let token = match char {
            ' ' | '\t' => continue,
            '(' => Token::Open,
            ')' => Token::Close,
            ',' => Token::Comma,
            '>' => Token::Greater,
            '<' => Token::Less,
            '=' => {
                chars.next_if(|(_, next)| *next == '=');
                Token::Equals
            }
            '!' => match chars.next_if(|(_, next)| *next == '=') {
                Some(_) => Token::NotEquals,
                None => Token::Not,
            },
            char if is_word(char) => {
                let mut end = at + char.len_utf8();
                while let Some((next_at, next)) = chars.next_if(|(_, next)| is_word(*next)) {
                    end = next_at + next.len_utf8();
                }
                Token::Word(text[at..end].to_owned())
            }
            other => return Err(format!("unexpected {other:?} at byte {at}")),
        };
        tokens.push(token);
    }
    Ok(tokens)
}

/// Characters of label keys and values.
fn is_word(char: char) -> bool {
    char.is_ascii_alphanumeric() || matches!(char, '-' | '_' | '.' | '/')
}

fn parse(tokens: &[Token]) -> Result<Vec<Requirement>, String> {
    let mut requirements = Vec::new();
    let mut rest = tokens;
    while !rest.is_empty() {
        let (requirement, after) = requirement(rest)?;
        requirements.push(requirement);
        rest = match after {
            [] => after,
            [Token::Comma] => return Err("expected a label key after the last comma".to_owned()),
            [Token::Comma, next @ ..] => next,
            [token, ..] => return Err(format!("expected a comma, found {}", describe(token))),
        };
    }
    Ok(requirements)
}

/// One requirement at the start of `tokens`, and what follows it.
fn requirement(tokens: &[Token]) -> Result<(Requirement, &[Token]), String> {
    let key_at = |tokens: &[Token]| match tokens.first() {
        Some(Token::Word(key)) if key_ok(key) => Ok(key.clone()),
        Some(token) => Err(format!("expected a label key, found {}", describe(token))),
        None => Err("expected a label key".to_owned()),
    };
    if let [Token::Not, rest @ ..] = tokens {
        return Ok((Requirement::DoesNotExist(key_at(rest)?), &rest[1..]));
    }
    let key = key_at(tokens)?;
    let rest = &tokens[1..];
    let value_then = |rest: &[Token]| -> (String, usize) {
        match rest.first() {
            Some(Token::Word(value)) => (value.clone(), 1),
            _ => (String::new(), 0),
        }
    };
    Ok(match rest {
        [] | [Token::Comma, ..] => (Requirement::Exists(key), rest),
        [Token::Equals, after @ ..] => {
            let (value, used) = value_then(after);
            (Requirement::In(key, vec![value]), &after[used..])
        }
        [Token::NotEquals, after @ ..] => {
            let (value, used) = value_then(after);
            (Requirement::NotIn(key, vec![value]), &after[used..])
        }
        [Token::Word(operator), after @ ..] if operator == "in" || operator == "notin" => {
            let (values, after) = value_set(after)?;
            match operator.as_str() {
                "in" => (Requirement::In(key, values), after),
                _ => (Requirement::NotIn(key, values), after),
            }
        }
        [Token::Greater | Token::Less, Token::Word(bound), after @ ..] => {
            let bound: i64 = bound
                .parse()
                .map_err(|_| format!("{bound:?} is not an integer"))?;
            match rest[0] {
                Token::Greater => (Requirement::GreaterThan(key, bound), after),
                _ => (Requirement::LessThan(key, bound), after),
            }
        }
        [token, ..] => {
            return Err(format!(
                "expected an operator after {key:?}, found {}",
                describe(token)
            ));
        }
    })
}

/// `(a, b, c)` at the start of `tokens`, and what follows it.
fn value_set(tokens: &[Token]) -> Result<(Vec<String>, &[Token]), String> {
    let Some((Token::Open, mut rest)) = tokens.split_first() else {
        return Err("expected ( after in/notin".to_owned());
    };
    let mut values = Vec::new();
    loop {
        match rest {
            [Token::Word(value), after @ ..] => {
                values.push(value.clone());
                rest = after;
            }
            _ => values.push(String::new()),
        }
        match rest {
            [Token::Comma, after @ ..] => rest = after,
            [Token::Close, after @ ..] => return Ok((values, after)),
            _ => return Err("expected , or ) in a value set".to_owned()),
        }
    }
}

/// A label key: an optional DNS prefix and `/`, then a name.
fn key_ok(key: &str) -> bool {
    let name = key.rsplit_once('/').map_or(key, |(prefix, name)| {
        if prefix.is_empty() || prefix.contains('/') {
            ""
        } else {
            name
        }
    });
    !name.is_empty() && name.len() <= 63
}

fn describe(token: &Token) -> String {
    match token {
        Token::Word(word) => format!("{word:?}"),
        Token::Not => "!".to_owned(),
        Token::Equals => "=".to_owned(),
        Token::NotEquals => "!=".to_owned(),
        Token::Open => "(".to_owned(),
        Token::Close => ")".to_owned(),
        Token::Comma => ",".to_owned(),
        Token::Greater => ">".to_owned(),
        Token::Less => "<".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect()
    }

    #[test]
    fn the_api_servers_operators_select_as_it_does() {
        let web = labels(&[
            ("app", "web"),
            ("env", "prod"),
            ("replicas", "3"),
            ("example.com/team", "a"),
        ]);
        for (selector, selected) in [
            ("", true),
            ("app=web", true),
            ("app==web", true),
            ("app = web , env=prod", true),
            ("app!=web", false),
            ("app!=db", true),
            ("missing!=x", true),
            ("env in (prod, staging)", true),
            ("env notin (prod)", false),
            ("env notin (dev)", true),
            ("example.com/team", true),
            ("!example.com/team", false),
            ("!legacy", true),
            ("replicas>2", true),
            ("replicas<3", false),
            ("app=", false),
        ] {
            let parsed = Selector::parse(selector).unwrap_or_else(|error| panic!("{error}"));
            assert_eq!(parsed.matches(&web), selected, "{selector}");
        }
    }

    #[test]
    fn bad_selectors_say_why() {
        for (selector, why) in [
            ("app=web,", "label key"),
            ("app web", "operator"),
            ("env in prod", "("),
            ("env in (a b)", ", or )"),
            ("replicas>x", "integer"),
            ("app=web;x", "unexpected ';'"),
            ("/app", "label key"),
        ] {
            let error = Selector::parse(selector).unwrap_err().to_string();
            assert!(error.contains(why), "{selector}: {error}");
        }
    }
}
