//! Rule evaluation throughput: the default rule pack over a generated corpus of 100,000
//! sign-ins, next to the cost of parsing the same sign-ins from JSON alone.
//!
//! `cargo bench -p rules --bench evaluate`; the target is rules+parse at least half the
//! throughput of parse-only. Results are recorded in BENCHMARKS.md.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use graph::models::SignIn;
use rules::{Record, RuleSet, SourceFile, WindowState, compile};
use serde_json::{Value, json};

const SIGN_INS: usize = 100_000;

/// The shipped rule pack, as the daemon loads it.
fn pack() -> RuleSet {
    let files = [
        (
            "config/rules/identity-protection.yaml",
            include_str!("../../../config/rules/identity-protection.yaml"),
        ),
        (
            "config/rules/sign-ins.yaml",
            include_str!("../../../config/rules/sign-ins.yaml"),
        ),
    ]
    .map(|(origin, text)| SourceFile {
        origin: origin.to_string(),
        text: text.to_string(),
    });
    match compile(&files) {
        Ok(set) => set,
        Err(d) => panic!("the default pack does not compile:\n{d}"),
    }
}

/// A deterministic pseudo-random sequence, so every run measures the same corpus.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % below
    }
}

/// Sign-ins shaped like Graph's (the reference example's fields, ~2 KB each), over 5,000
/// users and a day, about 1 in 10 failing, a few from the pack's suspicious network, in
/// chronological order as the daemon feeds windows.
fn corpus() -> Vec<String> {
    let template: Value = serde_json::from_str::<Value>(include_str!(
        "../tests/fixtures/signins-list.beta.example2.response.json"
    ))
    .ok()
    .and_then(|page| page["value"].get(0).cloned())
    .unwrap_or_else(|| json!({}));
    let countries = ["US", "NL", "GB", "DE", "JP", "BR", "IN", "NG", "RU", "CN"];
    let apps = [
        "Azure Portal",
        "Microsoft Teams",
        "Office 365 Exchange Online",
        "SharePoint Online",
    ];
    let mut rng = Lcg(42);
    (0..SIGN_INS)
        .map(|i| {
            let mut r = template.clone();
            let user = rng.next(5_000);
            let seconds = (i as u64) * 86_400 / SIGN_INS as u64;
            let ip = if rng.next(200) == 0 {
                format!("203.0.113.{}", rng.next(250))
            } else {
                format!("198.51.{}.{}", rng.next(250), rng.next(250))
            };
            let code = if rng.next(10) == 0 { 50126 } else { 0 };
            r["id"] = json!(format!("00000000-0000-4000-8000-{i:012}"));
            r["createdDateTime"] = json!(format!(
                "2026-11-01T{:02}:{:02}:{:02}Z",
                seconds / 3600,
                seconds / 60 % 60,
                seconds % 60
            ));
            r["userId"] = json!(format!("u{user:05}"));
            r["userPrincipalName"] = json!(format!("user{user}@contoso.com"));
            r["ipAddress"] = json!(ip);
            r["appDisplayName"] = json!(apps[rng.next(apps.len() as u64) as usize]);
            r["location"]["countryOrRegion"] =
                json!(countries[rng.next(countries.len() as u64) as usize]);
            r["status"] = json!({"errorCode": code});
            r.to_string()
        })
        .collect()
}

fn parse(text: &str) -> Option<SignIn> {
    serde_json::from_str(text).ok()
}

fn bench(c: &mut Criterion) {
    let set = pack();
    let corpus = corpus();
    let mut group = c.benchmark_group("sign-ins");
    group.throughput(Throughput::Elements(SIGN_INS as u64));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.bench_function("parse", |b| {
        b.iter(|| {
            let mut parsed = 0usize;
            for text in &corpus {
                parsed += usize::from(black_box(parse(text)).is_some());
            }
            parsed
        })
    });
    group.bench_function("parse+rules", |b| {
        b.iter(|| {
            let mut windows = WindowState::new();
            let mut matches = 0usize;
            for text in &corpus {
                if let Some(sign_in) = parse(text) {
                    matches += set
                        .evaluate_with(&Record::SignIn(&sign_in), None, &mut windows)
                        .len();
                }
            }
            black_box(matches)
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
