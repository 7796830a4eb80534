//! The containment keys of the config: `safety.breaker`, `executor.verify` and
//! `confirm_batch_size`, `notify:` sinks and `quotas.identity_protection_share`, through the
//! public loader, with their defaults and their errors.

use std::path::Path;
use std::time::Duration;

use engine::config::{ConfigErrors, LoadedConfig, from_parts};

const RULE: &str = "\
rules:
  - id: high-risk-users
    source: risky_users
    match:
      risk_level: [high]
    actions: [revoke_sessions]
";

const TENANT: &str = "\
tenants:
  - tenant_id: 00000000-0000-4000-8000-000000000001
    auth:
      client_id: app
      client_secret: s3cret
";

fn load(extra: &str, tenant_extra: &str) -> Result<LoadedConfig, ConfigErrors> {
    let text = format!(
        "store:\n  path: audit.db\nrules:\n  files: [rules]\n{extra}{TENANT}{tenant_extra}"
    );
    from_parts(
        &text,
        "revokd.yaml",
        Path::new("."),
        vec![rules::SourceFile {
            origin: "rules/rules.yaml".into(),
            text: RULE.into(),
        }],
        Vec::<(String, String)>::new(),
    )
}

fn errors(extra: &str, tenant_extra: &str) -> String {
    load(extra, tenant_extra)
        .map(|_| String::new())
        .unwrap_or_else(|e| e.to_string())
}

#[test]
fn defaults_are_conservative() {
    let loaded = load("", "").expect("loads");
    let c = &loaded.config;
    assert_eq!(c.safety.breaker.max_actions, 50);
    assert_eq!(c.safety.breaker.window, Duration::from_secs(600));
    assert!(c.executor.verify);
    assert_eq!(c.executor.confirm_batch_size, 60);
    assert!(c.notify.is_empty());
    // Half of Identity Protection's shared 1 request/s: one call every 2 s.
    let limits = c.tenants[0].value.quotas.limits();
    assert_eq!(limits.identity_protection.spacing(), Duration::from_secs(2));
    assert_eq!(limits.directory_write.spacing(), Duration::from_millis(50));
}

#[test]
fn breaker_verify_batch_share_and_sinks_are_read() {
    let loaded = load(
        "\
safety:
  breaker: {max_actions: 100, window: 5m}
executor:
  verify: false
  confirm_batch_size: 20
notify:
  - name: soc
    kind: slack
    url: https://hooks.example.com/services/T000/B000/XXXX
    events: [breaker_tripped, action_failed]
    max_attempts: 2
    timeout: 3s
  - kind: teams
    url_file: teams-url
",
        "    quotas:\n      identity_protection_share: 0.25\n",
    )
    .expect("loads");
    let c = &loaded.config;
    assert_eq!(c.safety.breaker.max_actions, 100);
    assert_eq!(c.safety.breaker.window, Duration::from_secs(300));
    assert!(!c.executor.verify);
    assert_eq!(c.executor.confirm_batch_size, 20);
    assert_eq!(c.notify.len(), 2);
    assert_eq!(c.notify[0].events.len(), 2);
    assert_eq!(c.notify[0].timeout, Duration::from_secs(3));
    assert_eq!(c.notify[1].events.len(), 4, "the default events");
    // The URL is a secret: Debug never shows it.
    assert!(!format!("{c:?}").contains("XXXX"));
    let limits = c.tenants[0].value.quotas.limits();
    assert_eq!(limits.identity_protection.spacing(), Duration::from_secs(4));
}

#[test]
fn an_explicit_identity_protection_limit_wins_over_the_share() {
    let loaded = load(
        "",
        "    quotas:\n      identity_protection_share: 0.25\n      identity_protection: {requests: 1, per: 1s}\n",
    )
    .expect("loads");
    let limits = loaded.config.tenants[0].value.quotas.limits();
    assert_eq!(limits.identity_protection.spacing(), Duration::from_secs(1));
}

#[test]
fn mistakes_are_reported() {
    let shown = errors("safety:\n  breaker: {max_actions: 0, window: 0s}\n", "");
    assert!(
        shown.contains("safety.breaker.max_actions must be at least 1"),
        "{shown}"
    );
    assert!(
        shown.contains("safety.breaker.window must be greater than zero"),
        "{shown}"
    );

    let shown = errors("safety:\n  breaker: {max_users: 10}\n", "");
    assert!(shown.contains("unknown field `max_users`"), "{shown}");

    let shown = errors("", "    quotas:\n      identity_protection_share: 1.5\n");
    assert!(
        shown.contains("identity_protection_share must be greater than 0 and at most 1, got 1.5"),
        "{shown}"
    );

    let shown = errors(
        "notify:\n  - name: hook\n    kind: generic\n  - kind: slack\n    url: ftp://example.com/token-abc\n",
        "",
    );
    assert!(shown.contains("hook: needs url or url_file"), "{shown}");
    assert!(
        shown.contains("notify[1]: url must be an http(s) URL"),
        "{shown}"
    );
    assert!(
        !shown.contains("token-abc"),
        "a webhook URL is never echoed: {shown}"
    );
    // An unknown kind is a parse error, reported first.
    let shown = errors(
        "notify:\n  - kind: pager\n    url: https://x.example.com\n",
        "",
    );
    assert!(shown.contains("unknown variant `pager`"), "{shown}");

    let shown = errors("executor:\n  confirm_batch_size: 0\n", "");
    assert!(
        shown.contains("executor.confirm_batch_size must be at least 1"),
        "{shown}"
    );
}
