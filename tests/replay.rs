//! `revokd replay`: the default rule pack over recorded sign-in logs (a Graph list page served
//! newest first, and JSON lines), with directory attributes; output snapshotted.

mod support;

use serde_json::Value;
use support::revokd;

const PAGE: &str = "tests/fixtures/replay/signins-page.json";
const LINES: &str = "tests/fixtures/replay/signins.jsonl";
const USERS: &str = "tests/fixtures/replay/users.jsonl";

fn replay(args: &[&str]) -> (i32, String, String) {
    let out = revokd()
        .args([
            "replay",
            "--rules",
            "config/rules",
            "--input",
            PAGE,
            LINES,
            "--users",
            USERS,
        ])
        .args(args)
        .output()
        .expect("revokd runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_table_shows_each_decision_with_its_explanation() {
    let (code, stdout, stderr) = replay(&[]);
    assert_eq!(code, 0, "{stderr}");
    insta::assert_snapshot!("replay_table", stdout);
}

#[test]
fn json_lines_carry_the_whole_explanation() {
    let (code, stdout, stderr) = replay(&["--json"]);
    assert_eq!(code, 0, "{stderr}");
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    let decided: Vec<(&str, &str)> = lines
        .iter()
        .map(|l| {
            (
                l["rule_id"].as_str().unwrap_or_default(),
                l["decision"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        decided,
        [
            ("suspicious-ip-sign-in", "match"),
            ("password-spray-success", "match"),
            ("suspicious-ip-sign-in", "suppressed"),
            ("impossible-travel", "match"),
            ("disabled-account-sign-in", "match"),
        ]
    );
    assert!(
        stderr.contains(
            "replayed 11 record(s) from 2 file(s) against 11 rule(s): 5 decision(s), 1 suppressed"
        ),
        "{stderr}"
    );
    insta::assert_yaml_snapshot!("replay_json", lines);
}

#[test]
fn without_directory_data_user_rules_stay_quiet_and_windows_still_work() {
    let out = revokd()
        .args([
            "replay",
            "--rules",
            "config/rules",
            "--input",
            PAGE,
            LINES,
            "--json",
        ])
        .output()
        .expect("revokd runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(!stdout.contains("disabled-account-sign-in"), "{stdout}");
    assert!(stdout.contains("password-spray-success"), "{stdout}");
}

#[test]
fn the_feed_is_forced_or_detected_and_bad_records_are_named() {
    let dir = tempfile::tempdir().expect("temp dir");
    let input = dir.path().join("odd.jsonl");
    std::fs::write(
        &input,
        "{\"id\": \"u1\", \"riskLevel\": \"high\", \"riskState\": \"atRisk\"}\n{\"what\": 1}\n",
    )
    .expect("write input");
    let input = input.display().to_string();
    let out = revokd()
        .args(["replay", "--rules", "config/rules", "--input", &input])
        .output()
        .expect("revokd runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("high-risk-users"), "{stdout}");
    assert!(
        stderr.contains(&format!(
            "{input}:2: cannot tell which feed this record is from; pass --source"
        )),
        "{stderr}"
    );
    assert!(stdout.contains("1 record(s) rejected"), "{stdout}");

    // Forced to sign-ins, the risky user lacks createdDateTime and is rejected, by line.
    let out = revokd()
        .args([
            "replay",
            "--rules",
            "config/rules",
            "--input",
            &input,
            "--source",
            "sign-ins",
        ])
        .output()
        .expect("revokd runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{input}:1: not a sign_ins record")),
        "{stderr}"
    );
}

#[test]
fn broken_rules_exit_2_with_their_place() {
    let dir = tempfile::tempdir().expect("temp dir");
    let rules = dir.path().join("bad.yaml");
    std::fs::write(
        &rules,
        "rules:\n  - id: r\n    source: sign_ins\n    condition: signIn.ipAdress == 'x'\n    actions: [notify]\n",
    )
    .expect("write rules");
    let out = revokd()
        .args([
            "replay",
            "--rules",
            &rules.display().to_string(),
            "--input",
            PAGE,
        ])
        .output()
        .expect("revokd runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{}:4:23: `signIn` has no field `ipAdress` (did you mean `ipAddress`?)",
            rules.display()
        )),
        "{stderr}"
    );
}

#[test]
fn list_files_named_by_rules_are_read() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir(dir.path().join("lists")).expect("lists dir");
    std::fs::write(
        dir.path().join("lists/bad.txt"),
        "# hostile\n203.0.113.0/24\n",
    )
    .expect("write list");
    std::fs::write(
        dir.path().join("rules.yaml"),
        "lists:\n  bad: {kind: networks, file: lists/bad.txt}\nrules:\n  - id: from-bad\n    source: sign_ins\n    condition: inList(signIn.ipAddress, 'bad')\n    actions: [notify]\n",
    )
    .expect("write rules");
    let out = revokd()
        .args([
            "replay",
            "--rules",
            &dir.path().display().to_string(),
            "--input",
            PAGE,
            "--json",
        ])
        .output()
        .expect("revokd runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Six sign-ins of the page come from 203.0.113.0/24.
    assert_eq!(stdout.lines().count(), 7, "{stdout}");
}
