//! `revokd check`: valid configs pass, broken ones exit 2 naming file, line and column.

use std::path::Path;
use std::process::Output;

use assert_cmd::Command;

const CONFIG: &str = "\
store:
  path: audit.db
rules:
  files: [rules]
tenants:
  - tenant_id: 00000000-0000-4000-8000-000000000001
    auth:
      client_id: app
      client_secret: not-a-real-secret
";

const RULES: &str = "\
rules:
  - id: high-risk-users
    description: contain high-risk users
    source: risky_users
    match:
      risk_level: [high]
      risk_state: [atRisk]
    actions: [revoke_sessions]
";

fn check(dir: &Path) -> Output {
    Command::cargo_bin("revokd")
        .expect("binary built")
        .current_dir(dir)
        .args(["check", "--config", "revokd.yaml"])
        .env_remove("REVOKD__STORE__PATH")
        .output()
        .expect("revokd runs")
}

fn workspace(config: &str, rules: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("revokd.yaml"), config).expect("write config");
    std::fs::create_dir(dir.path().join("rules")).expect("rules dir");
    std::fs::write(dir.path().join("rules/main.yaml"), rules).expect("write rules");
    dir
}

#[test]
fn valid_config_passes() {
    let dir = workspace(CONFIG, RULES);
    let out = check(dir.path());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("revokd.yaml: ok: 1 tenant(s), 1 rule(s) from 1 file(s)"),
        "{stdout}"
    );
    assert!(stdout.contains("high-risk-users"), "{stdout}");
}

#[test]
fn unknown_config_key_exits_2_with_location() {
    let dir = workspace(
        &CONFIG.replace("  path: audit.db", "  path: audit.db\n  colour: blue"),
        RULES,
    );
    let out = check(dir.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("revokd.yaml:3:3: unknown field `colour`"),
        "{stderr}"
    );
}

#[test]
fn rule_yaml_syntax_error_exits_2_with_location() {
    let broken = RULES.replace("risk_level: [high]", "risk_level: [high");
    let dir = workspace(CONFIG, &broken);
    let out = check(dir.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let line = stderr.lines().next().unwrap_or_default();
    let expected_prefix = format!("{}:", Path::new("./rules/main.yaml").display());
    assert!(
        line.starts_with(&expected_prefix) || line.contains("rules/main.yaml:"),
        "{stderr}"
    );
    // file:line:col: the position is on or after the unclosed flow sequence.
    let rest = &line[line.find("main.yaml:").expect("file named") + "main.yaml:".len()..];
    let mut parts = rest.splitn(3, ':');
    let l: usize = parts
        .next()
        .and_then(|p| p.parse().ok())
        .expect("line number");
    let c: usize = parts
        .next()
        .and_then(|p| p.parse().ok())
        .expect("column number");
    assert!(l >= 6 && c >= 1, "{stderr}");
}

#[test]
fn missing_config_file_exits_2() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = check(dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("revokd.yaml: cannot read config"));
}
