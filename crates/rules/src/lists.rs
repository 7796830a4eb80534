//! Named lists (`lists:`): sets of IP networks or strings that conditions test membership in
//! with `inList(value, 'name')`, written inline or kept in a file of their own.
//!
//! A list file is plain text, one item per line, `#` starts a comment. This crate does not read
//! it: [`crate::required_files`] names the files the rule files refer to, the caller reads them
//! and passes them to [`crate::compile`] with the rule files, and `compile` picks them out by
//! their resolved path.

use std::path::{Component, Path, PathBuf};

use ipnet::IpNet;
use serde::Serialize;

use crate::expr::parse_ip;

/// What a list holds, and so how membership is tested.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ListKind {
    /// Strings (UPNs, country codes, app ids, group names), compared ignoring case.
    #[default]
    Strings,
    /// IP addresses and CIDR networks, IPv4 or IPv6: a member is an address inside one of them.
    Networks,
}

impl ListKind {
    /// Both kinds.
    pub const ALL: [ListKind; 2] = [ListKind::Strings, ListKind::Networks];

    /// The name rule files use: `strings` or `networks`.
    pub fn as_str(self) -> &'static str {
        match self {
            ListKind::Strings => "strings",
            ListKind::Networks => "networks",
        }
    }
}

/// A compiled list. Its Debug form (name, kind, items) is covered by the hash of every rule
/// that uses it, so editing a list changes those rules' hashes.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedList {
    /// The list's name, unique across all loaded files.
    pub name: String,
    /// Strings or networks.
    pub kind: ListKind,
    /// What the list is for, as its author wrote.
    pub description: String,
    /// Lower-cased, sorted and deduplicated strings (for `strings` lists).
    strings: Vec<String>,
    /// Sorted, deduplicated, truncated networks (for `networks` lists).
    networks: Vec<IpNet>,
}

