//! Directory enrichment: a user's attributes and group memberships, for rules that read
//! `user.*` and for protected groups.
//!
//! Looked up only when a loaded rule or the protected-groups list needs them, through the
//! tenant's limiter (directory_read), and cached per tenant for `directory.cache_ttl`. A lookup
//! that fails never lets a protected user through: when protection cannot be decided, the
//! decision is held for an operator instead of enforced.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use graph::client::GraphClient;
use graph::error::GraphError;
use rules::UserFacts;
use store::DecisionMode;

use crate::safety::Verdict;

/// The properties `user.*` conditions can read; `$select` keeps the lookup cheap.
const SELECT: [&str; 6] = [
    "id",
    "department",
    "jobTitle",
    "accountEnabled",
    "userType",
    "onPremisesSyncEnabled",
];

/// One tenant's directory look-ups and their cache.
#[derive(Debug)]
pub struct Directory {
    ttl: Duration,
    capacity: usize,
    /// Lower-cased group ids and display names whose members are never actioned.
    protected_groups: Vec<String>,
    cache: Mutex<HashMap<String, Cached>>,
}

#[derive(Debug, Clone)]
struct Cached {
    at: Instant,
    facts: Arc<UserFacts>,
}

impl Directory {
    pub fn new(config: &crate::config::DirectoryConfig, protected_groups: &[String]) -> Self {
        Self {
            ttl: config.cache_ttl,
            capacity: config.cache_entries.max(1),
            protected_groups: protected_groups
                .iter()
                .map(|g| g.trim().to_ascii_lowercase())
                .collect(),
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Whether any group is protected (and so every actioned user's membership is needed).
    pub fn protects_groups(&self) -> bool {
        !self.protected_groups.is_empty()
    }

    /// The user's attributes and transitive group memberships, from the cache or from Graph.
    ///
    /// # Errors
    /// The Graph error of a failed look-up (after the client's retries).
    pub async fn facts(
        &self,
        client: &GraphClient,
        user_id: &str,
    ) -> Result<Arc<UserFacts>, GraphError> {
        if let Some(hit) = self.cached(user_id) {
            return Ok(hit);
        }
        let (user, _) = client.get_user(user_id, &SELECT).await?;
        let mut groups = Vec::new();
        let mut url = client.member_of_url(user_id)?.to_string();
        loop {
            let (page, _) = client.member_of_page(&url).await?;
            for group in page.value {
                groups.extend(group.display_name);
                groups.push(group.id);
            }
            match page.next_link {
                Some(next) => url = next,
                None => break,
            }
        }
        let facts = Arc::new(UserFacts::from_user(&user, Some(groups)));
        self.remember(user_id, facts.clone());
        Ok(facts)
    }

    /// For a user a rule would action: `Protected` if they belong to a protected group,
    /// `Held` if their membership cannot be read, `None` when no group is protected or the
    /// user is in none of them.
    pub async fn protection(&self, client: &GraphClient, user_id: &str) -> Option<Verdict> {
        if !self.protects_groups() {
            return None;
        }
        match self.facts(client, user_id).await {
            Ok(facts) => self.protected_group(&facts).map(|group| Verdict {
                mode: DecisionMode::Protected,
                reason: Some(format!("member of protected group {group}")),
            }),
            Err(e) => Some(Verdict {
                mode: DecisionMode::Held,
                reason: Some(format!(
                    "protection cannot be decided: group membership look-up failed: {e}"
                )),
            }),
        }
    }

    fn protected_group<'a>(&'a self, facts: &UserFacts) -> Option<&'a str> {
        let groups = facts.groups.as_deref().unwrap_or_default();
        self.protected_groups
            .iter()
            .find(|p| groups.iter().any(|g| g.eq_ignore_ascii_case(p)))
            .map(String::as_str)
    }

    fn cached(&self, user_id: &str) -> Option<Arc<UserFacts>> {
        let cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        cache
            .get(user_id)
            .filter(|c| c.at.elapsed() < self.ttl)
            .map(|c| c.facts.clone())
    }

    fn remember(&self, user_id: &str, facts: Arc<UserFacts>) {
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if cache.len() >= self.capacity {
            let ttl = self.ttl;
            cache.retain(|_, c| c.at.elapsed() < ttl);
        }
        if cache.len() >= self.capacity {
            // Still full of live entries: drop the oldest to stay bounded.
            if let Some(oldest) = cache
                .iter()
                .min_by_key(|(_, c)| c.at)
                .map(|(k, _)| k.clone())
            {
                cache.remove(&oldest);
            }
        }
        cache.insert(
            user_id.to_string(),
            Cached {
                at: Instant::now(),
                facts,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DirectoryConfig;

    fn directory(groups: &[&str], entries: usize) -> Directory {
        Directory::new(
            &DirectoryConfig {
                cache_ttl: Duration::from_secs(60),
                cache_entries: entries,
            },
            &groups.iter().map(|g| g.to_string()).collect::<Vec<_>>(),
        )
    }

    fn facts(groups: &[&str]) -> Arc<UserFacts> {
        Arc::new(UserFacts {
            groups: Some(groups.iter().map(|g| g.to_string()).collect()),
            ..UserFacts::default()
        })
    }

    #[test]
    fn protected_groups_match_by_name_or_id_ignoring_case() {
        let d = directory(
            &["Tier 0 Admins", "9A3C1F52-2D7E-4B8A-8C61-5E0F4D2B7A10"],
            10,
        );
        assert_eq!(
            d.protected_group(&facts(&["tier 0 admins"])),
            Some("tier 0 admins")
        );
        assert!(
            d.protected_group(&facts(&["9a3c1f52-2d7e-4b8a-8c61-5e0f4d2b7a10"]))
                .is_some()
        );
        assert!(d.protected_group(&facts(&["Sales"])).is_none());
    }

    #[test]
    fn the_cache_stays_bounded() {
        let d = directory(&[], 3);
        for n in 0..10 {
            d.remember(&format!("user{n}"), facts(&[]));
        }
        let cache = d
            .cache
            .lock()
            .expect("not poisoned in a single-threaded test");
        assert_eq!(cache.len(), 3);
        assert!(cache.contains_key("user9"));
    }
}