impl NamedList {
    /// Builds a list from its items; the error names each bad item (by index) for `networks`.
    pub(crate) fn new(
        name: &str,
        kind: ListKind,
        items: &[String],
        description: &str,
    ) -> Result<NamedList, Vec<(usize, String)>> {
        let mut list = NamedList {
            name: name.to_owned(),
            kind,
            description: description.to_owned(),
            strings: Vec::new(),
            networks: Vec::new(),
        };
        let mut errors = Vec::new();
        for (i, item) in items.iter().enumerate() {
            match kind {
                ListKind::Strings => list.strings.push(item.trim().to_lowercase()),
                ListKind::Networks => match parse_network(item) {
                    Some(net) => list.networks.push(net),
                    None => errors.push((i, bad_network(item))),
                },
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        list.strings.sort();
        list.strings.dedup();
        list.networks.sort();
        list.networks.dedup();
        Ok(list)
    }

    /// Whether `value` is in the list: an equal string ignoring case, or an address inside one
    /// of the networks. An empty or unparsable value is in no list.
    pub fn contains(&self, value: &str) -> bool {
        match self.kind {
            ListKind::Strings => {
                let value = value.trim();
                if value.is_empty() {
                    return false;
                }
                // Most values are already lower-case ASCII: search without allocating.
                if value
                    .bytes()
                    .any(|b| b.is_ascii_uppercase() || !b.is_ascii())
                {
                    self.strings.binary_search(&value.to_lowercase()).is_ok()
                } else {
                    self.strings
                        .binary_search_by(|s| s.as_str().cmp(value))
                        .is_ok()
                }
            }
            ListKind::Networks => {
                parse_ip(value).is_some_and(|ip| self.networks.iter().any(|n| n.contains(&ip)))
            }
        }
    }

    /// How many items the list holds.
    pub fn len(&self) -> usize {
        self.strings.len() + self.networks.len()
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// An address or CIDR network; a host address becomes a /32 or /128.
pub(crate) fn parse_network(text: &str) -> Option<IpNet> {
    let text = text.trim();
    text.parse::<IpNet>()
        .ok()
        .or_else(|| text.parse::<std::net::IpAddr>().ok().map(IpNet::from))
        .map(|n| n.trunc())
}

pub(crate) fn bad_network(item: &str) -> String {
    format!(
        "invalid IP address or CIDR network `{item}` (e.g. 203.0.113.7, 203.0.113.0/24 or 2001:db8::/32)"
    )
}

/// The items of a list file: one per line, blank lines and `#` comments skipped, with each
/// item's 1-based line and column.
pub(crate) fn parse_list_file(text: &str) -> Vec<(usize, usize, String)> {
    let mut items = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let content = line.split('#').next().unwrap_or("");
        let trimmed = content.trim();
        if trimmed.is_empty() {
            continue;
        }
        let leading = content.len() - content.trim_start().len();
        let column = content[..leading].chars().count() + 1;
        items.push((i + 1, column, trimmed.to_owned()));
    }
    items
}

/// The path a rule file's `file:` names, resolved against the rule file's directory, without
/// touching the file system: `.` dropped, `..` applied lexically.
pub(crate) fn resolve(rule_file: &str, named: &str) -> String {
    let named = Path::new(named);
    let joined = if named.is_absolute() {
        named.to_path_buf()
    } else {
        Path::new(rule_file)
            .parent()
            .unwrap_or(Path::new(""))
            .join(named)
    };
    normalise(&joined)
}

/// Lexical normalisation, so `rules/./lists/x.txt` and `rules/lists/x.txt` name one file.
pub(crate) fn normalise(path: &Path) -> String {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                if matches!(out.components().next_back(), Some(Component::Normal(_))) {
                    out.pop();
                } else {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out.display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_lists_ignore_case_and_networks_contain_addresses() {
        let strings = NamedList::new(
            "s",
            ListKind::Strings,
            &["Alex@Contoso.com".into(), "NL".into()],
            "",
        )
        .expect("valid");
        assert!(strings.contains("alex@contoso.com"));
        assert!(strings.contains("nl"));
        assert!(strings.contains("ALEX@CONTOSO.COM"));
        assert!(!strings.contains(""));
        assert!(!strings.contains("us"));

        let nets = NamedList::new(
            "n",
            ListKind::Networks,
            &[
                "203.0.113.0/24".into(),
                "2001:db8::/32".into(),
                "198.51.100.7".into(),
            ],
            "",
        )
        .expect("valid");
        assert!(nets.contains("203.0.113.50"));
        assert!(nets.contains("2001:db8::1"));
        assert!(nets.contains("198.51.100.7"));
        assert!(!nets.contains("198.51.100.8"));
        assert!(!nets.contains("not an ip"));
    }

    #[test]
    fn bad_networks_are_named_by_index() {
        let err = NamedList::new(
            "n",
            ListKind::Networks,
            &["10.0.0.0/8".into(), "10.0.0/40".into()],
            "",
        )
        .expect_err("invalid");
        assert_eq!(err[0].0, 1);
    }

    #[test]
    fn list_files_skip_comments_and_blanks() {
        let items = parse_list_file("# header\n\n  10.0.0.0/8  # office\n192.0.2.1\n");
        assert_eq!(
            items,
            vec![
                (3, 3, "10.0.0.0/8".to_string()),
                (4, 1, "192.0.2.1".to_string())
            ]
        );
    }

    #[test]
    fn paths_resolve_against_the_rule_file() {
        assert_eq!(
            resolve("config/rules/a.yaml", "lists/x.txt"),
            "config/rules/lists/x.txt"
        );
        assert_eq!(resolve("config/rules/a.yaml", "./../x.txt"), "config/x.txt");
        assert_eq!(resolve("a.yaml", "x.txt"), "x.txt");
        assert_eq!(resolve("/etc/r/a.yaml", "/srv/x.txt"), "/srv/x.txt");
    }
}
